"""The approvals table as schema version 2 of the SQLite-only store had it, and the audit table.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

TEXT_COLUMNS = ("run_id", "action", "command", "evidence_summary", "expected_effect", "dry_run", "snapshot",
                "verify", "proposer", "requested_at", "expires_at", "status", "approver", "decided_at", "reason",
                "executed_at", "result", "approvers", "policy", "cluster", "needs", "identity", "first_approver",
                "first_decided_at", "digest", "seal")
REQUIRED = {"run_id", "action", "command", "evidence_summary", "expected_effect", "snapshot", "proposer",
            "requested_at", "expires_at", "status"}


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    if not inspector.has_table("approvals"):  # a store from before alembic already has it (see database.py)
        op.create_table("approvals", sa.Column("id", sa.String(32), primary_key=True),
                        *(sa.Column(name, sa.Text, nullable=name not in REQUIRED) for name in TEXT_COLUMNS))
        op.create_index("approvals_run", "approvals", ["run_id"])
        op.create_index("approvals_status", "approvals", ["status"])
    op.create_table(
        "audit",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("ts", sa.Text, nullable=False),
        sa.Column("event", sa.Text, nullable=False),
        sa.Column("approval_id", sa.Text),
        sa.Column("run_id", sa.Text),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_index("audit_approval", "audit", ["approval_id"])
    op.create_index("audit_run", "audit", ["run_id"])


def downgrade() -> None:
    op.drop_table("audit")
    op.drop_table("approvals")
