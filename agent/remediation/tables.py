"""The shared store's tables (SQLAlchemy Core): approvals and the audit log. One definition, read by the store and
by the migrations (`migrations/`); the same tables live in SQLite for one person and in PostgreSQL for a team."""

from __future__ import annotations

from sqlalchemy import Column, Index, Integer, MetaData, String, Table, Text

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
