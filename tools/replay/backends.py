"""Replay implementations of the source protocols, answering any query over a simulated world."""

from __future__ import annotations

import difflib
from bisect import bisect_left
from collections import Counter
from datetime import datetime, timedelta

from tools.datadog.logquery import parse_log_query
from tools.datadog.metricquery import parse_metric_query
from tools.datadog.protocol import LogCount, LogRecord, Series
from tools.errors import NotFound, RateLimited, TimedOut, Unavailable, UnknownMetric
from tools.kubernetes.protocol import AutoscalerInfo, Condition, DeploymentInfo, KubeEvent, PodInfo
from tools.rabbitmq.protocol import QueueInfo
from tools.replay.metrics import RawSeries, derive_series
from tools.replay.pod_events import standing_pod_events
from tools.replay.scenario import Fault
from tools.replay.state import DeploymentSim
from tools.replay.world import World

EVENT_TTL = timedelta(hours=1)
WAITING_REASONS = {"crashloop": "CrashLoopBackOff", "imagepull": "ImagePullBackOff",
                   "configerror": "CreateContainerConfigError", "mountfail": "ContainerCreating"}


class FaultInjector:
    """Makes a source fail (429/5xx/timeout) or lose a window of telemetry, as the scenario says."""

    def __init__(self, faults: list[Fault]) -> None:
        self.faults = faults
        self.calls: Counter[str] = Counter()

    def check(self, source: str) -> None:
        self.calls[source] += 1
        for fault in self.faults:
            if fault.source != source or fault.error is None:
                continue
            if fault.calls is not None and self.calls[source] > fault.calls:
                continue
            if fault.error == "rate_limited":
                raise RateLimited(f"{source}: 429 Too Many Requests (rate limit exceeded)",
                                  hints=["retry later or narrow the query"])
            if fault.error == "timeout":
                raise TimedOut(f"{source}: request timed out")
            raise Unavailable(f"{source}: 500 Internal Server Error")

    def dropped(self, source: str, moment: datetime) -> bool:
        return any(
            f.source == source and f.drop_from is not None and f.drop_to is not None
            and f.drop_from <= moment < f.drop_to
            for f in self.faults
        )


def _timestamp(record: LogRecord) -> datetime:
    return record.timestamp


RECENT_WINDOWS = 8


class ReplayLogs:
    def __init__(self, world: World, faults: FaultInjector) -> None:
        self.world, self.faults = world, faults
        self._recent: dict[tuple[str, datetime, datetime, datetime, int], list[LogRecord]] = {}

    def _window(self, start: datetime, end: datetime) -> list[LogRecord]:
        records = self.world.logs  # kept sorted by timestamp
        first = bisect_left(records, start, key=_timestamp)
        return records[first:bisect_left(records, end, lo=first, key=_timestamp)]

    def _matching(self, query: str, start: datetime, end: datetime) -> list[LogRecord]:
        """The records of the window matching `query`; one tool call asks for the same window several times
        (counts by time, by facet, the samples), so the last few answers are kept until the world moves."""
        key = (query, start, end, self.world.now, len(self.world.logs))
        if key not in self._recent:
            predicate = parse_log_query(query)
            self._recent[key] = [record for record in self._window(start, end)
                                 if not self.faults.dropped("logs", record.timestamp) and predicate(record)]
            while len(self._recent) > RECENT_WINDOWS:
                self._recent.pop(next(iter(self._recent)))
        return self._recent[key]

    def search(self, query: str, start: datetime, end: datetime, limit: int) -> list[LogRecord]:
        """The newest `limit` matches, found from the end of the window backwards."""
        self.faults.check("logs")
        key = (query, start, end, self.world.now, len(self.world.logs))
        if key in self._recent:
            return self._recent[key][::-1][:limit]
        predicate, found = parse_log_query(query), list[LogRecord]()
        for record in reversed(self._window(start, end)):
            if len(found) >= limit:
                break
            if not self.faults.dropped("logs", record.timestamp) and predicate(record):
                found.append(record)
        return found

    def count(self, query: str, start: datetime, end: datetime, group_by: list[str],
              bucket_seconds: int | None) -> list[LogCount]:
        self.faults.check("logs")
        counts: Counter[tuple[datetime | None, tuple[tuple[str, str], ...]]] = Counter()
        for record in self._matching(query, start, end):
            bucket = None
            if bucket_seconds:
                offset = int((record.timestamp - start).total_seconds() // bucket_seconds) * bucket_seconds
                bucket = start + timedelta(seconds=offset)
            group = tuple((facet, str(getattr(record, facet, None) or "")) for facet in group_by)
            counts[(bucket, group)] += 1
        return [LogCount(time=t, group=dict(g), count=n) for (t, g), n in counts.items()]


class ReplayMetrics:
    def __init__(self, world: World, faults: FaultInjector) -> None:
        self.world, self.faults = world, faults
        self._cache: tuple[datetime, list[RawSeries]] | None = None

    def _series(self) -> list[RawSeries]:
        if self._cache is None or self._cache[0] != self.world.now:
            self._cache = (self.world.now, derive_series(self.world))
        return self._cache[1]

    def metric_names(self) -> list[str]:
        return sorted({s.metric for s in self._series()})

    def metric_tags(self, metric: str) -> list[str]:
        return sorted({f"{k}:{v}" for s in self._series() if s.metric == metric for k, v in s.tags.items()})

    def query(self, query: str, start: datetime, end: datetime) -> list[Series]:
        parsed = parse_metric_query(query)
        self.faults.check("metrics")
        candidates = [s for s in self._series() if s.metric == parsed.metric]
        if not candidates:
            close = difflib.get_close_matches(parsed.metric, self.metric_names(), n=5, cutoff=0.5)
            raise UnknownMetric(f"no metric named {parsed.metric!r} has reported data",
                                hints=[f"closest known metrics: {', '.join(close)}" if close
                                       else "list metrics by prefix, e.g. kubernetes_state.deployment.*"])
        groups: dict[tuple[tuple[str, str], ...], list[RawSeries]] = {}
        for raw in candidates:
            if parsed.matches(raw.tags):
                key = tuple((tag, raw.tags.get(tag, "N/A")) for tag in parsed.group_by)
                groups.setdefault(key, []).append(raw)
        result = []
        for key, members in sorted(groups.items()):
            points: list[tuple[datetime, float | None]] = []
            for index, moment in enumerate(members[0].times):
                if not start <= moment <= end:
                    continue
                if self.faults.dropped("metrics", moment):
                    points.append((moment, None))  # an empty interval, as Datadog returns it
                    continue
                values = [v for m in members if (v := m.values[index]) is not None]
                points.append((moment, _aggregate(parsed.aggregator, values)))
            result.append(Series(metric=parsed.metric, tags=[f"{k}:{v}" for k, v in key], points=points))
        return result


def _aggregate(aggregator: str, values: list[float]) -> float | None:
    if not values:
        return None
    if aggregator == "sum":
        return sum(values)
    if aggregator == "min":
        return min(values)
    if aggregator == "max":
        return max(values)
    return sum(values) / len(values)


class ReplayCluster:
    def __init__(self, world: World, faults: FaultInjector) -> None:
        self.world, self.faults = world, faults

    def list_namespaces(self) -> list[str]:
        self.faults.check("kubernetes")
        names = {ns for ns, _ in self.world.deployments} | set(self.world.scenario.world.extra_namespaces)
        return sorted(names | {"default", "kube-system"})

    def _info(self, namespace: str, name: str) -> DeploymentInfo:
        sim = self.world.deployments[(namespace, name)]
        now = self.world.now
        available = sim.available(now)
        desired = sim.desired
        if sim.spec.kind == "StatefulSet":
            # No conditions and no revision annotation: a StatefulSet's revisions are numbered ControllerRevisions.
            return DeploymentInfo(
                namespace=namespace, name=name, desired=desired, ready=available, available=available,
                updated=len(sim.pods), unavailable=max(0, desired - available), images=[sim.revision.image],
                labels=dict(sim.labels), annotations=dict(sim.annotations), selector=dict(sim.labels),
                revision=sim.revision.number, created=self.world.start - timedelta(days=30), kind="StatefulSet",
                autoscaler=self._autoscaler(sim))
        ready_ok = available >= desired
        conditions = [
            Condition(type="Available", status="True" if ready_ok else "False",
                      reason="MinimumReplicasAvailable" if ready_ok else "MinimumReplicasUnavailable",
                      message="Deployment has minimum availability." if ready_ok
                      else "Deployment does not have minimum availability."),
        ]
        stuck = any(p.state != "running" for p in sim.pods)
        conditions.append(Condition(
            type="Progressing", status="False" if stuck else "True",
            reason="ProgressDeadlineExceeded" if stuck else "NewReplicaSetAvailable",
            message=f'ReplicaSet "{self.world.replica_set(sim)}" has '
                    + ("timed out progressing." if stuck else "successfully progressed.")))
        annotations = {"deployment.kubernetes.io/revision": str(sim.revision.number), **sim.annotations}
        return DeploymentInfo(
            namespace=namespace, name=name, desired=desired, ready=available, available=available,
            updated=len(sim.pods), unavailable=max(0, desired - available), images=[sim.revision.image],
            labels=dict(sim.labels), annotations=annotations, selector=dict(sim.labels), conditions=conditions,
            revision=sim.revision.number, created=self.world.start - timedelta(days=30), kind=sim.spec.kind,
            autoscaler=self._autoscaler(sim))

    @staticmethod
    def _autoscaler(sim: DeploymentSim) -> AutoscalerInfo | None:
        spec = sim.spec.autoscaler
        if spec is None:
            return None
        trigger = f"rabbitmq queue {spec.queue} (target {spec.messages_per_replica} messages per replica)" \
            if spec.queue else None
        return AutoscalerInfo(kind=spec.kind, name=spec.name or sim.name, min_replicas=spec.min_replicas,
                              max_replicas=spec.max_replicas, current_replicas=sim.desired, trigger=trigger)

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]:
        self.faults.check("kubernetes")
        return [self._info(ns, name) for ns, name in sorted(self.world.deployments) if ns == namespace]

    def read_deployment(self, namespace: str, name: str) -> DeploymentInfo:
        self.faults.check("kubernetes")
        if (namespace, name) not in self.world.deployments:
            known = sorted(n for ns, n in self.world.deployments if ns == namespace)
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
            hint = f"did you mean: {', '.join(close)}" if close else f"{len(known)} deployments in {namespace!r}"
            raise NotFound(f'deployments.apps "{name}" not found in namespace {namespace!r}', hints=[hint])
        return self._info(namespace, name)

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[PodInfo]:
        self.faults.check("kubernetes")
        now = self.world.now
        pods = []
        for (ns, _), sim in sorted(self.world.deployments.items()):
            if ns != namespace or any(sim.labels.get(k) != v for k, v in selector.items()):
                continue
            for pod in sim.pods:
                ready = pod.state == "running" and pod.ready_at(sim.spec.startup_seconds) <= now
                waiting = WAITING_REASONS.get(pod.state)
                pods.append(PodInfo(
                    name=pod.name, phase="Running" if pod.state in ("running", "crashloop", "unready") else "Pending",
                    ready=ready, restarts=pod.restarts(now), waiting_reason=waiting,
                    last_termination_reason=pod.reason if pod.state == "crashloop" else None,
                    started_at=pod.created, owner=sim.name,
                    **({} if pod.state == "pending" else {"node": pod.node, "ip": pod.ip}),
                    owner_kind=sim.spec.kind))
        return pods

    def list_events(self, namespace: str, since: datetime, kind: str | None = None,
                    name: str | None = None) -> list[KubeEvent]:
        self.faults.check("kubernetes")
        return _events(self.world, namespace, max(since, self.world.now - EVENT_TTL), kind, name)


def _events(world: World, namespace: str, since: datetime, kind: str | None, name: str | None) -> list[KubeEvent]:
    events = [
        e for e in [*world.events, *standing_pod_events(world)]
        if e.namespace == namespace and since <= e.last_seen <= world.now
        and (kind is None or e.kind.lower() == kind.lower()) and (name is None or e.name == name)
    ]
    return sorted(events, key=lambda e: e.last_seen)


class ReplayEventHistory:
    """Datadog's event stream over the world: every Kubernetes event since `world.start`, beyond the API's hour."""

    def __init__(self, world: World, faults: FaultInjector) -> None:
        self.world, self.faults = world, faults

    def list_events(self, namespace: str, since: datetime, kind: str | None = None,
                    name: str | None = None) -> list[KubeEvent]:
        self.faults.check("events")
        return _events(self.world, namespace, since, kind, name)


class ReplayBroker:
    def __init__(self, world: World, faults: FaultInjector) -> None:
        self.world, self.faults = world, faults

    def _ensure_up(self) -> None:
        self.faults.check("rabbitmq")
        if not self.world.broker_up(self.world.now):
            raise Unavailable("cannot reach the RabbitMQ management API: connection refused",
                              hints=["the broker itself may be down; check its deployment"])

    def _info(self, vhost: str, name: str, history_seconds: int) -> QueueInfo:
        world = self.world
        now = world.now
        current = world.snapshot_at(now).queues[(vhost, name)]
        window = timedelta(seconds=60)
        before = world.snapshot_at(now - window).queues[(vhost, name)]
        seconds = window.total_seconds()
        publish_rate = (current.published - before.published) / seconds
        deliver_rate = (current.delivered - before.delivered) / seconds
        ack_rate = (current.acked - before.acked) / seconds
        redeliver_rate = (current.redelivered - before.redelivered) / seconds
        queue = world.queues[(vhost, name)]
        idle = publish_rate == 0 and deliver_rate == 0 and ack_rate == 0
        samples = []
        if history_seconds:
            step = max(5, history_seconds // 20)
            moment = now - timedelta(seconds=history_seconds)
            while moment <= now:
                if moment >= world.start:
                    then = world.snapshot_at(moment).queues[(vhost, name)]
                    samples.append((moment, then.ready + then.unacked))
                moment += timedelta(seconds=step)
        return QueueInfo(
            vhost=vhost, name=name, messages=current.ready + current.unacked, ready=current.ready,
            unacked=current.unacked, consumers=current.consumers,
            consumer_utilisation=round(current.working / current.consumers, 3) if current.consumers else None,
            publish_rate=round(publish_rate, 3), deliver_rate=round(deliver_rate, 3), ack_rate=round(ack_rate, 3),
            redeliver_rate=round(redeliver_rate, 3) or None,
            dead_letter_exchange="" if queue.spec.dead_letter else None, dead_letter_routing_key=queue.spec.dead_letter,
            depth_rate=round((current.ready + current.unacked - before.ready - before.unacked) / seconds, 3),
            idle_since=queue.last_activity if idle else None, durable=queue.spec.durable, state="running",
            depth_samples=samples, consumer_hosts=world.consumer_hosts(queue.spec, now))

    def alarms(self) -> list[str]:
        self._ensure_up()
        return self.world.alarms(self.world.now)

    def list_queues(self, vhost: str | None = None) -> list[QueueInfo]:
        self._ensure_up()
        return [self._info(v, n, 0) for v, n in sorted(self.world.queues) if vhost in (None, v)]

    def get_queue(self, vhost: str, name: str, history_seconds: int = 0) -> QueueInfo:
        self._ensure_up()
        if (vhost, name) not in self.world.queues:
            known = sorted(n for v, n in self.world.queues if v == vhost)
            raise NotFound(f"queue {name!r} not found in vhost {vhost!r}",
                           hints=[f"queues in {vhost!r}: {', '.join(known) or 'none'}"])
        return self._info(vhost, name, history_seconds)
