"""An approval binds to the exact action, target state and approver rule it was given for: a record edited after
proposal or approval is refused and audited, and who may approve is the proposal's policy's rule."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agent.remediation.approval_schema import SCHEMA_VERSION
from agent.remediation.errors import ApprovalStateError, PolicyRefused
from agent.remediation.flow import open_sources
from agent.remediation.policy import POLICY_ENV, load_policy, parse_policy
from agent.remediation.service import Remediator
from agent.verdict import Action

ACTION = Action(action="scale", namespace="sock-shop", name="queue-master", replicas=1)
LISTED = {"version": 1, "approval": {"approvers": ["alice", "bob"]},
          "rules": [{"name": "all", "namespaces": ["*"], "allow": {"scale": {"min_replicas": 1, "max_replicas": 5},
                                                                  "rollout_restart": {}}}]}


@pytest.fixture(autouse=True)
def _no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POLICY_ENV, raising=False)


def desk(data: Path, policy: dict | None = None) -> Remediator:
    return Remediator.for_replay(open_sources("incident-5"), data=data,
                                 policy=parse_policy(policy, "team-policy.yaml") if policy else load_policy())


def edit(data: Path, sql: str, *params: object) -> None:
    with sqlite3.connect(data / "approvals.sqlite") as conn:
        conn.execute(sql, params)


def replicas_now(remediator: Remediator) -> int:
    state = remediator._actuator.current_state(ACTION)
    assert state.replicas is not None
    return state.replicas


@pytest.mark.parametrize("tamper", [
    ("UPDATE approvals SET action = ?", '{"action":"scale","kind":"Deployment","namespace":"sock-shop",'
                                        '"name":"queue-master","replicas":5}'),
    ("UPDATE approvals SET action = ?", '{"action":"rollout_restart","kind":"Deployment","namespace":"sock-shop",'
                                        '"name":"queue-master","replicas":null}'),
    ("UPDATE approvals SET action = ?", '{"action":"scale","kind":"StatefulSet","namespace":"sock-shop",'
                                        '"name":"queue-master","replicas":1}'),
    ("UPDATE approvals SET approver = ?", "mallory"),
])
def test_a_record_edited_after_approval_is_refused_audited_and_changes_nothing(
        tmp_path: Path, tamper: tuple[str, str]) -> None:
    remediator = desk(tmp_path)
    record = remediator.propose(ACTION, run_id="run-1")
    remediator.approve(record.id, "oncall-sre")
    edit(tmp_path, *tamper)
    before = replicas_now(remediator)
    with pytest.raises(ApprovalStateError, match=r"changed after it was made|not the one recorded"):
        remediator.execute(record.id)
    assert replicas_now(remediator) == before == 0
    assert remediator.get(record.id).status == "failed"
    events = [(r.event, r.outcome) for r in remediator.history(approval_id=record.id)]
    assert ("tampered", True) in [(event, outcome.startswith("not executed:")) for event, outcome in events], events


def test_a_forged_approved_status_never_executes(tmp_path: Path) -> None:
    remediator = desk(tmp_path)
    record = remediator.propose(ACTION, run_id="run-1")
    edit(tmp_path, "UPDATE approvals SET status = 'approved', approver = 'oncall-sre', decided_at = requested_at")
    with pytest.raises(ApprovalStateError, match="not the one recorded when it was approved"):
        remediator.execute(record.id)
    assert replicas_now(remediator) == 0


def test_an_untouched_approval_executes(tmp_path: Path) -> None:
    remediator = desk(tmp_path)
    record = remediator.propose(ACTION, run_id="run-1")
    remediator.approve(record.id, "oncall-sre")
    assert remediator.execute(record.id).approval.status == "executed"
    assert replicas_now(remediator) == 1


def test_a_record_proposed_before_workload_kinds_were_recorded_still_executes(tmp_path: Path) -> None:
    """Its verify target was stored without `kind`; a Deployment's digest never covered it."""
    remediator = desk(tmp_path)
    record = remediator.propose(ACTION, run_id="run-1")
    remediator.approve(record.id, "oncall-sre")
    edit(tmp_path, "UPDATE approvals SET verify = ?", '{"namespace":"sock-shop","deployment":"queue-master",'
                                                      '"replicas":1,"queue":null}')
    assert remediator.execute(record.id).approval.status == "executed"
    assert replicas_now(remediator) == 1


def test_the_proposals_policy_decides_who_approves_whichever_process_approves(tmp_path: Path) -> None:
    record = desk(tmp_path, LISTED).propose(ACTION, run_id="run-1")
    assert record.approvers == ["alice", "bob"] and (record.policy or "").startswith("team-policy.yaml@")
    anyone = desk(tmp_path)  # the packaged default lets any named person approve
    with pytest.raises(PolicyRefused) as refused:
        anyone.approve(record.id, "mallory")
    assert "mallory is not a listed approver (alice, bob)" in refused.value.message
    assert "approval.approvers of the proposal's policy team-policy.yaml@" in refused.value.message
    assert anyone.approve(record.id, "Alice").status == "approved"


def test_the_proposer_cannot_approve_under_another_spelling(tmp_path: Path) -> None:
    remediator = desk(tmp_path)
    record = remediator.propose(ACTION, run_id="run-1", proposer="sre-agent")
    with pytest.raises(PolicyRefused, match="cannot also approve"):
        remediator.approve(record.id, "SRE-Agent")


def test_a_version_1_database_migrates_and_keeps_its_records(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "approvals.sqlite") as conn:
        conn.executescript(V1_SCHEMA)
        conn.execute("INSERT INTO meta VALUES ('schema_version', '1')")
        conn.execute("INSERT INTO approvals VALUES ('abcd1234', 'run-0', ?, 'kubectl …', 'e', 'x', NULL, "
                     "'{\"exists\": true, \"replicas\": 0}', NULL, 'sre-agent', '2025-11-09T14:45:00+00:00', "
                     "'2999-01-01T00:00:00+00:00', 'approved', 'oncall-sre', '2025-11-09T14:46:00+00:00', NULL, "
                     "NULL, NULL)", (ACTION.model_dump_json(),))
    remediator = desk(tmp_path)
    old = remediator.get("abcd1234")
    assert (old.status, old.approver, old.digest) == ("approved", "oncall-sre", None)
    with sqlite3.connect(tmp_path / "approvals.sqlite") as conn:
        assert conn.execute("SELECT value FROM meta").fetchone() == (str(SCHEMA_VERSION),)
    with pytest.raises(ApprovalStateError, match="proposed before approvals were bound"):
        remediator.execute("abcd1234")
    assert replicas_now(remediator) == 0


V1_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE approvals (
    id TEXT PRIMARY KEY, run_id TEXT NOT NULL, action TEXT NOT NULL, command TEXT NOT NULL,
    evidence_summary TEXT NOT NULL, expected_effect TEXT NOT NULL, dry_run TEXT, snapshot TEXT NOT NULL,
    verify TEXT, proposer TEXT NOT NULL, requested_at TEXT NOT NULL, expires_at TEXT NOT NULL,
    status TEXT NOT NULL, approver TEXT, decided_at TEXT, reason TEXT, executed_at TEXT, result TEXT
);
"""


TWO_PERSON = {"version": 1, "approval": {"second_approver_for": ["rollout_restart"]},
              "rules": [{"name": "shop", "namespaces": ["sock-shop"], "approvers": ["alice", "bob", "carol"],
                         "allow": {"scale": {"min_replicas": 1, "max_replicas": 5}, "rollout_restart": {}}},
                        {"name": "rest", "namespaces": ["*"], "allow": {"scale": {}}}]}
RESTART = Action(action="rollout_restart", namespace="sock-shop", name="shipping")


def test_a_high_risk_action_needs_a_second_different_approver(tmp_path: Path) -> None:
    remediator = desk(tmp_path, TWO_PERSON)
    record = remediator.propose(RESTART, run_id="run-2")
    assert (record.needs, record.approvers) == (2, ["alice", "bob", "carol"]), "the namespace's rule names them"
    first = remediator.approve(record.id, "alice")
    assert (first.status, first.first_approver) == ("pending", "alice")
    with pytest.raises(ApprovalStateError, match="has not been approved yet"):
        remediator.execute(record.id)
    with pytest.raises(PolicyRefused, match="a second, different approver"):
        remediator.approve(record.id, "ALICE")
    with pytest.raises(PolicyRefused, match="dave is not a listed approver"):
        remediator.approve(record.id, "dave")
    second = remediator.approve(record.id, "bob")
    assert (second.status, second.approver, second.first_approver) == ("approved", "bob", "alice")
    assert remediator.execute(record.id).approval.status == "executed"
    outcomes = [r.outcome for r in remediator.history(approval_id=record.id) if r.event == "approved"]
    assert outcomes == ["first of two approvals, by alice; a second approver must approve before it runs",
                        "approved by alice + bob"]


def test_an_edited_first_approver_voids_the_approval(tmp_path: Path) -> None:
    remediator = desk(tmp_path, TWO_PERSON)
    record = remediator.propose(RESTART, run_id="run-2")
    remediator.approve(record.id, "alice")
    remediator.approve(record.id, "bob")
    edit(tmp_path, "UPDATE approvals SET first_approver = 'carol'")
    with pytest.raises(ApprovalStateError, match="not the one recorded"):
        remediator.execute(record.id)


def test_an_action_not_marked_high_risk_needs_one_approver(tmp_path: Path) -> None:
    remediator = desk(tmp_path, TWO_PERSON)
    record = remediator.propose(ACTION, run_id="run-3")
    assert record.needs == 1 and remediator.approve(record.id, "carol").status == "approved"


def test_an_authenticated_identity_policy_refuses_a_declared_name(tmp_path: Path) -> None:
    strict = {**LISTED, "approval": {**LISTED["approval"], "identity": "authenticated"}}
    remediator = desk(tmp_path, strict)
    record = remediator.propose(ACTION, run_id="run-4")
    with pytest.raises(PolicyRefused, match="needs an authenticated approver"):
        remediator.approve(record.id, "alice")  # the CLI's --as: self-declared
    assert remediator.decide(record.id, {"decision": "approve", "approver": "alice",
                                         "authenticated": True}).status == "approved"
