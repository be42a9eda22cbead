"""The `playbook` baseline: a deterministic, no-LLM policy that runs through the same graph and tools.

It knows nothing about any particular system. It discovers namespaces, queues and deployments from tool
results, links a stalled queue to the deployment that went away when its consumers did, and drafts a verdict
citing the calls it made. It is a baseline to measure models against, and is labelled as such.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agent.baseline.reading import LONG_HISTORY, SILENT_WINDOW
from agent.baseline.rules import Diagnosis
from agent.llm.base import AssistantTurn, Message, ToolCall
from agent.llm.conversation import Seen, read_conversation
from agent.scope import Scope, conversation_scope


class PlaybookPolicy:
    """Implements the ChatModel protocol without a language model."""

    name = "playbook"
    is_baseline = True
    guided = False

    def __init__(self) -> None:
        self._counter = 0

    def _call(self, tool: str, **args: Any) -> ToolCall:
        self._counter += 1
        return ToolCall(id=f"pb_{self._counter}", name=tool, arguments=args)

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 response_schema: dict[str, Any] | None = None) -> AssistantTurn:
        seen = read_conversation(messages)
        self._counter = max([self._counter, *[int(c[3:]) for c in seen.order if c.startswith("pb_")]])
        asked = messages[:-1] if response_schema is not None else messages  # the last one asks for the verdict
        scope = conversation_scope(_human_questions(asked), [seen.results[c] for c in seen.order])
        if response_schema is not None:
            return AssistantTurn(content=json.dumps(Diagnosis(seen, scope).verdict()))
        question = _last_human_question(messages)
        if question and _answered_before(messages):
            return self._follow_up(seen, question, messages, scope)
        calls = self._next_calls(seen, scope)
        if calls:
            return AssistantTurn(tool_calls=calls)
        return AssistantTurn(content=Diagnosis(seen, scope).verdict()["summary"])

    def _next_calls(self, seen: Seen, scope: Scope) -> list[ToolCall]:
        if not seen.calls("list_namespaces"):
            return [self._call("list_namespaces"), self._call("get_queue_stats")]
        calls: list[ToolCall] = []
        diagnosis = Diagnosis(seen, scope)
        for namespace in diagnosis.namespaces()[:3]:
            if not seen.find("get_deployment", namespace=namespace, name=None):
                calls.append(self._call("get_deployment", namespace=namespace))
        for queue in diagnosis.interesting_queues()[:4]:
            if not seen.find("get_queue_stats", **diagnosis.queue_args(queue)):
                calls.append(self._call("get_queue_stats", **diagnosis.queue_args(queue)))
        if calls:
            return calls
        for namespace, name in diagnosis.candidates()[:4]:
            if not seen.find("get_deployment", namespace=namespace, name=name):
                calls.append(self._call("get_deployment", namespace=namespace, name=name))
            query = diagnosis.logs_query(namespace, name)
            if not seen.find("search_logs", query=query):
                calls.append(self._call("search_logs", query=query, start=SILENT_WINDOW))
            detail = diagnosis.detail(namespace, name)
            query = diagnosis.desired_query(namespace, name)
            if detail and detail[1]["desired"] == 0 and not seen.find("get_metric", query=query):
                calls.append(self._call("get_metric", query=query, start=LONG_HISTORY))
            if detail and detail[1]["desired"] == 0 and not detail[1].get("last_scaled") and not seen.find(
                    "list_events", namespace=namespace, since=LONG_HISTORY, involved_object=name):
                calls.append(self._call("list_events", namespace=namespace, since=LONG_HISTORY,
                                        involved_object=name))
        for queue in diagnosis.slow_queues()[:2]:
            for namespace, name in diagnosis.consumers_of(queue)[:1]:
                if not seen.find("get_deployment", namespace=namespace, name=name):
                    calls.append(self._call("get_deployment", namespace=namespace, name=name))
        if diagnosis.changes() or diagnosis.stalled_queues():  # what a changed workload fed may have gone quiet
            for queue in diagnosis.quiet_queues()[:3]:
                if not seen.find("get_queue_stats", **diagnosis.queue_args(queue)):
                    calls.append(self._call("get_queue_stats", **diagnosis.queue_args(queue)))
        for namespace, name in diagnosis.upstream_suspects()[:4]:  # a queue went quiet: what changed upstream?
            if not seen.find("get_deployment", namespace=namespace, name=name):
                calls.append(self._call("get_deployment", namespace=namespace, name=name))
        for queue in diagnosis.stalled_queues()[:2]:
            for metric in ("consumers", "messages"):
                query = f"avg:rabbitmq.queue.{metric}{{rabbitmq_queue:{queue}}}"
                if not seen.find("get_metric", query=query):
                    calls.append(self._call("get_metric", query=query, start="now-1h"))
        for namespace in diagnosis.namespaces()[:2]:
            for query in (f"kube_namespace:{namespace} status:error", f"kube_namespace:{namespace} status:warn",
                          f"kube_namespace:{namespace} (queue OR publish* OR enqueue*)"):
                if not seen.find("search_logs", query=query):
                    calls.append(self._call("search_logs", query=query, start=SILENT_WINDOW))
        if calls:
            return calls
        if calls:
            return calls
        wanted = [*diagnosis.error_services()[:3], *[(ns, n) for ns, n, _ in diagnosis.failing_dependencies()[:3]],
                  *diagnosis.named_workloads()[:3]]
        held_or_given_back = [*diagnosis.stuck_queues()[:2], *diagnosis.rejecting_queues()[:2]]
        wanted += [ref for q in held_or_given_back for ref in diagnosis.consumers_of(q)[:1]]
        for namespace, name in dict.fromkeys(wanted):
            if not seen.find("get_deployment", namespace=namespace, name=name):
                calls.append(self._call("get_deployment", namespace=namespace, name=name))
        if not (scope.everything and not scope.excluded and not scope.focus):  # say what is wrong elsewhere too
            wanted = [ref for ref in Diagnosis(seen).candidates() if not scope.covers_workload(*ref)][:2]
            calls += [self._call("get_deployment", namespace=ns, name=n) for ns, n in wanted
                      if not seen.find("get_deployment", namespace=ns, name=n)]
        for namespace, name in diagnosis.error_services()[:3]:  # what failed them, one hop down their calls
            query = diagnosis.errors_query(namespace, name)
            if not seen.find("search_logs", query=query):
                calls.append(self._call("search_logs", query=query, start=SILENT_WINDOW))
        for namespace, name, _ in diagnosis.failing_dependencies()[:3]:
            query = diagnosis.logs_query(namespace, name)
            if not seen.find("search_logs", query=query):
                calls.append(self._call("search_logs", query=query, start=SILENT_WINDOW))
        for namespace, name in [ref for q in held_or_given_back for ref in diagnosis.consumers_of(q)[:1]]:
            query = diagnosis.logs_query(namespace, name)
            if not seen.find("search_logs", query=query):
                calls.append(self._call("search_logs", query=query, start=SILENT_WINDOW))
        return calls

    def _follow_up(self, seen: Seen, question: str, messages: list[Message], scope: Scope) -> AssistantTurn:
        lowered = question.lower()
        since = _calls_since_last_question(messages)
        diagnosis = Diagnosis(seen, scope)
        if not since:
            wanted: list[ToolCall] = []
            if "queue" in lowered:
                for queue in (diagnosis.stalled_queues() or diagnosis.interesting_queues())[:1]:
                    wanted.append(self._call("get_queue_stats", **diagnosis.queue_args(queue)))
            if re.search(r"\blogs?\b", lowered):
                for namespace, name in diagnosis.candidates()[:1]:
                    wanted.append(self._call("search_logs", query=diagnosis.logs_query(namespace, name),
                                             start=SILENT_WINDOW))
            if wanted:
                return AssistantTurn(tool_calls=wanted)
        if since:
            lines = [f"{cid}: {seen.results[cid][2].get('summary', '')}" for cid in since if cid in seen.results]
            return AssistantTurn(content="\n".join(lines))
        return AssistantTurn(content=diagnosis.what_if(question))


def _human_questions(messages: list[Message]) -> list[str]:
    return [str(m.get("content")) for m in messages
            if m.get("role") == "user" and not str(m.get("content", "")).startswith("[runtime]")]


def _last_human_question(messages: list[Message]) -> str | None:
    for message in reversed(messages):
        if message.get("role") == "user" and not str(message.get("content", "")).startswith("[runtime]"):
            return str(message.get("content"))
    return None


def _answered_before(messages: list[Message]) -> bool:
    humans = [i for i, m in enumerate(messages)
              if m.get("role") == "user" and not str(m.get("content", "")).startswith("[runtime]")]
    if len(humans) < 2:
        return False
    return any(m.get("role") == "assistant" and m.get("content") and not m.get("tool_calls")
               for m in messages[:humans[-1]])


def _calls_since_last_question(messages: list[Message]) -> list[str]:
    ids: list[str] = []
    for message in reversed(messages):
        if message.get("role") == "user" and not str(message.get("content", "")).startswith("[runtime]"):
            break
        if message.get("role") == "tool":
            ids.insert(0, message["tool_call_id"])
    return ids

