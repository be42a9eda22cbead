"""Where approvals, the audit log and the server's investigation records are kept: one database, SQLite for one
person (`<data>/approvals.sqlite`) or PostgreSQL for a team (`SRE_AGENT_DATABASE_URL=postgresql://user@host/db`), so
every replica of `serve` and every on-call engineer's CLI sees the same approvals, writes the same audit trail and
(the servers) shares the same investigations.

The schema is brought up to date by alembic (`migrations/`) the first time a process opens a database, under a
lock so replicas starting together do not race. A SQLite file written before alembic is migrated in place.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import Connection, Engine, create_engine, event, inspect, text
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from agent.remediation.approval_schema import migrate_legacy
from agent.remediation.errors import StoreError
from tools.redaction import redact

DATABASE_ENV = "SRE_AGENT_DATABASE_URL"
MIGRATIONS = Path(__file__).parent / "migrations"
_ADVISORY_LOCK = 0x5E_A6E7  # pg_advisory_xact_lock key: one migrating process at a time

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def store_url(path: str | Path, *, shared: bool = True) -> str:
    """The shared database when SRE_AGENT_DATABASE_URL names one (and `shared`), else the SQLite file at `path`."""
    configured = os.environ.get(DATABASE_ENV, "").strip() if shared else ""
    return configured or f"sqlite:///{Path(path)}"


def describe(url: str) -> str:
    """The database for a message: a SQLite file's path, or the URL without its credentials."""
    return url.removeprefix("sqlite:///") if url.startswith("sqlite:///") else redact(url)


def _driver_url(url: str) -> str:
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def engine_for(url: str) -> Engine:
    """The process's engine for `url`, its schema migrated on first use."""
    with _lock:
        if url in _engines:
            return _engines[url]
        where = describe(url)
        if url.startswith("sqlite:///"):
            try:
                Path(where).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"cannot create {Path(where).parent}: {exc.strerror}") from None
        try:
            engine = create_engine(_driver_url(url), pool_pre_ping=True,
                                   **({"poolclass": NullPool, "connect_args": {"timeout": 30.0}}
                                      if url.startswith("sqlite") else {}))
        except (ArgumentError, NoSuchModuleError, ImportError, ValueError) as exc:
            raise StoreError(f"{DATABASE_ENV}: cannot use {where}: {exc}",
                             hints=["use postgresql://USER@HOST:PORT/DB, or unset it to keep a local SQLite file"]
                             ) from None
        if url.startswith("sqlite"):
            event.listen(engine, "connect", _sqlite_pragmas)
        _upgrade(engine, where)
        _engines[url] = engine
        return engine


def _sqlite_pragmas(connection: sqlite3.Connection, _record: object) -> None:
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")


def _upgrade(engine: Engine, where: str) -> None:
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _ADVISORY_LOCK})
            _legacy(conn, where)
            config = Config()
            config.set_main_option("script_location", str(MIGRATIONS))
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
    except CommandError as exc:
        raise StoreError(f"approvals database {where}: {exc}",
                         hints=["it was written by a newer sre-agent: upgrade, or point SRE_AGENT_DATA elsewhere"]
                         ) from None
    except SQLAlchemyError as exc:
        raise StoreError(f"approvals database {where}: {_reason(exc)}",
                         hints=["is this an approvals database? set SRE_AGENT_DATA (or SRE_AGENT_DATABASE_URL) "
                                "to another one"]) from None


def _legacy(conn: Connection, where: str) -> None:
    """A SQLite store from before alembic (its `meta` table holds the schema version): bring its approvals table
    to the columns migration 0001 expects."""
    tables = set(inspect(conn).get_table_names())
    if "meta" in tables and "alembic_version" not in tables:
        migrate_legacy(conn, where)


def _reason(exc: SQLAlchemyError) -> str:
    original = getattr(exc, "orig", None)
    return redact(str(original if original is not None else exc).splitlines()[0])
