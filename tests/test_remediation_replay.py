"""The whole remediation flow offline on replayed worlds: propose, approve, execute, verify with numbers."""

from __future__ import annotations

import time
from pathlib import Path

from agent.remediation.models import QueueRef, VerifyTarget
from agent.remediation.policy import DEFAULT_POLICY, load_policy
from agent.remediation.service import Remediator, verify_target_for
from agent.verdict import (
    Action,
    Component,
    Evidence,
    Remediation,
    RootCause,
    ToolCallRecord,
    Trace,
    Verdict,
)
from tools.replay import replay_sources
from tools.replay.scenario import Scenario

SCALE_QUEUE_MASTER = Action(action="scale", namespace="sock-shop", name="queue-master", replicas=1)


def incident5_verdict() -> Verdict:
    return Verdict(
        status="incident", confidence=0.9,
        summary="queue-master has 0 replicas; shipping-task has no consumer and grows",
        root_cause=RootCause(category="consumer_unavailable", explanation="scaled to 0",
                             component=Component(kind="Deployment", namespace="sock-shop", name="queue-master")),
        evidence=[
            Evidence(signal="replicas", claim="queue-master desired 0, available 0", tool_call_id="c1",
                     observed={"desired": 0}),
            Evidence(signal="queue_consumers", claim="shipping-task has 0 consumers and 5 messages",
                     tool_call_id="c2", observed={"consumers": 0, "messages": 5}),
        ],
        remediation=Remediation(action=SCALE_QUEUE_MASTER, verification=["consumers >= 1", "backlog drains"]),
        trace=Trace(model="scripted", tool_calls=[
            ToolCallRecord(id="c1", name="get_deployment", args={"namespace": "sock-shop", "name": "queue-master"},
                           ok=True, ms=1.0),
            ToolCallRecord(id="c2", name="get_queue_stats", args={"queue": "shipping-task", "vhost": "/"},
                           ok=True, ms=1.0),
        ]),
    )


def test_verify_target_comes_from_the_verdicts_evidence() -> None:
    assert verify_target_for(incident5_verdict()) == VerifyTarget(
        namespace="sock-shop", deployment="queue-master", replicas=1, queue=QueueRef(vhost="/", name="shipping-task"))


def test_incident5_scale_up_drains_the_backlog(tmp_path: Path) -> None:
    began = time.perf_counter()
    sources = replay_sources("incident-5")
    desk = Remediator.for_replay(sources, policy=load_policy(DEFAULT_POLICY), data=tmp_path)
    record = desk.propose_verdict(incident5_verdict(), run_id="incident-5-run")
    assert record.command == "kubectl -n sock-shop scale deployment/queue-master --replicas=1"
    assert record.expected_effect == (
        "deployment/queue-master in sock-shop: desired replicas 0 → 1; expect 1 available; queue shipping-task: "
        "at least 1 consumer and the backlog draining to ≤ 0; check: consumers >= 1; backlog drains")
    assert record.evidence_summary == (
        "queue-master has 0 replicas; shipping-task has no consumer and grows | [replicas] queue-master desired 0, "
        "available 0 | [queue_consumers] shipping-task has 0 consumers and 5 messages")

    desk.approve(record.id, "oncall-sre")
    result = desk.execute(record.id)
    assert result.summary() == (
        f"scaled deployment/queue-master in sock-shop from 0 to 1 replicas at 2025-11-09T14:47:30+00:00 (approval "
        f"{record.id}, approved by oncall-sre); to undo: kubectl -n sock-shop scale deployment/queue-master "
        "--replicas=0")
    report = desk.verify(record.id, sources)
    assert report.recovered
    assert report.summary == "backlog 5 → 0 in 10 s; consumers 0 → 1; available 0 → 1"
    assert [(o.elapsed_s, o.available, o.depth, o.consumers) for o in report.observations] == [
        (0.0, 0, 5, 0), (5.0, 0, 5, 0), (10.0, 1, 0, 1)]
    assert report.rollback_command == "kubectl -n sock-shop scale deployment/queue-master --replicas=0"

    audit = desk.history(run_id="incident-5-run")
    assert [(r.event, r.actor) for r in audit] == [
        ("proposed", "sre-agent"), ("approved", "oncall-sre"), ("dry_run", "oncall-sre"), ("executed", "oncall-sre"),
        ("verified", "verifier")]
    assert audit[-1].outcome == "recovered: backlog 5 → 0 in 10 s; consumers 0 → 1; available 0 → 1"
    assert all(r.approval_id == record.id for r in audit)
    assert time.perf_counter() - began < 3


def crashloop_world() -> Scenario:
    """A worker that crash-loops (OOMKilled) since a rollout to 2.2 at 10:20; revision 1 (2.1) was healthy."""
    return Scenario.model_validate({
        "id": "crashloop-consumer", "title": "consumer crash-loops", "question": "why is the queue growing?",
        "clock": {"now": "2025-11-09T10:30:00Z"}, "seed": 11,
        "world": {
            "start": "2025-11-09T10:00:00Z", "namespace": "shop",
            "deployments": [
                {"name": "api", "image": "example/api:1.0"},
                {"name": "broker", "image": "rabbitmq:3.10"},
                {"name": "worker", "image": "example/worker:2.1", "replicas": [
                    {"at": "2025-11-09T10:00:00Z", "replicas": 1},
                    {"at": "2025-11-09T10:20:00Z", "replicas": 1, "image": "example/worker:2.2",
                     "pod_state": "crashloop", "reason": "OOMKilled"}]},
            ],
            "broker": {"deployment": "broker"},
            "flows": [{"name": "submit", "rate_per_min": 6, "steps": [
                {"deployment": "api", "message": "POST /jobs 202"}, {"publish": "jobs"}]}],
            "queues": [{"name": "jobs", "consumer": {"deployment": "worker", "message": "done {id}"}}],
        },
    })


def test_scaling_a_crash_looping_consumer_does_not_recover_and_says_so(tmp_path: Path) -> None:
    sources = replay_sources(crashloop_world())
    desk = Remediator.for_replay(sources, policy=load_policy(DEFAULT_POLICY), data=tmp_path)
    target = VerifyTarget(namespace="shop", deployment="worker", replicas=2, queue=QueueRef(name="jobs"))
    record = desk.propose(Action(action="scale", namespace="shop", name="worker", replicas=2), run_id="r",
                          verify_target=target)
    desk.approve(record.id, "oncall-sre")
    desk.execute(record.id)
    report = desk.verify(record.id, sources)
    assert not report.recovered
    first, last = report.observations[0], report.observations[-1]
    assert (last.elapsed_s, last.desired, last.available, last.consumers) == (90.0, 2, 0, 0)
    assert last.depth is not None and first.depth is not None and last.depth > first.depth
    assert report.summary == (
        f"NOT RECOVERED after 90 s: backlog {first.depth} → {last.depth} (rising, baseline 0); consumers 0 → 0; "
        f"available 0 → 0 of 2 desired; pods CrashLoopBackOff (last terminated: OOMKilled), {last.restarts} restarts")
    assert report.next_steps == [
        "more replicas of a crash-looping container only add crashing pods: read its last logs and termination "
        "reason before changing anything else",
        "OOMKilled: the container exceeds its memory limit; raise the limit or fix the leak",
        "if this began with a rollout, propose a rollback: kubectl -n shop rollout undo deployment/worker",
        "to undo the executed change (needs a fresh approval): kubectl -n shop scale deployment/worker --replicas=1",
    ]
    assert report.suggested_action == Action(action="rollback", namespace="shop", name="worker")
    assert report.rollback == Action(action="scale", namespace="shop", name="worker", replicas=1)
    [audit] = desk.history(approval_id=record.id)[-1:]
    assert (audit.event, audit.detail["recovered"]) == ("verified", False)
    assert audit.outcome == report.summary

    # The suggested next step, through the same gate: a rollback to the healthy revision recovers it.
    rollback = desk.propose(report.suggested_action, run_id="r", verify_target=VerifyTarget(
        namespace="shop", deployment="worker", queue=QueueRef(name="jobs")))
    assert rollback.dry_run is not None
    assert rollback.dry_run.summary == "would roll deployment/worker in shop back to revision 1 (example/worker:2.1)"
    desk.approve(rollback.id, "oncall-sre")
    desk.execute(rollback.id)
    healed = desk.verify(rollback.id, sources)
    assert healed.recovered
    assert healed.summary.startswith(f"backlog {last.depth} → 0 in ")
    assert healed.summary.endswith("; consumers 0 → 2; available 0 → 2")
