"""Scenario worlds replayed through the same protocols as the live sources."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from tools.kubernetes.history import ClusterWithEventHistory
from tools.replay.backends import (
    FaultInjector,
    ReplayBroker,
    ReplayCluster,
    ReplayEventHistory,
    ReplayLogs,
    ReplayMetrics,
)
from tools.replay.loading import load_scenario
from tools.replay.scenario import Scenario
from tools.replay.world import World
from tools.toolkit import Sources


def replay_sources(scenario: Scenario | str | Path, *, now: datetime | None = None,
                   horizon: datetime | None = None) -> Sources:
    """The scenario's world as sources; `now` and `horizon` as in `World` (a watch replays from an earlier `now`
    up to a later `horizon`)."""
    loaded = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
    world = World(loaded, now=now, horizon=horizon)
    faults = FaultInjector(loaded.world.faults)
    return Sources(logs=ReplayLogs(world, faults), metrics=ReplayMetrics(world, faults),
                   cluster=ClusterWithEventHistory(ReplayCluster(world, faults), ReplayEventHistory(world, faults)),
                   broker=ReplayBroker(world, faults),
                   clock=lambda: world.now, label=f"replay:{loaded.id}", extras={"world": world, "scenario": loaded})
