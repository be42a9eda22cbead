"""The scenario file format: a system written as a timeline, from which every signal is derived.

See docs/scenarios.md. Reading the files (ids, `extends`, validation errors that name the file, the field and the
reason) is `tools.replay.loading`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

LogStatus = Literal["debug", "info", "warn", "error", "critical"]
PodState = Literal["running", "crashloop", "pending", "imagepull", "unready"]
WorkloadKind = Literal["Deployment", "StatefulSet"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReplicaChange(_Strict):
    at: datetime
    replicas: int = Field(ge=0, description="desired replicas from this moment")
    pod_state: PodState = Field("running", description="what the pods do once scheduled")
    reason: str | None = Field(None, description="crashloop: last termination reason (OOMKilled, Error); unready: "
                                                 "the failing readiness probe's message")
    image: str | None = Field(None, description="new image from this moment (a rollout)")
    annotations: dict[str, str] = Field(default_factory=dict, description="annotations set at this moment")


class Gate(_Strict):
    """A condition on one deployment's current state. A flow or log stream with a gate is active only while the
    gate holds, so a remediation that changes the deployment (rollback, scale) also changes what is logged."""

    deployment: str
    namespace: str | None = None
    up: bool | None = Field(None, description="true: while it has available pods; false: while it has none")
    image: str | None = Field(None, description="while its current revision runs this image")
    image_not: str | None = Field(None, description="while its current revision runs any other image")

    @model_validator(mode="after")
    def _has_condition(self) -> Gate:
        if self.up is None and self.image is None and self.image_not is None:
            raise ValueError("a gate needs at least one of up, image, image_not")
        return self


class LogStream(_Strict):
    message: str = Field(description="template; {id} 24-hex, {uuid}, {n} counter, {ms} latency")
    rate_per_min: float = Field(gt=0)
    status: LogStatus = "info"
    start: datetime | None = None
    end: datetime | None = None
    attributes: dict[str, Any] = Field(default_factory=dict)
    when: Literal["up", "crashing", "always"] = Field("up", description="log while pods are up / crash-looping")
    only_while: Gate | None = Field(None, description="log only while this gate holds")


class Hang(_Strict):
    """From `at`, running pods stop making progress while staying attached and ready: a consumer keeps its channel
    and its prefetched messages unacknowledged, acks nothing and logs nothing. Only replacing the pods (a rollout
    restart, a rollback, scaling to 0 and back) ends it; pods created later by a scale-up work."""

    at: datetime
    pods: int | None = Field(None, ge=1, description="how many of the running pods hang (default: all)")


class Autoscaler(_Strict):
    """An autoscaler object that owns the workload's replica count. A `ScaledObject` (KEDA) with a `queue` scales
    the workload from `min_replicas` up when that queue holds messages and back to `min_replicas` after
    `cooldown_seconds` with an empty queue, emitting KEDA's events; an HPA is shown with its bounds."""

    kind: Literal["HorizontalPodAutoscaler", "ScaledObject"]
    name: str | None = Field(None, description="default: the workload's name")
    min_replicas: int = Field(1, ge=0)
    max_replicas: int = Field(ge=1)
    queue: str | None = Field(None, description="ScaledObject: the RabbitMQ queue whose depth drives it")
    messages_per_replica: int = Field(20, ge=1, description="ScaledObject: target queue length per replica")
    cooldown_seconds: int = Field(300, ge=0)
    polling_seconds: int = Field(30, ge=5)

    @model_validator(mode="after")
    def _bounds(self) -> Autoscaler:
        if self.min_replicas > self.max_replicas:
            raise ValueError(f"min_replicas {self.min_replicas} is above max_replicas {self.max_replicas}")
        return self


class Deployment(_Strict):
    name: str
    kind: WorkloadKind = "Deployment"
    namespace: str | None = None
    image: str
    hangs: list[Hang] = Field(default_factory=list)
    autoscaler: Autoscaler | None = None
    latency_ms: float = Field(30.0, gt=0, description="mean duration of one request span it serves")
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    replicas: list[ReplicaChange] | Annotated[int, Field(ge=0)] = 1
    startup_seconds: int = Field(6, ge=0)
    cpu_millicores: float = Field(20.0, ge=0)
    memory_mib: float = Field(128.0, ge=0)
    logs: list[LogStream] = Field(default_factory=list)


class FlowStep(_Strict):
    deployment: str | None = Field(None, description="log this step's message in this deployment")
    namespace: str | None = Field(None, description="namespace of `deployment` or `call` (default: world's)")
    message: str | None = None
    status: LogStatus = "info"
    attributes: dict[str, Any] = Field(default_factory=dict)
    publish: str | None = Field(None, description="publish one message to this queue")
    vhost: str | None = Field(None, description="vhost of the `publish` queue (default: the only queue so named)")
    on_publish_failure: FlowStep | None = Field(None, description="logged instead when the broker is down or "
                                                                  "blocks publishers")
    call: str | None = Field(None, description="a synchronous request to this deployment")
    on_call_failure: FlowStep | None = Field(None, description="logged when the called deployment has no ready "
                                                               "pods; the request ends there")

    @model_validator(mode="after")
    def _one_action(self) -> FlowStep:
        if sum(x is not None for x in (self.deployment, self.publish, self.call)) != 1:
            raise ValueError("a step either logs (deployment + message), publishes (publish) or calls (call)")
        if self.deployment is not None and not self.message:
            raise ValueError("a logging step needs a message")
        return self


class Flow(_Strict):
    name: str
    rate_per_min: float = Field(gt=0)
    start: datetime | None = None
    end: datetime | None = None
    only_while: Gate | None = Field(None, description="run only while this gate holds")
    steps: list[FlowStep] = Field(min_length=1)


class Consumer(_Strict):
    deployment: str
    namespace: str | None = None
    per_replica: int = Field(1, ge=1)
    rate_per_min: float = Field(600.0, gt=0, description="messages one consumer can process per minute")
    prefetch: int = Field(10, ge=1, description="unacknowledged messages one consumer may hold (basic.qos)")
    message: str | None = Field(None, description="logged per consumed message; {id} is the publisher's id")
    status: LogStatus = "info"


class Queue(_Strict):
    name: str
    vhost: str = "/"
    durable: bool = False
    initial_depth: int = Field(0, ge=0)
    consumer: Consumer | None = Field(None, description="shorthand for a single entry of `consumers`")
    consumers: list[Consumer] = Field(default_factory=list, description="every workload consuming the queue")

    @model_validator(mode="after")
    def _one_consumer_list(self) -> Queue:
        if self.consumer is not None:
            if self.consumers:
                raise ValueError("give either consumer or consumers, not both")
            self.consumers = [self.consumer]
            self.consumer = None
        return self


class BrokerAlarm(_Strict):
    """A RabbitMQ resource alarm: while it is set the broker blocks every publishing connection."""

    resource: Literal["memory", "disk"]
    at: datetime
    until: datetime | None = None


class Broker(_Strict):
    deployment: str
    namespace: str | None = None
    node: str = "rabbit@rabbitmq"
    alarms: list[BrokerAlarm] = Field(default_factory=list)


class MetricPoint(_Strict):
    at: datetime
    value: float


class ExtraMetric(_Strict):
    metric: str
    tags: dict[str, str] = Field(default_factory=dict)
    points: list[MetricPoint] = Field(min_length=1, description="piecewise-linear between points")
    noise: float = Field(0.0, ge=0, description="relative jitter added to each sample")
    replace: bool = Field(False, description="replace the values of derived series of this metric whose tags "
                                             "include all of these tags, instead of adding a series")


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
    namespace: str | None = None
    message: str
    status: LogStatus = "info"
    attributes: dict[str, Any] = Field(default_factory=dict)


class Fault(_Strict):
    source: Literal["logs", "metrics", "kubernetes", "rabbitmq", "events"]
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

    def workload_key(self, name: str, namespace: str | None) -> tuple[str, str]:
        return namespace or self.namespace, name

    @model_validator(mode="after")
    def _references_exist(self) -> World:
        known = {self.workload_key(d.name, d.namespace) for d in self.deployments}
        queues = {q.name for q in self.queues}
        problems: list[str] = []

        def check(owner: str, name: str, namespace: str | None) -> None:
            ns, _ = self.workload_key(name, namespace)
            if (ns, name) not in known:
                problems.append(f"{owner} names unknown deployment {ns}/{name}")

        for flow in self.flows:
            for step in flow.steps:
                for s in (step, step.on_publish_failure, step.on_call_failure):
                    if s and s.deployment:
                        check(f"flow {flow.name!r}", s.deployment, s.namespace)
                    if s and s.call:
                        check(f"flow {flow.name!r} call", s.call, s.namespace)
                    if s and s.publish and s.publish not in queues:
                        problems.append(f"flow {flow.name!r} publishes to unknown queue {s.publish!r}")
        for queue in self.queues:
            for consumer in queue.consumers:
                check(f"queue {queue.name!r} consumer", consumer.deployment, consumer.namespace)
        if self.broker:
            check("broker", self.broker.deployment, self.broker.namespace)
        for log in self.logs:
            check(f"log at {log.at}", log.deployment, log.namespace)
        gates = [(f"flow {f.name!r}", f.only_while) for f in self.flows] + [
            (f"log stream of {d.name!r}", stream.only_while) for d in self.deployments for stream in d.logs]
        for owner, gate in gates:
            if gate is not None:
                check(f"{owner} gate", gate.deployment, gate.namespace)
        for d in self.deployments:
            if d.autoscaler and d.autoscaler.queue and d.autoscaler.queue not in queues:
                problems.append(f"autoscaler of {d.name!r} watches unknown queue {d.autoscaler.queue!r}")
        for d in self.deployments:
            for hang in d.hangs:
                if _replicas_at(d, hang.at, self.start) == 0:
                    problems.append(f"deployment {d.name!r} hangs at {hang.at.isoformat()} but has no pods then: "
                                    "a hang needs running pods (give replicas > 0 at that time)")
        duplicates = sorted({f"{ns}/{n}" for ns, n in known
                             if sum(1 for d in self.deployments if self.workload_key(d.name, d.namespace) == (ns, n))
                             > 1})
        if duplicates:
            problems.append(f"deployments defined twice: {', '.join(duplicates)}")
        if problems:
            raise ValueError("; ".join(problems))
        return self


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
    expect: Any = Field(None, description="what a correct answer says; validated by evals.expectations")

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


def _replicas_at(deployment: Deployment, at: datetime, start: datetime) -> int:
    """Desired replicas of a deployment's timeline at `at` (0 before its first change)."""
    if isinstance(deployment.replicas, int):
        return deployment.replicas
    changes = [c for c in sorted(deployment.replicas, key=lambda c: c.at) if c.at <= max(at, start)]
    return changes[-1].replicas if changes else 0
