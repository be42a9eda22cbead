"""The playbook tracker: which detection signals each tool call can support, and what is still unchecked.

Guidance, not a script: the model is reminded of what remains and may skip steps that do not apply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

CORE_SIGNALS = ("consumer_logs", "replicas", "queue_consumers", "queue_depth")
# A message broker's own image: the product is the whole image name (any registry path, a distribution's
# prefix or edition suffix, then a tag), so a consumer image that merely mentions the broker does not count.
BROKER = re.compile(r"(?:^|[\s/])(?:cp-)?(?:rabbitmq|activemq|kafka|nats|redpanda|pulsar)"
                    r"(?:-(?:server|management|cluster|artemis|alpine))?(?=[:@\s]|$)", re.IGNORECASE)
MAINTENANCE = re.compile(r"maintenance|pause|drain|planned", re.IGNORECASE)  # in an annotation or event

_METRIC_SIGNALS = (
    (re.compile(r"kubernetes_state\.(deployment|statefulset|pod)\.|kubernetes\.containers\.restarts"), "replicas"),
    (re.compile(r"rabbitmq\.queue\.consumers|deliver_get\.rate|\.ack\.rate"), "queue_consumers"),
    (re.compile(r"rabbitmq\.queue\.messages(_ready|_unacknowledged)?(\{|$|\s)"), "queue_depth"),
    (re.compile(r"publish\.rate"), "producer_activity"),
)


@dataclass
class Observation:
    """One tool call and its result, as the validator and the scorer see it."""

    call_id: str
    tool: str
    args: dict[str, Any]
    ok: bool
    data: dict[str, Any]
    ms: float = 0.0
    repeated_from: str | None = None
    signals: set[str] = field(default_factory=set)
    injections: list[str] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return str(self.data.get("summary") or self.data.get("message") or "")

    def to_dict(self) -> dict[str, Any]:
        return {"call_id": self.call_id, "tool": self.tool, "args": self.args, "ok": self.ok, "data": self.data,
                "ms": self.ms, "repeated_from": self.repeated_from, "signals": sorted(self.signals),
                "injections": self.injections}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Observation:
        return cls(raw["call_id"], raw["tool"], raw["args"], raw["ok"], raw["data"], raw.get("ms", 0.0),
                   raw.get("repeated_from"), set(raw.get("signals", [])), list(raw.get("injections", [])))


def consumer_refs(queue: dict[str, Any]) -> list[tuple[str, str]]:
    """(namespace, name) of each workload holding a queue's consumers, from a get_queue_stats result."""
    return [(c["namespace"], c["name"]) for c in queue.get("consumed_by") or [] if isinstance(c, dict)]


def signals_for(tool: str, args: dict[str, Any], ok: bool, data: dict[str, Any]) -> set[str]:
    """The signals a successful call of `tool` with `args` can support as evidence."""
    if not ok:
        return set()
    if tool == "get_queue_stats":
        return {"queue_consumers", "queue_depth", "producer_activity"}
    if tool == "get_deployment":
        return {"replicas", "events"} if args.get("name") else {"replicas"}
    if tool == "list_namespaces":
        return {"replicas"}
    if tool == "list_events":
        return {"events", "replicas"}
    if tool == "search_logs":
        found = {"consumer_logs", "producer_activity"}
        by_status = data.get("by_status") or {}
        if re.search(r"status:\(?error", str(args.get("query", ""))) or by_status.get("error") or \
                by_status.get("critical"):
            found.add("errors")
        return found
    if tool == "get_metric":
        query = str(args.get("query", ""))
        found = {signal for pattern, signal in _METRIC_SIGNALS if pattern.search(query)}
        return found or {"other"}
    return {"other"}


def checked_signals(observations: list[Observation]) -> dict[str, str]:
    """Core signal -> id of the first call that checked it."""
    checked: dict[str, str] = {}
    for obs in observations:
        if not obs.ok:
            continue
        candidates = set(obs.signals)
        if obs.tool == "search_logs" and not re.search(r"(service|kube_deployment|pod_name):", str(obs.args)):
            candidates.discard("consumer_logs")
        if obs.tool in ("list_namespaces",) or (obs.tool == "get_deployment" and not obs.args.get("name")):
            candidates.discard("replicas")
        for signal in CORE_SIGNALS:
            if signal in candidates:
                checked.setdefault(signal, obs.call_id)
    return checked


def progress_note(observations: list[Observation], tool_calls_left: int, llm_calls_left: int) -> str:
    checked = checked_signals(observations)
    remaining = [s for s in CORE_SIGNALS if s not in checked]
    done = ", ".join(f"{s} ({cid})" for s, cid in checked.items()) or "none yet"
    text = f"[runtime] Playbook signals checked: {done}. "
    text += f"Not yet checked: {', '.join(remaining)}. " if remaining else "All four core signals checked. "
    failures = [o for o in observations if not o.ok]
    if failures:
        text += f"{len(failures)} tool call(s) failed; fix the arguments or use another source. "
    text += f"Budget left: {tool_calls_left} tool calls, {llm_calls_left} model turns. "
    text += "When the evidence points to one cause (or to none), stop calling tools and answer."
    return text
