"""How many replicas a scale action asks for, from what the tools showed (shared by every model)."""

from __future__ import annotations

import math
import re

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
