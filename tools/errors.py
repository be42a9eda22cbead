"""Expected failures of a data source. Tools turn them into typed error results the model can act on."""

from __future__ import annotations

from typing import Literal

ErrorKind = Literal[
    "bad_query", "bad_argument", "not_found", "unknown_metric", "unavailable", "rate_limited", "auth", "timeout"
]


class SourceError(Exception):
    """A failure the caller should expect and report, not crash on."""

    kind: ErrorKind = "unavailable"

    def __init__(self, message: str, *, hints: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hints = hints or []


class BadQuery(SourceError):
    kind = "bad_query"


class BadArgument(SourceError):
    kind = "bad_argument"


class NotFound(SourceError):
    kind = "not_found"


class UnknownMetric(SourceError):
    kind = "unknown_metric"


class Unavailable(SourceError):
    kind = "unavailable"


class RateLimited(SourceError):
    kind = "rate_limited"


class AuthFailed(SourceError):
    kind = "auth"


class TimedOut(SourceError):
    kind = "timeout"
