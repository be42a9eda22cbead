"""Which server an investigation belongs to, so a replica that starts recovers only the work of servers that are gone.

Each store draws an owner id; a record queued or started through it carries that id. On PostgreSQL the store holds
a session advisory lock on the id, on a connection of its own, for as long as it lives: when its process dies the
connection closes and the lock goes with it. A recovering replica takes over a record only if it can take that lock
itself (held to the end of its transaction, so two recovering replicas never both take the same records). Records
with no owner (imported from JSON files) belong to whoever recovers first.

SQLite is one server's file: a server starting on it takes over every record that is not its own, as a restarted
server should. Session locks need a direct connection or a session-mode pooler (not PgBouncer's transaction mode).
"""

from __future__ import annotations

import contextlib
import secrets
import threading
from typing import Any

from sqlalchemy import Connection, Engine, text

from agent.remediation.errors import StoreError
from tools.redaction import redact

OWNER_LOCKS = 0x5E_A6E9  # pg_advisory_lock(OWNER_LOCKS, owner id): held while the owner is alive


class Owner:
    """One store's claim on the records it queues and runs."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.id = secrets.randbelow(2**31 - 2) + 1
        self._held: Any = None  # the DBAPI connection holding the lock: not pooled, so closing it ends the session
        self._lock = threading.Lock()

    @property
    def _postgresql(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def token(self) -> int:
        """This store's owner id, to write on a record it claims; on PostgreSQL its lock is taken first."""
        if not self._postgresql:
            return self.id
        with self._lock:
            if self._held is None:
                dialect = self.engine.dialect
                cargs, cparams = dialect.create_connect_args(self.engine.url)
                try:
                    held = dialect.connect(*cargs, **cparams)
                    held.cursor().execute("SELECT pg_advisory_lock(%s::integer, %s::integer)", (OWNER_LOCKS, self.id))
                    held.commit()
                except dialect.loaded_dbapi.Error as exc:
                    raise StoreError(f"investigations database {redact(str(self.engine.url))}: cannot hold this "
                                     f"server's lock: {redact(str(exc).splitlines()[0])}") from None
                self._held = held
        return self.id

    def orphaned(self, conn: Connection, owner: int | None) -> bool:
        """A record of `owner` may be recovered in `conn`'s transaction: its server is gone (or it has none)."""
        if owner == self.id:
            return False
        if owner is None or not self._postgresql:
            return True
        taken = conn.execute(text("SELECT pg_try_advisory_xact_lock(CAST(:space AS integer), CAST(:owner AS integer))"),
                             {"space": OWNER_LOCKS, "owner": owner}).scalar()
        return bool(taken)

    def release(self) -> None:
        with self._lock:
            held, self._held = self._held, None
        if held is not None:
            with contextlib.suppress(self.engine.dialect.loaded_dbapi.Error):  # the database went away first
                held.close()

