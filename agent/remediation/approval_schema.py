"""The approvals table and its migrations: a database written by an earlier version is brought up to date on first
use, keeping every record (records from before approvals were bound stay readable and can no longer execute)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent.remediation.errors import StoreError

SCHEMA_VERSION = 2
_ADDED_IN_2 = ("approvers", "policy", "cluster", "needs", "identity", "first_approver", "first_decided_at", "digest",
               "seal")

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS approvals (
    id TEXT PRIMARY KEY,
    run_id TEXT NOT NULL,
    action TEXT NOT NULL,
    command TEXT NOT NULL,
    evidence_summary TEXT NOT NULL,
    expected_effect TEXT NOT NULL,
    dry_run TEXT,
    snapshot TEXT NOT NULL,
    verify TEXT,
    proposer TEXT NOT NULL,
    requested_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    status TEXT NOT NULL,
    approver TEXT,
    decided_at TEXT,
    reason TEXT,
    executed_at TEXT,
    result TEXT,
    approvers TEXT,
    policy TEXT,
    cluster TEXT,
    needs TEXT,
    identity TEXT,
    first_approver TEXT,
    first_decided_at TEXT,
    digest TEXT,
    seal TEXT
);
CREATE INDEX IF NOT EXISTS approvals_run ON approvals (run_id);
CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status);
"""


def migrate(conn: sqlite3.Connection, path: Path) -> None:
    row = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        conn.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        return
    version = int(row["value"])
    if version > SCHEMA_VERSION:
        raise StoreError(f"{path}: approvals schema version {version} is newer than this build reads "
                         f"({SCHEMA_VERSION})", hints=["upgrade sre-agent, or point SRE_AGENT_DATA elsewhere"])
    if version < 2:
        columns = {r["name"] for r in conn.execute("PRAGMA table_info(approvals)").fetchall()}
        conn.execute("BEGIN IMMEDIATE")
        for column in _ADDED_IN_2:
            if column not in columns:
                conn.execute(f"ALTER TABLE approvals ADD COLUMN {column} TEXT")
        conn.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION),))
        conn.execute("COMMIT")
