"""Investigation records: one JSON file per investigation in `<data>/investigations/`, written atomically.

A record is saved when it is queued, when it starts and when it ends, so a server that stops in between leaves a
file saying so; the next server marks a `running` record `interrupted` (never lost silently) and queues again the
ones that had not started.
"""

from __future__ import annotations

import builtins
import json
import logging
import threading
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError

from agent.remediation.paths import write_atomically

log = logging.getLogger(__name__)

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
    """A record cannot be read or written; the message names the file."""


class InvestigationStore:
    """The records of one data dir, kept in memory and on disk. Thread-safe."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._lock = threading.RLock()
        self._records: dict[str, InvestigationRecord] = {}
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordError(f"cannot create {self.folder}: {exc.strerror}") from None
        for path in sorted(self.folder.glob("inv-*.json")):
            try:
                record = InvestigationRecord.model_validate(json.loads(path.read_text(encoding="utf-8")))
            except (OSError, ValueError, ValidationError) as exc:
                log.warning("skipping unreadable investigation record %s: %s", path, str(exc)[:200])
                continue
            self._records[record.id] = record

    def _path(self, investigation_id: str) -> Path:
        if not investigation_id.startswith("inv-") or not investigation_id[4:].isalnum():
            raise KeyError(investigation_id)
        return self.folder / f"{investigation_id}.json"

    def save(self, record: InvestigationRecord) -> InvestigationRecord:
        path = self._path(record.id)
        with self._lock:
            try:
                write_atomically(path, record.model_dump_json(indent=1))
            except OSError as exc:
                raise RecordError(f"cannot write investigation record {path}: {exc.strerror or exc}") from None
            self._records[record.id] = record.model_copy(deep=True)
        return record

    def update(self, investigation_id: str, **fields: Any) -> InvestigationRecord:
        """Set `fields` on the current record and save it: writers of different fields never undo each other."""
        with self._lock:
            current = self._records.get(investigation_id)
            if current is None:
                raise RecordError(f"no investigation {investigation_id}")
            return self.save(current.model_copy(update=fields, deep=True))

    def get(self, investigation_id: str) -> InvestigationRecord | None:
        with self._lock:
            record = self._records.get(investigation_id)
            return record.model_copy(deep=True) if record else None

    def list(self, status: InvestigationStatus | None = None) -> list[InvestigationRecord]:
        with self._lock:
            rows = [r.model_copy(deep=True) for r in self._records.values() if status in (None, r.status)]
        return sorted(rows, key=lambda r: (r.created_at, r.id))

    def by_run(self, run_id: str) -> InvestigationRecord | None:
        with self._lock:
            found = next((r for r in self._records.values() if r.run_id == run_id), None)
            return found.model_copy(deep=True) if found else None

    def open_for(self, keys: Iterable[str]) -> InvestigationRecord | None:
        """The open investigation an alert with any of these keys belongs to."""
        wanted = set(keys)
        with self._lock:
            for record in sorted(self._records.values(), key=lambda r: r.created_at, reverse=True):
                if record.alert and wanted & set(record.alert.keys) and record.is_open():
                    return record.model_copy(deep=True)
        return None

    def recover(self) -> tuple[builtins.list[InvestigationRecord], builtins.list[InvestigationRecord]]:
        """After a restart: mark what was running `interrupted`; return (interrupted, queued) records."""
        interrupted = []
        for record in self.list("running"):
            record.status, record.finished_at = "interrupted", now()
            record.error = "the server stopped while this investigation was running; start it again"
            interrupted.append(self.save(record))
        return interrupted, self.list("queued")
