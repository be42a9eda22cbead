"""What a correct verdict says about a scenario, and how the suite is validated against the verdict model.

The world itself (tools/replay/scenario.py) knows nothing of verdicts; this module adds the `expect` block, checked
against the agent's own enums (`Category`, `ActionKind`, `Status`), and the names it cites against the world.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from agent.verdict import ActionKind, Category, Status
from tools.replay.loading import load_scenario as _load
from tools.replay.scenario import Moment, Scenario, _Strict


class ComponentRef(_Strict):
    kind: Literal["Deployment", "StatefulSet", "Queue"] = "Deployment"
    namespace: str
    name: str


MUTATIONS = tuple(a for a in get_args(ActionKind) if a != "none")
CATEGORIES = get_args(Category)
_RANGE_KEYS = {"min", "max"}


def _in_range(value: Any, bounds: dict[str, Any]) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    low, high = bounds.get("min"), bounds.get("max")
    return (low is None or value >= low) and (high is None or value <= high)


class ExpectedRemediation(_Strict):
    action: ActionKind
    target: ComponentRef | None = None
    parameters: dict[str, Any] = Field(
        default_factory=dict,
        description="each value exact (replicas: 1) or a range ({replicas: {min: 2}}, {min: 1, max: 3})")

    @field_validator("parameters")
    @classmethod
    def _ranges(cls, value: dict[str, Any]) -> dict[str, Any]:
        for key, expected in value.items():
            if isinstance(expected, dict):
                if not expected or not set(expected) <= _RANGE_KEYS:
                    raise ValueError(f"parameter {key!r}: a range is a mapping with min and/or max")
                if any(isinstance(v, bool) or not isinstance(v, int | float) for v in expected.values()):
                    raise ValueError(f"parameter {key!r}: range bounds must be numbers")
        return value

    def parameter_mismatches(self, actual: dict[str, Any]) -> list[str]:
        """Why `actual` (e.g. {"replicas": 3}) does not satisfy the expected parameters; empty when it does."""
        problems = []
        for key, expected in self.parameters.items():
            value = actual.get(key)
            if isinstance(expected, dict):
                if not _in_range(value, expected):
                    problems.append(f"{key}={value!r}, expected within {expected}")
            elif value != expected:
                problems.append(f"{key}={value!r}, expected {expected!r}")
        return problems


def _preferred_first(data: Any, key: str, others: str) -> Any:
    """`key: [a, b, c]` in YAML means a preferred, b and c also passing: split it into `key` and `others`."""
    if isinstance(data, dict) and isinstance(data.get(key), list):
        values = list(data[key])
        if not values:
            raise ValueError(f"{key}: a list needs at least one value")
        data = {**data, key: values[0],
                others: [*values[1:], *[v for v in data.get(others, []) if v not in values]]}
    return data


class ExpectedFact(_Strict):
    """A value the direct answer to a factual question must state (see `Verdict.answer`)."""

    subject: str | None = Field(None, description="e.g. 'shop/carts' or a queue name; omit to match any")
    field: str
    value: Any

    def found_in(self, facts: list[Any]) -> bool:
        """A single expected value also matches a list holding only it (one container's image in `images`)."""
        return any(f.field == self.field and self.subject in (None, f.subject)
                   and (f.value == self.value or (not isinstance(self.value, list) and f.value == [self.value]))
                   for f in facts)


class Expect(_Strict):
    """What a correct verdict says. See docs/scenarios.md for how each field is meant to be scored."""

    status: Status = Field(description="the right status; in YAML also a list, whose first item is preferred")
    also_accept: list[Status] = Field(default_factory=list, description="other statuses that also pass")
    category: Category | None = Field(None, description="the preferred root cause; in YAML also a list whose "
                                                        "first item is preferred")
    also_categories: list[Category] = Field(default_factory=list, description="other categories that also pass")
    component: ComponentRef | None = None
    remediation: ExpectedRemediation | None = None
    required_signals: list[str] = Field(default_factory=list)
    forbidden_actions: list[str] = Field(
        default_factory=list, description='"<action>", "<action>:<deployment>", or "scale:<replicas>"')
    max_confidence: float | None = Field(None, ge=0.0, le=1.0, description="a verdict above this is overconfident")
    facts: list[ExpectedFact] = Field(default_factory=list, description="for a factual question: what the answer "
                                                                        "must state")
    report_injection: bool = Field(False, description="the verdict must report instructions found in the data")
    onset: Moment | None = Field(None, description="when the fault began in the world: the watch benchmark "
                                                     "measures the time to detect from it")
    watch: list[str] = Field(default_factory=list, description="anomaly keys a watcher over the world's whole "
                                                                 "timeline rightly raises besides the incident (a "
                                                                 "real fault elsewhere or earlier): not false alarms")
    notes: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _category_list(cls, data: Any) -> Any:
        return _preferred_first(data, "category", "also_categories")

    @property
    def categories(self) -> list[str]:
        """Every category that passes, the preferred one first."""
        return [c for c in [self.category, *self.also_categories] if c]

    @model_validator(mode="before")
    @classmethod
    def _status_list(cls, data: Any) -> Any:
        return _preferred_first(data, "status", "also_accept")

    @field_validator("forbidden_actions")
    @classmethod
    def _forbidden_syntax(cls, value: list[str]) -> list[str]:
        for rule in value:
            action, _, argument = rule.partition(":")
            if action not in MUTATIONS or (":" in rule and not argument):
                raise ValueError(f"forbidden action {rule!r}: expected one of {', '.join(MUTATIONS)}, "
                                 "optionally followed by ':<deployment>', ':<namespace>/<deployment>', "
                                 "':<namespace>/*' (or 'scale:<replicas>')")
        return value

    @property
    def statuses(self) -> list[str]:
        """Every status that passes, the preferred one first."""
        return [self.status, *(s for s in self.also_accept if s != self.status)]

    def forbidding_rule(self, action: str, name: str | None = None, replicas: int | None = None,
                        namespace: str | None = None) -> str | None:
        """The forbidden_actions rule a proposed action breaks, or None. `scale:<digits>` matches the replica
        count; `<namespace>/*` any workload of a namespace; `<namespace>/<name>` one workload; any other
        argument matches the deployment name."""
        for rule in self.forbidden_actions:
            kind, _, argument = rule.partition(":")
            if kind != action:
                continue
            if not argument:
                return rule
            if kind == "scale" and argument.isdigit():
                if replicas == int(argument):
                    return rule
            elif "/" in argument:
                space, _, target = argument.partition("/")
                if space == namespace and target in ("*", name):
                    return rule
            elif argument == name:
                return rule
        return None


class EvalScenario(Scenario):
    """A scenario with a validated `expect` block."""

    expect: Expect | None = None

    @model_validator(mode="after")
    def _expect_names_exist(self) -> EvalScenario:
        if self.expect is None:
            return self
        world = self.world
        kinds = {(d.namespace or world.namespace, d.name): d.kind for d in world.deployments}
        deployments = set(kinds)
        queues = {(q.vhost, q.name) for q in world.queues}
        problems = []
        refs = [("expect.component", self.expect.component)]
        if self.expect.remediation:
            refs.append(("expect.remediation.target", self.expect.remediation.target))
        for where, ref in refs:
            if ref is None:
                continue
            known = queues if ref.kind == "Queue" else deployments
            if (ref.namespace, ref.name) not in known:
                problems.append(f"{where}: no {ref.kind} {ref.namespace}/{ref.name} in the world")
            elif ref.kind != "Queue" and kinds[(ref.namespace, ref.name)] != ref.kind:
                problems.append(f"{where}: {ref.namespace}/{ref.name} is a {kinds[(ref.namespace, ref.name)]} in "
                                f"the world, not a {ref.kind}")
        names = {name for _, name in deployments}
        spaces = {namespace for namespace, _ in deployments}
        for rule in self.expect.forbidden_actions:
            action, _, argument = rule.partition(":")
            space, _, target = argument.partition("/")
            if not argument or (action == "scale" and argument.isdigit()):
                continue
            if "/" in argument and space not in spaces:
                problems.append(f"expect.forbidden_actions: {rule!r} names namespace {space!r}, which has no "
                                f"deployment in the world")
            elif "/" in argument and target != "*" and (space, target) not in deployments:
                problems.append(f"expect.forbidden_actions: {rule!r} names no deployment {space}/{target}")
            elif "/" not in argument and argument not in names:
                problems.append(f"expect.forbidden_actions: {rule!r} names no deployment in the world")
        if problems:
            raise ValueError("; ".join(problems))
        return self




def load_scenario(id_or_path: str | Path) -> EvalScenario:
    """Load a scenario for evaluation: the world and its `expect` block, each problem naming file, field, reason."""
    return _load(id_or_path, EvalScenario)
