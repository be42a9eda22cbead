"""The server's investigation records, which were one JSON file each in `<data>/investigations/`
(imported on first use by `agent/server/record_import.py`), and their alert keys.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "investigations",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("is_open", sa.Boolean, nullable=False),
        sa.Column("run_id", sa.Text),
        sa.Column("created_at", sa.Text, nullable=False),
        sa.Column("updated_at", sa.Text, nullable=False),
        sa.Column("owner", sa.Integer),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("record", sa.Text, nullable=False),
    )
    op.create_index("investigations_status", "investigations", ["status"])
    op.create_index("investigations_run", "investigations", ["run_id"])
    op.create_index("investigations_created", "investigations", ["created_at"])
    op.create_index("investigations_open", "investigations", ["is_open"])
    op.create_table(
        "investigation_keys",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("investigation_id", sa.String(32), sa.ForeignKey("investigations.id", ondelete="CASCADE"),
                  primary_key=True),
    )
    op.create_index("investigation_keys_investigation", "investigation_keys", ["investigation_id"])


def downgrade() -> None:
    op.drop_table("investigation_keys")
    op.drop_table("investigations")
