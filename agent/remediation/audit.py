"""The audit log: append-only JSON Lines, one record per proposal, decision, execution step and verification.

Every append is one `write` on an O_APPEND descriptor, flushed and fsync'ed before returning. A crash can leave
at most a partial last line: readers skip it with a warning, and the next append starts on a fresh line so the
partial bytes never swallow a good record.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Engine, insert, select
from sqlalchemy.exc import SQLAlchemyError

from agent.remediation.errors import StoreError
from agent.remediation.paths import data_dir

logger = logging.getLogger(__name__)

AuditEvent = Literal[
    "proposed", "refused", "approved", "rejected", "expired", "stale", "dry_run", "executed", "failed", "verified",
    "abandoned", "tampered", "lost_race",
]


class AuditRecord(BaseModel):
    ts: datetime = Field(description="wall-clock time of the record (UTC)")
    event: AuditEvent
    actor: str = Field(description="who: the proposer, the approver, or the approver an execution runs for")
    approval_id: str | None = None
    run_id: str | None = None
    action: dict[str, Any] | None = None
    command: str | None = Field(None, description="the kubectl line rendered for humans; never executed")
    outcome: str = Field(description="one line a human can read")
    detail: dict[str, Any] = Field(default_factory=dict)


class AuditLog:
    """The local audit log: a JSON Lines file beside the local approvals database."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else data_dir() / "audit.jsonl"
        self.where = str(self.path)
        self._lock = threading.Lock()

    def append(self, record: AuditRecord) -> AuditRecord:
        line = record.model_dump_json().encode() + b"\n"
        with self._lock:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                created = not self.path.exists()
                fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
                try:
                    if not created and not _ends_with_newline(self.path):
                        line = b"\n" + line  # a crash left a partial line: keep it on its own, skipped by readers
                    os.write(fd, line)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                if created:
                    _fsync_dir(self.path.parent)
            except OSError as exc:
                raise StoreError(f"cannot append to audit log {self.path}: {exc.strerror or exc}") from None
        return record

    def record(self, event: AuditEvent, *, actor: str, outcome: str, approval_id: str | None = None,
               run_id: str | None = None, action: dict[str, Any] | None = None, command: str | None = None,
               detail: dict[str, Any] | None = None, ts: datetime | None = None) -> AuditRecord:
        return self.append(AuditRecord(
            ts=ts or datetime.now(UTC), event=event, actor=actor, approval_id=approval_id, run_id=run_id,
            action=action, command=command, outcome=outcome, detail=detail or {}))

    def __iter__(self) -> Iterator[AuditRecord]:
        return iter(self.read())

    def read(self, *, approval_id: str | None = None, run_id: str | None = None,
             event: AuditEvent | None = None) -> list[AuditRecord]:
        """Every readable record, oldest first, optionally filtered. Unreadable lines are skipped with a warning."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise StoreError(f"cannot read audit log {self.path}: {exc.strerror or exc}") from None
        records = []
        lines = data.split(b"\n")
        for number, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            try:
                record = AuditRecord.model_validate(json.loads(raw))
            except (ValueError, ValidationError):
                partial = number == len(lines) and not data.endswith(b"\n")
                logger.warning("%s line %d: skipped %s (%d bytes)", self.path, number,
                               "a partially written last line" if partial else "an unreadable line", len(raw))
                continue
            if approval_id is not None and record.approval_id != approval_id:
                continue
            if run_id is not None and record.run_id != run_id:
                continue
            if event is not None and record.event != event:
                continue
            records.append(record)
        return records


def _ends_with_newline(path: Path) -> bool:
    with path.open("rb") as handle:
        handle.seek(0, os.SEEK_END)
        if handle.tell() == 0:
            return True
        handle.seek(-1, os.SEEK_END)
        return handle.read(1) == b"\n"


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - platforms without directory descriptors
        return
    try:
        os.fsync(fd)
    except OSError:  # pragma: no cover
        pass
    finally:
        os.close(fd)


class DatabaseAuditLog(AuditLog):
    """The shared audit log: the `audit` table of the shared database, one row per record, in commit order."""

    def __init__(self, engine: Engine, where: str) -> None:
        self.engine, self.where = engine, f"{where} (table audit)"

    def append(self, record: AuditRecord) -> AuditRecord:
        from agent.remediation.tables import audit

        try:
            with self.engine.begin() as conn:
                conn.execute(insert(audit).values(ts=record.ts.isoformat(), event=record.event,
                                                  approval_id=record.approval_id, run_id=record.run_id,
                                                  record=record.model_dump_json()))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot append to the audit log in {self.where}: {str(exc).splitlines()[0]}") from None
        return record

    def read(self, *, approval_id: str | None = None, run_id: str | None = None,
             event: AuditEvent | None = None) -> list[AuditRecord]:
        from agent.remediation.tables import audit

        statement = select(audit.c.record).order_by(audit.c.seq)
        for column, value in (("approval_id", approval_id), ("run_id", run_id), ("event", event)):
            if value is not None:
                statement = statement.where(audit.c[column] == value)
        try:
            with self.engine.connect() as conn:
                rows = conn.execute(statement).scalars().all()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read the audit log in {self.where}: {str(exc).splitlines()[0]}") from None
        return [AuditRecord.model_validate_json(row) for row in rows]


def audit_for(url: str, engine: Engine, folder: Path) -> AuditLog:
    """The audit log that goes with the approvals at `url`: the shared table, or the local file in `folder`."""
    if url.startswith("sqlite"):
        return AuditLog(folder / "audit.jsonl")
    from agent.remediation.database import describe

    return DatabaseAuditLog(engine, describe(url))


def open_audit(folder: Path | None = None) -> AuditLog:
    """The audit log this process writes: the shared database's when SRE_AGENT_DATABASE_URL is set, else
    `<data>/audit.jsonl`."""
    from agent.remediation.database import engine_for, store_url

    folder = folder or data_dir()
    url = store_url(folder / "approvals.sqlite")
    return AuditLog(folder / "audit.jsonl") if url.startswith("sqlite") else audit_for(url, engine_for(url), folder)
