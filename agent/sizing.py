"""How many replicas a scale action asks for, from what the tools showed (shared by every model)."""

from __future__ import annotations

import math
import re

HEADROOM = 1.25


def previous_replicas(scaling_message: str) -> int | None:
    """The count before the last scale-down, from messages like `Scaled down replica set x to 0 from 1`."""
    match = re.search(r"from (\d+)", scaling_message)
    return int(match.group(1)) if match else None


def replicas_to_keep_up(current: int, publish_rate: float, deliver_rate: float) -> int:
    """Consumers needed to outpace the producers with headroom, assuming throughput scales per replica."""
    current = max(1, current)
    needed = math.ceil(current * publish_rate / deliver_rate * HEADROOM) if deliver_rate else current + 1
    return max(current + 1, needed)
