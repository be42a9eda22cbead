"""Where a queue's work comes from, read off tool results: a queue that went quiet (its consumers waiting, nothing
published) when a workload upstream of it went to 0 or rolled out names that workload as its producer."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent.findings import STATEFUL_POD_EVENT, recent_rollout, revision
from agent.signals import consumer_refs

PRODUCER_STOP_MATCH_S = 180  # a workload changed this close to when a queue went quiet fed that queue


def quiet_since(queue: dict[str, Any]) -> datetime | None:
    """When a queue's traffic stopped: consumers attached and waiting, nothing published and nothing waiting, and
    the broker reporting it idle since then (so it had traffic until that moment)."""
    if not queue.get("consumers") or queue.get("publish_rate") or queue.get("messages") or not queue.get("idle_since"):
        return None
    return _moment(queue["idle_since"])


def went_to_zero_at(detail: dict[str, Any], desired_history: dict[str, Any] | None) -> datetime | None:
    """When a workload at 0 was scaled there: its latest scaling in the API's hour, else the replica history."""
    if detail.get("desired") != 0:
        return None
    scaled = (detail.get("last_scaled") or {}).get("at")
    if scaled:
        return _moment(scaled)
    for series in (desired_history or {}).get("series") or []:
        trend = series.get("trend") or {}
        if trend.get("last") == 0 and (trend.get("max") or 0) > 0 and trend.get("last_change"):
            return _moment(trend["last_change"])
    return None


def rolled_out_at(detail: dict[str, Any]) -> datetime | None:
    """When a workload's current template took over, if that was within its recent events (a rollout)."""
    if revision(detail) < 2 or not recent_rollout(detail):
        return None
    rollout = [e for e in detail.get("events") or [] if e.get("reason") == "ScalingReplicaSet"
               or STATEFUL_POD_EVENT.match(str(e.get("message", "")))]
    moments = [m for e in rollout if (m := _moment(str(e.get("last_seen", ""))))]
    return max(moments) if moments else None


def stopped_producer(queue: dict[str, Any], changes: dict[tuple[str, str], datetime]) -> tuple[str, str] | None:
    """The producer that went away or changed: a queue went quiet within minutes of a workload (not its consumer)
    going to 0 or rolling out a new template (`changes`: when each did). Its consumers wait for work that no
    longer arrives: the producer stopped, or now publishes somewhere else."""
    quiet = quiet_since(queue)
    consumers = set(consumer_refs(queue))
    if quiet is None:
        return None
    close = sorted((abs((at - quiet).total_seconds()), ref) for ref, at in changes.items() if ref not in consumers)
    return close[0][1] if close and close[0][0] <= PRODUCER_STOP_MATCH_S else None


def _moment(text: str) -> datetime | None:
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None
