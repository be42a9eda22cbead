"""Remediation run records: what rebuilds a paused run's graph in another process (the question, the sources, the
model spec, the checkpointer, the kubeconfig context). They live in the approvals' database (`runs`), so every
replica of `serve` and every on-call engineer's CLI can resume and verify the same runs.

Earlier versions wrote one JSON file per run in `<data>/runs/`. Those are imported on first use
(`json_import.py`: inserted unless there already, then moved to `runs/migrated/`; a file that cannot be read is
left where it is).
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from agent.remediation.database import _reason, describe, engine_for, store_url
from agent.remediation.errors import RemediationError, StoreError
from agent.remediation.json_import import import_json_files
from agent.remediation.paths import data_dir
from agent.remediation.tables import runs

if TYPE_CHECKING:
    from agent.remediation.service import Remediator

log = logging.getLogger(__name__)


class RunRecord(BaseModel):
    """Enough to rebuild a remediation run's graph in another process. No secrets: URLs are redacted."""

    run_id: str
    question: str
    sources: str = Field(description='"live", or the replayed scenario: an id or an absolute path')
    model: str = Field(description="the model spec the run was started with, e.g. playbook or openai:gpt-4o")
    started_at: datetime = Field(default_factory=lambda: datetime.now(UTC))
    started_by: str | None = Field(None, description="the approver named when the run was started")
    checkpointer: str = Field("", description="where the paused graph is kept (redacted)")
    context: str | None = Field(None, description="the kubeconfig context a live run read (and may write to)")


def _checked(run_id: str) -> str:
    if not run_id or len(run_id) > 64 or not run_id.replace("-", "").isalnum():
        raise RemediationError(f"{run_id!r} is not a run id", hints=["run ids look like run-0123456789ab"])
    return run_id


class RunRegistry:
    """The run records in one database: the data folder's SQLite file, or the shared one."""

    def __init__(self, url: str, legacy: Path | None = None) -> None:
        """`url`: the approvals' database. `legacy`: a folder of JSON run records to import (None: none)."""
        self.url = url
        self.where = describe(url)
        self.engine = engine_for(url)
        if legacy is not None:
            self.import_files(legacy)

    @classmethod
    def in_data(cls, folder: str | Path | None = None) -> RunRegistry:
        """The registry of the data folder `folder` (default SRE_AGENT_DATA): its database, or the shared one."""
        root = Path(folder) if folder is not None else data_dir()
        return cls(store_url(root / "approvals.sqlite"), root / "runs")

    @classmethod
    def beside(cls, remediator: Remediator) -> RunRegistry:
        """The registry in the database the remediator's approvals are in."""
        return cls(remediator.store.url, remediator.store.path.parent / "runs")

    def save(self, record: RunRecord) -> RunRecord:
        row = {"started_at": record.started_at.isoformat(), "record": record.model_dump_json()}
        try:
            with self.engine.begin() as conn:
                changed = conn.execute(update(runs).where(runs.c.run_id == _checked(record.run_id)).values(**row))
                if not changed.rowcount:
                    conn.execute(insert(runs).values(run_id=record.run_id, **row))
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot write run record {record.run_id} to {self.where}: {_reason(exc)}") from None
        return record

    def get(self, run_id: str) -> RunRecord:
        try:
            with self.engine.connect() as conn:
                raw = conn.execute(select(runs.c.record).where(runs.c.run_id == _checked(run_id))).scalar()
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot read run record {run_id} from {self.where}: {_reason(exc)}") from None
        if raw is None:
            raise RemediationError(f"no record of run {run_id} in {self.where}",
                                   hints=["was it started with a different SRE_AGENT_DATA or SRE_AGENT_DATABASE_URL?"])
        try:
            return RunRecord.model_validate_json(raw)
        except ValidationError as exc:
            raise StoreError(f"run record {run_id} in {self.where} cannot be read: {str(exc)[:300]}") from None

    def import_record(self, record: RunRecord) -> bool:
        """Insert a record unless its run is there already (False)."""
        try:
            with self.engine.begin() as conn:
                if conn.execute(select(runs.c.run_id).where(runs.c.run_id == _checked(record.run_id))).first():
                    return False
                conn.execute(insert(runs).values(run_id=record.run_id, started_at=record.started_at.isoformat(),
                                                 record=record.model_dump_json()))
        except IntegrityError:  # another process imported it between the look and the insert
            return False
        except SQLAlchemyError as exc:
            raise StoreError(f"cannot import run record {record.run_id} into {self.where}: {_reason(exc)}") from None
        return True

    def import_files(self, folder: Path) -> int:
        """Import the JSON run records in `folder`; returns how many were new to the database."""
        return import_json_files(folder, "*.json", RunRecord.model_validate, self.import_record, what="run",
                                 where=self.where, log=log)
