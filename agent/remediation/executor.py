"""Runs an approved action: the only code that holds an actuator and calls `apply`.

`execute(approval_id)` claims the approval atomically (approved → executing; exactly one caller wins), then
re-checks the policy and the approver, stops if the target changed since the proposal, dry-runs, applies,
and closes the record (executed / failed / stale). Every step is audited.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from agent.remediation.actuator import Actuator, inverse_action
from agent.remediation.approvals import ApprovalRecord, ApprovalStore, ExecutionClaim
from agent.remediation.audit import AuditEvent
from agent.remediation.errors import ExecutionFailed, PolicyRefused, RemediationError, WorldChanged
from agent.remediation.models import ActuatorResult, TargetState
from agent.remediation.policy import Policy
from agent.verdict import Action

logger = logging.getLogger(__name__)


class ExecutionResult(BaseModel):
    approval: ApprovalRecord
    before: TargetState
    dry_run: ActuatorResult
    applied: ActuatorResult
    inverse: Action | None
    inverse_command: str | None

    def summary(self) -> str:
        undo = f"; to undo: {self.inverse_command}" if self.inverse_command else ""
        return f"{self.applied.summary} (approval {self.approval.id}, approved by {self.approval.approver}){undo}"


class Executor:
    def __init__(self, store: ApprovalStore, actuator: Actuator, policy: Policy) -> None:
        self._store = store
        self._actuator = actuator
        self._policy = policy

    def execute(self, approval_id: str) -> ExecutionResult:
        """Run the approved action of `approval_id`, or raise a RemediationError saying why nothing ran."""
        try:
            claim = self._store.claim(approval_id)
        except RemediationError as exc:
            self._audit_refusal(approval_id, exc.message)
            raise
        try:
            return self._run(claim)
        except Exception as exc:  # never leave a record executing: close it as failed, with the reason
            expected = isinstance(exc, RemediationError)
            if self._store.get(claim.record.id).status == "executing":
                if not expected:
                    logger.exception("execution of approval %s failed unexpectedly", claim.record.id)
                reason = exc.message if isinstance(exc, RemediationError) else (
                    f"unexpected error: {type(exc).__name__}: {exc}")
                self._close(claim, "failed", "failed", reason)
            if expected:
                raise
            raise ExecutionFailed(f"{claim.record.describe()} failed: {type(exc).__name__}: {exc}") from exc

    def _run(self, claim: ExecutionClaim) -> ExecutionResult:
        record, action = claim.record, claim.action
        if record.cluster != self._actuator.label:
            why = (f"it was approved for {record.cluster or 'an unrecorded cluster'}, and this process would write "
                   f"to {self._actuator.label}")
            self._close(claim, "failed", "refused", f"wrong cluster: {why}")
            raise PolicyRefused(f"{record.describe()} not executed: {why}",
                                hints=["run the execution with the same --context / KUBECONFIG as the investigation"])
        approver = self._policy.may_approve(record.approver or "")
        if not approver.allowed:
            self._close(claim, "failed", "refused", f"approver no longer allowed: {approver}")
            raise PolicyRefused(f"{record.describe()} not executed: {approver}")
        decision = self._policy.check(action)
        if not decision.allowed:
            self._close(claim, "failed", "refused", f"policy refused at execution: {decision}")
            raise PolicyRefused(f"{record.describe()} not executed: {decision}")
        now = self._actuator.current_state(action)
        changes = now.changes_since(record.snapshot, action)
        if changes:
            reason = "; ".join(changes)
            self._close(claim, "stale", "stale", reason, {"snapshot": record.snapshot.model_dump(),
                                                         "current": now.model_dump()})
            raise WorldChanged(f"{record.describe()} not executed: the target changed since it was proposed "
                               f"({reason})", hints=["look at the target again and propose a fresh action"])
        dry = self._actuator.dry_run(action)
        self._audit(claim, "dry_run", dry.summary, {"ok": dry.ok, "result": dry.model_dump()})
        if not dry.ok:
            self._close(claim, "failed", "failed", f"dry run refused: {dry.summary}", result=dry)
            raise ExecutionFailed(f"{record.describe()} not executed: dry run refused: {dry.summary}")
        applied = self._actuator.apply(claim)
        if not applied.ok:
            self._close(claim, "failed", "failed", applied.summary, result=applied)
            raise ExecutionFailed(f"{record.describe()} failed: {applied.summary}")
        inverse = inverse_action(action, now)
        inverse_command = inverse.command() if inverse else None
        closed = self._close(claim, "executed", "executed", None, {
            "dry_run": dry.model_dump(), "result": applied.model_dump(), "before": now.model_dump(),
            "inverse": inverse.model_dump() if inverse else None, "inverse_command": inverse_command,
        }, result=applied, outcome=applied.summary)
        return ExecutionResult(approval=closed, before=now, dry_run=dry, applied=applied, inverse=inverse,
                               inverse_command=inverse_command)

    def _close(self, claim: ExecutionClaim, status: Any, event: AuditEvent, reason: str | None,
               detail: dict[str, Any] | None = None, *, result: ActuatorResult | None = None,
               outcome: str | None = None) -> ApprovalRecord:
        # The audit record first: a process killed between the two leaves an `executing` record whose outcome the
        # audit already holds, and `abandon` closes it from there. The other order loses the record of a change.
        self._audit(claim, event, outcome or reason or status, {"reason": reason, **(detail or {})})
        return self._store.finish(claim, status, reason=reason, result=result)

    def _audit(self, claim: ExecutionClaim, event: AuditEvent, outcome: str, detail: dict[str, Any]) -> None:
        record = claim.record
        self._store.audit.record(event, actor=record.approver or "unknown", outcome=outcome, approval_id=record.id,
                                 run_id=record.run_id, action=record.action.model_dump(), command=record.command,
                                 detail={"actuator": self._actuator.label, **detail})

    def _audit_refusal(self, approval_id: str, message: str) -> None:
        try:
            record: ApprovalRecord | None = self._store.get(approval_id)
        except RemediationError:
            record = None
        self._store.audit.record(
            "refused", actor="executor", outcome=f"execution refused: {message}", approval_id=approval_id,
            run_id=record.run_id if record else None, action=record.action.model_dump() if record else None,
            command=record.command if record else None, detail={"status": record.status if record else "unknown"})
