"""Typed tools over RabbitMQ's management API."""

from __future__ import annotations

from collections import Counter
from typing import Annotated

from pydantic import BaseModel, Field

from tools.errors import SourceError
from tools.rabbitmq.protocol import QueueInfo
from tools.summaries import Trend
from tools.timerange import hhmm, iso
from tools.toolkit import Sources

HISTORY_SECONDS = 900
MAX_QUEUES = 25
MAX_NAMESPACES = 30


class QueueStats(BaseModel):
    summary: str
    vhost: str
    queue: str
    as_of: str
    messages: int
    ready: int
    unacked: int
    consumers: int
    publish_rate: float | None
    deliver_rate: float | None
    ack_rate: float | None
    idle_since: str | None
    consumed_by: list[str] | None = Field(
        None, description="deployments whose pods hold this queue's consumers (matched by pod IP); None if unknown")
    depth_trend: Trend | None = Field(None, description="queue depth over the last 15 minutes")
    depth_samples: list[int] = Field(default_factory=list, description="oldest first")


class QueueRow(BaseModel):
    vhost: str
    queue: str
    messages: int
    consumers: int
    publish_rate: float | None
    deliver_rate: float | None


class QueueTable(BaseModel):
    summary: str
    as_of: str
    queues: list[QueueRow]
    attention: list[str] = Field(description="queues with no consumer while holding or receiving messages")


def consuming_deployments(sources: Sources, hosts: list[str]) -> list[str] | None:
    """Match consumer peer addresses to pod IPs: 'Deployment ns/name (N consumers)'. None if the cluster can't say."""
    wanted = Counter(hosts)
    found: Counter[str] = Counter()
    try:
        for namespace in sources.cluster.list_namespaces()[:MAX_NAMESPACES]:
            for pod in sources.cluster.list_pods(namespace, {}):
                if pod.ip and pod.ip in wanted:
                    found[f"Deployment {namespace}/{pod.owner or pod.name}"] += wanted.pop(pod.ip)
    except SourceError:
        return None
    named = [f"{ref} ({count} consumer{'s' if count > 1 else ''})" for ref, count in found.most_common()]
    return named + [f"{count} consumer(s) at {host} (no pod found)" for host, count in wanted.items()]


def _needs_attention(q: QueueInfo) -> bool:
    return q.consumers == 0 and (q.messages > 0 or (q.publish_rate or 0) > 0)


def get_queue_stats(
    sources: Sources,
    queue: Annotated[str | None, Field(description="queue name; omit to list every queue by depth")] = None,
    vhost: Annotated[str, Field(description="RabbitMQ virtual host")] = "/",
) -> QueueStats | QueueTable:
    """RabbitMQ queue health. With a queue: depth (ready/unacked), consumer count, publish/deliver/ack rates per
    second, idle_since, and the depth trend over the last 15 min. Without: every queue sorted by depth with its
    consumers. A queue receiving messages with 0 consumers is a stalled pipeline even when nothing errors."""
    now = sources.clock()
    if queue is None:
        infos = sorted(sources.broker.list_queues(vhost), key=lambda q: (-q.messages, q.name))
        rows = [QueueRow(vhost=q.vhost, queue=q.name, messages=q.messages, consumers=q.consumers,
                         publish_rate=q.publish_rate, deliver_rate=q.deliver_rate) for q in infos[:MAX_QUEUES]]
        attention = [q.name for q in infos if _needs_attention(q)]
        summary = f"{len(infos)} queues in vhost {vhost}; " + (
            "no consumer while receiving or holding messages: " + ", ".join(
                f"{q.name} ({q.messages} msgs, publish {q.publish_rate}/s)" for q in infos if q.name in attention)
            if attention else "every non-empty queue has consumers")
        return QueueTable(summary=summary, as_of=iso(now) or "", queues=rows, attention=attention)
    info = sources.broker.get_queue(vhost, queue, HISTORY_SECONDS)
    trend = Trend.of([(t, float(v)) for t, v in info.depth_samples]) if info.depth_samples else None
    consumed_by = consuming_deployments(sources, info.consumer_hosts) if info.consumer_hosts else []
    summary = (f"{queue}: {info.messages} messages ({info.ready} ready, {info.unacked} unacked), "
               f"{info.consumers} consumers; publish {info.publish_rate}/s, deliver {info.deliver_rate}/s, "
               f"ack {info.ack_rate}/s")
    if trend:
        summary += f"; depth over 15 min: {trend.phrase()}"
    if consumed_by:
        summary += f"; consumed by {', '.join(consumed_by)}"
    if info.idle_since:
        summary += f"; idle since {hhmm(info.idle_since)}"
    if _needs_attention(info):
        summary += ". NO CONSUMER: messages are accumulating and nothing processes them"
    return QueueStats(
        summary=summary, vhost=vhost, queue=queue, as_of=iso(now) or "", messages=info.messages, ready=info.ready,
        unacked=info.unacked, consumers=info.consumers, publish_rate=info.publish_rate,
        deliver_rate=info.deliver_rate, ack_rate=info.ack_rate, idle_since=iso(info.idle_since),
        consumed_by=consumed_by, depth_trend=trend, depth_samples=[v for _, v in info.depth_samples])
