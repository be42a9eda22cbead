"""One guided step: the JSON schema of the choices still open, the real tool call for a choice, and the compact
transcript and results a small model reads."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from agent.findings import serving_replicas_query, workload_logs_query
from agent.signals import Observation

if TYPE_CHECKING:
    from agent.guided.inventory import Inventory

STANDARD_METRICS = {
    "queue_depth": ("rabbitmq.queue.messages", "rabbitmq_queue"),
    "queue_consumers": ("rabbitmq.queue.consumers", "rabbitmq_queue"),
    "publish_rate": ("rabbitmq.queue.messages.publish.rate", "rabbitmq_queue"),
}
WINDOWS = {"5m": "now-5m", "15m": "now-15m", "1h": "now-1h"}
KEY_FIELDS = {
    "get_queue_stats": ("consumers", "messages", "publish_rate", "deliver_rate"),
    "get_deployment": ("desired", "available"),
    "search_logs": ("total", "by_service"),
    "list_events": ("total",),
}
MAX_COMPACT_CHARS = 700


def _enum(values: list[str]) -> dict[str, Any]:
    return {"type": "string", "enum": values} if values else {"type": "string"}


def _choice(tool: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {"type": "object", "additionalProperties": False, "required": ["tool", *required],
            "properties": {"tool": {"type": "string", "enum": [tool]}, **properties}}


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
            match = re.match(r"kube_namespace:(\S+) (kube_deployment|kube_stateful_set|status):(\S+)", query)
            if match and match.group(2) != "status":
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


def to_tool_call(choice: dict[str, Any], kinds: dict[str, str] | None = None) -> tuple[str, dict[str, Any]] | None:
    """The real tool call for a guided choice; None for `answer`. `kinds`: `namespace/name` -> workload kind, as
    the cluster reported it."""
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
        kind = (kinds or {}).get(f"{namespace}/{name}", "Deployment")
        return "search_logs", {"query": workload_logs_query(namespace, name, kind), "start": window}
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
        kind = (kinds or {}).get(f"{namespace}/{name}", "Deployment")
        return "get_metric", {"query": serving_replicas_query(namespace, name, kind), "start": "now-1h"}
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
