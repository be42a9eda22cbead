"""The state a simulated World evolves: pods, revisions, workloads, queues, request spans and the per-tick
snapshots the metrics are read from, with the seeded hashes and suffixes everything is named with."""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import NamedTuple

from tools.replay.scenario import Deployment, Hang, PodState, Queue

TICK = timedelta(seconds=5)
METRIC_INTERVAL = 15
_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_ready_failing(pod: PodSim, now: datetime) -> bool:
    return (now - pod.created).total_seconds() >= 10


def _stable_hash(*parts: object) -> int:
    return int.from_bytes(hashlib.sha256("|".join(map(str, parts)).encode()).digest()[:8], "big")


def _suffix(length: int, *parts: object) -> str:
    value = _stable_hash(*parts)
    chars = []
    for _ in range(length):
        value, index = divmod(value, len(_ALPHABET))
        chars.append(_ALPHABET[index])
    return "".join(chars)


@dataclass
class PodSim:
    name: str
    created: datetime
    state: PodState
    reason: str | None
    node: str
    ip: str = ""
    hung: bool = False

    def ready_at(self, startup: int) -> datetime:
        return self.created + timedelta(seconds=startup)

    def restarts(self, now: datetime) -> int:
        if self.state != "crashloop":
            return 0
        elapsed = (now - self.created).total_seconds()
        count, spent, backoff = 0, 0.0, 10.0
        while backoff < 300.0 and spent + 5 + backoff <= elapsed:
            spent += 5 + backoff
            count += 1
            backoff = min(backoff * 2, 300.0)
        if backoff >= 300.0 and spent + 305 <= elapsed:  # the back-off has reached its cap: one restart per 305 s
            count += int((elapsed - spent) // 305)
        return count


@dataclass
class Revision:
    number: int
    image: str
    pod_state: PodState
    reason: str | None
    template_hash: str


@dataclass
class DeploymentSim:
    spec: Deployment
    namespace: str
    desired: int
    revision: Revision
    history: list[Revision]
    annotations: dict[str, str]
    pods: list[PodSim] = field(default_factory=list)
    pod_counter: int = 0
    hangs: list[Hang] = field(default_factory=list)
    last_poll: datetime | None = None
    idle_since: datetime | None = None

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def labels(self) -> dict[str, str]:
        return self.spec.labels or {"name": self.spec.name}

    def available(self, now: datetime) -> int:
        return len(self.ready_pods(now))

    def ready_pods(self, now: datetime) -> list[PodSim]:
        started_by = now - timedelta(seconds=self.spec.startup_seconds)  # ready once started up
        return [p for p in self.pods if p.state == "running" and p.created <= started_by]

    def crashing(self) -> bool:
        return any(p.state == "crashloop" for p in self.pods)


@dataclass
class QueueSim:
    spec: Queue
    ready: deque[dict[str, str]]
    published: int = 0
    delivered: int = 0
    acked: int = 0
    redelivered: int = 0
    last_activity: datetime | None = None
    consume_credit: dict[int, float] = field(default_factory=dict)
    unacked: dict[str, list[dict[str, str]]] = field(default_factory=dict)  # pod name -> messages it holds

    def unacked_count(self) -> int:
        return sum(len(held) for held in self.unacked.values())


class QueueState(NamedTuple):
    ready: int
    consumers: int
    published: int
    delivered: int
    up: bool
    unacked: int = 0
    acked: int = 0
    working: int = 0  # consumers that are making progress
    redelivered: int = 0


@dataclass
class Request:
    """One span a service served, for the APM trace metrics."""

    at: datetime
    namespace: str
    service: str
    error: bool
    seconds: float


@dataclass
class Snapshot:
    time: datetime
    deployments: dict[tuple[str, str], tuple[int, int, int, int]]  # desired, available, pods, restarts
    queues: dict[tuple[str, str], QueueState]
