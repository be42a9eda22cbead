"""Durable approvals in the store's database (`database.py`: SQLite alone, PostgreSQL shared). Every state change
is one conditional UPDATE, so races have exactly one winner, within one process or across replicas.

    pending ──approve──▶ approved ──claim──▶ executing ──▶ executed | failed | stale
       │                    │
       ├──reject──▶ rejected└──(past expires_at)──▶ expired
       └──(past expires_at)──▶ expired

`claim` is the only way to obtain an `ExecutionClaim`, and an actuator changes nothing without one. Every
transition is appended to the audit log after it commits.
"""

from __future__ import annotations

import builtins
import json
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field
from sqlalchemy import Connection, RowMapping, insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from agent.remediation.audit import AuditEvent, AuditLog, audit_for
from agent.remediation.binding import approval_seal, proposal_digest, same
from agent.remediation.database import describe, engine_for, store_url
from agent.remediation.errors import ApprovalExpired, ApprovalNotFound, ApprovalStateError, StoreError
from agent.remediation.models import ActuatorResult, TargetState, VerifyTarget
from agent.remediation.paths import data_dir
from agent.remediation.tables import approvals as table
from agent.verdict import Action
from tools.redaction import redact
from tools.timerange import Clock, system_clock

ApprovalStatus = Literal["pending", "approved", "executing", "executed", "rejected", "expired", "stale", "failed"]
FINAL: tuple[ApprovalStatus, ...] = ("executed", "rejected", "expired", "stale", "failed")
ABANDON_AFTER = timedelta(minutes=15)  # longer than an execution plus its verification can take
CLOSING_EVENTS: dict[str, Literal["executed", "failed", "stale"]] = {
    "executed": "executed", "failed": "failed", "stale": "stale"}  # audit event → the status it closes with

class ApprovalRecord(BaseModel):
    id: str
    run_id: str
    action: Action
    command: str = Field(description="the kubectl line rendered from the action, for humans; never executed")
    evidence_summary: str
    expected_effect: str
    dry_run: ActuatorResult | None = Field(None, description="the dry run made when the action was proposed")
    snapshot: TargetState = Field(description="the target when proposed; execution stops if it has changed")
    verify: VerifyTarget | None = None
    proposer: str
    requested_at: datetime
    expires_at: datetime
    status: ApprovalStatus
    approver: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    executed_at: datetime | None = None
    result: ActuatorResult | None = None
    approvers: list[str] = Field(default_factory=list, description="who may approve, from the proposal's policy")
    policy: str | None = Field(None, description="the policy the proposal was made under: source and digest")
    cluster: str | None = Field(None, description="the cluster it was proposed on (context and API server); only "
                                                  "an actuator for that cluster may execute it")
    needs: int = Field(1, description="approvals needed: 2 for an action the policy marks high-risk")
    identity: str = Field("declared", description="declared (a named person) or authenticated (a front door's)")
    first_approver: str | None = Field(None, description="of two needed approvals, the first")
    first_decided_at: datetime | None = None
    digest: str | None = Field(None, description="binds the proposal; None on records older than binding")
    seal: str | None = Field(None, description="binds the approval to the digest and the approver")

    def bound_fields(self) -> dict[str, Any]:
        """What an approver agrees to; any change to these after proposal voids the approval."""
        return {"id": self.id, "run_id": self.run_id, "action": self.action.model_dump(), "command": self.command,
                "snapshot": self.snapshot.model_dump(), "verify": self._bound_verify(),
                "proposer": self.proposer, "requested_at": _ts(self.requested_at),
                "expires_at": _ts(self.expires_at), "approvers": self.approvers, "policy": self.policy,
                "cluster": self.cluster, "needs": self.needs, "identity": self.identity}

    def _bound_verify(self) -> dict[str, Any] | None:
        if self.verify is None:
            return None
        # Records proposed before StatefulSets could be targets have no kind: their digest covers it only when set.
        return self.verify.model_dump(exclude={"kind"} if self.verify.kind == "Deployment" else None)

    def binding_problem(self) -> str | None:
        """Why this record cannot be trusted as approved, or None."""
        if self.digest is None:
            return "it was proposed before approvals were bound to their action; propose it again"
        if not same(self.digest, proposal_digest(self.bound_fields())):
            return "the proposal was changed after it was made (action, target, snapshot or approvers)"
        if self.status in ("approved", "executing") and not (
                self.approver and self.decided_at
                and same(self.seal, approval_seal(self.digest, self._approvers(), _ts(self.decided_at)))):
            return "its approval is not the one recorded when it was approved (status or approver edited)"
        return None

    def _approvers(self) -> str:
        return f"{self.first_approver} + {self.approver}" if self.first_approver else str(self.approver)

    def expired(self, now: datetime) -> bool:
        return now >= self.expires_at

    def describe(self) -> str:
        return f"approval {self.id} ({self.command}, run {self.run_id})"


_CLAIM_TOKEN = object()


class ExecutionClaim:
    """Proof that one approved, unexpired record was atomically moved to `executing` by this process."""

    def __init__(self, record: ApprovalRecord, claimed_at: datetime, *, _token: object = None) -> None:
        if _token is not _CLAIM_TOKEN:
            raise TypeError("an ExecutionClaim is issued only by ApprovalStore.claim")
        if record.status != "executing":
            raise TypeError(f"cannot claim a record in status {record.status}")
        self.record = record
        self.claimed_at = claimed_at

    @property
    def action(self) -> Action:
        return self.record.action


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _dump(model: BaseModel | None) -> str | None:
    return model.model_dump_json() if model is not None else None


class ApprovalStore:
    def __init__(self, path: str | Path | None = None, *, audit: AuditLog | None = None,
                 clock: Clock = system_clock, shared: bool = True) -> None:
        """`path`: the local SQLite file (default `<data>/approvals.sqlite`), unless SRE_AGENT_DATABASE_URL names
        the shared database and `shared` (False: a scratch store, such as an eval's, that never touches the team's
        database). The audit log lives beside the approvals: in the same database when it is shared."""
        self.path = Path(path) if path is not None else data_dir() / "approvals.sqlite"
        self.url = store_url(self.path, shared=shared)
        self.where = describe(self.url)
        self.engine = engine_for(self.url)
        self.audit = audit if audit is not None else audit_for(self.url, self.engine, self.path.parent)
        self.clock = clock

    # ---- plumbing ---------------------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except IntegrityError:
            raise
        except SQLAlchemyError as exc:
            original = getattr(exc, "orig", None)
            reason = redact(str(original if original is not None else exc).splitlines()[0])
            raise StoreError(f"approvals database {self.where}: {reason}",
                             hints=["is this an approvals database? set SRE_AGENT_DATA to another folder"]
                             ) from None

    @staticmethod
    def _record(row: RowMapping) -> ApprovalRecord:
        data: dict[str, Any] = dict(row)
        return ApprovalRecord.model_validate({
            **data,
            "action": Action.model_validate_json(data["action"]),
            "dry_run": ActuatorResult.model_validate_json(data["dry_run"]) if data["dry_run"] else None,
            "snapshot": TargetState.model_validate_json(data["snapshot"]),
            "verify": VerifyTarget.model_validate_json(data["verify"]) if data["verify"] else None,
            "result": ActuatorResult.model_validate_json(data["result"]) if data["result"] else None,
            "approvers": json.loads(data["approvers"]) if data.get("approvers") else [],
            "needs": int(data.get("needs") or 1), "identity": data.get("identity") or "declared",
        })

    def _audit(self, event: AuditEvent, record: ApprovalRecord, actor: str, outcome: str,
               detail: dict[str, Any] | None = None) -> None:
        self.audit.record(event, actor=actor, outcome=outcome, approval_id=record.id, run_id=record.run_id,
                          action=record.action.model_dump(), command=record.command, detail=detail)

    def _update(self, approval_id: str, assignments: dict[str, Any], where_status: tuple[str, ...],
                unexpired_at: datetime | None = None, unset: str | None = None) -> bool:
        statement = update(table).where(table.c.id == approval_id, table.c.status.in_(where_status))
        if unset is not None:  # a column only the first writer may set: exactly one wins a race
            statement = statement.where(table.c[unset].is_(None))
        if unexpired_at is not None:
            statement = statement.where(table.c.expires_at > _ts(unexpired_at))
        with self._connect() as conn:
            return conn.execute(statement.values(**assignments)).rowcount == 1

    # ---- reading ----------------------------------------------------------------------------------------

    def get(self, approval_id: str) -> ApprovalRecord:
        """One record by id (or by a unique prefix of at least 4 characters)."""
        key = (approval_id or "").strip()
        with self._connect() as conn:
            row = conn.execute(select(table).where(table.c.id == key)).mappings().first()
            if row is None and len(key) >= 4 and key.isalnum():
                rows = conn.execute(select(table).where(table.c.id.startswith(key)).limit(2)).mappings().all()
                row = rows[0] if len(rows) == 1 else None
        if row is None:
            pending = [r.id for r in self.list(status="pending")][:5]
            hint = f"pending approvals: {', '.join(pending)}" if pending else "there are no pending approvals"
            raise ApprovalNotFound(f"no approval with id {approval_id!r}", hints=[hint])
        return self._record(row)

    def list(self, *, status: ApprovalStatus | None = None, run_id: str | None = None) -> list[ApprovalRecord]:
        statement = select(table)
        if status is not None:
            statement = statement.where(table.c.status == status)
        if run_id is not None:
            statement = statement.where(table.c.run_id == run_id)
        with self._connect() as conn:
            rows = conn.execute(statement.order_by(table.c.requested_at, table.c.id)).mappings().all()
        return [self._record(row) for row in rows]

    # ---- transitions --------------------------------------------------------------------------------------

    def create(self, *, run_id: str, action: Action, evidence_summary: str, expected_effect: str,
               snapshot: TargetState, ttl: timedelta, proposer: str, dry_run: ActuatorResult | None = None,
               verify: VerifyTarget | None = None, approvers: builtins.list[str] | None = None,
               policy: str | None = None, cluster: str | None = None, needs: int = 1,
               identity: str = "declared") -> ApprovalRecord:
        command = action.command()
        if command is None:
            raise ApprovalStateError("an action of kind 'none' cannot be proposed: there is nothing to approve")
        now = self.clock()
        for _ in range(5):
            record = ApprovalRecord(
                id=secrets.token_hex(4), run_id=run_id, action=action, command=command,
                evidence_summary=evidence_summary, expected_effect=expected_effect, dry_run=dry_run,
                snapshot=snapshot, verify=verify, proposer=proposer, requested_at=now, expires_at=now + ttl,
                status="pending", approvers=approvers or [], policy=policy, cluster=cluster, needs=needs,
                identity=identity)
            record.digest = proposal_digest(record.bound_fields())
            try:
                with self._connect() as conn:
                    conn.execute(insert(table).values(
                        id=record.id, run_id=run_id, action=action.model_dump_json(), command=command,
                        evidence_summary=evidence_summary, expected_effect=expected_effect, dry_run=_dump(dry_run),
                        snapshot=snapshot.model_dump_json(), verify=_dump(verify), proposer=proposer,
                        requested_at=_ts(now), expires_at=_ts(record.expires_at), status="pending",
                        approvers=json.dumps(record.approvers), policy=policy, cluster=cluster, needs=str(needs),
                        identity=identity, digest=record.digest))
            except IntegrityError:
                continue  # the id was taken: draw another
            self._audit("proposed", record, proposer,
                        f"proposed {command}; awaiting approval until {_ts(record.expires_at)}",
                        {"evidence_summary": evidence_summary, "expected_effect": expected_effect,
                         "snapshot": snapshot.model_dump(), "dry_run": dry_run.model_dump() if dry_run else None})
            return record
        raise StoreError(f"{self.where}: could not allocate a unique approval id")  # pragma: no cover

    def approve(self, approval_id: str, approver: str) -> ApprovalRecord:
        record = self.get(approval_id)
        now = self.clock()
        if record.expired(now):
            self._refuse(record.id, "approve", now)
        problem = record.binding_problem()
        if problem:
            self._audit("refused", record, approver, f"approval refused: {problem}")
            raise ApprovalStateError(f"cannot approve {record.describe()}: {problem}")
        if record.needs > 1 and record.first_approver is None:  # the first of two: still pending
            if not self._update(record.id, {"first_approver": approver, "first_decided_at": _ts(now)}, ("pending",),
                                unexpired_at=now, unset="first_approver"):
                self._refuse(record.id, "approve", now)
            first = self.get(record.id)
            self._audit("approved", first, approver, f"first of two approvals, by {approver}; a second approver "
                                                     "must approve before it runs")
            return first
        signers = f"{record.first_approver} + {approver}" if record.first_approver else approver
        seal = approval_seal(record.digest or "", signers, _ts(now))
        won = self._update(record.id, {"status": "approved", "approver": approver, "decided_at": _ts(now),
                                       "seal": seal}, ("pending",), unexpired_at=now)
        if not won:
            self._refuse(record.id, "approve", now)
        approved = self.get(record.id)
        self._audit("approved", approved, approver, f"approved by {signers}")
        return approved

    def reject(self, approval_id: str, approver: str, reason: str) -> ApprovalRecord:
        record = self.get(approval_id)
        now = self.clock()
        won = self._update(record.id, {"status": "rejected", "approver": approver, "decided_at": _ts(now),
                                       "reason": reason}, ("pending",))
        if not won:
            self._refuse(record.id, "reject", now)
        rejected = self.get(record.id)
        self._audit("rejected", rejected, approver, f"rejected by {approver}: {reason}", {"reason": reason})
        return rejected

    def claim(self, approval_id: str) -> ExecutionClaim:
        """Atomically move an approved, unexpired record to `executing`; exactly one caller wins."""
        record = self.get(approval_id)
        now = self.clock()
        if not self._update(record.id, {"status": "executing", "executed_at": _ts(now)}, ("approved",),
                            unexpired_at=now):
            self._refuse(record.id, "execute", now)
        claimed = self.get(record.id)
        problem = claimed.binding_problem()
        if problem:
            reason = f"not executed: {problem}"
            self._update(record.id, {"status": "failed", "reason": reason}, ("executing",))
            self._audit("tampered", claimed, "executor", reason, {"stored": claimed.bound_fields()})
            raise ApprovalStateError(f"cannot execute {record.describe()}: {problem}",
                                     hints=["nothing was changed; propose the action again for a fresh approval"])
        return ExecutionClaim(claimed, now, _token=_CLAIM_TOKEN)

    def finish(self, claim: ExecutionClaim, status: Literal["executed", "failed", "stale"], *,
               reason: str | None = None, result: ActuatorResult | None = None) -> ApprovalRecord:
        """Close a claimed execution. The audit record is written by the executor, which has the details."""
        assignments: dict[str, Any] = {"status": status, "reason": reason}
        if result is not None:
            assignments["result"] = result.model_dump_json()
        if not self._update(claim.record.id, assignments, ("executing",)):  # pragma: no cover - claims are exclusive
            raise ApprovalStateError(f"{claim.record.describe()} is no longer executing")
        return self.get(claim.record.id)

    def abandon(self, approval_id: str, actor: str, reason: str, *, settle: timedelta = ABANDON_AFTER,
                force: bool = False) -> ApprovalRecord:
        """Close an execution whose process died mid-call (the record stays `executing` forever otherwise), by a
        named person: as the executor's own audit record of how it ended says, when it wrote one before dying,
        else as `failed`, whether the change reached the cluster being unknown (the caller must check the target).
        Refused while the claim is younger than `settle` (it may still be running) unless forced."""
        record = self.get(approval_id)
        now = self.clock()
        if record.status != "executing":
            raise ApprovalStateError(f"cannot abandon {record.describe()}: only an execution left running can be "
                                     f"abandoned, and it is {record.status}")
        started = record.executed_at or now
        if not force and now - started < settle:
            raise ApprovalStateError(
                f"cannot abandon {record.describe()} yet: it was claimed at {_ts(started)}, "
                f"{int((now - started).total_seconds())} s ago, and may still be running",
                hints=[f"wait until {_ts(started + settle)}, or pass --force if the process is known to be gone"])
        closing = [a for a in self.audit.read(approval_id=record.id) if a.event in CLOSING_EVENTS
                   and (record.executed_at is None or a.ts >= record.executed_at)]
        if closing:  # the executor recorded how it ended, then died before the record said so
            status, how = CLOSING_EVENTS[closing[-1].event], closing[-1].outcome
            outcome = f"closed by {actor} as {status}, as the executor recorded before its process died: {how}"
        else:
            status = "failed"
            outcome = f"abandoned by {actor}: {reason}; whether {record.command} took effect is unknown"
        if not self._update(record.id, {"status": status, "reason": None if status == "executed" else outcome},
                            ("executing",)):
            self._refuse(record.id, "abandon", now)
        abandoned = self.get(record.id)
        self._audit("abandoned", abandoned, actor, outcome, {"reason": reason, "claimed_at": _ts(started),
                                                            "forced": force})
        return abandoned

    def expire_overdue(self) -> builtins.list[ApprovalRecord]:
        """Mark every pending or approved record past its expiry as expired (audited). Returns those records."""
        now = self.clock()
        with self._connect() as conn:
            ids = conn.execute(select(table.c.id).where(table.c.status.in_(("pending", "approved")),
                                                        table.c.expires_at <= _ts(now))).scalars().all()
        return [record for approval_id in ids if (record := self._expire(approval_id, now)) is not None]

    def _expire(self, approval_id: str, now: datetime) -> ApprovalRecord | None:
        if not self._update(approval_id, {"status": "expired", "reason": f"not executed before expiry at {_ts(now)}"},
                            ("pending", "approved")):
            return None
        record = self.get(approval_id)
        self._audit("expired", record, "policy",
                    f"expired at {_ts(record.expires_at)} while {'approved' if record.approver else 'pending'}")
        return record

    def _refuse(self, approval_id: str, operation: str, now: datetime) -> None:
        """Explain why a conditional transition did not happen, expiring the record if that is the reason."""
        record = self.get(approval_id)
        if record.status in ("pending", "approved") and record.expired(now):
            self._expire(record.id, now)
            record = self.get(approval_id)
        who = f" by {record.approver}" if record.approver else ""
        when = f" at {_ts(record.decided_at)}" if record.decided_at else ""
        messages: dict[str, str] = {
            "pending": f"cannot {operation} {record.describe()}: it has not been approved yet",
            "approved": f"cannot {operation} {record.describe()}: it was already approved{who}{when}",
            "executing": f"cannot {operation} {record.describe()}: it is being executed (claimed at "
                         f"{_ts(record.executed_at or now)})",
            "executed": f"cannot {operation} {record.describe()}: it was already executed at "
                        f"{_ts(record.executed_at or now)}",
            "rejected": f"cannot {operation} {record.describe()}: it was rejected{who}{when}: {record.reason}",
            "expired": f"cannot {operation} {record.describe()}: it expired at {_ts(record.expires_at)}; "
                       "propose the action again for a fresh approval",
            "stale": f"cannot {operation} {record.describe()}: the target changed since it was proposed "
                     f"({record.reason}); propose again",
            "failed": f"cannot {operation} {record.describe()}: its execution failed: {record.reason}",
        }
        error = ApprovalExpired if record.status == "expired" else ApprovalStateError
        raise error(messages[record.status])
