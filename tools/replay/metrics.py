"""Datadog metrics derived from a world's snapshots: KSM, kubelet and RabbitMQ integration series."""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta

from tools.replay.scenario import ExtraMetric
from tools.replay.state import METRIC_INTERVAL, _stable_hash
from tools.replay.world import World


@dataclass
class RawSeries:
    metric: str
    tags: dict[str, str]
    times: list[datetime]
    values: list[float | None]


def _jitter(seed: int, *parts: object) -> float:
    return (_stable_hash(seed, *parts) % 2001) / 1000.0 - 1.0


def _sample_times(world: World) -> list[datetime]:
    first = world.start + timedelta(seconds=(-world.start.timestamp()) % METRIC_INTERVAL)
    count = int((world.now - first).total_seconds() // METRIC_INTERVAL) + 1
    return [first + timedelta(seconds=METRIC_INTERVAL * i) for i in range(max(0, count))]


def _rate(totals: list[int], index: int) -> float:
    if index == 0:
        return 0.0
    return max(0, totals[index] - totals[index - 1]) / METRIC_INTERVAL


def derive_series(world: World) -> list[RawSeries]:
    times = _sample_times(world)
    snaps = [world.snapshot_at(t) for t in times]
    seed = world.scenario.seed
    series: list[RawSeries] = []
    for (namespace, name), sim in world.deployments.items():
        replica_rows = [s.deployments[(namespace, name)] for s in snaps]
        if sim.spec.kind == "StatefulSet":  # kube-state-metrics: no available/unavailable counts for a StatefulSet
            tags = {"kube_namespace": namespace, "kube_stateful_set": name,
                    "kube_cluster_name": world.scenario.world.cluster}
            columns = (("replicas_desired", 0), ("replicas_ready", 1), ("replicas_current", 2))
        else:
            tags = {"kube_namespace": namespace, "kube_deployment": name,
                    "kube_cluster_name": world.scenario.world.cluster}
            columns = (("replicas_desired", 0), ("replicas_available", 1), ("replicas", 2))
            series.append(RawSeries("kubernetes_state.deployment.replicas_unavailable", tags, times,
                                    [float(max(0, r[0] - r[1])) for r in replica_rows]))
        family = sim.spec.kind.lower()
        for metric, column in columns:
            series.append(RawSeries(f"kubernetes_state.{family}.{metric}", tags, times,
                                    [float(r[column]) for r in replica_rows]))
        container_tags = {**tags, "kube_container_name": name}
        series.append(RawSeries("kubernetes.containers.restarts", container_tags, times,
                                [float(r[3]) for r in replica_rows]))
        cpu: list[float | None] = []
        mem: list[float | None] = []
        for t, r in zip(times, replica_rows, strict=True):
            running = r[1]
            cpu.append(sim.spec.cpu_millicores * 1e6 * running * (1 + 0.15 * _jitter(seed, name, "cpu", t))
                       if running else None)
            mem.append(sim.spec.memory_mib * 2**20 * running * (1 + 0.03 * _jitter(seed, name, "mem", t))
                       if running else None)
        series.append(RawSeries("kubernetes.cpu.usage.total", container_tags, times, cpu))
        series.append(RawSeries("kubernetes.memory.usage", container_tags, times, mem))
    broker = world.scenario.world.broker
    node = broker.node if broker else "rabbit@localhost"
    broker_ns = (broker.namespace or world.namespace) if broker else world.namespace
    for (vhost, name), _queue in world.queues.items():
        tags = {"rabbitmq_queue": name, "rabbitmq_vhost": vhost, "rabbitmq_node": node, "kube_namespace": broker_ns}
        rows = [s.queues[(vhost, name)] for s in snaps]
        up = [r[4] for r in rows]

        def gated(values: list[float], up: list[bool] = up) -> list[float | None]:
            return [v if alive else None for v, alive in zip(values, up, strict=True)]

        published = [r.published for r in rows]
        delivered = [r.delivered for r in rows]
        acked = [r.acked for r in rows]
        series += [
            RawSeries("rabbitmq.queue.messages", tags, times, gated([float(r.ready + r.unacked) for r in rows])),
            RawSeries("rabbitmq.queue.messages_ready", tags, times, gated([float(r.ready) for r in rows])),
            RawSeries("rabbitmq.queue.messages_unacknowledged", tags, times, gated([float(r.unacked) for r in rows])),
            RawSeries("rabbitmq.queue.consumers", tags, times, gated([float(r.consumers) for r in rows])),
            RawSeries("rabbitmq.queue.consumer_utilisation", tags, times,
                      gated([r.working / r.consumers if r.consumers else 0.0 for r in rows])),
            RawSeries("rabbitmq.queue.messages.publish.rate", tags, times,
                      gated([_rate(published, i) for i in range(len(rows))])),
            RawSeries("rabbitmq.queue.messages.deliver_get.rate", tags, times,
                      gated([_rate(delivered, i) for i in range(len(rows))])),
            RawSeries("rabbitmq.queue.messages.ack.rate", tags, times,
                      gated([_rate(acked, i) for i in range(len(rows))])),
        ]
    series += _trace_series(world, times)
    for extra in world.scenario.world.metrics:
        values = _extra_values(extra, times, seed)
        replaced = [s for s in series if extra.replace and s.metric == extra.metric
                    and all(s.tags.get(k) == v for k, v in extra.tags.items())]
        for target in replaced:
            target.values = list(values)
        if not replaced:
            series.append(RawSeries(extra.metric, dict(extra.tags), times, values))
    return series


def _trace_series(world: World, times: list[datetime]) -> list[RawSeries]:
    """APM trace metrics per service, as the Datadog tracer reports them for `http.request` entry spans: hits and
    errors counted per interval, duration the mean latency in seconds (absent in an interval with no request)."""
    by_service: dict[tuple[str, str], list[tuple[datetime, bool, float]]] = {}
    for request in world.requests:
        by_service.setdefault((request.namespace, request.service), []).append(
            (request.at, request.error, request.seconds))
    series = []
    starts = [t - timedelta(seconds=METRIC_INTERVAL) for t in times]
    for (namespace, service), spans in sorted(by_service.items()):
        tags = {"service": service, "env": world.scenario.world.cluster, "kube_namespace": namespace,
                "kube_cluster_name": world.scenario.world.cluster}
        hits: list[float | None] = [0.0] * len(times)
        errors: list[float | None] = [0.0] * len(times)
        total = [0.0] * len(times)
        for at, error, seconds in spans:
            index = bisect_right(starts, at) - 1
            if 0 <= index < len(times) and at < times[index]:
                hits[index] = (hits[index] or 0.0) + 1
                errors[index] = (errors[index] or 0.0) + error
                total[index] += seconds
        duration = [total[i] / h if h else None for i, h in enumerate(hits)]
        series += [RawSeries("trace.http.request.hits", tags, times, hits),
                   RawSeries("trace.http.request.errors", tags, times, errors),
                   RawSeries("trace.http.request.duration", tags, times, duration)]
    return series


def _extra_values(extra: ExtraMetric, times: list[datetime], seed: int) -> list[float | None]:
    """Piecewise-linear between the points, no data before the first, the last value held after the last."""
    anchors = sorted(extra.points, key=lambda p: p.at)
    keys = [p.at for p in anchors]
    values: list[float | None] = []
    for t in times:
        i = bisect_right(keys, t)
        if i == 0 or (i == len(anchors) and t > keys[-1] + timedelta(minutes=5)):
            values.append(None if i == 0 else anchors[-1].value)
            continue
        if i == len(anchors):
            base = anchors[-1].value
        else:
            a, b = anchors[i - 1], anchors[i]
            frac = (t - a.at) / (b.at - a.at)
            base = a.value + (b.value - a.value) * frac
        values.append(base * (1 + extra.noise * _jitter(seed, extra.metric, t)))
    return values
