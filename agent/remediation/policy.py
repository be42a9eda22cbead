"""What the agent may propose and who may approve it, read from a YAML file.

Rules are tried in order; the first whose namespaces and deployments globs match the target decides. A rule
allows action kinds and bounds their parameters. Some limits hold whatever a file says: scaling to 0 is never
allowed and there is no delete at all. See default-policy.yaml beside this file.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, field_validator, model_validator

from agent.remediation.errors import PolicyError
from agent.verdict import Action
from tools.yamlfile import Bounds, YAMLFileError, read_yaml

POLICY_ENV = "SRE_AGENT_POLICY"
DEFAULT_POLICY = Path(__file__).with_name("default-policy.yaml")
KNOWN_ACTIONS = ("scale", "rollout_restart", "rollback")
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h)?\s*$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")
POLICY_BOUNDS = Bounds(bytes=256_000, depth=12, nodes=20_000)  # the default policy is 2 kB and nests 6 levels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _duration(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise ValueError("a duration is seconds (900) or text like '15m', '900s', '1h'")
    match = _DURATION.match(str(value))
    if not match:
        raise ValueError(f"cannot read duration {value!r}: use seconds (900) or '15m', '900s', '1h'")
    number, unit = int(match.group(1)), match.group(2) or "s"
    try:
        return timedelta(seconds=number * {"s": 1, "m": 60, "h": 3600}[unit])
    except OverflowError:
        raise ValueError(f"duration {value!r} is out of range: use seconds (900) or '15m', '900s', '1h'") from None


Duration = Annotated[timedelta, BeforeValidator(_duration)]


def valid_person(name: str) -> str:
    """An approver's name: letters, digits and . _ @ + - (an email or a handle); never empty."""
    cleaned = name.strip() if isinstance(name, str) else ""
    if not _NAME.match(cleaned):
        raise ValueError(f"{name!r} is not a usable name: use a handle or email (letters, digits, . _ @ + -)")
    return cleaned


class ScaleLimits(_Strict):
    min_replicas: int = Field(1, ge=1, description="never below 1: scaling to 0 stops the workload")
    max_replicas: int = Field(10, ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> ScaleLimits:
        if self.max_replicas < self.min_replicas:
            raise ValueError(f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})")
        return self


class NoParameters(_Strict):
    pass


class Allow(_Strict):
    scale: ScaleLimits | None = None
    rollout_restart: NoParameters | None = None
    rollback: NoParameters | None = None

    @model_validator(mode="before")
    @classmethod
    def _known(cls, data: Any) -> Any:
        if data is None:
            return {}
        if isinstance(data, dict):
            unknown = [k for k in data if k not in KNOWN_ACTIONS]
            if unknown:
                raise ValueError(f"unknown action {unknown[0]!r}; the actions that exist are "
                                 f"{', '.join(KNOWN_ACTIONS)} (there is no delete)")
            return {k: ({} if v is None else v) for k, v in data.items()}
        return data

    def kinds(self) -> list[str]:
        return [kind for kind in KNOWN_ACTIONS if getattr(self, kind) is not None]


class Rule(_Strict):
    name: str = Field(min_length=1)
    namespaces: list[str] = Field(min_length=1, description="globs, e.g. ['*'], ['shop-*']")
    deployments: list[str] = Field(default_factory=lambda: ["*"], min_length=1, description="globs")
    allow: Allow = Field(default_factory=Allow)
    approvers: list[str] | None = Field(None, description="who may approve actions on these targets; unset: "
                                                          "approval.approvers")

    @field_validator("approvers")
    @classmethod
    def _people(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else [valid_person(name) for name in value]

    def matches(self, namespace: str, name: str) -> bool:
        return any(fnmatchcase(namespace, g) for g in self.namespaces) and any(
            fnmatchcase(name, g) for g in self.deployments)

    def describe(self) -> str:
        scope = f"namespaces {', '.join(self.namespaces)}"
        if self.deployments != ["*"]:
            scope += f"; deployments {', '.join(self.deployments)}"
        return f"rule {self.name!r} ({scope})"


class ApprovalSettings(_Strict):
    expires_after: Duration = Field(timedelta(minutes=15), description="how long a proposal may wait")
    approvers: list[str] = Field(default_factory=list, description="who may approve; empty: any named person")
    identity: Literal["declared", "authenticated"] = Field(
        "declared", description="declared: a named person (the CLI's --as); authenticated: only an identity a "
                                "front door authenticated (the server's tokens or trusted proxy header)")
    second_approver_for: list[str] = Field(
        default_factory=list, description="high-risk actions (scale, rollout_restart, rollback) that need a second "
                                          "approver, different from the proposer and the first approver")

    @field_validator("second_approver_for")
    @classmethod
    def _actions(cls, value: list[str]) -> list[str]:
        unknown = [action for action in value if action not in KNOWN_ACTIONS]
        if unknown:
            raise ValueError(f"unknown action {unknown[0]!r}; the actions are {', '.join(KNOWN_ACTIONS)}")
        return value

    @field_validator("expires_after")
    @classmethod
    def _bounded(cls, value: timedelta) -> timedelta:
        if not timedelta(minutes=1) <= value <= timedelta(hours=24):
            raise ValueError(f"expires_after must be between 1m and 24h, got {int(value.total_seconds())}s")
        return value

    @field_validator("approvers")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        return [valid_person(name) for name in value]


class PolicyDecision(BaseModel):
    """Whether an action may run, and the rule that said so, in words."""

    allowed: bool
    rule: str
    reason: str

    def __str__(self) -> str:
        return f"{'allowed' if self.allowed else 'refused'} by {self.rule}: {self.reason}"


class Policy(_Strict):
    version: int = Field(1, ge=1, le=1)
    approval: ApprovalSettings = Field(default_factory=ApprovalSettings)
    rules: list[Rule] = Field(min_length=1)
    source: str = Field("<memory>", exclude=True)

    def check(self, action: Action) -> PolicyDecision:
        if action.action == "none":
            return PolicyDecision(allowed=False, rule="built-in", reason="the action is 'none': nothing to run")
        if action.action not in KNOWN_ACTIONS:  # pragma: no cover - Action's type already limits this
            return PolicyDecision(allowed=False, rule="built-in", reason=f"unknown action {action.action!r}")
        if action.action == "scale" and (action.replicas is None or action.replicas < 1):
            return PolicyDecision(allowed=False, rule="built-in: never scale to 0",
                                  reason=f"scale to {action.replicas} replicas refused: scaling to 0 stops the "
                                         "workload and is never done by this agent")
        target = action.target_ref()
        for index, rule in enumerate(self.rules):
            if not rule.matches(action.namespace, action.name):
                continue
            where = f"{rule.describe()} in {self.source} (rules[{index}])"
            if action.action not in rule.allow.kinds():
                allowed = ", ".join(rule.allow.kinds()) or "nothing"
                return PolicyDecision(allowed=False, rule=where,
                                      reason=f"{action.action} is not allowed for {target}; this rule allows {allowed}")
            limits = rule.allow.scale
            if action.action == "scale" and limits is not None and action.replicas is not None and not (
                    limits.min_replicas <= action.replicas <= limits.max_replicas):
                return PolicyDecision(
                    allowed=False, rule=where,
                    reason=f"scale to {action.replicas} replicas is outside the allowed "
                           f"{limits.min_replicas}..{limits.max_replicas} for {target}")
            return PolicyDecision(allowed=True, rule=where, reason=f"{action.action} of {target} is allowed")
        return PolicyDecision(allowed=False, rule=f"default deny in {self.source}",
                              reason=f"no rule matches {target}; nothing outside the listed rules may run")

    def scale_bounds(self, namespace: str, name: str) -> tuple[int, int] | None:
        """The replica counts a scale of this workload may ask for, when the rule that decides for it allows
        scaling within limits."""
        rule = next((r for r in self.rules if r.matches(namespace, name)), None)
        limits = rule.allow.scale if rule else None
        return (max(1, limits.min_replicas), limits.max_replicas) if limits else None

    def approvers_for(self, action: Action) -> list[str]:
        """Who may approve `action`: the matching rule's approvers, else the policy-wide list (empty: anyone)."""
        rule = next((r for r in self.rules if r.matches(action.namespace, action.name)), None)
        return list(rule.approvers) if rule and rule.approvers is not None else list(self.approval.approvers)

    def approvals_needed(self, action: Action) -> int:
        return 2 if action.action in self.approval.second_approver_for else 1

    def identity(self) -> str:
        """Where this policy came from and a digest of its content, as a proposal records it."""
        from agent.remediation.binding import policy_digest

        return f"{self.source}@{policy_digest(self.model_dump_json())}"

    def may_approve(self, approver: str) -> PolicyDecision:
        try:
            name = valid_person(approver)
        except ValueError as exc:
            return PolicyDecision(allowed=False, rule="built-in: approvers are named", reason=str(exc))
        if not self.approval.approvers:
            return PolicyDecision(allowed=True, rule=f"approval.approvers in {self.source}",
                                  reason="any named person may approve")
        if name in self.approval.approvers:
            return PolicyDecision(allowed=True, rule=f"approval.approvers in {self.source}",
                                  reason=f"{name} is a listed approver")
        return PolicyDecision(allowed=False, rule=f"approval.approvers in {self.source}",
                              reason=f"{name} is not a listed approver ({', '.join(self.approval.approvers)})")


def _problems(path: Path | str, exc: ValidationError) -> str:
    lines = [f"{path}: {exc.error_count()} problem(s)"]
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "(top level)"
        message = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"  - {where}: {message}")
    return "\n".join(lines)


def parse_policy(data: Any, source: str = "<memory>") -> Policy:
    if not isinstance(data, dict):
        raise PolicyError(f"{source}: expected a mapping at the top level, got {type(data).__name__}")
    if "source" in data:
        raise PolicyError(f"{source}: source: not a policy field")
    try:
        return Policy.model_validate({**data, "source": source})
    except ValidationError as exc:
        raise PolicyError(_problems(source, exc)) from None


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at `path`, else at `$SRE_AGENT_POLICY`, else the packaged safe default. A file beyond
    POLICY_BOUNDS (size, nesting, nodes once aliases are expanded), not UTF-8 or with a key given twice is refused
    before it is read as a policy."""
    chosen = path or os.environ.get(POLICY_ENV) or DEFAULT_POLICY
    where = Path(chosen).expanduser()
    origin = "" if path or chosen == DEFAULT_POLICY else f" (from ${POLICY_ENV})"
    try:
        raw = read_yaml(where, what="policy file", name=f"{where}{origin}", bounds=POLICY_BOUNDS)
    except YAMLFileError as exc:
        raise PolicyError(str(exc)) from None
    return parse_policy(raw, str(where))
