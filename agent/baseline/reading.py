"""What the baseline reads off the conversation: the inventory, queues, candidates, deployment details and logs
the tool results show, and the evidence items citing those calls."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from agent.coverage import ANSWERED_ERRORS
from agent.findings import (
    ERROR_BURST,
    addressed_workloads,
    autoscaled_to_rest,
    desired_history_query,
    failing_upstream,
    gives_back_every_message,
    intentional_pause,
    stuck_consumers,
    unconsumed,
    workload_aliases,
    workload_errors_query,
    workload_logs_query,
)
from agent.llm.conversation import Seen
from agent.producers import quiet_since, rolled_out_at, stopped_producer, went_to_zero_at
from agent.scope import EVERYTHING, Scope, investigation_order
from agent.signals import BROKER, consumer_refs
from tools.kubernetes.tools import SCALE_REASONS

SILENT_WINDOW = "now-5m"
LONG_HISTORY = "now-24h"


@dataclass(frozen=True)
class QueueRef:
    """A queue is its vhost and its name: one name may be in several vhosts. Reads as its name in sentences."""

    vhost: str
    name: str

    @classmethod
    def of(cls, row: dict[str, Any]) -> QueueRef:
        return cls(str(row.get("vhost") or "/"), str(row["queue"]))

    def __str__(self) -> str:
        return self.name


class Reading:
    """The tool results of one conversation, read by the questions the rules ask of them."""

    def __init__(self, seen: Seen, scope: Scope = EVERYTHING) -> None:
        self.seen = seen
        self.scope = scope

    # ---- inventory -------------------------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        found = self.seen.find("list_namespaces")
        if not found:
            return []
        return investigation_order(found[1].get("namespaces", []), self.scope)

    def queue_rows(self) -> list[dict[str, Any]]:
        found = self.seen.find("get_queue_stats", queue=None)
        return found[1].get("queues", []) if found else []

    def broker_unreachable(self) -> bool:
        calls = self.seen.calls("get_queue_stats")
        return bool(calls) and all(data.get("error") and data.get("error") not in ANSWERED_ERRORS
                                   for _, _, data in calls)

    def interesting_queues(self) -> list[QueueRef]:
        rows = self.queue_rows()
        flagged = [QueueRef.of(r) for r in rows if r["consumers"] == 0 or r["messages"] > 0]
        return flagged or [QueueRef.of(r) for r in rows[:3]]

    def queue_args(self, queue: QueueRef) -> dict[str, Any]:
        """The arguments that name `queue` to get_queue_stats: with its vhost when its name is in several."""
        if len({r.get("vhost") for r in self.queue_rows() if r["queue"] == queue.name}) < 2:
            return {"queue": queue.name}
        return {"queue": queue.name, "vhost": queue.vhost}

    def queue_stats(self, queue: QueueRef) -> tuple[str, dict[str, Any]] | None:
        found = self.seen.find("get_queue_stats", **self.queue_args(queue))
        return found if found and "error" not in found[1] else None

    def _in_scope(self, queue: QueueRef) -> bool:
        """A queue belongs to the scope when a consumer of it does, or when nothing consumes it."""
        refs = self.consumers_of(queue)
        return not refs or any(self.scope.covers_workload(namespace, name) for namespace, name in refs)

    def stuck_queues(self) -> list[QueueRef]:
        return [q for q in self.interesting_queues() if (found := self.queue_stats(q)) and self._in_scope(q)
                and stuck_consumers(found[1])]

    def stalled_queues(self) -> list[QueueRef]:
        stalled = []
        for queue in self.interesting_queues():
            found = self.queue_stats(queue)
            if found and unconsumed(found[1]):
                stalled.append(queue)
        return stalled

    def quiet_queues(self) -> list[QueueRef]:
        """Queues with consumers and nothing published or waiting: where a producer that went away would show."""
        return [QueueRef.of(r) for r in self.queue_rows() if r["consumers"] and not r["messages"]
                and not r.get("publish_rate") and self._in_scope(QueueRef.of(r))]

    def changes(self) -> dict[tuple[str, str], datetime]:
        """Workloads read in detail (not the broker, not paused on purpose) that went to 0 or rolled out a new
        template recently, and when."""
        found = {}
        for ref in dict.fromkeys([*self.candidates(), *self.workloads()]):
            detail = self.detail(*ref)
            if not detail or intentional_pause(detail[1]) or BROKER.search(" ".join([ref[1],
                                                                                    *detail[1].get("images", [])])):
                continue
            history = self.desired_history(*ref)
            at = went_to_zero_at(detail[1], history[1] if history else None) or rolled_out_at(detail[1])
            if at is not None:
                found[ref] = at
        return found

    def upstream_suspects(self) -> list[tuple[str, str]]:
        """When a queue went quiet and no change read so far explains it: the other workloads of its consumers'
        namespaces, whose recent change (a scale to 0, a rollout) would."""
        suspects: list[tuple[str, str]] = []
        for queue in self.quiet_queues():
            stats = self.queue_stats(queue)
            if not stats or quiet_since(stats[1]) is None or stopped_producer(stats[1], self.changes()):
                continue
            consumers = self.consumers_of(queue)
            suspects += [ref for ref in self.workloads() if ref[0] in {ns for ns, _ in consumers}
                         and ref not in consumers and ref not in suspects]
        return suspects

    def rejecting_queues(self) -> list[QueueRef]:
        """Queues whose consumers give back every message they receive: nothing is acked, all is redelivered."""
        return [q for q in self.interesting_queues() if (found := self.queue_stats(q)) and self._in_scope(q)
                and gives_back_every_message(found[1])]

    def slow_queues(self) -> list[QueueRef]:
        slow = []
        for queue in self.interesting_queues():
            found = self.queue_stats(queue)
            if not found or found[1]["consumers"] == 0 or not self._in_scope(queue) or stuck_consumers(found[1]) \
                    or gives_back_every_message(found[1]):
                continue
            trend = found[1].get("depth_trend") or {}
            if trend.get("direction") == "rising" and (trend.get("last") or 0) >= 10:
                slow.append(queue)
        return slow

    def consumers_of(self, queue: QueueRef) -> list[tuple[str, str]]:
        """Deployments the queue's consumers run in, as get_queue_stats resolved them from pod IPs."""
        found = self.queue_stats(queue)
        return consumer_refs(found[1]) if found else []

    def tables(self) -> list[tuple[str, dict[str, Any]]]:
        return [(cid, data) for cid, args, data in self.seen.calls("get_deployment")
                if args.get("name") is None and "deployments" in data]

    def table_row(self, namespace: str, name: str) -> dict[str, Any] | None:
        for _, table in self.tables():
            if table["namespace"] == namespace:
                return next((r for r in table["deployments"] if r["name"] == name), None)
        return None

    def candidates(self) -> list[tuple[str, str]]:
        """Deployments below desired or at 0, across the namespaces looked at."""
        found = []
        for _, table in self.tables():
            if not self.scope.covers(table["namespace"]):
                continue
            for row in table["deployments"]:
                detail = self.detail(table["namespace"], row["name"])
                if detail and autoscaled_to_rest(detail[1]):
                    continue
                if (row["available"] < row["desired"] or row["desired"] == 0) and self.scope.covers_workload(
                        table["namespace"], row["name"]):
                    found.append((table["namespace"], row["name"]))
        return found

    def workloads(self) -> list[tuple[str, str]]:
        return [(table["namespace"], row["name"]) for _, table in self.tables() for row in table["deployments"]]

    def named_workloads(self) -> list[tuple[str, str]]:
        """In-scope workloads the question names."""
        named = {ref for ref in self.scope.named if "/" in ref and "/queue " not in ref}
        return [(ns, name) for ns, name in self.workloads() if f"{ns}/{name}" in named and self.scope.covers(ns)]

    def failing_dependencies(self) -> list[tuple[str, str, str]]:
        """(namespace, name, log call id) of workloads that in-scope callers' error lines name."""
        found = []
        for namespace in self.searched_namespaces():
            for status in ("error", "warn"):
                logs = self.namespace_logs(namespace, status)
                if not logs:
                    continue
                for home, name in addressed_workloads(logs[1], namespace, self.workloads(), aliases=self.aliases()):
                    callers = {self.workload_of(namespace, s) for s in logs[1].get("by_service") or {}}
                    if (home, name, logs[0]) not in found and not (home == namespace and name in callers) \
                            and self.scope.covers_workload(home, name):
                        found.append((home, name, logs[0]))
        return found

    def detail(self, namespace: str, name: str) -> tuple[str, dict[str, Any]] | None:
        found = self.seen.find("get_deployment", namespace=namespace, name=name)
        return found if found and "error" not in found[1] else None

    def logs_of(self, namespace: str, name: str) -> tuple[str, dict[str, Any]] | None:
        found = self.seen.find("search_logs", query=self.logs_query(namespace, name))
        return found if found and "error" not in found[1] else None

    def namespace_logs(self, namespace: str, status: str) -> tuple[str, dict[str, Any]] | None:
        found = self.seen.find("search_logs", query=f"kube_namespace:{namespace} status:{status}")
        return found if found and "error" not in found[1] else None

    def failing_upstream(self, namespace: str, name: str) -> tuple[str, str] | None:
        states = {(ns, n): found[1] if (found := self.detail(ns, n)) else self.table_row(ns, n) or {}
                  for ns, n in self.workloads()}
        logs = [found[1] for status in ("error", "warn") if (found := self.namespace_logs(namespace, status))]
        if own_errors := self.seen.find("search_logs", query=self.errors_query(namespace, name)):
            logs.append(own_errors[1])
        own = {ref: found[1] for ref in states if (found := self.logs_of(*ref))}
        return failing_upstream((namespace, name), logs, states, own, self.aliases())

    def searched_namespaces(self) -> list[str]:
        """In-scope namespaces whose error logs were searched, in investigation order."""
        return [n for n in self.namespaces() if self.scope.covers(n) and self.namespace_logs(n, "error")]

    def aliases(self) -> dict[tuple[str, str], str]:
        return workload_aliases(table for _, table in self.tables())

    def workload_of(self, namespace: str, service: str) -> str:
        """The workload a log service names: by its name, else by its app label."""
        return self.aliases().get((namespace, service), service)

    def error_services(self) -> list[tuple[str, str]]:
        """(namespace, workload) of the services in scope writing an error burst."""
        services = []
        for namespace in self.searched_namespaces():
            found = self.namespace_logs(namespace, "error")
            if found and found[1]["total"] >= ERROR_BURST:
                services += [(namespace, name) for s in found[1]["by_service"]
                             if self.scope.covers_workload(namespace, name := self.workload_of(namespace, s))]
        return services

    # ---- evidence -----------------------------------------------------------------------------------

    def _queue_evidence(self, queue: QueueRef) -> list[dict[str, Any]]:
        found = self.queue_stats(queue)
        if not found:
            return []
        cid, data = found
        items = [{"signal": "queue_consumers", "claim": f"queue {queue} has {data['consumers']} consumers",
                  "tool_call_id": cid, "observed": {"consumers": data["consumers"]}},
                 {"signal": "queue_depth", "claim": f"queue {queue} holds {data['messages']} messages",
                  "tool_call_id": cid, "observed": {"messages": data["messages"]}}]
        metric = self.seen.find("get_metric", query=f"avg:rabbitmq.queue.messages{{rabbitmq_queue:{queue}}}")
        if metric and metric[1].get("series"):
            trend = metric[1]["series"][0]["trend"]
            items.append({"signal": "queue_depth", "claim": f"depth went {trend['first']} → {trend['last']}",
                          "tool_call_id": metric[0], "observed": {"series.0.trend.first": trend["first"],
                                                                 "series.0.trend.last": trend["last"]}})
        return items

    def _deployment_evidence(self, namespace: str, name: str) -> list[dict[str, Any]]:
        found = self.detail(namespace, name)
        if not found:
            return []
        cid, data = found
        items = [{"signal": "replicas", "claim": f"{name}: desired {data['desired']}, available {data['available']}",
                  "tool_call_id": cid, "observed": {"desired": data["desired"], "available": data["available"]}}]
        events = data.get("events") or []
        notable = [e for e in events if e["type"] == "Warning"] or [e for e in events if e["reason"] in (
            *SCALE_REASONS, "Killing", "Failed")] or events
        if notable:
            event = notable[-1]
            items.append({"signal": "events", "claim": f"{event['object']}: {event['reason']}: {event['message']}",
                          "tool_call_id": cid, "observed": {"reason": event["reason"]}})
        else:
            items.append({"signal": "events", "claim": f"{name}: no events in the last hour", "tool_call_id": cid,
                          "observed": {"events": []}})
        return items

    def old_events(self, namespace: str, name: str) -> tuple[str, dict[str, Any]] | None:
        found = self.seen.find("list_events", namespace=namespace, since=LONG_HISTORY, involved_object=name)
        return found if found and "error" not in found[1] else None

    def logs_query(self, namespace: str, name: str) -> str:
        return workload_logs_query(namespace, name, self.kind_of(namespace, name))

    def errors_query(self, namespace: str, name: str) -> str:
        return workload_errors_query(namespace, name, self.kind_of(namespace, name))

    def kind_of(self, namespace: str, name: str) -> str:
        found = self.detail(namespace, name)
        return str((found[1] if found else self.table_row(namespace, name) or {}).get("kind", "Deployment"))

    def desired_query(self, namespace: str, name: str) -> str:
        detail = self.detail(namespace, name)
        return desired_history_query(namespace, name, detail[1].get("kind", "Deployment") if detail else "Deployment")

    def desired_history(self, namespace: str, name: str) -> tuple[str, dict[str, Any]] | None:
        found = self.seen.find("get_metric", query=self.desired_query(namespace, name))
        return found if found and "error" not in found[1] else None

    def _history_evidence(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The scaling older than the API's hour, from the event history."""
        found = self.old_events(namespace, name)
        scaled = [e for e in (found[1].get("events") or []) if e["reason"] in SCALE_REASONS] if found else []
        if not found or not scaled:
            return []
        event = scaled[-1]
        return [{"signal": "events", "claim": f"{event['last_seen']}: {event['object']}: {event['message']}",
                 "tool_call_id": found[0], "observed": {"total": found[1]["total"]}}]

    def _log_evidence(self, namespace: str, name: str) -> list[dict[str, Any]]:
        found = self.logs_of(namespace, name)
        if not found:
            return []
        cid, data = found
        return [{"signal": "consumer_logs", "claim": f"{name}: {data['summary']}",
                 "tool_call_id": cid, "observed": {"total": data["total"]}}]

    def _producer_evidence(self, namespace: str) -> list[dict[str, Any]]:
        found = self.namespace_logs(namespace, "warn")
        if not found or not found[1]["total"]:
            return []
        cid, data = found
        return [{"signal": "producer_activity", "claim": f"{data['total']} warnings: {data['summary'][:120]}",
                 "tool_call_id": cid, "observed": {"total": data["total"]}}]
