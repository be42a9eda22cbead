"""Approvals and the executor: nothing changes without an approved, unexpired record; races have one winner."""

from __future__ import annotations

import contextlib
import inspect
import re
import sqlite3
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent.remediation.approvals import ApprovalStore, ExecutionClaim
from agent.remediation.errors import (
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalStateError,
    ExecutionFailed,
    PolicyRefused,
    ProposalRefused,
    RemediationError,
    StoreError,
    WorldChanged,
)
from agent.remediation.executor import Executor
from agent.remediation.models import ActuatorResult, TargetState
from agent.remediation.policy import DEFAULT_POLICY, Policy, load_policy, parse_policy
from agent.remediation.replay_actuator import ReplayActuator, WorldWaiter
from agent.remediation.service import Remediator
from agent.verdict import Action
from tools.replay import replay_sources
from tools.replay.scenario import Scenario
from tools.replay.world import World
from tools.toolkit import Sources

NS, NAME = "shop", "worker"


def small_world() -> Scenario:
    """Ten minutes of a shop whose queue worker was scaled to 0 at 09:05: quick to simulate."""
    return Scenario.model_validate({
        "id": "worker-at-zero", "title": "worker scaled to 0", "question": "why is nothing processed?",
        "clock": {"now": "2025-11-09T09:10:00Z"}, "seed": 5,
        "world": {
            "start": "2025-11-09T09:00:00Z", "namespace": NS,
            "deployments": [
                {"name": "api", "image": "example/api:1.0"},
                {"name": "broker", "image": "rabbitmq:3.10"},
                {"name": NAME, "image": "example/worker:2.1", "replicas": [
                    {"at": "2025-11-09T09:00:00Z", "replicas": 1}, {"at": "2025-11-09T09:05:00Z", "replicas": 0}]},
            ],
            "broker": {"deployment": "broker"},
            "flows": [{"name": "submit", "rate_per_min": 3, "steps": [
                {"deployment": "api", "message": "POST /jobs 202"}, {"publish": "jobs"}]}],
            "queues": [{"name": "jobs", "consumer": {"deployment": NAME, "message": "done {id}"}}],
        },
    })
SCALE_UP = Action(action="scale", namespace=NS, name=NAME, replicas=1)


class ManualClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class CountingActuator:
    """The replay actuator, counting the changes it is asked to make."""

    def __init__(self, inner: ReplayActuator, fail_with: Exception | None = None) -> None:
        self.inner, self.label, self.fail_with = inner, inner.label, fail_with
        self.applied: list[str] = []

    def current_state(self, action: Action) -> TargetState:
        return self.inner.current_state(action)

    def dry_run(self, action: Action) -> ActuatorResult:
        return self.inner.dry_run(action)

    def apply(self, claim: ExecutionClaim) -> ActuatorResult:
        self.applied.append(claim.record.id)
        if self.fail_with:
            raise self.fail_with
        return self.inner.apply(claim)


@dataclass
class Desk:
    sources: Sources
    world: World
    clock: ManualClock
    actuator: CountingActuator
    remediator: Remediator
    data: Path

    def another(self, policy: Policy | None = None) -> Remediator:
        """A second process over the same data dir (same world)."""
        return Remediator(self.actuator, policy=policy or load_policy(DEFAULT_POLICY), data=self.data,
                          clock=self.clock, waiter=WorldWaiter(self.world))

    def desired(self) -> int:
        sim = self.world.deployment(NS, NAME)
        assert sim is not None
        return sim.desired


@pytest.fixture
def desk(tmp_path: Path) -> Desk:
    sources = replay_sources(small_world())
    world = sources.extras["world"]
    clock = ManualClock()
    actuator = CountingActuator(ReplayActuator(world))
    remediator = Remediator(actuator, policy=load_policy(DEFAULT_POLICY), data=tmp_path, clock=clock,
                            waiter=WorldWaiter(world))
    return Desk(sources, world, clock, actuator, remediator, tmp_path)


def propose(desk: Desk, action: Action = SCALE_UP, run_id: str = "run-1") -> str:
    return desk.remediator.propose(action, run_id=run_id, evidence_summary="consumer has 0 replicas").id


def test_propose_stores_a_pending_approval_with_snapshot_and_dry_run(desk: Desk) -> None:
    record = desk.remediator.propose(SCALE_UP, run_id="run-1", evidence_summary="consumer has 0 replicas")
    assert record.digest and record.seal is None and record.approvers == []
    assert re.fullmatch(r".+default-policy\.yaml@[0-9a-f]{16}", record.policy or ""), record.policy
    assert record.cluster == "replay:worker-at-zero"
    assert (record.needs, record.identity, record.first_approver) == (1, "declared", None)
    assert record.model_dump(exclude={"id", "digest", "seal", "approvers", "policy", "cluster", "needs", "identity",
                                      "first_approver", "first_decided_at"}) == {
        "run_id": "run-1",
        "action": {"action": "scale", "kind": "Deployment", "namespace": NS, "name": NAME, "replicas": 1},
        "command": "kubectl -n shop scale deployment/worker --replicas=1",
        "evidence_summary": "consumer has 0 replicas",
        "expected_effect": "deployment/worker in shop: desired replicas 0 → 1; expect 1 available",
        "dry_run": {"ok": True, "dry_run": True,
                    "summary": "would scale deployment/worker in shop from 0 to 1 replicas",
                    "before": {"exists": True, "replicas": 0, "revision": "1",
                               "images": ["example/worker:2.1"], "uid": None},
                    "after": {"replicas": 1}, "status_code": None},
        "snapshot": {"exists": True, "replicas": 0, "revision": "1", "images": ["example/worker:2.1"], "uid": None},
        "verify": {"namespace": NS, "deployment": NAME, "kind": "Deployment", "replicas": 1, "queue": None},
        "proposer": "sre-agent", "requested_at": desk.clock.now, "expires_at": desk.clock.now + timedelta(minutes=15),
        "status": "pending", "approver": None, "decided_at": None, "reason": None, "executed_at": None,
        "result": None,
    }
    assert desk.desired() == 0 and desk.actuator.applied == []
    assert [(r.event, r.actor) for r in desk.remediator.history(approval_id=record.id)] == [("proposed", "sre-agent")]
    assert [r.id for r in desk.remediator.pending()] == [record.id]


def test_proposal_refused_by_policy_creates_no_approval(desk: Desk) -> None:
    with pytest.raises(PolicyRefused) as caught:
        desk.remediator.propose(Action(action="scale", namespace=NS, name=NAME, replicas=0), run_id="run-1")
    assert caught.value.message == (
        "kubectl -n shop scale deployment/worker --replicas=0 refused built-in: never scale to 0: "
        "scale to 0 replicas refused: scaling to 0 stops the workload and is never done by this agent")
    assert desk.remediator.store.list() == []
    [audit] = desk.remediator.history(run_id="run-1")
    assert (audit.event, audit.detail["rule"]) == ("refused", "built-in: never scale to 0")


def test_proposal_for_a_missing_deployment_is_refused(desk: Desk) -> None:
    with pytest.raises(ProposalRefused, match="cannot be proposed: Deployment shop/wroker does not exist"):
        desk.remediator.propose(Action(action="scale", namespace=NS, name="wroker", replicas=1), run_id="r")
    assert desk.remediator.store.list() == []


def test_no_entry_point_mutates_without_an_approved_record(desk: Desk) -> None:
    pending = propose(desk)
    rejected = propose(desk)
    desk.remediator.reject(rejected, "oncall-sre", "not now")
    expired = propose(desk)
    desk.clock.advance(minutes=16)
    desk.remediator.pending()  # sweeps `expired`
    fresh = propose(desk)  # pending again, not yet expired
    ids = {"pending": fresh, "old pending": pending, "rejected": rejected, "expired": expired, "unknown": "deadbeef"}

    executor = Executor(desk.remediator.store, desk.actuator, load_policy(DEFAULT_POLICY))
    public = [name for name, _ in inspect.getmembers(Executor, inspect.isfunction) if not name.startswith("_")]
    assert public == ["execute"]
    for label, approval_id in ids.items():
        for name in public:
            with pytest.raises(RemediationError):
                getattr(executor, name)(approval_id)
        with pytest.raises(RemediationError):
            desk.remediator.execute(approval_id)
        with pytest.raises(RemediationError):
            desk.remediator.verify(approval_id, desk.sources)
        assert desk.actuator.applied == [], label
    with pytest.raises(TypeError, match=r"issued only by ApprovalStore\.claim"):
        ExecutionClaim(desk.remediator.get(fresh), desk.clock.now)
    assert desk.desired() == 0
    assert [r.outcome for r in desk.remediator.history(approval_id=fresh) if r.event == "refused"][:1] == [
        f"execution refused: cannot execute approval {fresh} (kubectl -n shop scale deployment/worker "
        "--replicas=1, run run-1): it has not been approved yet"]


def test_rejection_ends_cleanly_with_the_reason_in_the_audit(desk: Desk) -> None:
    approval_id = propose(desk)
    record = desk.remediator.reject(approval_id, "oncall-sre", "scaling hides the bug; page the team")
    assert (record.status, record.approver, record.reason) == (
        "rejected", "oncall-sre", "scaling hides the bug; page the team")
    with pytest.raises(ApprovalStateError) as caught:
        desk.remediator.execute(approval_id)
    assert caught.value.message.endswith(
        "it was rejected by oncall-sre at 2026-01-05T09:00:00.000000+00:00: scaling hides the bug; page the team")
    with pytest.raises(ApprovalStateError, match="it was rejected by oncall-sre"):
        desk.remediator.approve(approval_id, "someone-else")
    events = [(r.event, r.actor, r.outcome) for r in desk.remediator.history(approval_id=approval_id)]
    assert events[1] == ("rejected", "oncall-sre", "rejected by oncall-sre: scaling hides the bug; page the team")
    assert [e[0] for e in events] == ["proposed", "rejected", "refused", "refused"]
    assert desk.actuator.applied == [] and desk.desired() == 0


def test_two_concurrent_approvals_execute_once(desk: Desk) -> None:
    approval_id = propose(desk)
    barrier = threading.Barrier(6)
    outcomes: list[str] = []

    def approve_and_execute(name: str) -> None:
        barrier.wait()
        with contextlib.suppress(ApprovalStateError):  # someone else approved first
            desk.remediator.approve(approval_id, name)
        try:
            desk.remediator.execute(approval_id)
            outcomes.append("executed")
        except RemediationError as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=approve_and_execute, args=(f"sre-{n}",)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("executed") == 1
    assert desk.actuator.applied == [approval_id]
    record = desk.remediator.get(approval_id)
    assert record.status == "executed" and desk.desired() == 1
    approvals = [r for r in desk.remediator.history(approval_id=approval_id) if r.event == "approved"]
    assert len(approvals) == 1 and approvals[0].actor == record.approver


def test_approving_twice_executes_once(desk: Desk) -> None:
    approval_id = propose(desk)
    desk.remediator.approve(approval_id, "oncall-sre")
    with pytest.raises(ApprovalStateError, match="it was already approved by oncall-sre"):
        desk.remediator.approve(approval_id, "oncall-sre")
    desk.remediator.execute(approval_id)
    with pytest.raises(ApprovalStateError, match="it was already executed at"):
        desk.remediator.execute(approval_id)
    assert desk.actuator.applied == [approval_id]


def test_crash_between_approval_and_execution_resumes_in_a_new_process(desk: Desk) -> None:
    approval_id = propose(desk)
    desk.remediator.approve(approval_id, "oncall-sre")
    del desk.remediator  # the process dies after the approval was committed
    restarted = desk.another()
    result = restarted.execute(approval_id)
    assert result.approval.status == "executed"
    assert result.applied.summary == (
        "scaled deployment/worker in shop from 0 to 1 replicas at 2025-11-09T09:10:00+00:00")
    assert result.inverse_command == "kubectl -n shop scale deployment/worker --replicas=0"
    assert [r.event for r in restarted.history(approval_id=approval_id)] == [
        "proposed", "approved", "dry_run", "executed"]
    assert desk.desired() == 1


def test_expired_approvals_are_refused(desk: Desk) -> None:
    never_approved = propose(desk)
    approved_late = propose(desk)
    desk.remediator.approve(approved_late, "oncall-sre")
    desk.clock.advance(minutes=15)
    with pytest.raises(ApprovalExpired) as caught:
        desk.remediator.approve(never_approved, "oncall-sre")
    assert caught.value.message == (
        f"cannot approve approval {never_approved} (kubectl -n shop scale deployment/worker --replicas=1,"
        " run run-1): it expired at 2026-01-05T09:15:00.000000+00:00; propose the action again for a fresh approval")
    with pytest.raises(ApprovalExpired, match="it expired at 2026-01-05T09:15:00"):
        desk.remediator.execute(approved_late)
    assert desk.remediator.get(never_approved).status == "expired"
    assert desk.remediator.get(approved_late).status == "expired"
    assert [r.event for r in desk.remediator.history(approval_id=approved_late)] == [
        "proposed", "approved", "expired", "refused"]
    assert desk.actuator.applied == [] and desk.desired() == 0


def test_world_changed_since_the_proposal_stops_execution(desk: Desk) -> None:
    approval_id = propose(desk)
    desk.remediator.approve(approval_id, "oncall-sre")
    desk.world.scale(NS, NAME, 2)  # someone else acted in the meantime
    with pytest.raises(WorldChanged) as caught:
        desk.remediator.execute(approval_id)
    assert caught.value.message == (
        f"approval {approval_id} (kubectl -n shop scale deployment/worker --replicas=1, run run-1) not "
        "executed: the target changed since it was proposed (replicas: 0 at proposal → 2 now)")
    record = desk.remediator.get(approval_id)
    assert (record.status, record.reason) == ("stale", "replicas: 0 at proposal → 2 now")
    with pytest.raises(ApprovalStateError, match="the target changed since it was proposed"):
        desk.remediator.execute(approval_id)
    assert desk.actuator.applied == [] and desk.desired() == 2


def test_policy_is_checked_again_at_execution(desk: Desk) -> None:
    approval_id = propose(desk)
    desk.remediator.approve(approval_id, "oncall-sre")
    stricter = parse_policy({"approval": {"approvers": ["lead"]},
                             "rules": [{"name": "r", "namespaces": ["*"], "allow": {"scale": {}}}]}, "strict.yaml")
    with pytest.raises(PolicyRefused, match="oncall-sre is not a listed approver"):
        desk.another(policy=stricter).execute(approval_id)
    assert desk.remediator.get(approval_id).status == "failed"
    assert desk.actuator.applied == []


def test_approver_must_be_allowed_named_and_not_the_proposer(desk: Desk) -> None:
    approval_id = propose(desk)
    listed = desk.another(policy=parse_policy({"approval": {"approvers": ["lead"]}, "rules": [
        {"name": "r", "namespaces": ["*"], "allow": {"scale": {}}}]}, "team.yaml"))
    with pytest.raises(PolicyRefused, match=r"'mallory' may not approve .*: mallory is not a listed approver"):
        listed.approve(approval_id, "mallory")
    with pytest.raises(PolicyRefused, match=r"sre-agent proposed approval .* and cannot also approve it"):
        desk.remediator.approve(approval_id, "sre-agent")
    with pytest.raises(PolicyRefused, match="is not a usable name"):
        desk.remediator.approve(approval_id, "  ")
    assert desk.remediator.get(approval_id).status == "pending"


def test_decide_reads_the_human_answer(desk: Desk) -> None:
    approval_id = propose(desk)
    with pytest.raises(RemediationError) as caught:
        desk.remediator.decide(approval_id, {"decision": "yes please"})
    assert caught.value.message.startswith(f"cannot read the decision for approval {approval_id}: decision: ")
    record = desk.remediator.decide(approval_id, {"decision": "reject", "approver": "oncall-sre", "reason": "no"})
    assert (record.status, record.reason) == ("rejected", "no")
    other = propose(desk)
    assert desk.remediator.decide(other, {"decision": "approve", "approver": "oncall-sre"}).status == "approved"


def test_a_crashing_actuator_leaves_the_record_failed_not_executing(desk: Desk) -> None:
    desk.actuator.fail_with = RuntimeError("connection reset by peer")
    approval_id = propose(desk)
    desk.remediator.approve(approval_id, "oncall-sre")
    with pytest.raises(ExecutionFailed, match="failed: RuntimeError: connection reset by peer"):
        desk.remediator.execute(approval_id)
    record = desk.remediator.get(approval_id)
    assert (record.status, record.reason) == ("failed", "unexpected error: RuntimeError: connection reset by peer")
    assert [r.event for r in desk.remediator.history(approval_id=approval_id)][-1] == "failed"


def test_unknown_ids_and_prefixes(desk: Desk) -> None:
    approval_id = propose(desk)
    assert desk.remediator.get(approval_id[:5]).id == approval_id
    with pytest.raises(ApprovalNotFound) as caught:
        desk.remediator.get("nope")
    assert (caught.value.message, caught.value.hints) == (
        "no approval with id 'nope'", [f"pending approvals: {approval_id}"])


def test_a_file_that_is_not_an_approvals_database_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "approvals.sqlite"
    path.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(StoreError, match=r"approvals database .*approvals.sqlite: file is not a database"):
        ApprovalStore(path)


def test_records_survive_reopening(desk: Desk) -> None:
    approval_id = propose(desk)
    conn = sqlite3.connect(desk.data / "approvals.sqlite")
    assert conn.execute("SELECT status FROM approvals WHERE id = ?", (approval_id,)).fetchone() == ("pending",)
    conn.close()
    assert desk.another().get(approval_id) == desk.remediator.get(approval_id)


def test_the_remediation_core_never_shells_out() -> None:
    import agent.remediation

    root = Path(agent.remediation.__file__).parent
    for source in sorted(root.glob("*.py")):
        text = source.read_text()
        for banned in ("subprocess", "os.system", "os.popen", "os.exec", "shell=True", "pty.spawn"):
            assert banned not in text, f"{source.name} uses {banned}"


def test_an_execution_left_running_by_a_dead_process_can_be_abandoned_by_a_named_person(desk: Desk) -> None:
    approval_id = propose(desk)
    desk.remediator.approve(approval_id, "oncall-sre")
    desk.remediator.store.claim(approval_id)  # the executing process dies here, before finishing
    desk.clock.advance(minutes=2)
    with pytest.raises(ApprovalStateError) as refused:
        desk.remediator.store.abandon(approval_id, "oncall-lead", "executor pod evicted")
    assert "claimed at 2026-01-05T09:00:00.000000+00:00, 120 s ago, and may still be running" in str(refused.value)
    assert refused.value.hints == [
        "wait until 2026-01-05T09:15:00.000000+00:00, or pass --force if the process is known to be gone"]
    desk.clock.advance(minutes=14)
    record = desk.remediator.store.abandon(approval_id, "oncall-lead", "executor pod evicted")
    assert record.status == "failed"
    assert record.reason == ("abandoned by oncall-lead: executor pod evicted; whether kubectl -n shop scale "
                             "deployment/worker --replicas=1 took effect is unknown")
    last = desk.remediator.history(approval_id=approval_id)[-1]
    assert (last.event, last.actor, last.detail["forced"]) == ("abandoned", "oncall-lead", False)
    with pytest.raises(ApprovalStateError, match="only an execution left running can be abandoned, and it is failed"):
        desk.remediator.store.abandon(approval_id, "oncall-lead", "again")
    with pytest.raises(ApprovalStateError, match="only an execution left running"):
        desk.remediator.store.abandon(propose(desk, run_id="run-2"), "oncall-lead", "not started")
    assert desk.actuator.applied == [], "abandoning changes nothing on the target"


def test_an_execution_whose_process_died_after_recording_it_is_closed_as_it_recorded(
        desk: Desk, monkeypatch: pytest.MonkeyPatch) -> None:
    """The executor writes the audit record of how an execution ended before the approval's status: a process that
    dies between the two leaves an `executing` record, and abandoning it closes it as the audit says, so a change
    that reached the cluster is never without its record."""
    approval_id = propose(desk)
    desk.remediator.approve(approval_id, "oncall-sre")

    def dies(*_args: object, **_kwargs: object) -> None:
        raise SystemExit("killed")  # the process ends here: nothing after this line runs

    monkeypatch.setattr(desk.remediator.store, "finish", dies)
    with pytest.raises(SystemExit):
        desk.remediator.execute(approval_id)
    monkeypatch.undo()
    assert desk.remediator.get(approval_id).status == "executing" and desk.desired() == 1
    closed = desk.another().store.abandon(approval_id, "oncall-sre", "its process died", force=True)
    assert closed.status == "executed" and closed.reason is None
    events = [r.event for r in desk.remediator.history(approval_id=approval_id)]
    assert events[-2:] == ["executed", "abandoned"]
    assert "as the executor recorded before its process died" in desk.remediator.history(
        approval_id=approval_id)[-1].outcome


def test_verifying_a_replay_with_waits_shorter_than_a_tick_ends() -> None:
    """Regression (issue 16): `approvals verify ID --interval 1` on a replay looped for ever, growing without bound,
    because a one-second wait never moved a world that moves in five-second ticks."""
    from agent.remediation.models import VerifyTarget
    from agent.remediation.verify import verify

    sources = replay_sources(small_world())
    world = sources.extras["world"]
    target = VerifyTarget(namespace=NS, deployment=NAME, replicas=1)  # at 0, it never recovers by itself
    report = verify(sources, target, waiter=WorldWaiter(world), timeout_s=20, interval_s=1)
    assert (report.recovered, report.elapsed_s, len(report.observations)) == (False, 20.0, 21)

    class Frozen:  # a clock that never moves: the watch still ends after one look per interval of the timeout
        def wait(self, seconds: float) -> None:
            pass

    report = verify(sources, target, waiter=Frozen(), timeout_s=20, interval_s=1)
    assert (report.recovered, report.elapsed_s, len(report.observations)) == (False, 0.0, 21)
