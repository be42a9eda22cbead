"""LangGraph checkpointers: where a paused graph (waiting for a human's approval) survives a restart.

`make_checkpointer()` opens SQLite in the data dir; a path or `sqlite:///path` opens that file; a
`postgresql://…` URL opens PostgreSQL (needs langgraph-checkpoint-postgres and psycopg). Use it as a
context manager; the connection closes with it. Tables are created on first use.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from langgraph.checkpoint.base import BaseCheckpointSaver

from agent.remediation.errors import CheckpointerError
from agent.remediation.paths import data_dir
from tools.redaction import redact

POSTGRES_SCHEMES = ("postgresql://", "postgres://")


@contextmanager
def make_checkpointer(url_or_path: str | Path | None = None) -> Iterator[BaseCheckpointSaver]:
    target = str(url_or_path) if url_or_path is not None else str(data_dir() / "checkpoints.sqlite")
    if target.startswith(POSTGRES_SCHEMES):
        with _postgres(target) as saver:
            yield saver
        return
    if "://" in target and not target.startswith("sqlite://"):
        scheme = target.split("://", 1)[0]
        raise CheckpointerError(f"unsupported checkpointer URL scheme {scheme!r} in {redact(target)}",
                                hints=["use a file path, sqlite:///path, or postgresql://user:pass@host/db"])
    with _sqlite(target.removeprefix("sqlite://")) as saver:
        yield saver


@contextmanager
def _sqlite(path: str) -> Iterator[BaseCheckpointSaver]:
    from langgraph.checkpoint.sqlite import SqliteSaver

    if path != ":memory:":
        try:
            Path(path).expanduser().parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CheckpointerError(f"cannot create the folder for checkpoints {path}: {exc.strerror}") from None
        path = str(Path(path).expanduser())
    try:
        conn = sqlite3.connect(path, check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
    except sqlite3.Error as exc:
        raise CheckpointerError(f"cannot open SQLite checkpoints at {path}: {exc}") from None
    try:
        yield saver
    finally:
        conn.close()


@contextmanager
def _postgres(url: str) -> Iterator[BaseCheckpointSaver]:
    try:
        import psycopg
        from langgraph.checkpoint.postgres import PostgresSaver
        from psycopg.rows import dict_row
    except ImportError as exc:
        raise CheckpointerError(f"PostgreSQL checkpoints need langgraph-checkpoint-postgres and psycopg: {exc}",
                                hints=["pip install langgraph-checkpoint-postgres 'psycopg[binary]'"]) from None
    try:
        conn = psycopg.connect(url, autocommit=True, prepare_threshold=0, row_factory=dict_row)
    except psycopg.Error as exc:
        raise CheckpointerError(f"cannot connect to PostgreSQL at {redact(url)}: {str(exc).strip()}") from None
    try:
        saver = PostgresSaver(conn)
        try:
            saver.setup()
        except psycopg.Error as exc:
            raise CheckpointerError(f"cannot create checkpoint tables at {redact(url)}: {str(exc).strip()}") from None
        yield saver
    finally:
        conn.close()
