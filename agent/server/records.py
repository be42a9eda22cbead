"""Investigation records, in the store's database (`agent/remediation/database.py`): the SQLite file beside the
approvals for one server, or the PostgreSQL database SRE_AGENT_DATABASE_URL names, shared by every replica.

A record is saved when it is queued, when it starts and when it ends, so a server that stops in between leaves a
record saying so; the next server marks a `running` record `interrupted` (never lost silently) and queues again the
ones that had not started. On PostgreSQL a record belongs to the server that queued it until that server is gone
(`record_owners.py`), so a replica starting never takes over the work of one still running. The JSON files of
`<data>/investigations/` from before the database are imported on first use (`record_import.py`).
"""

from __future__ import annotations

import builtins
import logging
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import Connection, delete, insert, select, text, true, update
from sqlalchemy.exc import SQLAlchemyError

from agent.remediation.database import describe, engine_for, store_url
from agent.remediation.paths import data_dir
from agent.remediation.tables import investigation_keys as keys_table
from agent.remediation.tables import investigations as table
from agent.server.record_owners import Owner
from tools.redaction import redact

log = logging.getLogger(__name__)
INTAKE_LOCK = 0x5E_A6E8  # pg_advisory_xact_lock(INTAKE_LOCK, 0): one alert intake decision at a time, all replicas

InvestigationStatus = Literal["queued", "running", "done", "failed", "interrupted"]
OPEN_STATUSES: tuple[InvestigationStatus, ...] = ("queued", "running")
WAITING_FOR_A_HUMAN = ("pending", "awaiting_second")


def now() -> datetime:
    return datetime.now(UTC)


class AlertRef(BaseModel):
    """The alert that started (or joined) an investigation."""

    source: Literal["datadog", "alertmanager"]
    title: str
    keys: list[str] = Field(description="what makes a repeat of this alert: monitor id and scope, fingerprints, "
                                        "the Alertmanager group key")
    namespaces: list[str] = Field(default_factory=list)
    workloads: list[str] = Field(default_factory=list)
    queues: list[str] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list, description="tags or labels that were not used, and why")
    deliveries: int = Field(1, description="how many webhook deliveries this investigation answered")
    last_received_at: datetime = Field(default_factory=now)


class InvestigationRecord(BaseModel):
    id: str
    question: str
    sources: str = Field(description='"live", or the replayed scenario: an id or an absolute path')
    context: str | None = Field(None, description="the kubeconfig context of a live investigation")
    model: str = Field(description="the model spec, e.g. playbook or openai:gpt-4o")
    remediate: bool = Field(False, description="propose the verdict's action for a human's approval")
    status: InvestigationStatus = "queued"
    created_at: datetime = Field(default_factory=now)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_s: float | None = None
    verdict: dict[str, Any] | None = Field(None, description="the Verdict JSON (`sre-agent schema verdict`)")
    trace: list[dict[str, Any]] = Field(default_factory=list, description="the progress events, in order")
    error: str | None = None
    run_id: str | None = Field(None, description="the remediation run (thread id of its checkpoints)")
    remediation: dict[str, Any] | None = Field(None, description="where the remediation stands (status, "
                                                                 "approval_id, execution, verification)")
    alert: AlertRef | None = None
    requested_by: str | None = Field(None, description="the authenticated person who asked, if any")

    @property
    def approval_id(self) -> str | None:
        value = (self.remediation or {}).get("approval_id")
        return str(value) if value else None

    def is_open(self) -> bool:
        """Still being worked on: queued, running, or waiting for a human to approve its fix."""
        return self.status in OPEN_STATUSES or (self.remediation or {}).get("status") in WAITING_FOR_A_HUMAN


def new_investigation_id() -> str:
    return "inv-" + uuid.uuid4().hex[:12]


class RecordError(Exception):
    """A record cannot be read or written; the message names the database."""


class AlreadyOpen(RecordError):
    """A new investigation for an alert that has an open one already (another replica started it first)."""

    def __init__(self, existing: InvestigationRecord) -> None:
        super().__init__(f"investigation {existing.id} is already open for this alert")
        self.existing = existing


def _ts(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _keys(record: InvestigationRecord | None) -> list[str]:
    return list(dict.fromkeys(record.alert.keys)) if record is not None and record.alert is not None else []


def _checked(investigation_id: str) -> str:
    if not investigation_id.startswith("inv-") or not investigation_id[4:].isalnum() or len(investigation_id) > 32:
        raise KeyError(investigation_id)
    return investigation_id


class InvestigationStore:
    """The server's investigation records. Thread-safe, and safe across replicas: every write is one transaction that
    locks the row it changes, so writers of different fields never undo each other."""

    def __init__(self, path: str | Path | None = None, *, shared: bool = True, legacy: Path | None = None) -> None:
        """`path`: the local SQLite file (default `<data>/approvals.sqlite`: the approvals' database), unless
        SRE_AGENT_DATABASE_URL names the shared database and `shared`. `legacy`: the folder of JSON records from
        before the database (default `investigations/` beside `path`), imported on first use."""
        from agent.server.record_import import import_legacy  # it reads InvestigationRecord from here

        self.path = Path(path) if path is not None else data_dir() / "approvals.sqlite"
        self.url = store_url(self.path, shared=shared)
        self.where = describe(self.url)
        self.engine = engine_for(self.url)
        self.owner = Owner(self.engine)
        self.legacy = legacy if legacy is not None else self.path.parent / "investigations"
        import_legacy(self, self.legacy)

    def close(self) -> None:
        """Let go of this server's claim on its records (PostgreSQL): other replicas may recover them from now."""
        self.owner.release()

    # ---- plumbing ---------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self, *, intake: bool = False) -> Iterator[Connection]:
        """One transaction holding the write lock: SQLite's (one writer at a time), or on PostgreSQL the row locks
        its statements take and, with `intake`, the lock that makes "no investigation is open for this alert, so
        insert one" a single step across replicas."""
        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite":
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                elif intake:
                    conn.execute(text("SELECT pg_advisory_xact_lock(CAST(:space AS integer), 0)"),
                                 {"space": INTAKE_LOCK})
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    @contextmanager
    def _reading(self) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise self._error(exc) from None

    def _error(self, exc: SQLAlchemyError) -> RecordError:
        original = getattr(exc, "orig", None)
        return RecordError(f"investigations database {self.where}: "
                           f"{redact(str(original if original is not None else exc).splitlines()[0])}")

    def _parse(self, raw: str, investigation_id: str, *, strict: bool) -> InvestigationRecord | None:
        try:
            return InvestigationRecord.model_validate_json(raw)
        except ValidationError as exc:
            message = f"investigation record {investigation_id} in {self.where} is unreadable: {str(exc)[:200]}"
            if strict:
                raise RecordError(message) from None
            log.warning("skipping it: %s", message)
            return None

    def _read(self, conn: Connection, investigation_id: str, *, lock: bool = False) -> InvestigationRecord | None:
        statement = select(table.c.record).where(table.c.id == investigation_id)
        raw = conn.execute(statement.with_for_update() if lock else statement).scalar()
        return None if raw is None else self._parse(raw, investigation_id, strict=True)

    def _records(self, conn: Connection, statement: Any) -> builtins.list[InvestigationRecord]:
        rows = conn.execute(statement).all()
        return [r for row in rows if (r := self._parse(row.record, row.id, strict=False)) is not None]

    def _write(self, conn: Connection, record: InvestigationRecord, previous: InvestigationRecord | None,
               owner: int | None = None) -> None:
        """Insert (no `previous`) or update the row of `record`, its alert keys with it; `owner` claims it."""
        values: dict[str, Any] = {"status": record.status, "is_open": record.is_open(), "run_id": record.run_id,
                                  "created_at": _ts(record.created_at), "updated_at": _ts(now()),
                                  "record": record.model_dump_json()}
        if owner is not None:
            values["owner"] = owner
        if previous is None:
            conn.execute(insert(table).values(id=_checked(record.id), version=1, **values))
        else:
            conn.execute(update(table).where(table.c.id == record.id).values(version=table.c.version + 1, **values))
        keys = _keys(record)
        if keys != _keys(previous):
            if previous is not None:
                conn.execute(delete(keys_table).where(keys_table.c.investigation_id == record.id))
            if keys:
                conn.execute(insert(keys_table), [{"key": key, "investigation_id": record.id} for key in keys])

    def _open_for(self, conn: Connection, keys: builtins.list[str], *,
                  lock: bool = False) -> InvestigationRecord | None:
        matching = select(keys_table.c.investigation_id).where(keys_table.c.key.in_(keys))
        statement = (select(table.c.id, table.c.record).where(table.c.is_open == true(), table.c.id.in_(matching))
                     .order_by(table.c.created_at.desc(), table.c.id.desc()).limit(1))
        found = self._records(conn, statement.with_for_update(of=table) if lock else statement)
        return found[0] if found else None

    # ---- writing ----------------------------------------------------------------------------------------

    def save(self, record: InvestigationRecord) -> InvestigationRecord:
        """Write `record` whole. A new open record of an alert raises AlreadyOpen when the alert has an open one."""
        _checked(record.id)
        owner = self.owner.token() if record.status in OPEN_STATUSES else None
        dedup = record.alert is not None and record.is_open()
        with self._transaction(intake=dedup) as conn:
            previous = self._read(conn, record.id, lock=True)
            if previous is None and dedup:
                existing = self._open_for(conn, _keys(record))
                if existing is not None:
                    raise AlreadyOpen(existing)
            self._write(conn, record, previous, owner)
        return record

    def update(self, investigation_id: str, **fields: Any) -> InvestigationRecord:
        """Set `fields` on the current record and save it: writers of different fields never undo each other."""
        owner = self.owner.token() if fields.get("status") in OPEN_STATUSES else None
        with self._transaction() as conn:
            current = self._read(conn, investigation_id, lock=True)
            if current is None:
                raise RecordError(f"no investigation {investigation_id}")
            record = current.model_copy(update=fields, deep=True)
            self._write(conn, record, current, owner)
        return record

    def join(self, alert: AlertRef) -> InvestigationRecord | None:
        """Count a repeat delivery of `alert` on the open investigation it belongs to, in one step (the alert's new
        keys join too); None when none is open."""
        with self._transaction(intake=True) as conn:
            existing = self._open_for(conn, list(dict.fromkeys(alert.keys)), lock=True)
            if existing is None or existing.alert is None:
                return None
            joined = existing.alert.model_copy(update={
                "deliveries": existing.alert.deliveries + 1, "last_received_at": now(),
                "keys": list(dict.fromkeys([*existing.alert.keys, *alert.keys]))})
            record = existing.model_copy(update={"alert": joined}, deep=True)
            self._write(conn, record, existing)
        return record

    def import_record(self, record: InvestigationRecord) -> bool:
        """Insert `record` unless its id is there already (False): how JSON records from before are imported."""
        with self._transaction() as conn:
            if conn.execute(select(table.c.id).where(table.c.id == _checked(record.id))).first() is not None:
                return False
            self._write(conn, record, None)
        return True

    def recover(self) -> tuple[builtins.list[InvestigationRecord], builtins.list[InvestigationRecord]]:
        """After a restart: mark what was running `interrupted`; return (interrupted, queued) records. Only records
        whose server is gone are touched, and each by one recovering server (the queued ones become its own)."""
        interrupted, queued = [], []
        owner = self.owner.token()
        with self._transaction() as conn:
            rows = conn.execute(select(table.c.id, table.c.owner, table.c.record)
                                .where(table.c.status.in_(OPEN_STATUSES)).order_by(table.c.created_at, table.c.id)
                                .with_for_update(skip_locked=True)).all()
            for row in rows:
                previous = self._parse(row.record, row.id, strict=False)
                if previous is None or not self.owner.orphaned(conn, row.owner):
                    continue
                record = previous.model_copy(deep=True)
                if record.status == "running":
                    record.status, record.finished_at = "interrupted", now()
                    record.error = "the server stopped while this investigation was running; start it again"
                    self._write(conn, record, previous)
                    interrupted.append(record)
                else:
                    self._write(conn, record, previous, owner)
                    queued.append(record)
        return interrupted, queued

    # ---- reading ----------------------------------------------------------------------------------------

    def get(self, investigation_id: str) -> InvestigationRecord | None:
        with self._reading() as conn:
            return self._read(conn, investigation_id)

    def list(self, status: InvestigationStatus | None = None) -> builtins.list[InvestigationRecord]:
        statement = select(table.c.id, table.c.record).order_by(table.c.created_at, table.c.id)
        if status is not None:
            statement = statement.where(table.c.status == status)
        with self._reading() as conn:
            return self._records(conn, statement)

    def by_run(self, run_id: str) -> InvestigationRecord | None:
        statement = (select(table.c.id, table.c.record).where(table.c.run_id == run_id)
                     .order_by(table.c.created_at, table.c.id).limit(1))
        with self._reading() as conn:
            found = self._records(conn, statement)
        return found[0] if found else None

    def open_for(self, keys: Iterable[str]) -> InvestigationRecord | None:
        """The open investigation an alert with any of these keys belongs to (the newest, if several are)."""
        wanted = list(dict.fromkeys(keys))
        if not wanted:
            return None
        with self._reading() as conn:
            return self._open_for(conn, wanted)
