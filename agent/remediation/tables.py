"""The shared store's tables (SQLAlchemy Core): approvals, the audit log and the server's investigation records. One
definition, read by the stores and by the migrations (`migrations/`); the same tables live in SQLite for one person
and in PostgreSQL for a team."""

from __future__ import annotations

from sqlalchemy import Boolean, Column, ForeignKey, Index, Integer, MetaData, String, Table, Text

metadata = MetaData()

approvals = Table(
    "approvals", metadata,
    Column("id", String(32), primary_key=True),
    Column("run_id", Text, nullable=False),
    Column("action", Text, nullable=False),
    Column("command", Text, nullable=False),
    Column("evidence_summary", Text, nullable=False),
    Column("expected_effect", Text, nullable=False),
    Column("dry_run", Text),
    Column("snapshot", Text, nullable=False),
    Column("verify", Text),
    Column("proposer", Text, nullable=False),
    Column("requested_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("status", Text, nullable=False),
    Column("approver", Text),
    Column("decided_at", Text),
    Column("reason", Text),
    Column("executed_at", Text),
    Column("result", Text),
    Column("approvers", Text),
    Column("policy", Text),
    Column("cluster", Text),
    Column("needs", Text),
    Column("identity", Text),
    Column("first_approver", Text),
    Column("first_decided_at", Text),
    Column("digest", Text),
    Column("seal", Text),
    Index("approvals_run", "run_id"),
    Index("approvals_status", "status"),
)

audit = Table(
    "audit", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("ts", Text, nullable=False),
    Column("event", Text, nullable=False),
    Column("approval_id", Text),
    Column("run_id", Text),
    Column("record", Text, nullable=False),
    Index("audit_approval", "approval_id"),
    Index("audit_run", "run_id"),
)

investigations = Table(  # agent/server/records.py: the record is the JSON in `record`; the rest is for finding it
    "investigations", metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("is_open", Boolean, nullable=False),  # InvestigationRecord.is_open(): an alert's repeat joins it
    Column("run_id", Text),
    Column("created_at", Text, nullable=False),  # ISO 8601 UTC with microseconds: sorts as time
    Column("updated_at", Text, nullable=False),
    Column("owner", Integer),  # the server process that queued or ran it (recovered only once that one is gone)
    Column("version", Integer, nullable=False),  # +1 on every write
    Column("record", Text, nullable=False),
    Index("investigations_status", "status"),
    Index("investigations_run", "run_id"),
    Index("investigations_created", "created_at"),
    Index("investigations_open", "is_open"),
)

investigation_keys = Table(  # one row per alert key of an investigation: what a repeat of the alert is matched by
    "investigation_keys", metadata,
    Column("key", Text, primary_key=True),
    Column("investigation_id", String(32), ForeignKey("investigations.id", ondelete="CASCADE"), primary_key=True),
    Index("investigation_keys_investigation", "investigation_id"),
)

runs = Table(  # agent/remediation/runs.py: what rebuilds a paused remediation run elsewhere; the record is its JSON
    "runs", metadata,
    Column("run_id", String(64), primary_key=True),
    Column("started_at", Text, nullable=False),
    Column("record", Text, nullable=False),
)
