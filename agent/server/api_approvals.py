"""GET /approvals[/{id}], POST /approvals/{id}/approve and /reject: only an authenticated approver may answer.

The approver is the authenticated identity (a personal token or the trusted proxy's header), never a body field;
the answer is marked `authenticated`, and the policy's approver list still applies (the Remediator checks it).
Answering resumes the paused run in the background (`agent.run.resume_approval`: execute and verify after an
approval); the response returns the approval record once the decision is recorded.
"""

from __future__ import annotations

import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.remediation.approvals import ApprovalRecord, ApprovalStatus
from agent.remediation.errors import ApprovalNotFound, ApprovalStateError, PolicyRefused, RemediationError
from agent.server.context import ApproverDep, Server, ServerDep
from agent.server.runner import describe

router = APIRouter(tags=["approvals"])
POLL_S = 0.05


class RejectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(min_length=1, max_length=2000, description="why not: recorded in the audit log")

    @field_validator("reason")
    @classmethod
    def _said(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("a rejection needs a reason")
        return value.strip()


class DecisionResponse(BaseModel):
    approval: ApprovalRecord
    decided_by: str
    run: str = Field(description="finished (the resumed run ended: see remediation) or resuming (executing or "
                                 "verifying in the background: poll the approval or its investigation)")
    remediation: dict[str, Any] | None = Field(None, description="where the run ended, when it has")


def _record(here: Server, approval_id: str) -> ApprovalRecord:
    try:
        return here.approvals.get(approval_id)
    except ApprovalNotFound as exc:
        raise HTTPException(404, detail=exc.message) from None


@router.get("/approvals", response_model=list[ApprovalRecord])
def list_approvals(here: ServerDep, status: ApprovalStatus = "pending") -> list[ApprovalRecord]:
    """Approvals in `status` (default: pending, after marking overdue ones expired)."""
    here.approvals.expire_overdue()
    return here.approvals.list(status=status)


@router.get("/approvals/{approval_id}", response_model=ApprovalRecord)
def get_approval(approval_id: str, here: ServerDep) -> ApprovalRecord:
    return _record(here, approval_id)


def _decide(here: Server, approval_id: str, answer: dict[str, Any]) -> DecisionResponse:
    record = _record(here, approval_id)
    before = (record.status, record.first_approver)
    future: Future[Any] = here.runner.decide(record.id, answer)
    deadline = time.monotonic() + here.settings.approval_wait_s
    while True:
        try:
            result = future.result(timeout=POLL_S)
        except FutureTimeout:
            current = here.approvals.get(record.id)
            if (current.status, current.first_approver) != before or time.monotonic() > deadline:
                return DecisionResponse(approval=current, decided_by=answer["approver"], run="resuming")
            continue
        except PolicyRefused as exc:
            raise HTTPException(403, detail=exc.message) from None
        except ApprovalNotFound as exc:
            raise HTTPException(404, detail=exc.message) from None
        except (ApprovalStateError, RemediationError) as exc:
            raise HTTPException(409, detail=exc.message) from None
        except Exception as exc:  # logged by the runner; the client gets one redacted line
            raise HTTPException(500, detail=describe(exc)) from None
        return DecisionResponse(approval=here.approvals.get(record.id), decided_by=answer["approver"],
                                run="finished", remediation=result.remediation)


@router.post("/approvals/{approval_id}/approve", response_model=DecisionResponse)
def approve(approval_id: str, here: ServerDep, who: ApproverDep) -> DecisionResponse:
    """Approve as the authenticated person: 401 without credentials, 403 when the policy does not let them."""
    return _decide(here, approval_id, {"decision": "approve", "approver": who.name, "authenticated": True})


@router.post("/approvals/{approval_id}/reject", response_model=DecisionResponse)
def reject(approval_id: str, body: RejectRequest, here: ServerDep, who: ApproverDep) -> DecisionResponse:
    """Reject as the authenticated person, with a reason."""
    return _decide(here, approval_id, {"decision": "reject", "approver": who.name, "reason": body.reason,
                                       "authenticated": True})
