"""Progress events from the investigation threads to the server-sent-event streams on the event loop."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator
from typing import Any

Event = dict[str, Any]


class Channel:
    """The events of one investigation, in order; followers read from any position until it is closed."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.closed = False
        self._lock = threading.Lock()
        self._waiters: set[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = set()

    def publish(self, event: Event) -> None:
        with self._lock:
            self.events.append(event)
        self._wake()

    def close(self) -> None:
        with self._lock:
            self.closed = True
        self._wake()

    def snapshot(self) -> list[Event]:
        with self._lock:
            return list(self.events)

    def _wake(self) -> None:
        with self._lock:
            waiters = list(self._waiters)
        for loop, flag in waiters:
            with contextlib.suppress(RuntimeError):  # that follower's loop is gone
                loop.call_soon_threadsafe(flag.set)

    async def follow(self, start: int = 0) -> AsyncIterator[tuple[int, Event]]:
        """(index, event) from `start` on, as they come, until the channel is closed."""
        position = start
        loop = asyncio.get_running_loop()
        while True:
            flag = asyncio.Event()
            waiter = (loop, flag)
            with self._lock:
                self._waiters.add(waiter)
                fresh, closed = self.events[position:], self.closed
            try:
                for event in fresh:
                    yield position, event
                    position += 1
                if closed and not fresh:
                    return
                if not fresh:
                    await flag.wait()
            finally:
                with self._lock:
                    self._waiters.discard(waiter)


class EventHub:
    """A channel per investigation started by this process."""

    def __init__(self) -> None:
        self._channels: dict[str, Channel] = {}
        self._lock = threading.Lock()

    def channel(self, investigation_id: str) -> Channel:
        with self._lock:
            return self._channels.setdefault(investigation_id, Channel())

    def existing(self, investigation_id: str) -> Channel | None:
        with self._lock:
            return self._channels.get(investigation_id)

    def drop(self, investigation_id: str) -> None:
        """Forget a finished investigation's channel (its followers keep reading it; new ones read the record)."""
        with self._lock:
            self._channels.pop(investigation_id, None)
