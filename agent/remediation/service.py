"""The remediation desk: propose → approve/reject → execute → verify, with policy and audit at every step.

This is what the graph and the CLI call. A graph wires it as: a `propose` node (stores the approval id in the
state), an `approval` node that calls `interrupt(approval_request(record))` and, on resume, `decide(...)`
with the human's answer, then `execute` and `verify`. Keep `propose` out of the interrupting node: LangGraph
re-runs a node from its start when it resumes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agent.remediation.actuator import Actuator, inverse_action
from agent.remediation.approvals import ApprovalRecord, ApprovalStore
from agent.remediation.audit import AuditRecord
from agent.remediation.errors import ApprovalStateError, PolicyRefused, ProposalRefused, RemediationError
from agent.remediation.executor import ExecutionResult, Executor
from agent.remediation.models import QueueRef, TargetState, VerifyTarget
from agent.remediation.paths import data_dir
from agent.remediation.policy import Policy, PolicyDecision, load_policy, valid_person
from agent.remediation.replay_actuator import ReplayActuator, WorldWaiter, world_of
from agent.remediation.verify import SleepWaiter, VerificationReport, Waiter, verify
from agent.verdict import Action, Verdict
from tools.timerange import Clock, system_clock
from tools.toolkit import Sources

DEFAULT_PROPOSER = "sre-agent"


class Remediator:
    def __init__(self, actuator: Actuator, *, policy: Policy | None = None, data: str | Path | None = None,
                 store: ApprovalStore | None = None, clock: Clock = system_clock,
                 waiter: Waiter | None = None) -> None:
        folder = Path(data) if data is not None else data_dir()
        self.policy = policy or load_policy()
        self.store = store or ApprovalStore(folder / "approvals.sqlite", clock=clock)
        self.audit = self.store.audit
        self._actuator = actuator
        self._executor = Executor(self.store, actuator, self.policy)
        self.waiter: Waiter = waiter or SleepWaiter()

    @classmethod
    def for_replay(cls, sources: Sources, **kwargs: Any) -> Remediator:
        """Acting on the replayed world behind `sources`; verification advances its simulated clock."""
        world = world_of(sources)
        return cls(ReplayActuator(world), waiter=kwargs.pop("waiter", WorldWaiter(world)), **kwargs)

    # ---- propose ----------------------------------------------------------------------------------------

    def propose(self, action: Action, *, run_id: str, evidence_summary: str = "", expected_effect: str | None = None,
                verify_target: VerifyTarget | None = None, proposer: str = DEFAULT_PROPOSER) -> ApprovalRecord:
        """Check the policy, snapshot the target, dry-run, and store a pending approval. Changes nothing."""
        decision = self.policy.check(action)
        if not decision.allowed:
            self.audit.record("refused", actor=proposer, run_id=run_id, action=action.model_dump(),
                              command=action.command(), outcome=f"proposal refused: {decision}",
                              detail={"rule": decision.rule, "reason": decision.reason})
            raise PolicyRefused(f"{action.command() or action.action} refused {decision.rule}: {decision.reason}")
        snapshot = self._actuator.current_state(action)
        dry = self._actuator.dry_run(action) if snapshot.exists else None
        if dry is None or not dry.ok:
            why = dry.summary if dry else f"{action.target_ref()} does not exist"
            self.audit.record("refused", actor=proposer, run_id=run_id, action=action.model_dump(),
                              command=action.command(), outcome=f"proposal refused: dry run failed: {why}",
                              detail={"snapshot": snapshot.model_dump(), "dry_run": dry.model_dump() if dry else None})
            raise ProposalRefused(f"{action.command()} cannot be proposed: {why}")
        target = verify_target or VerifyTarget.of(action)
        effect = expected_effect or describe_effect(action, snapshot, target)
        return self.store.create(run_id=run_id, action=action, evidence_summary=evidence_summary,
                                 expected_effect=effect, snapshot=snapshot, dry_run=dry, verify=target,
                                 ttl=self.policy.approval.expires_after, proposer=proposer,
                                 approvers=self.policy.approvers_for(action), policy=self.policy.identity(),
                                 cluster=self._actuator.label, needs=self.policy.approvals_needed(action),
                                 identity=self.policy.approval.identity)

    def propose_verdict(self, verdict: Verdict, *, run_id: str, proposer: str = DEFAULT_PROPOSER) -> ApprovalRecord:
        """Propose the verdict's remediation, with its evidence summary and the queue it relates to."""
        remediation = verdict.remediation
        if remediation is None or remediation.action.action == "none":
            raise RemediationError("the verdict proposes no action: there is nothing to approve")
        target = verify_target_for(verdict)
        effect = describe_effect(remediation.action, self._actuator.current_state(remediation.action), target)
        if remediation.verification:
            effect += "; check: " + "; ".join(remediation.verification)
        return self.propose(remediation.action, run_id=run_id, evidence_summary=evidence_summary(verdict),
                            expected_effect=effect, verify_target=target, proposer=proposer)

    # ---- decide -----------------------------------------------------------------------------------------

    def approval_refusal(self, record: ApprovalRecord, approver: str, *, authenticated: bool = False) -> str | None:
        """Why `approver` may not approve `record`, or None: named, authenticated where the proposal's policy
        demands it, allowed by this process's policy and by the proposal's, not the proposer, and not the first
        approver again when two are needed."""
        allowed = self.policy.may_approve(approver)
        if not allowed.allowed:
            return f"{approver!r} may not approve {record.describe()}: {allowed.reason}"
        name = valid_person(approver)
        if record.identity == "authenticated" and not authenticated:
            return (f"{record.describe()} needs an authenticated approver (the policy it was proposed under says "
                    "approval.identity: authenticated); approve it through the server, where --as cannot be declared")
        proposed_under = proposal_rule(record, name)
        if not proposed_under.allowed:
            return f"{name!r} may not approve {record.describe()}: {proposed_under.reason} ({proposed_under.rule})"
        if name.casefold() == record.proposer.casefold():
            return f"{name} proposed {record.describe()} and cannot also approve it"
        if record.first_approver and name.casefold() == record.first_approver.casefold():
            return f"{name} already approved {record.describe()}; a second, different approver must approve it"
        return None

    def approve(self, approval_id: str, approver: str, *, authenticated: bool = False) -> ApprovalRecord:
        record = self.store.get(approval_id)
        refusal = self.approval_refusal(record, approver, authenticated=authenticated)
        if refusal:
            self._refused(record, str(approver), f"approval refused: {refusal}")
            raise PolicyRefused(refusal)
        name = valid_person(approver)
        try:
            return self.store.approve(record.id, name)
        except ApprovalStateError as exc:
            self._refused(record, name, exc.message)
            raise

    def reject(self, approval_id: str, approver: str, reason: str) -> ApprovalRecord:
        record = self.store.get(approval_id)
        try:
            name = valid_person(approver)
        except ValueError as exc:
            raise RemediationError(f"cannot reject {record.describe()}: {exc}") from None
        if not reason or not reason.strip():
            raise RemediationError(f"rejecting {record.describe()} needs a reason")
        try:
            return self.store.reject(record.id, name, reason.strip())
        except ApprovalStateError as exc:
            self._refused(record, name, exc.message)
            raise

    def _refused(self, record: ApprovalRecord, actor: str, why: str) -> None:
        self.audit.record("refused", actor=actor, approval_id=record.id, run_id=record.run_id,
                          action=record.action.model_dump(), command=record.command, outcome=f"refused: {why}")

    def decide(self, approval_id: str, answer: Any) -> ApprovalRecord:
        """Apply a human's answer (the value a graph is resumed with) to a pending approval."""
        try:
            decision = Decision.model_validate(answer)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors())
            raise RemediationError(f"cannot read the decision for approval {approval_id}: {problems}",
                                   hints=['answer {"decision": "approve", "approver": "<you>"} or '
                                          '{"decision": "reject", "approver": "<you>", "reason": "..."}']) from None
        if decision.decision == "approve":
            return self.approve(approval_id, decision.approver, authenticated=decision.authenticated)
        return self.reject(approval_id, decision.approver, decision.reason or "")

    # ---- act --------------------------------------------------------------------------------------------

    def execute(self, approval_id: str) -> ExecutionResult:
        """Run an approved, unexpired approval once. Raises a RemediationError saying why nothing ran."""
        return self._executor.execute(approval_id)

    def verify(self, approval_id: str, sources: Sources, *, timeout_s: float = 300, interval_s: float = 5,
               target: VerifyTarget | None = None, actor: str = "verifier") -> VerificationReport:
        """Watch an executed (or abandoned) approval's target recover (or not), reading only `sources`, and audit
        the outcome. Any time later, too: an execution whose process died is verified by looking again."""
        record = self.store.get(approval_id)
        abandoned = record.status == "failed" and (record.reason or "").startswith("abandoned by ")
        if record.status != "executed" and not abandoned:
            raise ApprovalStateError(f"cannot verify {record.describe()}: it is {record.status}; only an executed "
                                     "or abandoned execution changed (or may have changed) the target")
        watch = target or record.verify or VerifyTarget.of(record.action)
        before = (record.result.before if record.result and record.result.before else None) or record.snapshot
        rollback = inverse_action(record.action, before)
        report = verify(sources, watch, waiter=self.waiter, timeout_s=timeout_s, interval_s=interval_s,
                        rollback=rollback)
        self.audit.record("verified", actor=actor, approval_id=record.id, run_id=record.run_id,
                          action=record.action.model_dump(), command=record.command,
                          outcome=("recovered: " if report.recovered else "") + report.summary,
                          detail={"recovered": report.recovered, "elapsed_s": report.elapsed_s,
                                  "findings": report.findings, "next_steps": report.next_steps,
                                  "rollback_command": report.rollback_command,
                                  "last": report.observations[-1].model_dump(mode="json")})
        return report

    # ---- read -------------------------------------------------------------------------------------------

    def get(self, approval_id: str) -> ApprovalRecord:
        return self.store.get(approval_id)

    def pending(self) -> list[ApprovalRecord]:
        """Pending approvals, after marking overdue ones expired."""
        self.store.expire_overdue()
        return self.store.list(status="pending")

    def history(self, *, approval_id: str | None = None, run_id: str | None = None) -> list[AuditRecord]:
        return self.audit.read(approval_id=approval_id, run_id=run_id)


def proposal_rule(record: ApprovalRecord, approver: str) -> PolicyDecision:
    """Who may approve is decided by the policy the action was proposed under, whichever process approves."""
    rule = f"approval.approvers of the proposal's policy {record.policy or '(unrecorded)'}"
    if not record.approvers:
        return PolicyDecision(allowed=True, rule=rule, reason="any named person may approve")
    listed = {name.casefold() for name in record.approvers}
    if approver.casefold() in listed:
        return PolicyDecision(allowed=True, rule=rule, reason=f"{approver} is a listed approver")
    return PolicyDecision(allowed=False, rule=rule,
                          reason=f"{approver} is not a listed approver ({', '.join(record.approvers)})")


class Decision(BaseModel):
    """A human's answer to an approval request."""

    decision: Literal["approve", "reject"]
    approver: str = Field(min_length=1)
    reason: str | None = None
    authenticated: bool = Field(False, description="set only by a front door that authenticated the approver "
                                                   "(the server); never by the CLI, where --as is declared")


def approval_request(record: ApprovalRecord) -> dict[str, Any]:
    """The JSON-serializable payload to hand to LangGraph's `interrupt()` for a human to decide on."""
    return {
        "approval_id": record.id, "run_id": record.run_id, "command": record.command,
        "action": record.action.model_dump(), "evidence_summary": record.evidence_summary,
        "expected_effect": record.expected_effect,
        "dry_run": record.dry_run.summary if record.dry_run else None,
        "requested_at": record.requested_at.isoformat(), "expires_at": record.expires_at.isoformat(),
        "answer_with": {"decision": "approve | reject", "approver": "<your handle>", "reason": "<if rejecting>"},
    }


def describe_effect(action: Action, before: TargetState, target: VerifyTarget | None) -> str:
    ref = f"{action.resource()} in {action.namespace}"
    if action.action == "scale":
        effect = f"{ref}: desired replicas {before.replicas} → {action.replicas}; expect {action.replicas} available"
    elif action.action == "rollout_restart":
        effect = f"{ref}: every pod replaced (revision {before.revision} → next); expect all replicas available"
    else:
        effect = f"{ref}: template back to the revision before {before.revision}; expect all replicas available"
    if target and target.queue:
        effect += (f"; queue {target.queue.name}: at least 1 consumer and the backlog draining to "
                   f"≤ {target.queue.baseline}")
    return effect


def evidence_summary(verdict: Verdict, limit: int = 6) -> str:
    claims = [f"[{e.signal}] {e.claim}" for e in verdict.evidence[:limit]]
    return " | ".join([verdict.summary, *claims])


_QUEUE_SIGNALS = ("queue_consumers", "queue_depth")


def verify_target_for(verdict: Verdict) -> VerifyTarget | None:
    """The deployment the verdict's action touches, and the queue its evidence ties to it (if any)."""
    if verdict.remediation is None or verdict.remediation.action.action == "none":
        return None
    action = verdict.remediation.action
    calls = {call.id: call for call in (verdict.trace.tool_calls if verdict.trace else [])}
    queue: QueueRef | None = None
    for evidence in verdict.evidence:
        if evidence.signal not in _QUEUE_SIGNALS:
            continue
        call = calls.get(evidence.tool_call_id)
        name = (call.args.get("queue") if call else None) or evidence.observed.get("queue")
        if isinstance(name, str) and name:
            vhost = (call.args.get("vhost") if call else None) or evidence.observed.get("vhost") or "/"
            queue = QueueRef(vhost=str(vhost), name=name)
            break
    component = verdict.root_cause.component if verdict.root_cause else None
    if queue is None and component is not None and component.kind.lower() == "queue":
        queue = QueueRef(vhost=component.namespace or "/", name=component.name)
    return VerifyTarget.of(action, queue)
