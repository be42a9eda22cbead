"""The remediation step of the agent graph: propose → approval (a human, through `interrupt`) → execute → verify.

`remediation_steps(remediator, sources)` is an `after_verdict` extension for `build_graph`. It only acts when the
run was started with `state["remediation"] = {"enabled": True, "run_id": ...}` and the verdict is an incident
with an action; otherwise `propose` ends the run at once. Everything the steps learn goes into
`state["remediation"]` (`status` is one of `RemediationStatus`). `propose` has its own node because LangGraph
re-runs an interrupted node from its start on resume.

A paused run survives the process: the checkpointer is durable (SQLite in the data dir, or `$SRE_AGENT_CHECKPOINTER`:
a path or a PostgreSQL URL), the thread id is the run id, and a `RunRecord` (`runs.py`, in the approvals'
database) keeps what is needed to rebuild the graph elsewhere (the sources, the model spec, the question).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Literal

from langgraph.graph import END, StateGraph
from langgraph.types import interrupt
from pydantic import ValidationError

from agent.graph import GraphExtension
from agent.llm.base import ChatModel, ModelError
from agent.remediation.approvals import ApprovalRecord
from agent.remediation.errors import (
    ApprovalStateError,
    ExecutionFailed,
    PolicyRefused,
    ProposalRefused,
    WorldChanged,
)
from agent.remediation.paths import data_dir
from agent.remediation.policy import valid_person
from agent.remediation.service import DEFAULT_PROPOSER, Decision, Remediator, approval_request
from agent.state import AgentState
from agent.verdict import Verdict
from tools.toolkit import Sources

log = logging.getLogger(__name__)

CHECKPOINTER_ENV = "SRE_AGENT_CHECKPOINTER"
LIVE = "live"
MAX_ASKS = 3
RemediationStatus = Literal[
    "requested",  # the run was started with remediation on; no verdict yet
    "none",  # nothing to propose (not an incident, or no action)
    "refused",  # the policy or the dry run refused the proposal
    "pending",  # waiting for a human
    "awaiting_second",  # one of two needed approvals given; waiting for a second, different human
    "approved", "rejected", "expired",
    "stale",  # the target changed after the approval; asked again up to MAX_ASKS times
    "failed",  # the execution was refused or failed
    "executing", "executed",
    "lost_race",  # another process executed it; that process verifies
    "recovered", "not_recovered",  # verification outcome
]


# ---- the graph steps --------------------------------------------------------------------------------------

def remediation_steps(remediator: Remediator, sources: Sources, *, proposer: str = DEFAULT_PROPOSER,
                      verify_timeout_s: float = 300, verify_interval_s: float = 5) -> GraphExtension:
    """An `after_verdict` extension: adds propose, approval, execute and verify; returns "propose"."""

    def propose(state: AgentState) -> dict[str, Any]:
        desk = dict(state.get("remediation") or {})
        if not desk.get("enabled") or not state.get("verdict"):
            return {}
        verdict = Verdict.model_validate(state["verdict"])
        action = verdict.remediation.action if verdict.remediation else None
        if verdict.status != "incident" or action is None or action.action == "none":
            why = (f"the verdict is {verdict.status}: nothing to remediate" if verdict.status != "incident"
                   else "the verdict proposes no action")
            return {"remediation": {**desk, "status": "none", "reason": why}}
        run_id = str(desk["run_id"])
        reuse = [r for r in remediator.store.list(run_id=run_id, status="pending") if r.action == action]
        try:
            record = reuse[-1] if reuse else remediator.propose_verdict(verdict, run_id=run_id, proposer=proposer)
        except (PolicyRefused, ProposalRefused) as exc:  # audited by the remediator as "refused"
            return {"remediation": {**desk, "status": "refused", "reason": exc.message,
                                    "command": action.command()}}
        again = f"asked again: {desk.get('reason')}" if desk.get("status") == "stale" else None
        return {"remediation": {**desk, "status": "pending", "approval_id": record.id, "command": record.command,
                                "asked": int(desk.get("asked", 0)) + 1, "reason": None, "note": again}}

    def approval(state: AgentState) -> dict[str, Any]:
        desk = dict(state["remediation"] or {})
        record = remediator.get(desk["approval_id"])
        note = None
        if record.status == "pending":
            answer = interrupt(approval_request(record))
            try:
                record = remediator.decide(record.id, answer)
            except ApprovalStateError as exc:  # expired, or decided elsewhere meanwhile: the refusal is audited
                log.info("approval %s: %s", record.id, exc.message)
                record, note = remediator.get(record.id), exc.message
        if record.status == "pending" and record.first_approver:  # one of two: ask the second approver
            return {"remediation": {**desk, "status": "awaiting_second", "approver": record.first_approver,
                                    "reason": f"approved by {record.first_approver}; a second approver must approve"}}
        if record.status == "approved":
            reason = None
        elif record.status == "rejected":
            reason = record.reason
        else:
            reason = note or record.reason or f"approval {record.id} is {record.status}"
        return {"remediation": {**desk, "status": record.status, "approver": record.approver, "reason": reason}}

    def execute(state: AgentState) -> dict[str, Any]:
        desk = dict(state["remediation"] or {})
        try:
            result = remediator.execute(desk["approval_id"])
        except WorldChanged as exc:
            return {"remediation": {**desk, "status": "stale", "reason": exc.message}}
        except ApprovalStateError as exc:  # expired, or executed by another process
            current = remediator.get(desk["approval_id"])
            if current.status in ("executing", "executed"):  # another process won: it verifies, not this one
                remediator.audit.record("lost_race", actor="executor", approval_id=current.id, run_id=current.run_id,
                                        action=current.action.model_dump(), command=current.command,
                                        outcome=f"not executed here: another process claimed it ({current.status})")
                return {"remediation": {**desk, "status": "lost_race", "reason": exc.message}}
            return {"remediation": {**desk, "status": current.status, "reason": exc.message}}
        except (ExecutionFailed, PolicyRefused) as exc:
            return {"remediation": {**desk, "status": "failed", "reason": exc.message}}
        return {"remediation": {**desk, "status": "executed", "reason": None, "execution": {
            "summary": result.summary(), "applied": result.applied.summary, "dry_run": result.dry_run.summary,
            "approver": result.approval.approver, "inverse_command": result.inverse_command}}}

    def verify(state: AgentState) -> dict[str, Any]:
        desk = dict(state["remediation"] or {})
        report = remediator.verify(desk["approval_id"], sources, timeout_s=verify_timeout_s,
                                   interval_s=verify_interval_s)
        return {"remediation": {**desk, "status": "recovered" if report.recovered else "not_recovered",
                                "verification": report.model_dump(mode="json", exclude={"observations"})}}

    def after_propose(state: AgentState) -> Literal["approval", "__end__"]:
        return "approval" if (state.get("remediation") or {}).get("status") == "pending" else "__end__"

    def after_approval(state: AgentState) -> Literal["approval", "execute", "__end__"]:
        status = (state.get("remediation") or {}).get("status")
        return "execute" if status == "approved" else "approval" if status == "awaiting_second" else "__end__"

    def after_execute(state: AgentState) -> Literal["verify", "propose", "__end__"]:
        desk = state.get("remediation") or {}
        if desk.get("status") == "executed":
            return "verify"
        if desk.get("status") == "stale" and int(desk.get("asked", 0)) < MAX_ASKS:
            return "propose"  # the world moved since the approval: propose afresh and ask again
        return "__end__"

    def extend(graph: StateGraph) -> str:
        graph.add_node("propose", propose)
        graph.add_node("approval", approval)
        graph.add_node("execute", execute)
        graph.add_node("verify", verify)
        graph.add_conditional_edges("propose", after_propose)
        graph.add_conditional_edges("approval", after_approval)
        graph.add_conditional_edges("execute", after_execute)
        graph.add_edge("verify", END)
        return "propose"

    return extend


def check_answer(remediator: Remediator, record: ApprovalRecord, answer: Any) -> None:
    """Raise, before a paused graph is resumed, what `decide` would refuse whatever the record's state: an
    unreadable answer, an approver the policy refuses, a rejection without a reason. LangGraph keeps the resume
    value of a node that failed and hands it to the next resume, so a bad answer must never reach the graph.
    Each refusal is raised by the remediator itself (audited as usual); nothing is decided here."""
    try:
        decision = Decision.model_validate(answer)
    except ValidationError:
        remediator.decide(record.id, answer)  # raises the readable error
        raise
    if decision.decision == "approve":
        try:
            refused = remediator.approval_refusal(record, decision.approver, authenticated=decision.authenticated)
        except ValueError:
            refused = "not a usable name"
        if refused:
            remediator.approve(record.id, decision.approver, authenticated=decision.authenticated)  # raises
        return
    try:
        valid_person(decision.approver)
    except ValueError:
        remediator.reject(record.id, decision.approver, decision.reason or "")  # raises
        raise
    if not (decision.reason or "").strip():
        remediator.reject(record.id, decision.approver, "")  # raises: a rejection needs a reason


# ---- what a resumed run is rebuilt from ----------------------------------------------------------------------

def scenario_spec(scenario: str) -> str:
    """How a run records its scenario: an existing folder or file as an absolute path, else the id as given."""
    path = Path(scenario).expanduser()
    try:
        exists = path.exists()
    except (OSError, ValueError):  # a name longer than the file system allows, a NUL byte: not a path, an id
        exists = False
    return str(path.resolve()) if exists else scenario


def open_sources(spec: str, context: str | None = None) -> Sources:
    """The live sources (`spec` "live"; `context` picks the kubeconfig context, else KUBE_CONTEXT), or a replay."""
    if spec == LIVE:
        from tools.live import live_sources
        from tools.settings import Settings

        settings = Settings(kube_context=context) if context else Settings()
        sources = live_sources(settings)
        sources.extras["settings"] = settings  # the remediator writes to the cluster these settings read
        return sources
    from tools.replay import replay_sources

    return replay_sources(spec)


def open_remediator(sources: Sources, *, data: str | Path | None = None) -> Remediator:
    """Acting on the replayed world behind `sources`, or on the live cluster those sources read: the same
    kubeconfig file and context, resolved by the same function."""
    if "world" in sources.extras:
        return Remediator.for_replay(sources, data=data)
    from agent.remediation.kube_actuator import KubeActuator
    from tools.settings import Settings

    settings = sources.extras.get("settings")
    return Remediator(KubeActuator.from_settings(settings if isinstance(settings, Settings) else Settings()),
                      data=data)


def resume_model(spec: str) -> ChatModel:
    """The model to rebuild a paused graph with. The resumed steps make no model calls, so when the recorded
    model cannot be opened here (no API key, or the embedded model, which is not worth loading) the
    deterministic playbook stands in."""
    from agent.baseline.policy import PlaybookPolicy
    from agent.llm.resolve import resolve_model

    if spec not in ("", "local"):
        try:
            return resolve_model(spec)
        except ModelError as exc:
            log.info("resuming with the playbook: the recorded model %s is unavailable (%s)", spec, exc)
    return PlaybookPolicy()


def checkpointer_target(data: str | Path | None = None) -> str:
    """`$SRE_AGENT_CHECKPOINTER` (a path, sqlite:///path or postgresql://…), else checkpoints.sqlite in the data dir."""
    configured = os.environ.get(CHECKPOINTER_ENV)
    if configured:
        return configured
    return str((Path(data) if data is not None else data_dir()) / "checkpoints.sqlite")
