"""Typed tools over RabbitMQ's management API."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from pydantic import BaseModel, Field

from tools.errors import BadArgument, NotFound, SourceError
from tools.kubernetes.protocol import WorkloadKind
from tools.rabbitmq.protocol import QueueInfo
from tools.summaries import Trend
from tools.timerange import hhmm, iso
from tools.toolkit import Sources

HISTORY_SECONDS = 900
MAX_QUEUES = 25
MAX_NAMESPACES = 30


class ConsumerRef(BaseModel):
    """A workload whose pods hold some of a queue's consumers (matched by the consumers' peer addresses)."""

    kind: WorkloadKind = "Deployment"
    namespace: str
    name: str
    consumers: int

    def ref(self) -> str:
        return f"{self.namespace}/{self.name}"


class QueueStats(BaseModel):
    summary: str
    vhost: str
    queue: str
    as_of: str
    messages: int
    ready: int
    unacked: int
    consumers: int
    consumer_utilisation: float | None = Field(
        None, description="share of time the consumers could take new messages (0: attached but not taking any)")
    publish_rate: float | None
    deliver_rate: float | None
    ack_rate: float | None
    redeliver_rate: float | None = Field(None, description="deliveries of messages a consumer gave back: near the "
                                                           "deliver rate with no acks, consumers fail every message")
    dead_letters_to: str | None = Field(None, description="where the queue's rejected or expired messages go")
    dead_letters_from: list[str] | None = Field(None, description="queues whose dead letters come here: a "
                                                                  "dead-letter queue")
    idle_since: str | None
    consumed_by: list[ConsumerRef] | None = Field(
        None, description="workloads whose pods hold this queue's consumers (matched by pod IP); None if unknown")
    unmatched_consumers: int = Field(0, description="consumers whose address matches no pod")
    alarms: list[str] | None = Field(None, description="broker resource alarms (memory, disk): publishers blocked")
    depth_trend: Trend | None = Field(None, description="queue depth over the last 15 minutes")
    depth_samples: list[int] = Field(default_factory=list, description="oldest first")


class QueueRow(BaseModel):
    vhost: str
    queue: str
    messages: int
    unacked: int = 0
    consumers: int
    publish_rate: float | None
    deliver_rate: float | None
    ack_rate: float | None = None
    dead_letters_to: str | None = None


class QueueTable(BaseModel):
    summary: str
    as_of: str
    vhosts: list[str] = Field(default_factory=list, description="vhosts the listed queues belong to")
    queues: list[QueueRow]
    attention: list[str] = Field(description="queues with no consumer while holding or receiving messages")
    alarms: list[str] | None = Field(None, description="broker resource alarms (memory, disk): publishers blocked")


def consuming_workloads(sources: Sources, hosts: list[str]) -> tuple[list[ConsumerRef] | None, int]:
    """Match consumer peer addresses to pod IPs; None if the cluster can't say. Also: consumers matching no pod."""
    wanted = Counter(hosts)
    found: Counter[tuple[str, str]] = Counter()
    kinds: dict[tuple[str, str], WorkloadKind] = {}
    try:
        for namespace in sources.cluster.list_namespaces()[:MAX_NAMESPACES]:
            for pod in sources.cluster.list_pods(namespace, {}):
                if pod.ip and pod.ip in wanted:
                    found[(namespace, pod.owner or pod.name)] += wanted.pop(pod.ip)
                    kinds[(namespace, pod.owner or pod.name)] = pod.owner_kind or "Deployment"
    except SourceError:
        return None, 0
    refs = [ConsumerRef(kind=kinds[(ns, name)], namespace=ns, name=name, consumers=count)
            for (ns, name), count in found.most_common()]
    return refs, sum(wanted.values())


def dead_letter_target(q: QueueInfo) -> str | None:
    """Where a queue's dead letters go, in words: the default exchange routes them to the queue its routing key
    names."""
    exchange, key = q.dead_letter_exchange, q.dead_letter_routing_key
    if exchange is None:
        return None
    if exchange == "":
        return f"queue {key}" if key else None
    return f"exchange {exchange}" + (f" (routing key {key})" if key else "")


def dead_letter_sources(infos: list[QueueInfo]) -> dict[tuple[str, str], list[str]]:
    """Each dead-letter queue (vhost, name) and the queues whose dead letters the default exchange routes to it.
    A dead-letter queue has no consumer by design: what matters is whether it grows."""
    found: dict[tuple[str, str], list[str]] = {}
    for q in infos:
        if q.dead_letter_exchange == "" and q.dead_letter_routing_key:
            found.setdefault((q.vhost, q.dead_letter_routing_key), []).append(q.name)
    return found


def _needs_attention(q: QueueInfo) -> bool:
    return q.consumers == 0 and (q.messages > 0 or (q.publish_rate or 0) > 0)


def _alarms(sources: Sources) -> list[str] | None:
    try:
        return sources.broker.alarms()
    except SourceError:
        return None


def _find_vhost(sources: Sources, queue: str, missing: NotFound) -> str:
    """The vhost holding `queue` (not in '/') when the caller did not say: the only one that has it."""
    holding = sorted({q.vhost for q in sources.broker.list_queues(None) if q.name == queue})
    if not holding:
        raise missing
    if len(holding) > 1:
        raise BadArgument(f"queue {queue!r} exists in several vhosts: {', '.join(holding)}",
                          hints=["pass vhost"])
    return holding[0]


def get_queue_stats(
    sources: Sources,
    queue: Annotated[str | None, Field(description="queue name; omit to list every queue by depth")] = None,
    vhost: Annotated[str | None, Field(description="RabbitMQ virtual host; omit for every vhost")] = None,
) -> QueueStats | QueueTable:
    """RabbitMQ queue health. With a queue: depth (ready/unacked), consumer count and utilisation, publish/deliver/ack
    rates per second, idle_since, the depth trend over the last 15 min, the workloads holding its consumers, and
    broker alarms. Without: every queue (of every vhost unless one is given) sorted by depth with its consumers. A
    queue receiving messages with 0 consumers is a stalled pipeline even when nothing errors; consumers that hold
    unacknowledged messages and ack nothing are attached but stuck."""
    now = sources.clock()
    if queue is None:
        infos = sorted(sources.broker.list_queues(vhost), key=lambda q: (-q.messages, q.vhost, q.name))
        rows = [QueueRow(vhost=q.vhost, queue=q.name, messages=q.messages, unacked=q.unacked, consumers=q.consumers,
                         publish_rate=q.publish_rate, deliver_rate=q.deliver_rate, ack_rate=q.ack_rate,
                         dead_letters_to=dead_letter_target(q))
                for q in infos[:MAX_QUEUES]]
        dead_letter_queues = dead_letter_sources(infos)
        stalled = [q for q in infos if _needs_attention(q) and (q.vhost, q.name) not in dead_letter_queues]
        attention = [q.name for q in stalled]
        vhosts = sorted({q.vhost for q in infos} | ({vhost} if vhost else set()))
        alarms = _alarms(sources)
        summary = f"{len(infos)} queues in vhost{'s' if len(vhosts) > 1 else ''} {', '.join(vhosts) or '-'}; " + (
            "no consumer while receiving or holding messages: " + ", ".join(
                f"{q.name} ({q.messages} msgs, publish {q.publish_rate}/s)" for q in stalled)
            if attention else "every non-empty queue has consumers")
        holding = [(q, dead_letter_queues[(q.vhost, q.name)]) for q in infos
                   if (q.vhost, q.name) in dead_letter_queues and q.messages]
        if holding:
            summary += "; dead-letter queues (no consumer by design): " + ", ".join(
                f"{q.name} ({q.messages} msgs from {', '.join(sources_)})" for q, sources_ in holding)
        if alarms:
            summary += f"; broker {' and '.join(alarms)} alarm set: publishers are blocked"
        return QueueTable(summary=summary, as_of=iso(now) or "", vhosts=vhosts, queues=rows, attention=attention,
                          alarms=alarms)
    if vhost is None:
        try:
            info = sources.broker.get_queue("/", queue, HISTORY_SECONDS)
            vhost = "/"
        except NotFound as missing:
            vhost = _find_vhost(sources, queue, missing)
            info = sources.broker.get_queue(vhost, queue, HISTORY_SECONDS)
    else:
        info = sources.broker.get_queue(vhost, queue, HISTORY_SECONDS)
    trend = Trend.of([(t, float(v)) for t, v in info.depth_samples]) if info.depth_samples else None
    consumed_by, unmatched = consuming_workloads(sources, info.consumer_hosts) if info.consumer_hosts else ([], 0)
    alarms = _alarms(sources)
    summary = (f"{queue}: {info.messages} messages ({info.ready} ready, {info.unacked} unacked), "
               f"{info.consumers} consumers; publish {info.publish_rate}/s, deliver {info.deliver_rate}/s, "
               f"ack {info.ack_rate}/s")
    if info.redeliver_rate:
        summary += f"; redeliver {info.redeliver_rate}/s"
        if not info.ack_rate and (info.deliver_rate or 0) > 0:
            summary += " (consumers give back every message: none is acked)"
    if info.consumer_utilisation is not None:
        summary += f"; consumer utilisation {info.consumer_utilisation:.0%}"
    if trend:
        summary += f"; depth over 15 min: {trend.phrase()}"
    if consumed_by:
        summary += "; consumed by " + ", ".join(f"{c.kind} {c.ref()} ({c.consumers})" for c in consumed_by)
    if unmatched:
        summary += f"; {unmatched} consumer(s) match no pod"
    target = dead_letter_target(info)
    if target:
        summary += f"; dead letters go to {target}"
    if info.idle_since:
        summary += f"; idle since {hhmm(info.idle_since)}"
    if alarms:
        summary += f"; broker {' and '.join(alarms)} alarm set: publishers are blocked"
    feeding = dead_letter_sources(sources.broker.list_queues(vhost)).get((vhost, queue), [])
    if feeding:
        summary += (f"; dead-letter queue of {', '.join(feeding)}: it holds their rejected or expired messages and "
                    "has no consumer by design" + (" (growing: their consumers are rejecting messages)"
                                                   if trend is not None and trend.direction == "rising" else ""))
    elif _needs_attention(info):
        summary += ". NO CONSUMER: messages are accumulating and nothing processes them"
    return QueueStats(
        summary=summary, vhost=vhost, queue=queue, as_of=iso(now) or "", messages=info.messages, ready=info.ready,
        unacked=info.unacked, consumers=info.consumers, consumer_utilisation=info.consumer_utilisation,
        publish_rate=info.publish_rate, deliver_rate=info.deliver_rate, ack_rate=info.ack_rate,
        redeliver_rate=info.redeliver_rate, dead_letters_to=target, dead_letters_from=feeding or None,
        idle_since=iso(info.idle_since),
        consumed_by=consumed_by, unmatched_consumers=unmatched, alarms=alarms, depth_trend=trend,
        depth_samples=[v for _, v in info.depth_samples])
