"""Time expressions as SREs type them: `now`, `now-15m`, ISO 8601, or epoch seconds."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tools.errors import BadArgument

_RELATIVE = re.compile(r"^now\s*(?:(?P<sign>[-+])\s*(?P<n>\d+)\s*(?P<unit>s|m|h|d|w))?$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(UTC)


def fixed_clock(now: datetime) -> Clock:
    return lambda: now


def parse_time(text: str | int | float | datetime, now: datetime) -> datetime:
    """Resolve a time expression against `now` (UTC)."""
    if isinstance(text, datetime):
        return text if text.tzinfo else text.replace(tzinfo=UTC)
    if isinstance(text, int | float):
        return datetime.fromtimestamp(float(text), UTC)
    value = text.strip()
    match = _RELATIVE.match(value)
    if match:
        if not match.group("n"):
            return now
        delta = timedelta(**{_UNITS[match.group("unit")]: int(match.group("n"))})
        return now - delta if match.group("sign") == "-" else now + delta
    if re.fullmatch(r"\d{9,11}(\.\d+)?", value):
        return datetime.fromtimestamp(float(value), UTC)
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadArgument(
            f"cannot read time {text!r}",
            hints=["use 'now', 'now-15m', 'now-2h', an ISO time like 2025-11-09T14:43:00Z, or epoch seconds"],
        ) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@dataclass(frozen=True)
class TimeRange:
    start: datetime
    end: datetime

    @property
    def duration(self) -> timedelta:
        return self.end - self.start

    def previous(self) -> TimeRange:
        return TimeRange(self.start - self.duration, self.start)


def resolve_range(start: str, end: str, now: datetime, *, max_span: timedelta = timedelta(days=7)) -> TimeRange:
    begin, finish = parse_time(start, now), parse_time(end, now)
    finish = min(finish, now)
    if begin >= finish:
        raise BadArgument(
            f"time range is empty: start {iso(begin)} is not before end {iso(finish)} (now is {iso(now)})",
            hints=["pass start earlier than end, e.g. start='now-15m', end='now'"],
        )
    if finish - begin > max_span:
        raise BadArgument(f"time range longer than {max_span}", hints=["narrow the range"])
    return TimeRange(begin, finish)


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def hhmm(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%H:%M:%SZ")
