"""Alembic migrations of the shared store (run by `agent.remediation.database.upgrade`, never by hand)."""
