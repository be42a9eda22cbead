"""How many replicas a scale action asks for, from what the tools showed (shared by every model)."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent.verdict import Verdict

ScaleBounds = Callable[[str, str], "tuple[int, int] | None"]
"""(namespace, name) -> the replica counts the remediation policy lets a scale of that workload ask for."""

HEADROOM = 1.25
DRAIN_S = 15 * 60  # an on-call engineer expects the backlog gone within a quarter of an hour


def previous_replicas(scaling_message: str) -> int | None:
    """The count before the last scale-down, from messages like `Scaled down replica set x to 0 from 1`."""
    match = re.search(r"from (\d+)", scaling_message)
    return int(match.group(1)) if match else None


def replicas_to_keep_up(current: int, publish_rate: float, deliver_rate: float, backlog: float = 0.0) -> int:
    """Consumers needed to outpace the producers with headroom and drain the backlog within DRAIN_S, assuming
    throughput scales per replica (rates per second, as the broker reports them)."""
    current = max(1, current)
    if not deliver_rate:
        return current + 1
    per_replica = deliver_rate / current
    needed = math.ceil((publish_rate * HEADROOM + backlog / DRAIN_S) / per_replica)
    return max(current + 1, needed)


def within_bounds(verdict: Verdict, bounds: ScaleBounds | None) -> list[str]:
    """Fit a proposed scale into the policy's replica bounds, so what is proposed can be approved and run, and
    say what the evidence asked for; the validation notes that result."""
    remediation = verdict.remediation
    action = remediation.action if remediation else None
    if bounds is None or remediation is None or action is None or action.action != "scale" or not action.replicas:
        return []
    limits = bounds(action.namespace, action.name)
    if limits is None or limits[0] <= action.replicas <= limits[1]:
        return []
    wanted, fitted = action.replicas, min(max(action.replicas, limits[0]), limits[1])
    remediation.action = action.model_copy(update={"replicas": fitted})
    remediation.command = remediation.action.command()
    said = remediation.rationale.rstrip()
    remediation.rationale = (f"{said}{'' if said.endswith(('.', '!', '?')) else '.'} " if said else "") + (
        f"The evidence asks for {wanted} replicas; the remediation policy allows {limits[0]}..{limits[1]} for "
        f"{action.namespace}/{action.name}, so this proposes {fitted}: watch whether it keeps up.")
    return [f"scale sized {wanted} → {fitted}: the policy's bounds for {action.namespace}/{action.name}"]
