"""The bounds a scenario stays within, so that one replay takes about a second and a few hundred MB.

Each limit is defined once, here; docs/scenarios.md ("Limits") lists them. The loader (`tools.replay.loading`)
applies the file limits before and while parsing, the model (`tools.replay.scenario`) the field limits and the
replay budget, and the simulator (`tools.replay.world`) the budget again for any span it is asked to simulate, so
a world built by code or moved past its clock cannot hang either.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.replay.scenario import World

# ---- the file ------------------------------------------------------------------------------------------------
MAX_FILE_BYTES = 1_000_000
"""One scenario file (or a file it extends), refused before it is parsed."""
MAX_DEPTH = 24
"""Nesting of mappings and lists; the deepest real scenario nests 8."""
MAX_NODES = 200_000
"""YAML nodes in one file, counting every use of an alias (a billion laughs is refused, not expanded)."""
MAX_EXTENDS = 8
"""Files in one `extends` chain."""
MAX_ITEMS = 1_000
"""Entries of any one list or mapping after `extends` is merged (deployments, steps, events, points, labels…)."""
MAX_TEXT = 4_000
"""Characters in any one string (a question, a message template, a name)."""

# ---- time ------------------------------------------------------------------------------------------------------
MAX_HISTORY = timedelta(hours=24)
"""From `world.start` to `clock.now`: the simulated history."""
MAX_AFTER_CLOCK = timedelta(hours=6)
"""How far actions, a remediation's verification or a watch's `--until` may move a replay past its clock."""
EARLIEST = datetime(1971, 1, 1, tzinfo=UTC)
LATEST = datetime(2999, 12, 31, tzinfo=UTC)
"""Any moment in a file lies between EARLIEST and LATEST."""
MAX_SECONDS = 86_400
"""`startup_seconds`, `cooldown_seconds` and `polling_seconds`."""

# ---- sizes and rates -----------------------------------------------------------------------------------------
MAX_QUEUE_DEPTH = 50_000
"""`initial_depth` of a queue (each message is held and delivered one by one)."""
MAX_REPLICAS = 1_000
"""Any replica count: a deployment's, a timeline change's, an autoscaler's bounds, a hang's pods, a scale action."""
MAX_RATE_PER_MIN = 10_000.0
"""`rate_per_min` of a flow, a log stream or a consumer."""
MAX_PER_REPLICA = 100
"""Consumers per replica of one consuming workload."""
MAX_PREFETCH = 10_000
"""A consumer's prefetch (basic.qos)."""
MAX_LATENCY_MS = 600_000.0
MAX_CPU_MILLICORES = 1_000_000.0
MAX_MEMORY_MIB = 10_000_000.0
MAX_METRIC_VALUE = 1e15
"""The absolute value of an extra metric's point."""
MAX_NOISE = 10.0
"""An extra metric's relative noise."""

# ---- the whole replay ------------------------------------------------------------------------------------------
MAX_REPLAY_LINES = 50_000
"""Records a replay up to the clock may write at most (log lines, request spans, queued messages, Kubernetes events),
estimated from the rates, the steps, the timelines and the history: about 25 µs and 2.5 KB each."""
MAX_REPLAY_STEPS = 500_000
"""Simulation steps up to the clock: 5-second ticks × (workloads + pods + log streams + flows + queues and their
consumers), about 1-2 µs each."""
SIMULATOR_HEADROOM = 2
"""The simulator refuses a span whose estimate exceeds this many times the two budgets above (a replay moved past
its clock does more than the validated replay, but never unboundedly more)."""

TICK_SECONDS = 5


@dataclass(frozen=True)
class ReplayCost:
    """What simulating a world over a span costs, estimated from its spec (an upper bound, not a prediction)."""

    lines: int
    steps: int
    hours: float

    def problems(self, factor: int = 1) -> list[str]:
        """Why the cost is over budget (empty when it is not), each naming the estimate and the limit."""
        found = []
        if self.lines > MAX_REPLAY_LINES * factor:
            found.append(f"a replay would write about {self.lines:,} records (log lines, spans, messages, events over "
                         f"{self.hours:.1f} h), above the limit of {MAX_REPLAY_LINES * factor:,} (MAX_REPLAY_LINES): "
                         "lower the rates, the depths or the replicas, or shorten the history")
        if self.steps > MAX_REPLAY_STEPS * factor:
            found.append(f"a replay would take about {self.steps:,} simulation steps ({self.hours:.1f} h of 5-second "
                         f"ticks × objects and pods), above the limit of {MAX_REPLAY_STEPS * factor:,} "
                         "(MAX_REPLAY_STEPS): fewer workloads or pods, or a shorter history")
        return found


def _minutes(begin: datetime | None, end: datetime | None, start: datetime, until: datetime) -> float:
    lo = max(begin or start, start)
    hi = min(end or until, until)
    return max(0.0, (hi - lo).total_seconds() / 60)


def replay_cost(world: World, until: datetime, pods: int = 0) -> ReplayCost:
    """The cost of simulating `world` from its start to `until`; `pods` are already running (a world acted on)."""
    start = world.start
    seconds = max(0.0, (until - start).total_seconds())
    lines = float(len(world.logs) + len(world.events))
    objects = len(world.deployments) + len(world.flows)
    planned_pods = 0
    for deployment in world.deployments:
        for stream in deployment.logs:
            lines += stream.rate_per_min * _minutes(stream.start, stream.end, start, until)
        objects += len(deployment.logs)
        timeline = [deployment.replicas] if isinstance(deployment.replicas, int) else [
            change.replicas for change in deployment.replicas]
        lines += 4 * sum(timeline)  # every pod started writes its events
        most = max(timeline, default=0)
        scaler = deployment.autoscaler
        if scaler is not None:
            most = max(most, scaler.max_replicas)
            if scaler.kind == "ScaledObject" and scaler.queue:
                period = max(scaler.polling_seconds, scaler.cooldown_seconds, TICK_SECONDS)
                lines += 8 * scaler.max_replicas * seconds / period  # activations and deactivations
        planned_pods += most
    for flow in world.flows:
        per_arrival = sum(1 if step.deployment else 2 for step in flow.steps)  # a publish is consumed, a call spans
        lines += flow.rate_per_min * _minutes(flow.start, flow.end, start, until) * per_arrival
    for queue in world.queues:
        lines += queue.initial_depth
        objects += 1 + len(queue.consumers)
    steps = seconds / TICK_SECONDS * (objects + max(planned_pods, pods))
    return ReplayCost(lines=int(lines), steps=int(steps), hours=seconds / 3600)
