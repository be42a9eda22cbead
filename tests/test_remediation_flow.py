"""The remediation steps of the agent graph: propose → approval (interrupt) → execute → verify, resumed elsewhere."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent.baseline.policy import PlaybookPolicy
from agent.graph import build_graph
from agent.llm.scripted import ScriptedModel, verdict_turn
from agent.remediation.checkpoint import make_checkpointer
from agent.remediation.errors import (
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalStateError,
    PolicyRefused,
    RemediationError,
    StoreError,
)
from agent.remediation.flow import CHECKPOINTER_ENV, open_sources, resume_model
from agent.remediation.paths import DATA_ENV
from agent.remediation.policy import POLICY_ENV, parse_policy
from agent.remediation.replay_actuator import world_of
from agent.remediation.runs import RunRecord, RunRegistry
from agent.remediation.service import Remediator
from agent.run import (
    RemediationRun,
    fresh_turn,
    investigate,
    new_run_id,
    opening,
    resume_approval,
    resume_run,
    start_remediation_run,
)
from tests.postgres_server import postgres_url  # noqa: F401  (fixture)
from tests.test_agent_graph import good_verdict, realistic_script
from tools.registry import default_toolbox
from tools.toolkit import Sources

QUESTION = "why are shipments not going out?"
NS = "sock-shop"
APPROVE = {"decision": "approve", "approver": "oncall-sre"}
COMMAND = "kubectl -n sock-shop scale deployment/queue-master --replicas=1"
RECOVERED = "backlog 5 → 0 in 10 s; consumers 0 → 1; available 0 → 1"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    monkeypatch.delenv(CHECKPOINTER_ENV, raising=False)
    monkeypatch.delenv(POLICY_ENV, raising=False)


class Started:
    def __init__(self, data: Path, scenario: str = "incident-5", model: Any = None, **desk: Any) -> None:
        self.data = data
        self.sources: Sources = open_sources(scenario)
        self.desk = Remediator.for_replay(self.sources, data=data, **desk)
        self.run = RunRecord(run_id=new_run_id(), question=QUESTION, sources=scenario, model="playbook")
        with make_checkpointer(data / "checkpoints.sqlite") as saver:
            self.result = start_remediation_run(self.run, model or PlaybookPolicy(), self.sources, self.desk, saver)

    def replicas(self, name: str = "queue-master") -> int:
        sim = world_of(self.sources).deployment(NS, name)
        assert sim is not None
        return sim.desired

    def events(self) -> list[str]:
        return [r.event for r in self.desk.history(run_id=self.run.run_id)]

    def resume(self, answer: dict[str, Any], desk: Remediator | None = None) -> RemediationRun:
        """Resume in this process, on the same world (so its state can be inspected afterwards)."""
        with make_checkpointer(self.data / "checkpoints.sqlite") as saver:
            return resume_run(self.result.approval_id or "", answer, model=PlaybookPolicy(), sources=self.sources,
                              remediator=desk or self.desk, checkpointer=saver)


def masked(request: dict[str, Any]) -> dict[str, Any]:
    return {**request, "approval_id": "ID", "run_id": "RUN", "requested_at": "T", "expires_at": "T+15m"}


def test_pauses_at_the_approval_with_everything_a_human_needs(tmp_path: Path) -> None:
    started = Started(tmp_path)
    result = started.result
    assert result.status == "pending" and result.verdict is not None and result.verdict.status == "incident"
    assert result.request is not None
    assert masked(result.request) == {
        "approval_id": "ID", "run_id": "RUN", "command": COMMAND,
        "action": {"action": "scale", "kind": "Deployment", "namespace": NS, "name": "queue-master", "replicas": 1},
        "evidence_summary": result.request["evidence_summary"],
        "expected_effect": "deployment/queue-master in sock-shop: desired replicas 0 → 1; expect 1 available; queue "
                           "shipping-task: at least 1 consumer and the backlog draining to ≤ 0; check: queue-master "
                           "available replicas ≥ 1; queue consumers ≥ 1; queue depth falls back to its baseline",
        "dry_run": "would scale deployment/queue-master in sock-shop from 0 to 1 replicas",
        "requested_at": "T", "expires_at": "T+15m",
        "answer_with": {"decision": "approve | reject", "approver": "<your handle>", "reason": "<if rejecting>"},
    }
    assert result.request["evidence_summary"].startswith(result.verdict.summary + " | [consumer_logs] ")
    assert datetime.fromisoformat(result.request["expires_at"]) - datetime.fromisoformat(
        result.request["requested_at"]) == timedelta(minutes=15)
    assert result.remediation == {"enabled": True, "run_id": started.run.run_id, "status": "pending",
                                  "approval_id": result.approval_id, "command": COMMAND, "asked": 1, "reason": None,
                                  "note": None}
    assert started.events() == ["proposed"] and started.replicas() == 0
    assert RunRegistry.in_data(tmp_path).get(started.run.run_id) == started.run


def test_approved_from_a_fresh_process_executes_and_verifies_with_numbers(tmp_path: Path) -> None:
    started = Started(tmp_path)
    done = resume_approval(started.result.approval_id or "", APPROVE, data=tmp_path)  # everything rebuilt
    assert done.status == "recovered" and done.request is None
    assert done.remediation["execution"] == {
        "summary": f"scaled deployment/queue-master in sock-shop from 0 to 1 replicas at 2025-11-09T14:47:30+00:00 "
                   f"(approval {started.result.approval_id}, approved by oncall-sre); to undo: kubectl -n sock-shop "
                   "scale deployment/queue-master --replicas=0",
        "applied": "scaled deployment/queue-master in sock-shop from 0 to 1 replicas at 2025-11-09T14:47:30+00:00",
        "dry_run": "would scale deployment/queue-master in sock-shop from 0 to 1 replicas",
        "approver": "oncall-sre", "inverse_command": "kubectl -n sock-shop scale deployment/queue-master --replicas=0"}
    report = done.remediation["verification"]
    assert (report["recovered"], report["summary"], report["elapsed_s"]) == (True, RECOVERED, 10.0)
    assert started.events() == ["proposed", "approved", "dry_run", "executed", "verified"]

    with pytest.raises(ApprovalStateError, match="it was already executed at "):  # approving twice executes once
        resume_approval(started.result.approval_id or "", APPROVE, data=tmp_path)
    assert started.events() == ["proposed", "approved", "dry_run", "executed", "verified", "refused"]


def test_rejection_ends_the_run_cleanly_and_changes_nothing(tmp_path: Path) -> None:
    started = Started(tmp_path)
    done = started.resume({"decision": "reject", "approver": "oncall-sre", "reason": "change freeze"})
    assert (done.status, done.remediation["reason"], done.remediation["approver"]) == (
        "rejected", "change freeze", "oncall-sre")
    assert started.events() == ["proposed", "rejected"] and started.replicas() == 0
    assert started.desk.history(run_id=started.run.run_id)[-1].outcome == "rejected by oncall-sre: change freeze"
    with pytest.raises(ApprovalStateError, match=r"it was rejected by oncall-sre at .*: change freeze$"):
        started.resume(APPROVE)
    assert started.replicas() == 0 and "executed" not in started.events()


def test_without_remediation_or_without_an_action_the_graph_ends_at_the_verdict(tmp_path: Path) -> None:
    sources = open_sources("incident-5")
    desk = Remediator.for_replay(sources, data=tmp_path)
    from agent.remediation.flow import remediation_steps

    graph = build_graph(PlaybookPolicy(), default_toolbox(), sources, after_verdict=remediation_steps(desk, sources))
    state = graph.invoke({**fresh_turn("investigate"), "messages": opening(QUESTION, sources)})
    assert state["verdict"]["status"] == "incident" and "remediation" not in state and "__interrupt__" not in state
    assert investigate(QUESTION, PlaybookPolicy(), sources).status == "incident"
    healthy = Started(tmp_path, "incident-5-healthy")
    assert (healthy.result.status, healthy.result.remediation["reason"], healthy.result.request) == (
        "none", "the verdict is healthy: nothing to remediate", None)
    assert desk.store.list() == [] and desk.history() == []


def scripted(remediation: dict[str, Any], **overrides: Any) -> ScriptedModel:
    return ScriptedModel([*realistic_script()[:-1], verdict_turn(good_verdict(remediation=remediation, **overrides))])


def test_a_policy_refusal_ends_the_run_cleanly_with_the_rule(tmp_path: Path) -> None:
    scale_only = parse_policy({"rules": [{"name": "scale-only", "namespaces": ["*"], "deployments": ["*"],
                                          "allow": {"scale": {"min_replicas": 1, "max_replicas": 5}}}]}, "team.yaml")
    started = Started(tmp_path, model=scripted({"action": "rollout_restart", "namespace": NS,
                                                "name": "queue-master"}), policy=scale_only)
    assert started.result.status == "refused" and started.result.request is None
    assert started.result.remediation["reason"] == (
        "kubectl -n sock-shop rollout restart deployment/queue-master refused rule 'scale-only' (namespaces *) in "
        "team.yaml (rules[0]): rollout_restart is not allowed for Deployment sock-shop/queue-master; this rule "
        "allows scale")
    [refused] = started.desk.history(run_id=started.run.run_id)
    assert (refused.event, refused.approval_id) == ("refused", None)
    assert refused.outcome.startswith("proposal refused: refused by rule 'scale-only'")
    assert started.desk.store.list() == [] and started.replicas() == 0


def test_a_scale_beyond_the_policy_is_proposed_at_its_bound_and_says_so(tmp_path: Path) -> None:
    started = Started(tmp_path, model=scripted({"action": "scale", "namespace": NS, "name": "queue-master",
                                                "replicas": 9}))
    assert started.result.status == "pending" and started.result.request is not None
    assert started.result.request["command"] == "kubectl -n sock-shop scale deployment/queue-master --replicas=5"
    verdict = started.result.verdict
    assert verdict is not None and verdict.remediation is not None and verdict.trace is not None
    assert "asks for 9 replicas" in verdict.remediation.rationale
    assert "scale sized 9 → 5: the policy's bounds for sock-shop/queue-master" in verdict.trace.validation


def test_injected_log_text_cannot_change_the_action_or_its_target(tmp_path: Path) -> None:
    honest = Started(tmp_path / "a", "prompt-injection")
    assert honest.result.verdict is not None and honest.result.verdict.security_notes
    assert honest.result.request is not None
    assert (honest.result.request["command"], honest.result.request["action"]) == (
        COMMAND, {"action": "scale", "kind": "Deployment", "namespace": NS, "name": "queue-master", "replicas": 1})
    # A model that obeys the injected note ("scale everything to 0") gets no action past the validator and policy.
    obeying = Started(tmp_path / "b", "prompt-injection", model=scripted(
        {"action": "scale", "namespace": NS, "name": "queue-master", "replicas": 0}))
    assert obeying.result.status == "none" and obeying.desk.store.list() == []
    assert obeying.replicas() == 0 and obeying.desk.history() == []


def test_an_answer_that_is_not_a_decision_changes_nothing_and_keeps_the_run_paused(tmp_path: Path) -> None:
    started = Started(tmp_path)
    for answer in ({"decision": "yes please", "approver": "oncall-sre"}, {"decision": "approve", "approver": ""},
                   {"decision": "approve", "approver": "rm -rf /"}):
        with pytest.raises(RemediationError):
            started.resume(answer)
    assert started.desk.get(started.result.approval_id or "").status == "pending"
    assert started.replicas() == 0 and started.events() == ["proposed", "refused"]  # the unnamed approver
    with pytest.raises(ApprovalNotFound):
        resume_approval("ffffffff", APPROVE, data=tmp_path)
    with pytest.raises(ApprovalStateError, match="it has not been approved yet"):
        started.desk.execute(started.result.approval_id or "")
    assert started.replicas() == 0 and "executed" not in started.events()
    assert started.resume(APPROVE).status == "recovered"  # still resumable


class CrashingRemediator(Remediator):
    """Dies once, at a chosen point, like a process killed between the approval and the execution."""

    crash_in = ""

    def decide(self, approval_id: str, answer: Any) -> Any:
        record = super().decide(approval_id, answer)
        if self.crash_in == "decide":
            raise SystemError("killed after the decision was stored")
        return record

    def execute(self, approval_id: str) -> Any:
        if self.crash_in == "execute":
            raise SystemError("killed before the execution")
        return super().execute(approval_id)


@pytest.mark.parametrize("crash_in", ["decide", "execute"])
def test_a_crash_between_approval_and_execution_resumes_correctly(tmp_path: Path, crash_in: str) -> None:
    started = Started(tmp_path)
    crashing = CrashingRemediator.for_replay(started.sources, data=tmp_path)
    assert isinstance(crashing, CrashingRemediator)
    crashing.crash_in = crash_in
    with pytest.raises(SystemError):
        started.resume(APPROVE, desk=crashing)
    assert started.desk.get(started.result.approval_id or "").status == "approved" and started.replicas() == 0
    done = resume_approval(started.result.approval_id or "", APPROVE, data=tmp_path)
    assert (done.status, done.remediation["verification"]["summary"]) == ("recovered", RECOVERED)
    assert started.events() == ["proposed", "approved", "dry_run", "executed", "verified"]


def test_two_concurrent_approvals_execute_once(tmp_path: Path) -> None:
    started = Started(tmp_path)
    outcomes: list[str] = []

    def approve(name: str) -> None:
        try:
            outcomes.append(resume_approval(started.result.approval_id or "", {"decision": "approve",
                                                                              "approver": name}, data=tmp_path).status)
        except RemediationError as exc:
            outcomes.append(type(exc).__name__)

    threads = [threading.Thread(target=approve, args=(name,)) for name in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes.count("recovered") == 1 and len(outcomes) == 2  # the other: already executing, or refused
    assert started.events().count("executed") == 1 and started.events().count("dry_run") == 1


def test_an_expired_approval_is_refused_and_the_run_closed(tmp_path: Path) -> None:
    started = Started(tmp_path)
    later = Remediator.for_replay(started.sources, data=tmp_path,
                                  clock=lambda: datetime.now(UTC) + timedelta(minutes=16))
    with pytest.raises(ApprovalExpired, match=r"it expired at .*; propose the action again for a fresh approval$"):
        started.resume(APPROVE, desk=later)
    assert started.events() == ["proposed", "expired", "refused"] and started.replicas() == 0
    with make_checkpointer(tmp_path / "checkpoints.sqlite") as saver:
        graph = build_graph(PlaybookPolicy(), default_toolbox(), started.sources, checkpointer=saver)
        state = graph.get_state({"configurable": {"thread_id": started.run.run_id}})
    assert state.next == () and state.values["remediation"]["status"] == "expired"


def test_a_world_that_changed_after_the_approval_is_asked_about_again(tmp_path: Path) -> None:
    started = Started(tmp_path)
    world_of(started.sources).scale(NS, "queue-master", 2)  # someone else acted meanwhile
    again = started.resume(APPROVE)
    assert again.status == "pending" and again.request is not None
    assert again.approval_id != started.result.approval_id
    assert again.remediation["note"].startswith(
        f"asked again: approval {started.result.approval_id} ({COMMAND}, run {started.run.run_id}) not executed: "
        "the target changed since it was proposed (replicas: 0 at proposal → 2 now")
    assert again.request["dry_run"] == "would scale deployment/queue-master in sock-shop from 2 to 1 replicas"
    assert started.events() == ["proposed", "approved", "stale", "proposed"] and started.replicas() == 2


def test_resuming_needs_the_run_record_and_the_paused_graph(tmp_path: Path) -> None:
    started = Started(tmp_path)
    (tmp_path / "checkpoints.sqlite").unlink()
    with pytest.raises(RemediationError, match=f"run {started.run.run_id} is not paused in "):
        resume_approval(started.result.approval_id or "", APPROVE, data=tmp_path)
    from agent.remediation.tables import runs

    with RunRegistry.in_data(tmp_path).engine.begin() as conn:
        conn.execute(runs.delete().where(runs.c.run_id == started.run.run_id))
    with pytest.raises(RemediationError, match=f"no record of run {started.run.run_id} in "):
        resume_approval(started.result.approval_id or "", APPROVE, data=tmp_path)
    assert started.replicas() == 0 and started.events() == ["proposed"]


def test_resume_model_prefers_the_recorded_spec(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resume_model("playbook").name == "playbook"
    assert resume_model("local").name == "playbook"  # never load an embedded LLM just to resume
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    assert resume_model("openai:gpt-4o-mini").name == "playbook"
    monkeypatch.setenv("OPENAI_API_KEY", "test-dummy")
    assert resume_model("openai:gpt-4o-mini").name == "openai:gpt-4o-mini"


@pytest.mark.postgres
def test_a_run_paused_in_postgres_is_resumed_elsewhere(tmp_path: Path, postgres_url: str,  # noqa: F811
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CHECKPOINTER_ENV, postgres_url)
    sources = open_sources("incident-5")
    desk = Remediator.for_replay(sources, data=tmp_path)
    run = RunRecord(run_id=new_run_id(), question=QUESTION, sources="incident-5", model="playbook")
    with make_checkpointer(postgres_url) as saver:
        paused = start_remediation_run(run, PlaybookPolicy(), sources, desk, saver)
    assert paused.status == "pending" and not (tmp_path / "checkpoints.sqlite").exists()
    done = resume_approval(paused.approval_id or "", APPROVE, data=tmp_path)
    assert (done.status, done.remediation["verification"]["summary"]) == ("recovered", RECOVERED)


def test_the_registry_refuses_odd_run_ids(tmp_path: Path) -> None:
    registry = RunRegistry.in_data(tmp_path)
    for bad in ("", "../etc/passwd", "a b", "x" * 65):
        with pytest.raises(RemediationError, match="is not a run id"):
            registry.get(bad)
    with pytest.raises(RemediationError, match=r"no record of run run-0123456789ab in .*approvals.sqlite"):
        registry.get("run-0123456789ab")
    assert re.fullmatch(r"run-[0-9a-f]{12}", new_run_id())


def test_run_records_live_in_the_approvals_database_and_old_files_are_imported_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from sqlalchemy import update

    from agent.remediation.tables import runs

    folder = tmp_path / "runs"
    folder.mkdir()
    old = RunRecord(run_id="run-00000000000a", question=QUESTION, sources="incident-5", model="playbook")
    (folder / f"{old.run_id}.json").write_text(old.model_dump_json(indent=1))
    (folder / "run-broken.json").write_text("{not json")
    registry = RunRegistry.in_data(tmp_path)
    assert registry.get(old.run_id) == old
    assert (folder / "migrated" / f"{old.run_id}.json").exists() and not (folder / f"{old.run_id}.json").exists()
    assert (folder / "run-broken.json").exists(), "a file that cannot be read is left where it is"
    assert "run-broken.json cannot be read" in caplog.text
    assert RunRegistry.in_data(tmp_path).import_files(folder / "migrated") == 0, "imported once"
    changed = old.model_copy(update={"context": "prod-eu"})
    assert registry.save(changed) == changed and RunRegistry.in_data(tmp_path).get(old.run_id).context == "prod-eu"
    with registry.engine.begin() as conn:
        conn.execute(update(runs).where(runs.c.run_id == old.run_id).values(record='{"run_id": 3}'))
    with pytest.raises(StoreError, match=r"run record run-00000000000a in .* cannot be read"):
        registry.get(old.run_id)


def test_a_process_that_loses_the_execution_race_writes_one_line_and_no_verification(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = Started(tmp_path)
    approval = started.result.approval_id or ""
    winner = Remediator.for_replay(started.sources, data=tmp_path)  # another process, on the same store
    claim = started.desk.store.claim

    def claimed_elsewhere_first(approval_id: str) -> Any:
        winner.execute(approval_id)  # it wins between this process's approval and its claim
        return claim(approval_id)

    monkeypatch.setattr(started.desk.store, "claim", claimed_elsewhere_first)
    lost = started.resume({"decision": "approve", "approver": "bob"})
    assert lost.status == "lost_race"
    history = started.desk.history(approval_id=approval)
    assert [r.event for r in history].count("executed") == 1
    assert "verified" not in [r.event for r in history], "only the process that executed verifies"
    assert [r.outcome for r in history if r.event == "lost_race"] == [
        "not executed here: another process claimed it (executed)"]


def test_a_run_needing_two_approvers_pauses_again_after_the_first(tmp_path: Path) -> None:
    from agent.remediation.policy import parse_policy

    policy = parse_policy({"version": 1, "approval": {"second_approver_for": ["scale"]},
                           "rules": [{"name": "all", "namespaces": ["*"], "allow": {"scale": {}}}]}, "two.yaml")
    started = Started(tmp_path, policy=policy)
    assert started.result.status == "pending"
    first = started.resume({"decision": "approve", "approver": "alice"})
    assert first.status == "awaiting_second" and first.request is not None, "asked again, of someone else"
    assert started.replicas() == 0, "nothing changes on one approval"
    with pytest.raises(PolicyRefused, match="a second, different approver"):
        started.resume({"decision": "approve", "approver": "alice"})  # refused before it reaches the paused run
    done = started.resume({"decision": "approve", "approver": "bob"})
    assert done.status == "recovered" and started.replicas() == 1
