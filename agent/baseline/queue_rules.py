"""The playbook baseline's rules about queues whose consumers are attached: holding messages, failing every
message, or too few for the publish rate."""

from __future__ import annotations

from typing import Any

from agent.baseline.reading import Reading
from agent.findings import recent_rollout, restore_replicas, revision
from agent.sizing import replicas_to_keep_up


class QueueRules(Reading):
    """Rules over attached consumers, and the drafting every rule shares."""

    def _incident(self, category: str, namespace: str, name: str, summary: str, explanation: str,
                  evidence: list[dict[str, Any]], remediation: dict[str, Any] | None, impact: dict[str, Any],
                  confidence: float) -> dict[str, Any]:
        return {"status": "incident", "summary": summary,
                "root_cause": {"category": category,
                               "component": {"kind": "Deployment", "namespace": namespace, "name": name},
                               "explanation": explanation},
                "evidence": evidence, "ruled_out": self._ruled_out(category), "impact": impact,
                "confidence": confidence, "remediation": remediation, "security_notes": []}

    def _ruled_out(self, category: str) -> list[str]:
        ruled = []
        if category != "broker_unavailable" and not self.broker_unreachable():
            ruled.append("broker_unavailable: the queue API answered")
        if category != "app_errors" and not self.error_services():
            ruled.append("app_errors: no error burst in the namespace logs")
        return ruled

    def _scale_back(self, namespace: str, name: str, detail: dict[str, Any], why: str) -> dict[str, Any]:
        """Back to the count before the drop: the replica history in metrics first, the scaling event second,
        never below an autoscaler's minimum."""
        history = self.desired_history(namespace, name)
        previous = restore_replicas(detail, history[1] if history else None)
        return {"action": "scale", "namespace": namespace, "name": name, "replicas": max(1, previous),
                "risk": "low", "rationale": why,
                "verification": [f"{name} available replicas ≥ {max(1, previous)}", "queue consumers ≥ 1",
                                 "queue depth falls back to its baseline"]}

    def _stuck_queue(self) -> dict[str, Any] | None:
        for queue in self.stuck_queues():
            stats = self.queue_stats(queue)
            assert stats is not None
            cid, data = stats
            for namespace, name in self.consumers_of(queue)[:1]:
                evidence = self._queue_evidence(queue) + self._deployment_evidence(namespace, name)
                evidence += self._log_evidence(namespace, name)
                evidence.append({"signal": "queue_consumers", "claim": f"{data['consumers']} consumer(s) hold "
                                 f"{data['unacked']} unacked messages and ack {data['ack_rate']}/s",
                                 "tool_call_id": cid, "observed": {"unacked": data["unacked"],
                                                                   "ack_rate": data["ack_rate"]}})
                remediation = {"action": "rollout_restart", "namespace": namespace, "name": name, "risk": "low",
                               "rationale": "new pods release the held messages; more replicas of the stuck ones "
                                            "would leave them held",
                               "verification": [f"{name} pods replaced and ready", "unacked back to 0",
                                                "ack rate > 0", "queue depth falling"]}
                return self._incident(
                    "consumer_stuck", namespace, name,
                    f"{queue}'s {data['consumers']} consumer(s) in {name} are attached but stuck: they hold "
                    f"{data['unacked']} unacknowledged messages and ack nothing while {data['ready']} wait.",
                    "The consumer pods are running and ready but make no progress (a hang), so work silently stops.",
                    evidence, remediation, {"broken_flow": f"messages published to {queue} are not processed",
                                            "backlog": data["messages"]}, 0.8)
        return None

    def _rejecting_queue(self) -> dict[str, Any] | None:
        """Consumers that fail every message: the cause is in their own error lines, and more replicas or new pods
        of the same release fail the same way. After a recent rollout, undo it; otherwise no change helps."""
        for queue in self.rejecting_queues():
            stats = self.queue_stats(queue)
            assert stats is not None
            cid, data = stats
            for namespace, name in self.consumers_of(queue)[:1]:
                detail = self.detail(namespace, name)
                rolled = bool(detail and revision(detail[1]) > 1 and recent_rollout(detail[1]))
                evidence = self._queue_evidence(queue) + self._deployment_evidence(namespace, name)
                evidence.append({"signal": "queue_consumers", "claim": f"{data['consumers']} consumer(s) receive "
                                 f"{data['deliver_rate']}/s, ack {data['ack_rate']}/s and get "
                                 f"{data['redeliver_rate']}/s redelivered", "tool_call_id": cid,
                                 "observed": {"ack_rate": data["ack_rate"], "redeliver_rate": data["redeliver_rate"]}})
                evidence += self._log_evidence(namespace, name)
                errors = self.namespace_logs(namespace, "error")
                if errors and errors[1]["total"]:
                    evidence.append({"signal": "errors", "claim": f"{namespace}: {errors[1]['summary'][:160]}",
                                     "tool_call_id": errors[0], "observed": {"total": errors[1]["total"]}})
                remediation = {"action": "rollback", "namespace": namespace, "name": name, "risk": "medium",
                               "rationale": "every message fails since its latest rollout; more replicas or new pods "
                                            "of this release fail the same way",
                               "verification": ["ack rate > 0", "redeliver rate back to 0", "queue depth falling"]
                               } if rolled else None
                return self._incident(
                    "app_errors", namespace, name,
                    f"{queue}'s {data['consumers']} consumer(s) in {name} fail every message: they ack nothing and "
                    f"the broker redelivers what they give back, so {data['messages']} messages wait and grow"
                    + (" since its latest rollout." if rolled else "."),
                    "The consumer rejects (or requeues) every message it receives"
                    + (", since its latest rollout." if rolled else "; its error lines name the cause."),
                    evidence, remediation, {"broken_flow": f"messages published to {queue} are not processed",
                                            "backlog": data["messages"]}, 0.8)
        return None

    def _slow_queue(self) -> dict[str, Any] | None:
        for queue in self.slow_queues():
            stats = self.queue_stats(queue)
            assert stats is not None
            cid, data = stats
            for namespace, name in self.consumers_of(queue)[:1]:
                detail = self.detail(namespace, name)
                if not detail:
                    continue
                current = max(1, detail[1]["desired"])
                publish, deliver = data["publish_rate"] or 0.0, data["deliver_rate"] or 0.0
                target = replicas_to_keep_up(current, publish, deliver, data.get("messages") or 0)
                evidence = self._queue_evidence(queue) + self._deployment_evidence(namespace, name)
                evidence.append({"signal": "producer_activity",
                                 "claim": f"publish {publish}/s against deliver {deliver}/s",
                                 "tool_call_id": cid, "observed": {"publish_rate": publish, "deliver_rate": deliver}})
                remediation = {"action": "scale", "namespace": namespace, "name": name, "replicas": target,
                               "risk": "low",
                               "rationale": f"{current} replica(s) deliver {deliver}/s while {publish}/s arrive",
                               "verification": [f"{name} available replicas = {target}",
                                                "deliver rate ≥ publish rate", "queue depth falling"]}
                return self._incident(
                    "consumer_too_slow", namespace, name,
                    f"{queue} is growing ({data['messages']} messages): its {data['consumers']} consumer(s) in "
                    f"{name} deliver {deliver}/s while producers publish {publish}/s.",
                    "The consumer is running but cannot keep up with the publish rate.",
                    evidence, remediation, {"broken_flow": f"processing of {queue} lags",
                                            "backlog": data["messages"]}, 0.8)
            return {"status": "incident",
                    "summary": f"{queue} is growing with {data['consumers']} consumer(s): publish "
                               f"{data['publish_rate']}/s exceeds deliver {data['deliver_rate']}/s.",
                    "root_cause": {"category": "consumer_too_slow", "component": None,
                                   "explanation": "consumers are present but cannot keep up"},
                    "evidence": self._queue_evidence(queue), "ruled_out": self._ruled_out("consumer_too_slow"),
                    "impact": {"broken_flow": f"processing of {queue} lags", "backlog": data["messages"]},
                    "confidence": 0.5, "remediation": None, "security_notes": []}
        return None
