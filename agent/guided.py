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

from agent.findings import autoscaled_to_rest, mentioned_workloads, serving_failure, stuck_consumers
from agent.scope import EVERYTHING, Scope
from agent.signals import (
    BROKER,
    CORE_SIGNALS,
    ERROR_BURST,
    MAINTENANCE,
    Observation,
    checked_signals,
    consumer_refs,
)
from agent.sizing import previous_replicas, replicas_to_keep_up

STANDARD_METRICS = {
    "replicas_available": ("kubernetes_state.deployment.replicas_available", "kube_deployment"),
    "queue_depth": ("rabbitmq.queue.messages", "rabbitmq_queue"),
    "queue_consumers": ("rabbitmq.queue.consumers", "rabbitmq_queue"),
    "publish_rate": ("rabbitmq.queue.messages.publish.rate", "rabbitmq_queue"),
}
WINDOWS = {"5m": "now-5m", "15m": "now-15m", "1h": "now-1h"}
ERROR_QUERY = "kube_namespace:{namespace} status:(error OR warn)"
PRODUCER_QUERY = "kube_namespace:{namespace} (queue OR publish* OR enqueue*)"
MAX_SUSPECTS = 3
KEY_FIELDS = {
    "get_queue_stats": ("consumers", "messages", "publish_rate", "deliver_rate"),
    "get_deployment": ("desired", "available"),
    "search_logs": ("total", "by_service"),
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
    def of(cls, observations: list[Observation], scope: Scope = EVERYTHING) -> Inventory:
        """What the calls discovered, limited to the question's scope."""
        inventory = cls._of(observations)
        inventory.namespaces = [ns for ns in inventory.namespaces if scope.covers(ns)]
        for name in ("deployments", "flagged"):
            setattr(inventory, name, [ref for ref in getattr(inventory, name) if scope.covers(ref.split("/")[0])])
        return inventory

    @classmethod
    def _of(cls, observations: list[Observation]) -> Inventory:
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
            for namespace, name in consumer_refs(data):
                _add(inventory.deployments, f"{namespace}/{name}")
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


def discovery_calls(observations: list[Observation],
                    scope: Scope = EVERYTHING) -> list[tuple[str, dict[str, Any]]]:
    """What the runtime looks at before and between the model's choices: the inventory (namespaces, queues,
    deployment tables of the question's scope), then the leads any on-call engineer follows first."""
    made = [(o.tool, o.args) for o in observations]
    if not any(tool == "list_namespaces" for tool, _ in made):
        return [("list_namespaces", {}), ("get_queue_stats", {})]
    inventory = Inventory.of(observations, scope)
    listed = {args.get("namespace") for tool, args in made if tool == "get_deployment" and not args.get("name")}
    tables = [("get_deployment", {"namespace": ns}) for ns in inventory.namespaces[:3] if ns not in listed]
    return tables or lead_calls(observations, scope)


def _done(tool: str, args: dict[str, Any], observations: list[Observation]) -> bool:
    return any(o.tool == tool and all(o.args.get(k) == v for k, v in args.items()) for o in observations)


def _queue_rows(observations: list[Observation]) -> list[dict[str, Any]]:
    for obs in observations:
        if obs.ok and obs.tool == "get_queue_stats" and "queues" in obs.data:
            return list(obs.data["queues"])
    return []


def suspects(observations: list[Observation], scope: Scope = EVERYTHING) -> list[str]:
    """Deployments worth a closer look, most telling first: below desired, consuming a queue that is not keeping
    up, named by callers' errors, or logging errors."""
    inventory = Inventory.of(observations, scope)
    found: list[str] = list(inventory.flagged)
    for obs in observations:
        if not obs.ok:
            continue
        if obs.tool == "get_queue_stats" and "queue" in obs.data and (_backlogged(obs.data)
                                                                      or stuck_consumers(obs.data)):
            for namespace, name in consumer_refs(obs.data):
                if scope.covers(namespace):
                    _add(found, f"{namespace}/{name}")
    for ref in called_and_failing(observations, scope):
        _add(found, ref)
    for obs in observations:
        scoped = re.match(r"kube_namespace:(\S+) status:", str(obs.args.get("query", "")))
        if obs.ok and obs.tool == "search_logs" and scoped:
            noisy = sorted((n, s) for s, n in (obs.data.get("by_service") or {}).items() if n >= ERROR_BURST)
            for _, service in reversed(noisy):
                ref = f"{scoped.group(1)}/{service}"
                if ref in inventory.deployments:
                    _add(found, ref)
    return found


def _backlogged(queue: dict[str, Any]) -> bool:
    trend = queue.get("depth_trend") or {}
    return bool(queue.get("messages")) and (not queue.get("consumers") or trend.get("direction") == "rising")


def lead_calls(observations: list[Observation], scope: Scope = EVERYTHING) -> list[tuple[str, dict[str, Any]]]:
    """The first looks after the inventory, made by code: error and publishing logs per namespace, the stats of
    every queue holding messages or lacking consumers, and the detail of the suspect deployments."""
    inventory = Inventory.of(observations, scope)
    leads: list[tuple[str, dict[str, Any]]] = []
    for namespace in inventory.namespaces[:2]:
        leads += [("search_logs", {"query": query.format(namespace=namespace), "start": "now-15m"})
                  for query in (ERROR_QUERY, PRODUCER_QUERY)]
    rows = sorted(_queue_rows(observations), key=lambda r: (-(r.get("messages") or 0), r["queue"]))
    leads += [("get_queue_stats", {"queue": r["queue"]}) for r in rows
              if r.get("messages") or not r.get("consumers")][:2]
    for ref in suspects(observations, scope)[:MAX_SUSPECTS]:
        namespace, name = ref.split("/", 1)
        leads.append(("get_deployment", {"namespace": namespace, "name": name}))
    return [(tool, args) for tool, args in leads if not _done(tool, args, observations)]


def inspected(observations: list[Observation]) -> list[str]:
    return [f"{o.args['namespace']}/{o.args['name']}" for o in observations
            if o.ok and o.tool == "get_deployment" and o.args.get("name")]


def unchecked(observations: list[Observation]) -> list[str]:
    """Core signals not yet checked, where a deployment's own logs count only when searched by its name (a
    namespace-wide error search cannot show that a consumer went quiet)."""
    missing = [s for s in CORE_SIGNALS if s not in checked_signals(observations)]
    logs_read = {subject for choice, subject in _taken(observations) if choice == "search_logs"}
    looked_at = set(inspected(observations))
    if "consumer_logs" not in missing and looked_at and not logs_read & looked_at:
        missing.insert(0, "consumer_logs")
    # A source that fails every call cannot be checked further; its failure is the finding.
    unreachable = {s for tool, signals in UNREACHABLE_SIGNALS.items() if _unreachable(observations, tool)
                   for s in signals}
    return [s for s in missing if s not in unreachable]


UNREACHABLE_SIGNALS = {"get_queue_stats": ("queue_consumers", "queue_depth"), "search_logs": ("consumer_logs",)}


def _unreachable(observations: list[Observation], tool: str) -> bool:
    calls = [o for o in observations if o.tool == tool]
    return bool(calls) and not any(o.ok for o in calls)


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


def transcript(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The conversation as a small model reads it best: tool calls and their results become one short user
    message per round, `call_id tool args: result` per line, instead of the chat template's tool-call markup.
    Append-only, so the server's prompt cache still reuses every earlier turn."""
    shown: list[dict[str, Any]] = []
    calls: dict[str, str] = {}
    lines: list[str] = []
    for message in messages:
        if message.get("role") == "tool":
            lines.append(f"{calls.get(message.get('tool_call_id', ''), message.get('tool_call_id'))}: "
                         f"{message.get('content')}")
            continue
        if lines:
            shown.append({"role": "user", "content": "Results:\n" + "\n".join(lines)})
            lines = []
        if message.get("role") == "assistant" and message.get("tool_calls"):
            for call in message["tool_calls"]:
                arguments = call["function"]["arguments"]
                args = json.loads(arguments) if isinstance(arguments, str) and arguments else arguments or {}
                brief = json.dumps({k: v for k, v in args.items() if v is not None}, separators=(",", ":"))
                calls[call["id"]] = f"{call['id']} {call['function']['name']} {brief}"
            continue
        shown.append({"role": message["role"], "content": message.get("content") or ""})
    if lines:
        shown.append({"role": "user", "content": "Results:\n" + "\n".join(lines)})
    return shown


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
    text = json.dumps(kept, separators=(",", ":"), ensure_ascii=False)
    return text if len(text) <= MAX_COMPACT_CHARS else text[:MAX_COMPACT_CHARS] + "…"


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
        if obs.tool == "get_queue_stats" and "queue" in obs.data and _backlogged(obs.data):
            found.add("backlog")
    return found


def intentional_pause(state: dict[str, Any]) -> bool:
    """Scaled down on purpose and said so: an annotation or an event of the deployment names a pause."""
    notes = [f"{k} {v}" for k, v in (state.get("annotations") or {}).items()]
    notes += [f"{e.get('reason')} {e.get('message')}" for e in state.get("events") or []]
    return any(MAINTENANCE.search(note) for note in notes)


def recently_scaled(state: dict[str, Any]) -> bool:
    """Its ReplicaSets were scaled within the deployment's recent events (the last hour)."""
    return any(e.get("reason") == "ScalingReplicaSet" for e in state.get("events") or [])


def recent_rollout(state: dict[str, Any]) -> bool:
    """A new ReplicaSet was scaled up within the deployment's recent events (a rollout, not a resize)."""
    scaled_up = [e for e in state.get("events") or [] if e.get("reason") == "ScalingReplicaSet"
                 and "scaled up" in str(e.get("message", "")).lower()]
    scaled_down = [e for e in state.get("events") or [] if e.get("reason") == "ScalingReplicaSet"
                   and "scaled down" in str(e.get("message", "")).lower()]
    return bool(scaled_up and scaled_down)


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
    broker = bool(BROKER.search(" ".join(state.get("images", []))))
    rolled_out = int((state.get("annotations") or {}).get("deployment.kubernetes.io/revision", "1") or 1) > 1
    if state.get("desired") == 0:
        backlog = "backlog" in (symptoms or set())
        if intentional_pause(state) and not backlog:
            return [], []
        if not (backlog or broker or recently_scaled(state)):
            return [], []  # parked at 0 long ago and nothing waits for it: not what broke
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
        if shown == ["consumer_too_slow"]:
            return shown, ["scale"]
        if shown == ["app_errors"] and rolled_out and recent_rollout(state):
            return shown, ["rollback", "none"]  # errors from a fully available revision just rolled out
        return shown, [a for a in ALL_ACTIONS if a != "rollback"] if shown else []
    return every, ALL_ACTIONS


def called_and_failing(observations: list[Observation], scope: Scope = EVERYTHING) -> list[str]:
    """Workloads in scope that callers' error lines name (a refused address, a timeout against them)."""
    inventory = Inventory.of(observations, scope)
    found: list[str] = []
    for obs in observations:
        scoped = re.match(r"kube_namespace:(\S+) status:", str(obs.args.get("query", "")))
        if obs.ok and obs.tool == "search_logs" and scoped and scope.covers(scoped.group(1)):
            names = [ref.split("/", 1)[1] for ref in inventory.deployments if ref.startswith(f"{scoped.group(1)}/")]
            for name in mentioned_workloads(obs.data, names):
                _add(found, f"{scoped.group(1)}/{name}")
    return found


def stuck_refs(observations: list[Observation]) -> set[tuple[str, str]]:
    return {ref for o in observations if o.ok and o.tool == "get_queue_stats" and "queue" in o.data
            and stuck_consumers(o.data) for ref in consumer_refs(o.data)}


def finding_options(ref: tuple[str, str], state: dict[str, Any],
                    observations: list[Observation]) -> tuple[list[str], list[str]] | None:
    """What the shared findings say a workload's fault can be and how it comes back, when they say anything."""
    if ref in stuck_refs(observations):
        return ["consumer_stuck"], ["rollout_restart", "none"]
    if f"{ref[0]}/{ref[1]}" in called_and_failing(observations):
        failure = serving_failure(state)
        if failure is not None:
            return [failure.category], [failure.action, "none"]
    if autoscaled_to_rest(state) and "backlog" not in observed_symptoms(observations):
        return [], []
    return None


def verdict_schema(observations: list[Observation], call_ids: list[str],
                   scope: Scope = EVERYTHING) -> dict[str, Any]:
    """One branch per kind of answer: healthy / inconclusive, or an incident at one discovered deployment with the
    categories and actions consistent with its observed state."""
    from agent.validator import known_deployments

    states = known_deployments(observations)
    symptoms = observed_symptoms(observations)
    common = {"evidence": {"type": "array", "items": _enum(call_ids), "maxItems": 8},
              "confidence": {"type": "number", "minimum": 0, "maximum": 1}}
    checked = checked_signals(observations)
    missing = any(not o.ok for o in observations) or not {"queue_consumers", "queue_depth"} <= set(checked)
    calm = ["healthy", "inconclusive"] if missing else ["healthy"]
    branches: list[dict[str, Any]] = [{
        "type": "object", "additionalProperties": False, "required": ["status", "evidence", "confidence"],
        "properties": {"status": {"type": "string", "enum": calm}, **common}}]
    for (namespace, name) in Inventory.of(observations, scope).deployment_refs():
        state = states.get((namespace, name)) or {}
        found = finding_options((namespace, name), state, observations) if state else None
        categories, actions = found if found is not None else consistent_options(state or None, symptoms)
        if not categories:
            continue
        actions = [a for a in actions if a != "none"] or ["none"]  # an incident comes with its fix
        branches.append({
            "type": "object", "additionalProperties": False,
            "required": ["status", "component", "category", "remediation", "evidence", "confidence"],
            "properties": {"status": {"type": "string", "enum": ["incident"]},
                           "component": {"type": "string", "enum": [f"{namespace}/{name}"]},
                           "category": _enum(categories), "remediation": _enum(actions),
                           **common}})
    return {"anyOf": branches}


def _evidence_for(obs: Observation) -> list[dict[str, Any]]:
    data, claim = obs.data, obs.summary[:200]
    items: list[dict[str, Any]] = []
    if obs.tool == "get_queue_stats" and "queue" in data:
        items += [{"signal": "queue_consumers", "observed": {"consumers": data["consumers"]}},
                  {"signal": "queue_depth", "observed": {"messages": data["messages"]}}]
        if data.get("publish_rate") is not None:
            items.append({"signal": "producer_activity", "observed": {"publish_rate": data["publish_rate"]}})
    elif obs.tool == "get_queue_stats" and data.get("queues"):
        row = next((r for r in data["queues"] if r["queue"] in data.get("attention", [])), data["queues"][0])
        items += [{"signal": "queue_consumers", "observed": {"consumers": row["consumers"]}},
                  {"signal": "queue_depth", "observed": {"messages": row["messages"]}}]
    elif obs.tool == "get_deployment" and "deployments" in data:
        items.append({"signal": "replicas", "observed": {"attention": data.get("attention", [])}})
    elif obs.tool == "get_deployment" and "name" in data:
        items.append({"signal": "replicas", "observed": {"desired": data["desired"], "available": data["available"]}})
        events = data.get("events") or []
        notable = ([e for e in events if e.get("type") == "Warning"]
                   or [e for e in events if e.get("reason") == "ScalingReplicaSet"] or events)
        if notable:
            event = notable[-1]
            items.append({"signal": "events", "observed": {"reason": event["reason"]},
                          "claim": f"{event.get('object')}: {event['reason']}: {event.get('message', '')}"[:200]})
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
    return [{"claim": claim, **item, "tool_call_id": obs.call_id} for item in items]


def _shows_errors(obs: Observation) -> bool:
    statuses = obs.data.get("by_status") or {}
    return obs.tool == "search_logs" and any(statuses.get(s) for s in ("error", "critical", "warn", "warning"))


def _facts(choice: dict[str, Any], observations: list[Observation]) -> list[str]:
    """What the calls about the chosen component (then the rest) returned, one clipped line each."""
    names = {str(choice.get("component") or "").partition("/")[2]} - {""}
    ordered = sorted(observations, key=lambda o: not _concerns(o, names | {str(o.data.get("queue"))}))
    return [f"{o.call_id}: {_clip(o.summary.split('; consumed by')[0], 140)}" for o in ordered[:3]]


def _summary(choice: dict[str, Any], facts: list[str]) -> str:
    """Written by code from the choice and what the cited calls returned, so every sentence is backed."""
    status = choice.get("status", "inconclusive")
    if status == "incident":
        head = f"{str(choice.get('category', 'unknown')).replace('_', ' ').capitalize()} at Deployment " \
               f"{choice.get('component')}"
    elif status == "healthy":
        head = "No incident: work is flowing"
    else:
        head = "Inconclusive: the evidence is missing or contradictory"
    return head + (f" ({facts[0]})" if facts else "")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _concerns(obs: Observation, names: set[str]) -> bool:
    text = json.dumps(obs.args) + " " + obs.summary
    return any(name in text for name in names)


def _replicas(namespace: str, name: str, observations: list[Observation]) -> int:
    """Sized by code: back to the count before a scale-down to 0; enough consumers to outpace the producers of
    a queue it is falling behind on; otherwise one more than now."""
    from agent.validator import known_deployments

    state = known_deployments(observations).get((namespace, name)) or {}
    desired = state.get("desired", 0)
    if not desired:
        return previous_replicas((state.get("last_scaled") or {}).get("message", "")) or 1
    for obs in observations:
        data = obs.data
        if obs.ok and obs.tool == "get_queue_stats" and _backlogged(data) and (namespace, name) in consumer_refs(data):
            return replicas_to_keep_up(desired, data.get("publish_rate") or 0.0, data.get("deliver_rate") or 0.0,
                                       data.get("messages") or 0)
    return desired + 1


def expand_verdict(choice: dict[str, Any], observations: list[Observation]) -> dict[str, Any]:
    """A full verdict draft from the compact one: evidence from the cited calls (and, as bookkeeping, every other
    successful call about the chosen component or a queue), numbers copied from their results."""
    status = choice.get("status", "inconclusive")
    namespace, _, name = str(choice.get("component") or "").partition("/")
    by_id = {o.call_id: o for o in observations if o.ok and o.repeated_from is None}
    cited = [by_id[c] for c in choice.get("evidence", []) if c in by_id]
    names = {name} if name else set()
    names |= {o.data["queue"] for o in by_id.values() if o.tool == "get_queue_stats" and "queue" in o.data}
    if status == "healthy":
        related = [o for o in by_id.values() if o not in cited and o.tool in ("get_queue_stats", "get_deployment")]
    else:
        related = [o for o in by_id.values() if o not in cited and (_concerns(o, names) or _shows_errors(o))]
    evidence = [item for obs in [*cited, *related] for item in _evidence_for(obs)]
    facts = _facts(choice, [*cited, *related])
    summary = _summary(choice, facts)
    draft: dict[str, Any] = {"status": status, "summary": summary,
                             "confidence": choice.get("confidence", 0.5), "evidence": evidence}
    if status == "incident" and name:
        draft["root_cause"] = {"category": choice.get("category", "unknown"),
                               "explanation": "; ".join(facts) or summary,
                               "component": {"kind": "Deployment", "namespace": namespace, "name": name}}
        action = choice.get("remediation", "none")
        if action != "none":
            draft["remediation"] = {"action": action, "namespace": namespace, "name": name,
                                    "replicas": _replicas(namespace, name, observations)
                                    if action == "scale" else None,
                                    "verification": ["available replicas at desired", "queue consumers ≥ 1",
                                                     "queue depth falling"]}
    return draft
