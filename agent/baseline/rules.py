"""The playbook baseline's reasoning: generic rules over tool results, drafting a verdict that cites them."""

from __future__ import annotations

import re
from typing import Any

from agent.baseline.queue_rules import QueueRules
from agent.baseline.reading import QueueRef
from agent.findings import (
    broker_alarms,
    hung_dependency,
    missing_consumer,
    revision,
    serving_failure,
)
from agent.producers import stopped_producer
from agent.signals import BROKER, MAINTENANCE


class Diagnosis(QueueRules):
    """The rules, in order, over what Reading shows; the first that holds drafts the verdict."""

    # ---- the verdict ---------------------------------------------------------------------------------

    def _link_consumer(self, queue: QueueRef) -> tuple[str, str] | None:
        """The candidate that went away: silent logs and the most recent scale/restart, preferring consumers
        whose replicas dropped while the queue's consumers dropped."""
        scored = []
        for namespace, name in self.candidates():
            detail = self.detail(namespace, name)
            if not detail or BROKER.search(" ".join(detail[1].get("images", []))):
                continue
            logs = self.logs_of(namespace, name)
            silent = bool(logs and logs[1]["total"] == 0 and logs[1]["previous_window"]["total"] > 0)
            scaled = (detail[1].get("last_scaled") or {}).get("at") or ""
            scored.append((silent, scaled, namespace, name))
        if not scored:
            return None
        scored.sort(reverse=True)
        return scored[0][2], scored[0][3]

    def _broker(self) -> tuple[str, str] | None:
        for namespace, name in self.candidates():
            detail = self.detail(namespace, name)
            if detail and BROKER.search(" ".join(detail[1].get("images", [])) + " " + name):
                return namespace, name
        return None

    def verdict(self) -> dict[str, Any]:
        result = self._in_scope_verdict()
        if not (self.scope.everything and not self.scope.excluded and not self.scope.focus):
            elsewhere = Diagnosis(self.seen)._in_scope_verdict()
            component = ((elsewhere.get("root_cause") or {}).get("component") or {})
            if elsewhere["status"] == "incident" and not self.scope.covers_workload(component.get("namespace"),
                                                                                   component.get("name")):
                cited = sorted({e["tool_call_id"] for e in elsewhere["evidence"]})
                result["also_noticed"] = [f"outside the question's scope ({self.scope.describe()}): "
                                          f"{elsewhere['summary']} [{', '.join(cited)}]"]
        return result

    def _in_scope_verdict(self) -> dict[str, Any]:
        for rule in (self._broker_down, self._broker_alarm, self._stalled_queue, self._stuck_queue,
                     self._rejecting_queue, self._failing_dependency, self._missing_consumer, self._slow_queue,
                     self._app_errors, self._stopped_producer, self._unexplained_errors):
            result = rule()
            if result:
                return result
        return self._healthy()

    def _unexplained_errors(self) -> dict[str, Any] | None:
        """Services in scope log an error burst that no rule explains: not healthy, and not a guess either."""
        services = self.error_services()
        if not services:
            return None
        namespace = services[0][0]
        found = self.namespace_logs(namespace, "error")
        assert found is not None
        cid, logs = found
        names = ", ".join(name for _, name in services[:3])
        return {"status": "inconclusive", "root_cause": None, "remediation": None, "impact": None,
                "summary": f"{names} log an error burst whose cause was not found: {logs['summary'][:160]}",
                "evidence": [{"signal": "errors", "claim": f"{logs['total']} error lines in {namespace}",
                              "tool_call_id": cid, "observed": {"total": logs["total"]}}],
                "ruled_out": [], "confidence": 0.4, "security_notes": []}

    def _broker_alarm(self) -> dict[str, Any] | None:
        table = self.seen.find("get_queue_stats", queue=None)
        alarms = broker_alarms([table[1]]) if table else []
        broker = next(((ns, n) for ns, n in self.workloads() if (d := self.table_row(ns, n))
                       and BROKER.search(" ".join([n, *d.get("images", [])]))), None)
        if not alarms or table is None or broker is None:
            return None
        namespace, name = broker
        evidence = [{"signal": "producer_activity", "claim": f"broker {' and '.join(alarms)} alarm set: "
                     "publishers are blocked", "tool_call_id": table[0], "observed": {"alarms": alarms}}]
        evidence += self._producer_evidence(self.namespaces()[0]) if self.namespaces() else []
        for row in self.queue_rows()[:2]:
            evidence += self._queue_evidence(QueueRef.of(row))
        return self._incident(
            "resource_exhaustion", namespace, name,
            f"The broker {name} has a {' and '.join(alarms)} alarm set, so it blocks every publisher: producers "
            "cannot enqueue work. No scale, restart or rollback frees the resource; free memory/disk or raise "
            "the watermark, then the alarm clears by itself.",
            f"RabbitMQ {' and '.join(alarms)} alarm: publishing connections are blocked until it clears.",
            evidence, None, {"broken_flow": "every publish to the broker"}, 0.8)

    def _missing_consumer(self) -> dict[str, Any] | None:
        """A queue falls behind while a workload named like it sits at 0 after a scale-down: its missing
        consumer, not the one still attached, is what changed."""
        for queue in self.slow_queues():
            zero = [ref for ref in self.candidates() if (d := self.detail(*ref)) and d[1]["desired"] == 0]
            found = missing_consumer(queue.name, self.consumers_of(queue), zero)
            if found:
                namespace, name = found
                detail = self.detail(namespace, name)
                assert detail is not None
                stats = self.queue_stats(queue)
                backlog = stats[1]["messages"] if stats else None
                evidence = (self._deployment_evidence(namespace, name) + self._log_evidence(namespace, name)
                            + self._queue_evidence(queue))
                return self._incident(
                    "consumer_unavailable", namespace, name,
                    f"{queue} is falling behind ({backlog} messages): {name}, one of its consumers, is scaled to 0 "
                    "and the rest cannot keep up.",
                    f"{name} was scaled to 0; the remaining consumers of {queue} are too few.",
                    evidence, self._scale_back(namespace, name, detail[1], f"restore {queue}'s missing consumer"),
                    {"broken_flow": f"processing of {queue} lags", "backlog": backlog}, 0.75)
        return None

    def _stopped_producer(self) -> dict[str, Any] | None:
        """A queue went quiet when a workload that is not its consumer went to 0 or rolled out: the work stopped at
        its source, or goes somewhere else now. Nothing errors; the consumers idle."""
        changes = self.changes()
        for queue in self.quiet_queues():
            stats = self.queue_stats(queue)
            found = stopped_producer(stats[1], changes) if stats and changes else None
            if stats is None or found is None:
                continue
            namespace, name = found
            detail = self.detail(namespace, name)
            assert detail is not None
            cid, data = stats
            evidence = [{"signal": "producer_activity", "claim": f"{queue}: nothing published, idle since "
                         f"{data['idle_since']}; {data['consumers']} consumer(s) wait", "tool_call_id": cid,
                         "observed": {"publish_rate": data["publish_rate"], "idle_since": data["idle_since"]}}]
            evidence += self._queue_evidence(queue) + self._deployment_evidence(namespace, name)
            evidence += self._log_evidence(namespace, name) + self._history_evidence(namespace, name)
            impact = {"broken_flow": f"work that {name} publishes to {queue}", "backlog": 0,
                      "since": data["idle_since"]}
            if detail[1]["desired"] == 0:
                return self._incident(
                    "dependency_unavailable", namespace, name,
                    f"Nothing reaches {queue} any more: it has been idle since {data['idle_since']}, when {name} "
                    f"went to 0. Its consumers are up and waiting; the work stops at its source, {name}.",
                    f"{name}, upstream of {queue}, was scaled to 0, so nothing is produced; no error shows anywhere.",
                    evidence, self._scale_back(namespace, name, detail[1], f"restore {queue}'s producer"), impact,
                    0.75)
            elsewhere = [str(q) for q in self.stalled_queues() if q.vhost == queue.vhost]
            for other in self.stalled_queues():
                evidence += self._queue_evidence(other) if other.vhost == queue.vhost else []
            where = f"; meanwhile {', '.join(elsewhere)}, which nothing consumes, fills up" if elsewhere else ""
            rollback = {"action": "rollback", "namespace": namespace, "name": name, "risk": "medium",
                        "rationale": f"{queue} went quiet when {name}'s latest rollout took over",
                        "verification": [f"{queue} publish rate back above 0", f"{name} pods Running and ready"]}
            return self._incident(
                "config_change", namespace, name,
                f"Nothing reaches {queue} since {data['idle_since']}, when {name} rolled out a new template{where}. "
                f"Its consumers are up and waiting: the new {name} publishes somewhere else, or not at all.",
                f"{name}'s latest rollout changed where (or whether) it publishes; {queue}'s consumers idle.",
                evidence, rollback, impact, 0.7)
        return None

    def _failing_dependency(self) -> dict[str, Any] | None:
        for namespace, name, log_cid in self.failing_dependencies():
            detail = self.detail(namespace, name)
            if not detail:
                continue
            logs = self.seen.results[log_cid][2]
            own = self.logs_of(namespace, name)
            failure = serving_failure(detail[1]) or hung_dependency(own[1] if own else None, logs)
            if failure is None:
                continue
            evidence = [{"signal": "errors", "claim": f"callers' error lines name {name}: {logs['summary'][:140]}",
                         "tool_call_id": log_cid, "observed": {"total": logs["total"]}}]
            evidence += self._deployment_evidence(namespace, name) + self._log_evidence(namespace, name)
            remediation = None
            if failure.action == "scale":
                remediation = self._scale_back(namespace, name, detail[1], f"restore {name} for its callers")
                remediation["verification"] = [f"{name} available replicas ≥ {remediation['replicas']}",
                                                "callers' error rate back to 0"]
            elif failure.action == "rollout_restart":
                remediation = {"action": "rollout_restart", "namespace": namespace, "name": name, "risk": "low",
                               "rationale": "new pods end a hang; more replicas of the hung ones would not",
                               "verification": [f"{name} pods replaced and answering", "callers' errors stop"]}
            elif failure.action == "rollback":
                remediation = {"action": "rollback", "namespace": namespace, "name": name, "risk": "medium",
                               "rationale": f"{failure.why} since its latest rollout",
                               "verification": [f"{name} pods Running and ready", "callers' error rate back to 0"]}
            return self._incident(
                failure.category, namespace, name,
                f"Callers fail against {name}: {failure.why}. {logs['total']} error/warning lines name it.",
                f"{name} cannot serve ({failure.why}), so every request that needs it fails.",
                evidence, remediation, {"broken_flow": f"requests that depend on {name}"}, 0.8)
        return None

    def _broker_down(self) -> dict[str, Any] | None:
        broker = self._broker()
        if not broker or not self.broker_unreachable():
            return None
        namespace, name = broker
        detail = self.detail(namespace, name)
        assert detail is not None
        evidence = self._deployment_evidence(namespace, name) + self._log_evidence(namespace, name)
        evidence += self._producer_evidence(namespace)
        return self._incident(
            "broker_unavailable", namespace, name,
            f"The message broker {name} has no available replicas and its queue API is unreachable; producers "
            "cannot publish and work is being dropped or refused.",
            "The broker deployment is down, so publishes fail while user-facing calls may still succeed.",
            evidence, self._scale_back(namespace, name, detail[1], "restore the broker"),
            {"broken_flow": "asynchronous messages through the broker", "backlog": None, "since":
             (detail[1].get("last_scaled") or {}).get("at")}, 0.8)

    def _stalled_queue(self) -> dict[str, Any] | None:
        for queue in self.stalled_queues():
            consumer = self._link_consumer(queue)
            if not consumer:
                continue
            namespace, name = consumer
            detail = self.detail(namespace, name)
            assert detail is not None
            data = detail[1]
            evidence = (self._log_evidence(namespace, name) + self._deployment_evidence(namespace, name)
                        + self._queue_evidence(queue))
            stats = self.queue_stats(queue)
            backlog = stats[1]["messages"] if stats else None
            impact = {"broken_flow": f"messages published to {queue} are not processed", "backlog": backlog,
                      "since": (data.get("last_scaled") or {}).get("at")}
            waiting = [p for p in data.get("pods", []) if p.get("waiting_reason")]
            rolled_out = revision(data) > 1
            if waiting:
                reason = waiting[0]["waiting_reason"]
                category = "consumer_crashlooping" if reason == "CrashLoopBackOff" else "config_change"
                rollback = {"action": "rollback", "namespace": namespace, "name": name, "risk": "medium",
                            "rationale": f"pods are in {reason} since the latest rollout; scaling up cannot help",
                            "verification": [f"{name} pods Running and ready", "queue consumers ≥ 1",
                                             "queue depth falling"]} if rolled_out else None
                return self._incident(
                    category, namespace, name,
                    f"{queue} has no consumer: {name}'s pods are in {reason} "
                    f"(last terminated: {waiting[0].get('last_termination_reason') or 'unknown'}); "
                    f"{backlog} messages waiting.",
                    f"The consumer of {queue} keeps failing, so nothing processes the queue.",
                    evidence, rollback, impact, 0.8)
            if data["desired"] == 0:
                evidence += [] if data.get("last_scaled") else self._history_evidence(namespace, name)
                return self._incident(
                    "consumer_unavailable", namespace, name,
                    f"{name} is scaled to 0, so {queue} has no consumer: {backlog} messages are waiting and "
                    "growing while producers keep publishing. Nothing errors; the work silently stops.",
                    f"{data['summary']}. The queue's only consumer is gone.",
                    evidence, self._scale_back(namespace, name, data, "restore the queue's consumer"),
                    impact, 0.9)
            failure = serving_failure(data, consumes_queue=True)
            if failure is not None:  # replicas wanted but none serving: not ready, never started, …
                fix = {"action": "rollback", "namespace": namespace, "name": name, "risk": "medium",
                       "rationale": f"{failure.why}; a restart or more replicas repeat the same template",
                       "verification": [f"{name} pods Running and ready", "queue consumers ≥ 1",
                                        "queue depth falling"]} if failure.action == "rollback" else None
                return self._incident(
                    failure.category, namespace, name,
                    f"{queue} has no consumer: {name} wants {data['desired']} replica(s) but {failure.why}; "
                    f"{backlog} messages waiting.",
                    f"The consumer of {queue} is not running, so nothing processes the queue.",
                    evidence, fix, impact, 0.8)
        return None

    def _app_errors(self) -> dict[str, Any] | None:
        services = self.error_services()
        if not services:
            return None
        changed = []
        for namespace, name in [ref for ref in services if not self.failing_upstream(*ref)][:3]:
            detail = self.detail(namespace, name)
            if detail:
                changed.append((revision(detail[1]) > 1, namespace, name, detail[1]))
        if not changed:
            return None
        changed.sort(key=lambda item: item[0], reverse=True)
        rolled, namespace, name, state = changed[0]
        failure = serving_failure(state)  # it cannot even serve: down, not merely answering with errors
        found = self.namespace_logs(namespace, "error")
        assert found is not None
        cid, logs = found
        evidence = [{"signal": "errors", "claim": f"{logs['total']} error lines in the namespace",
                     "tool_call_id": cid, "observed": {"total": logs["total"]}}]
        evidence += self._deployment_evidence(namespace, name)
        remediation = {"action": "rollback", "namespace": namespace, "name": name, "risk": "medium",
                       "rationale": "errors began with the latest rollout",
                       "verification": ["error rate back to baseline"]} if rolled else None
        return self._incident(failure.category if failure else "app_errors", namespace, name,
                              f"{name} is failing loudly: {logs['summary'][:160]}",
                              (f"{name}: {failure.why}" if failure else "A service is returning errors")
                              + (" since its latest rollout." if rolled else "."),
                              evidence, remediation, {"broken_flow": f"requests through {name}"}, 0.7)

    def _healthy(self) -> dict[str, Any]:
        evidence: list[dict[str, Any]] = []
        for row in self.queue_rows()[:3]:
            evidence += self._queue_evidence(QueueRef.of(row))
        for cid, table in self.tables()[:2]:
            evidence.append({"signal": "replicas", "claim": table["summary"], "tool_call_id": cid,
                             "observed": {"attention": table["attention"]}})
        for namespace, name in self.named_workloads():
            evidence += self._deployment_evidence(namespace, name)
        for namespace in [n for n in self.namespaces() if self.scope.covers(n)][:2]:
            found = self.namespace_logs(namespace, "error")
            if found:
                evidence.append({"signal": "errors", "claim": f"{namespace}: {found[1]['summary'][:160]}",
                                 "tool_call_id": found[0], "observed": {"total": found[1]["total"]}})
        paused = []
        for namespace, name in self.candidates():
            detail = self.detail(namespace, name)
            notes = " ".join(f"{k}={v}" for k, v in ((detail[1].get("annotations") or {}).items() if detail else []))
            if detail and MAINTENANCE.search(notes):
                paused.append(f"{name} is intentionally at {detail[1]['desired']} replicas ({notes[:160]})")
                evidence += self._deployment_evidence(namespace, name)
        summary = "No stalled queue, failing consumer or error burst found; work is flowing."
        if paused:
            summary += " Planned pause: " + "; ".join(paused) + ". Nothing is accumulating."
        # the validator makes it inconclusive when a source it rests on was not read
        return {"status": "healthy", "summary": summary, "root_cause": None, "evidence": evidence,
                "ruled_out": ["consumer_unavailable: every queue with traffic has consumers"],
                "impact": None, "confidence": 0.7 if evidence else 0.4, "remediation": None,
                "security_notes": []}

    def what_if(self, question: str) -> str:
        verdict = self.verdict()
        component = ((verdict.get("root_cause") or {}).get("component") or {}).get("name")
        for _, table in self.tables():
            for row in table["deployments"]:
                if re.search(rf"\b{re.escape(row['name'])}\b", question):
                    if row["name"] == component:
                        return f"{row['name']} is the root cause. {verdict['summary']}"
                    return (f"{row['name']} is at {row['available']}/{row['desired']} available and is not the "
                            f"cause; changing it would not help. {verdict['summary']}")
        return verdict["summary"]
