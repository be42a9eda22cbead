"""What the investigation could actually read: a source whose calls failed (down, rate-limited, timed out,
refused, not configured, answering garbage) has shown nothing, so nothing it would have shown is ruled out.

`healthy` rests on signals that were read; a verdict whose sources could not all be read says which ones, and
is `inconclusive` unless the sources that were read prove an incident on their own.
"""

from __future__ import annotations

from dataclasses import dataclass

from agent.signals import Observation

SOURCE_OF_TOOL = {
    "list_namespaces": "Kubernetes", "get_deployment": "Kubernetes", "list_events": "Kubernetes",
    "search_logs": "Datadog", "get_metric": "Datadog", "get_queue_stats": "RabbitMQ",
}
# Errors about the question asked, not about the source: the source answered.
ANSWERED_ERRORS = ("bad_query", "bad_argument", "not_found", "unknown_metric")
# What each source would have shown; a category it speaks to is not ruled out while it is unread.
SHOWS = {
    "RabbitMQ": ("consumer_unavailable", "consumer_too_slow", "consumer_stuck", "broker_unavailable",
                 "resource_exhaustion"),
    "Kubernetes": ("consumer_unavailable", "consumer_crashlooping", "consumer_stuck", "broker_unavailable",
                   "dependency_unavailable", "resource_exhaustion", "config_change", "planned_maintenance"),
    "Datadog": ("app_errors", "dependency_unavailable", "consumer_unavailable", "consumer_stuck"),
}


@dataclass(frozen=True)
class Unread:
    source: str
    reason: str
    call_ids: tuple[str, ...]

    def describe(self) -> str:
        calls = f"; {', '.join(self.call_ids)}" if self.call_ids else ""
        return f"{self.source} could not be read ({self.reason}{calls})"


NAMES = {"datadog": "Datadog", "kubernetes": "Kubernetes", "rabbitmq": "RabbitMQ"}


def unread_sources(history: list[Observation], missing: dict[str, str] | None = None) -> list[Unread]:
    """Sources with a failed call that no later call of the same tool made up for, and sources this process has
    no configuration for (`Sources.missing`), whether or not a call tried them."""
    unread = []
    for source in dict.fromkeys(SOURCE_OF_TOOL.values()):
        calls = [o for o in history if SOURCE_OF_TOOL.get(o.tool) == source]
        failed = [o for o in calls if not o.ok and o.data.get("error") not in ANSWERED_ERRORS]
        if not failed:
            continue
        last_failure = max(history.index(o) for o in failed)
        recovered = {o.tool for o in history[last_failure + 1:] if o.ok}
        lost = [o for o in failed if o.tool not in recovered]
        if lost:
            reason = f"{lost[-1].data.get('error', 'error')}: {str(lost[-1].data.get('message', ''))[:160]}"
            unread.append(Unread(source, reason, tuple(o.call_id for o in lost)))
    named = {u.source for u in unread}
    for key, message in (missing or {}).items():
        source = NAMES.get(key, key)
        if source not in named:
            unread.append(Unread(source, f"not configured: {message}", ()))
    return unread


def still_possible(ruled_out: list[str], unread: list[Unread]) -> list[str]:
    """The ruled-out lines that an unread source would have had to confirm are dropped."""
    blind = {category for u in unread for category in SHOWS.get(u.source, ())}
    return [line for line in ruled_out if line.split(":", 1)[0].strip() not in blind]
