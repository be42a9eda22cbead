"""Alembic's environment: migrations run on the connection `agent.remediation.database.upgrade` passes in."""

from __future__ import annotations

from alembic import context

from agent.remediation.tables import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
