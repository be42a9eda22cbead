"""Guided mode: how the graph makes a small model succeed without changing what a strong model may do.

Instead of free-form tool calls, each turn is one JSON-schema-constrained choice (decoded under a grammar by the
server): a tool and arguments whose values are enumerated from what earlier calls discovered (namespaces,
deployments, queues). Code turns the choice into the real tool call, results are compacted, and the verdict is a
compact constrained draft that code expands into evidence citing the calls, with the numbers copied from them.
The validator then checks it like any other verdict.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from agent.signals import Observation, checked_signals

STANDARD_METRICS = {
    "replicas_available": ("kubernetes_state.deployment.replicas_available", "kube_deployment"),
    "queue_depth": ("rabbitmq.queue.messages", "rabbitmq_queue"),
    "queue_consumers": ("rabbitmq.queue.consumers", "rabbitmq_queue"),
    "publish_rate": ("rabbitmq.queue.messages.publish.rate", "rabbitmq_queue"),
}
WINDOWS = {"5m": "now-5m", "15m": "now-15m", "1h": "now-1h"}
KEY_FIELDS = {
    "get_queue_stats": ("consumers", "messages", "publish_rate", "deliver_rate"),
    "get_deployment": ("desired", "available"),
    "search_logs": ("total",),
    "list_events": ("total",),
}
MAX_COMPACT_CHARS = 700


@dataclass
class Inventory:
    namespaces: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)

    def deployment_refs(self) -> list[tuple[str, str]]:
        return [(ref.split("/", 1)[0], ref.split("/", 1)[1]) for ref in self.deployments]

    @classmethod
    def of(cls, observations: list[Observation]) -> Inventory:
        inventory = cls()
        for obs in observations:
            if not obs.ok:
                continue
            data = obs.data
            for row in data.get("namespaces", []):
                _add(inventory.namespaces, row.get("namespace"))
                for flagged in row.get("attention", []):
                    _add(inventory.deployments, f"{row.get('namespace')}/{flagged.split(' ')[0]}")
                    _add(inventory.flagged, f"{row.get('namespace')}/{flagged.split(' ')[0]}")
            for consumer in data.get("consumed_by") or []:
                match = re.match(r"Deployment (\S+/\S+)", consumer)
                if match:
                    _add(inventory.deployments, match.group(1))
            if "deployments" in data:
                for row in data["deployments"]:
                    _add(inventory.deployments, f"{data['namespace']}/{row['name']}")
            elif obs.tool == "get_deployment" and "name" in data:
                _add(inventory.deployments, f"{data['namespace']}/{data['name']}")
            for row in data.get("queues", []):
                _add(inventory.queues, row.get("queue"))
            if obs.tool == "get_queue_stats" and "queue" in data:
                _add(inventory.queues, data["queue"])
        return inventory


def _add(items: list[str], value: Any) -> None:
    if isinstance(value, str) and value and value not in items:
        items.append(value)


def _enum(values: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": values} if values else {"type": "string"}


def _choice(tool: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["tool", *required],
            "properties": {"tool": {"type": "string", "enum": [tool]}, **properties}}


def discovery_calls(observations: list[Observation]) -> list[tuple[str, dict[str, Any]]]:
    """Inventory the runtime gathers before the model's first choice, so every choice has real names to pick."""
    made = [(o.tool, o.args) for o in observations]
    if not any(tool == "list_namespaces" for tool, _ in made):
        return [("list_namespaces", {}), ("get_queue_stats", {})]
    inventory = Inventory.of(observations)
    listed = {args.get("namespace") for tool, args in made if tool == "get_deployment" and not args.get("name")}
    return [("get_deployment", {"namespace": ns}) for ns in inventory.namespaces[:3] if ns not in listed]


def _taken(observations: list[Observation]) -> set[tuple[str, str]]:
    """(choice, subject) pairs already explored: a small model is never offered the same step twice."""
    taken: set[tuple[str, str]] = set()
    for obs in observations:
        args, tool = obs.args, obs.tool
        query = str(args.get("query", ""))
        if tool == "get_deployment" and args.get("name"):
            taken.add(("get_deployment", f"{args['namespace']}/{args['name']}"))
        elif tool == "get_deployment":
            taken.add(("list_deployments", str(args.get("namespace"))))
        elif tool == "get_queue_stats":
            taken.add(("get_queue", str(args["queue"])) if args.get("queue") else ("list_queues", ""))
        elif tool == "list_namespaces":
            taken.add(("list_namespaces", ""))
        elif tool == "list_events":
            taken.add(("list_events", f"{args.get('namespace')}/{args.get('involved_object')}"))
        elif tool == "search_logs":
            match = re.match(r"kube_namespace:(\S+) (service|status):(\S+)", query)
            if match and match.group(2) == "service":
                taken.add(("search_logs", f"{match.group(1)}/{match.group(3)}"))
            elif match:
                taken.add(("search_errors", match.group(1)))
        elif tool == "get_metric":
            match = re.search(r"(\w+):([^,}]+)}", query)
            if match:
                taken.add(("queue_metric" if "rabbitmq" in query else "replicas_metric", match.group(2)))
    return taken


def step_schema(inventory: Inventory, observations: list[Observation] | None = None) -> dict[str, Any]:
    """The next step: one of the tools, with argument values from the inventory not yet explored, or `answer`."""
    taken = _taken(observations or [])

    def fresh(choice: str, values: list[str], key: Any = lambda v: v) -> list[str]:
        return [v for v in values if (choice, key(v)) not in taken]

    namespaces, deployments, queues = inventory.namespaces, inventory.deployments, inventory.queues
    choices = []
    if ("list_namespaces", "") not in taken:
        choices.append(_choice("list_namespaces", {}, []))
    if ("list_queues", "") not in taken:
        choices.append(_choice("list_queues", {}, []))
    for choice, values in (("list_deployments", fresh("list_deployments", namespaces)),
                           ("search_errors", fresh("search_errors", namespaces))):
        if values:
            extra = {"window": _enum(list(WINDOWS))} if choice == "search_errors" else {}
            choices.append(_choice(choice, {"namespace": _enum(values), **extra}, ["namespace", *extra]))
    for choice in ("get_deployment", "search_logs", "list_events", "replicas_metric"):
        values = fresh(choice, deployments, (lambda v: v.split("/", 1)[1]) if choice == "replicas_metric" else
                       (lambda v: v))
        if values:
            extra = {"window": _enum(list(WINDOWS))} if choice == "search_logs" else {}
            choices.append(_choice(choice, {"deployment": _enum(values), **extra}, ["deployment", *extra]))
    if values := fresh("get_queue", queues):
        choices.append(_choice("get_queue", {"queue": _enum(values)}, ["queue"]))
    if values := fresh("queue_metric", queues):
        choices.append(_choice("queue_metric", {"queue": _enum(values), "metric": _enum(
            ["queue_depth", "queue_consumers", "publish_rate"])}, ["queue", "metric"]))
    flagged = [ref for ref in inventory.flagged if ("get_deployment", ref) not in taken]
    if not flagged or len(flagged) < len(inventory.flagged):
        choices.append(_choice("answer", {}, []))
    return {"anyOf": choices}


def to_tool_call(choice: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The real tool call for a guided choice; None for `answer`."""
    tool = choice.get("tool")
    namespace, _, name = str(choice.get("deployment", "")).partition("/")
    window = WINDOWS.get(str(choice.get("window")), "now-15m")
    if tool == "list_namespaces":
        return "list_namespaces", {}
    if tool == "list_queues":
        return "get_queue_stats", {}
    if tool == "list_deployments":
        return "get_deployment", {"namespace": choice.get("namespace")}
    if tool == "get_deployment":
        return "get_deployment", {"namespace": namespace, "name": name}
    if tool == "search_logs":
        return "search_logs", {"query": f"kube_namespace:{namespace} service:{name}", "start": window}
    if tool == "search_errors":
        return "search_logs", {"query": f"kube_namespace:{choice.get('namespace')} status:(error OR warn)",
                               "start": window}
    if tool == "list_events":
        return "list_events", {"namespace": namespace, "involved_object": name}
    if tool == "get_queue":
        return "get_queue_stats", {"queue": choice.get("queue")}
    if tool == "queue_metric":
        metric, tag = STANDARD_METRICS.get(str(choice.get("metric")), STANDARD_METRICS["queue_depth"])
        return "get_metric", {"query": f"avg:{metric}{{{tag}:{choice.get('queue')}}}", "start": "now-1h"}
    if tool == "replicas_metric":
        metric, tag = STANDARD_METRICS["replicas_available"]
        return "get_metric", {"query": f"avg:{metric}{{kube_namespace:{namespace},{tag}:{name}}}", "start": "now-1h"}
    return None


def compact(tool: str, data: dict[str, Any]) -> str:
    """What a small model needs from a result: the summary and the key numbers."""
    if "error" in data:
        return json.dumps({"error": data["error"], "message": data.get("message", "")[:300]})
    kept: dict[str, Any] = {"summary": data.get("summary", "")}
    for key in KEY_FIELDS.get(tool, ()):
        if key in data:
            kept[key] = data[key]
    if tool == "get_queue_stats" and data.get("consumed_by"):
        kept["consumed_by"] = data["consumed_by"]
    if "attention" in data:
        kept["attention"] = data["attention"]
    text = json.dumps(kept, separators=(",", ":"))
    return text if len(text) <= MAX_COMPACT_CHARS else text[:MAX_COMPACT_CHARS] + "…"


_BROKER_IMAGE = re.compile(r"rabbitmq|amqp|activemq|kafka|nats", re.IGNORECASE)
ALL_ACTIONS = ["scale", "rollout_restart", "rollback", "none"]


def observed_symptoms(observations: list[Observation]) -> set[str]:
    """System-wide symptoms the tools showed: a queue growing despite consumers, error logs."""
    found = set()
    for obs in observations:
        if not obs.ok:
            continue
        trend = obs.data.get("depth_trend") or {}
        if obs.tool == "get_queue_stats" and obs.data.get("consumers") and trend.get("direction") == "rising":
            found.add("consumer_too_slow")
        if obs.tool == "search_logs" and ((obs.data.get("by_status") or {}).get("error") or 0) > 0:
            found |= {f"app_errors:{service}" for service in obs.data.get("by_service") or {}}
    return found


def consistent_options(state: dict[str, Any] | None,
                       symptoms: set[str] | None = None) -> tuple[list[str], list[str]]:
    """Root-cause categories and actions that agree with what the tools showed about a deployment. A crash-looping
    deployment cannot be 'scaled to 0', and scaling it up cannot fix it; a deployment at 0 is not crash-looping;
    a fully available deployment is at fault only through a symptom the tools showed (a growing queue, errors)."""
    from agent.verdict import Category

    every = [c for c in Category.__args__ if c != "planned_maintenance"]  # type: ignore[attr-defined]
    if not state:
        return every, ALL_ACTIONS
    waiting = {p.get("waiting_reason") for p in state.get("pods", []) if p.get("waiting_reason")}
    broker = bool(_BROKER_IMAGE.search(" ".join(state.get("images", []))))
    rolled_out = int((state.get("annotations") or {}).get("deployment.kubernetes.io/revision", "1") or 1) > 1
    if state.get("desired") == 0:
        return ["broker_unavailable" if broker else "consumer_unavailable"], ["scale", "none"]
    if "ImagePullBackOff" in waiting or "ErrImagePull" in waiting:
        return ["config_change"], ["rollback", "none"]
    if "CrashLoopBackOff" in waiting:
        # Restarting the revision that crashes brings back the same crash; after a rollout, undo it.
        return ["consumer_crashlooping", "app_errors", "resource_exhaustion", "config_change"], (
            ["rollback", "none"] if rolled_out else ["rollout_restart", "none"])
    if state.get("available", 0) >= state.get("desired", 0):
        seen = {s.split(":")[0] for s in symptoms or set()
                if ":" not in s or s.split(":", 1)[1] in (state.get("name"), (state.get("labels") or {}).get("name"))}
        shown: list[str] = [c for c in ("consumer_too_slow", "app_errors") if c in seen]
        actions = ["scale"] if shown == ["consumer_too_slow"] else ALL_ACTIONS
        return shown, actions if shown else []
    return every, ALL_ACTIONS


def verdict_schema(observations: list[Observation], call_ids: list[str]) -> dict[str, Any]:
    """One branch per kind of answer: healthy / inconclusive, or an incident at one discovered deployment with the
    categories and actions consistent with its observed state."""
    from agent.validator import known_deployments

    states = known_deployments(observations)
    symptoms = observed_symptoms(observations)
    common = {"summary": {"type": "string", "maxLength": 400},
              "evidence": {"type": "array", "items": _enum(call_ids), "maxItems": 8},
              "confidence": {"type": "number", "minimum": 0, "maximum": 1}}
    checked = checked_signals(observations)
    missing = any(not o.ok for o in observations) or not {"queue_consumers", "queue_depth"} <= set(checked)
    calm = ["healthy", "inconclusive"] if missing else ["healthy"]
    branches: list[dict[str, Any]] = [{
        "type": "object", "additionalProperties": False, "required": ["status", "summary", "evidence", "confidence"],
        "properties": {"status": {"type": "string", "enum": calm}, **common}}]
    for (namespace, name) in Inventory.of(observations).deployment_refs():
        state = states.get((namespace, name)) or {}
        categories, actions = consistent_options(state or None, symptoms)
        if not categories:
            continue
        desired = state.get("desired", 0)
        fewest = desired + 1 if desired and state.get("available", 0) >= desired else 1
        branches.append({
            "type": "object", "additionalProperties": False,
            "required": ["status", "component", "category", "remediation", "summary", "evidence", "confidence"],
            "properties": {"status": {"type": "string", "enum": ["incident"]},
                           "component": {"type": "string", "enum": [f"{namespace}/{name}"]},
                           "category": _enum(categories), "remediation": _enum(actions),
                           "replicas": {"type": "integer", "minimum": fewest, "maximum": max(20, fewest)},
                           **common}})
    return {"anyOf": branches}


def _evidence_for(obs: Observation) -> list[dict[str, Any]]:
    data, claim = obs.data, obs.summary[:200]
    items: list[dict[str, Any]] = []
    if obs.tool == "get_queue_stats" and "queue" in data:
        items += [{"signal": "queue_consumers", "observed": {"consumers": data["consumers"]}},
                  {"signal": "queue_depth", "observed": {"messages": data["messages"]}}]
    elif obs.tool == "get_queue_stats" and data.get("queues"):
        row = next((r for r in data["queues"] if r["queue"] in data.get("attention", [])), data["queues"][0])
        items += [{"signal": "queue_consumers", "observed": {"consumers": row["consumers"]}},
                  {"signal": "queue_depth", "observed": {"messages": row["messages"]}}]
    elif obs.tool == "get_deployment" and "name" in data:
        items.append({"signal": "replicas", "observed": {"desired": data["desired"], "available": data["available"]}})
        if data.get("events"):
            items.append({"signal": "events", "observed": {"reason": data["events"][-1]["reason"]}})
    elif obs.tool == "search_logs" and "status:" in str(obs.args.get("query")):
        items += [{"signal": "errors", "observed": {"total": data["total"]}},
                  {"signal": "producer_activity", "observed": {"total": data["total"]}}]
    elif obs.tool == "search_logs":
        items.append({"signal": "consumer_logs", "observed": {"total": data["total"]}})
    elif obs.tool == "get_metric" and data.get("series"):
        signal = next((s for s in ("replicas", "queue_consumers", "queue_depth", "producer_activity")
                       if s in obs.signals), "other")
        items.append({"signal": signal, "observed": {"last": data["series"][0]["trend"]["last"]}})
    elif obs.tool == "list_events":
        items.append({"signal": "events", "observed": {"total": data["total"]}})
    return [{**item, "claim": claim, "tool_call_id": obs.call_id} for item in items]


def _concerns(obs: Observation, names: set[str]) -> bool:
    text = json.dumps(obs.args) + " " + obs.summary
    return any(name in text for name in names)


def _replicas(choice: dict[str, Any], namespace: str, name: str, observations: list[Observation]) -> int:
    """The chosen replica count, or the fewest that changes anything: 1 from zero, one more than a full set."""
    from agent.validator import known_deployments

    state = known_deployments(observations).get((namespace, name)) or {}
    desired = state.get("desired", 0)
    fewest = desired + 1 if desired and state.get("available", 0) >= desired else 1
    return max(int(choice.get("replicas") or fewest), fewest)


def expand_verdict(choice: dict[str, Any], observations: list[Observation]) -> dict[str, Any]:
    """A full verdict draft from the compact one: evidence from the cited calls (and, as bookkeeping, every other
    successful call about the chosen component or a queue), numbers copied from their results."""
    status = choice.get("status", "inconclusive")
    namespace, _, name = str(choice.get("component") or "").partition("/")
    by_id = {o.call_id: o for o in observations if o.ok and o.repeated_from is None}
    cited = [by_id[c] for c in choice.get("evidence", []) if c in by_id]
    names = {name} if name else set()
    names |= {o.data["queue"] for o in by_id.values() if o.tool == "get_queue_stats" and "queue" in o.data}
    related = [o for o in by_id.values() if o not in cited and _concerns(o, names)] if status != "healthy" else []
    evidence = [item for obs in [*cited, *related] for item in _evidence_for(obs)]
    if status == "healthy":
        evidence += [item for obs in by_id.values() if obs not in cited and obs.tool == "get_queue_stats"
                     for item in _evidence_for(obs)]
    draft: dict[str, Any] = {"status": status, "summary": choice.get("summary") or status,
                             "confidence": choice.get("confidence", 0.5), "evidence": evidence}
    if status == "incident" and name:
        draft["root_cause"] = {"category": choice.get("category", "unknown"), "explanation": draft["summary"],
                               "component": {"kind": "Deployment", "namespace": namespace, "name": name}}
        action = choice.get("remediation", "none")
        if action != "none":
            draft["remediation"] = {"action": action, "namespace": namespace, "name": name,
                                    "replicas": _replicas(choice, namespace, name, observations)
                                    if action == "scale" else None,
                                    "verification": ["available replicas at desired", "queue consumers ≥ 1",
                                                     "queue depth falling"]}
    return draft
