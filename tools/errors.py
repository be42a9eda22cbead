"""Expected failures of a data source. Tools turn them into typed error results the model can act on."""

from __future__ import annotations

from typing import Literal

from tools.redaction import redact

ErrorKind = Literal[
    "bad_query", "bad_argument", "not_found", "unknown_metric", "unavailable", "rate_limited", "auth", "timeout",
    "not_configured", "bad_response"
]


class SourceError(Exception):
    """A failure the caller should expect and report, not crash on. Its message and hints are redacted here, once,
    so no credential in a URL, header or setting reaches a tool result, a log or a terminal through them."""

    kind: ErrorKind = "unavailable"

    def __init__(self, message: str, *, hints: list[str] | None = None) -> None:
        message = redact(message)
        super().__init__(message)
        self.message = message
        self.hints = [redact(hint) for hint in hints or []]


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


class NotConfigured(SourceError):
    """The source is not configured in this process; the message names what to set."""

    kind = "not_configured"


class BadResponse(SourceError):
    """The source answered, but with a body that is not what its API returns (truncated, HTML, wrong types)."""

    kind = "bad_response"


def transport_failure(exc: Exception, source: str, timeout_s: float) -> SourceError:
    """A urllib3 failure of a request to `source` (Datadog's and Kubernetes' clients use urllib3): TimedOut when it
    waited `timeout_s` in vain, else Unavailable with the reason. A refused connection is Unavailable although
    urllib3's NewConnectionError subclasses ConnectTimeoutError: nothing was waited for."""
    import urllib3

    reason = getattr(exc, "reason", None) or exc
    if isinstance(reason, urllib3.exceptions.TimeoutError) and not isinstance(
            reason, urllib3.exceptions.NewConnectionError):
        return TimedOut(f"{source} did not answer within {timeout_s} s")
    return Unavailable(f"cannot reach {source}: {reason}")
