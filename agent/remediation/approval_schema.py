"""SQLite stores from before alembic kept their schema version in a `meta` table. Version 1 lacked the columns that
bind an approval; they are added here, so every record stays readable (records from before binding can no longer
execute), and the alembic migrations take over from there."""

from __future__ import annotations

from sqlalchemy import Connection, inspect, text

from agent.remediation.errors import StoreError

SCHEMA_VERSION = 2  # the last version the `meta` table records; later changes are alembic revisions
_ADDED_IN_2 = ("approvers", "policy", "cluster", "needs", "identity", "first_approver", "first_decided_at", "digest",
               "seal")


def migrate_legacy(conn: Connection, where: str) -> None:
    row = conn.execute(text("SELECT value FROM meta WHERE key = 'schema_version'")).first()
    version = int(row[0]) if row else SCHEMA_VERSION
    if version > SCHEMA_VERSION:
        raise StoreError(f"{where}: approvals schema version {version} is newer than this build reads "
                         f"({SCHEMA_VERSION})", hints=["upgrade sre-agent, or point SRE_AGENT_DATA elsewhere"])
    if "approvals" in inspect(conn).get_table_names():
        columns = {column["name"] for column in inspect(conn).get_columns("approvals")}
        for column in _ADDED_IN_2:
            if column not in columns:
                conn.execute(text(f"ALTER TABLE approvals ADD COLUMN {column} TEXT"))
    conn.execute(text("UPDATE meta SET value = :version WHERE key = 'schema_version'"),
                 {"version": str(SCHEMA_VERSION)})
