"""The scenario file format: a system written as a timeline, from which every signal is derived.

See docs/scenarios.md. Validation errors name the file, the field and the reason.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

LogStatus = Literal["debug", "info", "warn", "error", "critical"]
PodState = Literal["running", "crashloop", "pending", "imagepull"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplicaChange(_Strict):
    at: datetime
    replicas: int = Field(ge=0, description="desired replicas from this moment")
    pod_state: PodState = Field("running", description="what the pods do once scheduled")
    reason: str | None = Field(None, description="termination reason for crash-looping pods, e.g. OOMKilled")
    image: str | None = Field(None, description="new image from this moment (a rollout)")
    annotations: dict[str, str] = Field(default_factory=dict, description="annotations set at this moment")


class LogStream(_Strict):
    message: str = Field(description="template; {id} 24-hex, {uuid}, {n} counter, {ms} latency")
    rate_per_min: float = Field(gt=0)
    status: LogStatus = "info"
    start: datetime | None = None
    end: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    when: Literal["up", "crashing", "always"] = Field("up", description="log while pods are up / crash-looping")


class Deployment(_Strict):
    name: str
    namespace: str | None = None
    image: str
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    replicas: list[ReplicaChange] | Annotated[int, Field(ge=0)] = 1
    startup_seconds: int = Field(6, ge=0)
    cpu_millicores: float = Field(20.0, ge=0)
    memory_mib: float = Field(128.0, ge=0)
    logs: list[LogStream] = Field(default_factory=list)


class FlowStep(_Strict):
    deployment: str | None = Field(None, description="log this step's message in this deployment")
    message: str | None = None
    status: LogStatus = "info"
    attributes: dict[str, Any] = Field(default_factory=dict)
    publish: str | None = Field(None, description="publish one message to this queue")
    on_publish_failure: FlowStep | None = Field(None, description="logged instead when the broker is down")

    @model_validator(mode="after")
    def _one_action(self) -> FlowStep:
        if (self.deployment is None) == (self.publish is None):
            raise ValueError("a step either logs (deployment + message) or publishes (publish)")
        if self.deployment is not None and not self.message:
            raise ValueError("a logging step needs a message")
        return self


class Flow(_Strict):
    name: str
    rate_per_min: float = Field(gt=0)
    start: datetime | None = None
    end: datetime | None = None
    steps: list[FlowStep] = Field(min_length=1)


class Consumer(_Strict):
    deployment: str
    namespace: str | None = None
    per_replica: int = Field(1, ge=1)
    rate_per_min: float = Field(600.0, gt=0, description="messages one consumer can process per minute")
    message: str | None = Field(None, description="logged per consumed message; {id} is the publisher's id")
    status: LogStatus = "info"


class Queue(_Strict):
    name: str
    vhost: str = "/"
    durable: bool = False
    initial_depth: int = Field(0, ge=0)
    consumer: Consumer | None = None


class Broker(_Strict):
    deployment: str
    namespace: str | None = None
    node: str = "rabbit@rabbitmq"


class MetricPoint(_Strict):
    at: datetime
    value: float


class ExtraMetric(_Strict):
    metric: str
    tags: dict[str, str] = Field(default_factory=dict)
    points: list[MetricPoint] = Field(min_length=1, description="piecewise-linear between points")
    noise: float = Field(0.0, ge=0, description="relative jitter added to each sample")


class ExplicitEvent(_Strict):
    at: datetime
    namespace: str | None = None
    kind: str
    name: str
    reason: str
    message: str
    type: Literal["Normal", "Warning"] = "Normal"
    source: str | None = None


class ExplicitLog(_Strict):
    at: datetime
    deployment: str
    message: str
    status: LogStatus = "info"
    attributes: dict[str, Any] = Field(default_factory=dict)


class Fault(_Strict):
    source: Literal["logs", "metrics", "kubernetes", "rabbitmq"]
    error: Literal["rate_limited", "server_error", "timeout"] | None = None
    calls: int | None = Field(None, ge=1, description="fail only the first N calls (None: every call)")
    drop_from: datetime | None = Field(None, description="with drop_to: telemetry missing in this window")
    drop_to: datetime | None = None

    @model_validator(mode="after")
    def _has_effect(self) -> Fault:
        if self.error is None and (self.drop_from is None or self.drop_to is None):
            raise ValueError("a fault needs an error or a drop_from/drop_to window")
        return self


class World(_Strict):
    start: datetime = Field(description="when recorded history begins")
    namespace: str = Field(description="default namespace for deployments, events and logs")
    extra_namespaces: list[str] = Field(default_factory=list)
    cluster: str = "prod"
    deployments: list[Deployment] = Field(min_length=1)
    flows: list[Flow] = Field(default_factory=list)
    queues: list[Queue] = Field(default_factory=list)
    broker: Broker | None = None
    events: list[ExplicitEvent] = Field(default_factory=list)
    logs: list[ExplicitLog] = Field(default_factory=list)
    metrics: list[ExtraMetric] = Field(default_factory=list)
    faults: list[Fault] = Field(default_factory=list)

    @model_validator(mode="after")
    def _references_exist(self) -> World:
        names = {d.name for d in self.deployments}
        queues = {q.name for q in self.queues}
        problems: list[str] = []
        for flow in self.flows:
            for step in flow.steps:
                for s in (step, step.on_publish_failure):
                    if s and s.deployment and s.deployment not in names:
                        problems.append(f"flow {flow.name!r} logs in unknown deployment {s.deployment!r}")
                    if s and s.publish and s.publish not in queues:
                        problems.append(f"flow {flow.name!r} publishes to unknown queue {s.publish!r}")
        for queue in self.queues:
            if queue.consumer and queue.consumer.deployment not in names:
                problems.append(f"queue {queue.name!r} consumer {queue.consumer.deployment!r} is not a deployment")
        if self.broker and self.broker.deployment not in names:
            problems.append(f"broker deployment {self.broker.deployment!r} is not a deployment")
        for log in self.logs:
            if log.deployment not in names:
                problems.append(f"log at {log.at} names unknown deployment {log.deployment!r}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


class ComponentRef(_Strict):
    kind: str = "Deployment"
    namespace: str
    name: str


class ExpectedRemediation(_Strict):
    action: Literal["scale", "rollout_restart", "rollback", "none"]
    target: ComponentRef | None = None
    parameters: dict[str, Any] = Field(default_factory=dict)


class Expect(_Strict):
    status: Literal["incident", "healthy", "inconclusive"]
    category: str | None = None
    component: ComponentRef | None = None
    remediation: ExpectedRemediation | None = None
    required_signals: list[str] = Field(default_factory=list)
    forbidden_actions: list[str] = Field(default_factory=list)
    notes: str | None = None


class Clock(_Strict):
    now: datetime


class Scenario(_Strict):
    id: str
    title: str
    description: str = ""
    question: str
    clock: Clock
    seed: int = 0
    world: World
    expect: Expect | None = None

    @field_validator("id")
    @classmethod
    def _slug(cls, value: str) -> str:
        if not value.replace("-", "").replace("_", "").isalnum():
            raise ValueError("id must be letters, digits, '-' or '_'")
        return value

    @model_validator(mode="after")
    def _clock_after_start(self) -> Scenario:
        if self.clock.now <= self.world.start:
            raise ValueError(f"clock.now ({self.clock.now}) must be after world.start ({self.world.start})")
        return self


class ScenarioError(Exception):
    """A scenario file that cannot be used; the message names the file, the field and the reason."""


SCENARIO_FILE = "scenario.yaml"


def builtin_scenarios_dir() -> Path:
    return Path(__file__).resolve().parents[2] / "evals" / "scenarios"


def resolve_scenario_path(id_or_path: str | Path) -> Path:
    candidate = Path(id_or_path)
    if candidate.is_dir():
        candidate = candidate / SCENARIO_FILE
    if candidate.is_file():
        return candidate
    builtin = builtin_scenarios_dir() / str(id_or_path) / SCENARIO_FILE
    if builtin.is_file():
        return builtin
    known = sorted(p.parent.name for p in builtin_scenarios_dir().glob(f"*/{SCENARIO_FILE}"))
    raise ScenarioError(
        f"no scenario {str(id_or_path)!r}: not a folder with {SCENARIO_FILE}, a file, or a built-in id. "
        f"Built-in ids: {', '.join(known) or 'none'}"
    )


def merge(base: Any, override: Any) -> Any:
    """Deep merge: mappings merge by key, lists of named mappings merge by `name`, anything else is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base[key], value) if key in base else value
        return merged
    named = lambda items: all(isinstance(i, dict) and "name" in i for i in items)  # noqa: E731
    if isinstance(base, list) and isinstance(override, list) and override and named(base) and named(override):
        by_name = {item["name"]: item for item in base}
        for item in override:
            by_name[item["name"]] = merge(by_name[item["name"]], item) if item["name"] in by_name else item
        return list(by_name.values())
    return override


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    if path in seen:
        raise ScenarioError(f"{path}: 'extends' loops back to itself")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ScenarioError(f"{seen[-1] if seen else path}: extends {path}, which does not exist") from None
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise ScenarioError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    parent = raw.pop("extends", None)
    if parent is None:
        return raw
    return merge(_read_yaml((path.parent / str(parent)).resolve(), (*seen, path)), raw)


def load_scenario(id_or_path: str | Path) -> Scenario:
    path = resolve_scenario_path(id_or_path)
    raw = _read_yaml(path.resolve())
    try:
        return Scenario.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{path}: {exc.error_count()} problem(s)"]
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "(top level)"
            lines.append(f"  - {where}: {error['msg']}")
        raise ScenarioError("\n".join(lines)) from None


def list_scenarios(root: Path | None = None) -> list[Path]:
    base = root or builtin_scenarios_dir()
    return sorted(p.parent for p in base.glob(f"*/{SCENARIO_FILE}"))
