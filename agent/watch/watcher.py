"""The watcher: sweep after sweep, it remembers what it has seen, tells people once per anomaly, and says when an
anomaly ends.

- An anomaly is raised when it has lasted its grace period (`Anomaly.grace_s`), once: later sweeps that see it
  again change nothing.
- It is resolved when a sweep that read every source no longer sees it. A sweep with an unread source resolves
  nothing: a source that could not be read shows nothing either way.
- The same anomaly coming back within the cooldown of its resolution is treated as the one already raised
  (a flapping queue pages once).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from agent.watch.sweep import Anomaly, sweep
from tools.toolkit import Sources, Toolbox

DEFAULT_INTERVAL = timedelta(seconds=60)
DEFAULT_COOLDOWN = timedelta(minutes=30)


@dataclass
class Notice:
    """What a person is told: an anomaly raised (with its investigation's verdict when one ran) or resolved."""

    event: Literal["raised", "resolved"]
    anomaly: Anomaly
    at: datetime
    first_seen: datetime
    verdict: dict[str, Any] | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"event": self.event, "key": self.anomaly.key, "kind": self.anomaly.kind,
                "summary": self.anomaly.summary, "question": self.anomaly.question(),
                "namespaces": list(self.anomaly.namespaces), "workloads": list(self.anomaly.workloads),
                "queues": list(self.anomaly.queues), "at": self.at.isoformat(),
                "first_seen": self.first_seen.isoformat(), "verdict": self.verdict, "error": self.error}


@dataclass
class _Tracked:
    anomaly: Anomaly
    first_seen: datetime
    raised_at: datetime | None = None
    resolved_at: datetime | None = None


Investigate = Callable[[Anomaly], dict[str, Any]]


class Watcher:
    def __init__(self, sources: Sources, *, investigate: Investigate | None = None,
                 cooldown: timedelta = DEFAULT_COOLDOWN, toolbox: Toolbox | None = None) -> None:
        self.sources, self.investigate, self.cooldown, self.toolbox = sources, investigate, cooldown, toolbox
        self._tracked: dict[str, _Tracked] = {}
        self._consumers: dict[str, list[tuple[str, str]]] = {}
        self.sweeps = 0
        self.quiet: list[str] = []
        self.unread: list[str] = []

    def step(self) -> list[Notice]:
        """One sweep at the sources' clock; the notices it gives, in order."""
        now = self.sources.clock()
        found = sweep(self.sources, self.toolbox, self._consumers)
        self._consumers.update(found.consumers)
        self.sweeps += 1
        self.quiet, self.unread = found.quiet, found.unread
        notices = []
        current = {a.key: a for a in found.anomalies}
        for key, anomaly in current.items():
            tracked = self._tracked.get(key)
            if tracked is None or (tracked.resolved_at is not None and not self._cooling(tracked, now)):
                tracked = self._tracked[key] = _Tracked(anomaly, first_seen=now)
            tracked.anomaly, tracked.resolved_at = anomaly, None
            if tracked.raised_at is None and now - tracked.first_seen >= timedelta(seconds=anomaly.grace_s):
                tracked.raised_at = now
                notices.append(self._raise(tracked, now))
        if not found.unread:
            for key, tracked in self._tracked.items():
                if key not in current and tracked.resolved_at is None:
                    tracked.resolved_at = now
                    if tracked.raised_at is not None:
                        notices.append(Notice("resolved", tracked.anomaly, now, tracked.first_seen))
        return notices

    def _cooling(self, tracked: _Tracked, now: datetime) -> bool:
        return (tracked.raised_at is not None and tracked.resolved_at is not None
                and now - tracked.resolved_at < self.cooldown)

    def _raise(self, tracked: _Tracked, now: datetime) -> Notice:
        notice = Notice("raised", tracked.anomaly, now, tracked.first_seen)
        if self.investigate is not None:
            try:
                notice.verdict = self.investigate(tracked.anomaly)
            except Exception as exc:  # the watcher goes on; the notice says the investigation failed
                from agent.server.runner import describe

                notice.error = f"the investigation failed: {describe(exc)}"
        return notice

    def open_anomalies(self) -> list[Anomaly]:
        return [t.anomaly for t in self._tracked.values() if t.raised_at is not None and t.resolved_at is None]


def replay_steps(sources: Sources, start: datetime, until: datetime,
                 interval: timedelta = DEFAULT_INTERVAL) -> Iterator[datetime]:
    """Move a replayed world's clock from `start` to `until` by `interval`, yielding at each moment."""
    world = sources.extras["world"]
    moment = start
    while moment <= until:
        world.advance_to(moment)
        yield moment
        moment += interval
