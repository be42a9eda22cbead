"""Typed tools over Datadog logs and metrics."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Annotated

from pydantic import BaseModel, Field

from tools.datadog.logquery import parse_log_query
from tools.datadog.metricquery import parse_metric_query
from tools.summaries import Trend, Window, downsample
from tools.timerange import TimeRange, hhmm, iso, resolve_range
from tools.toolkit import Sources

MAX_SAMPLES = 20
MAX_SERIES = 8
LOOKBACK_FOR_LAST_LINE = timedelta(hours=24)


class LogLine(BaseModel):
    time: str
    service: str | None
    status: str
    message: str


class Gap(BaseModel):
    start: str
    end: str
    minutes: float


class PreviousWindow(BaseModel):
    start: str
    end: str
    total: int


class LogSearchResult(BaseModel):
    summary: str
    query: str
    window: Window
    total: int
    previous_window: PreviousWindow
    last_line_at: str | None
    by_service: dict[str, int]
    by_status: dict[str, int]
    bucket_seconds: int
    volume: list[int] = Field(description="matching lines per bucket, oldest first")
    gaps: list[Gap] = Field(description="runs of empty buckets")
    samples: list[LogLine] = Field(description="newest first")


def _buckets(span: TimeRange) -> int:
    minutes = math.ceil(span.duration.total_seconds() / 60)
    return 60 * max(1, math.ceil(minutes / 60))


def _gaps(span: TimeRange, bucket: int, volume: list[int]) -> list[Gap]:
    gaps, run_start = [], None
    for index, count in enumerate([*volume, 1]):
        if count == 0 and run_start is None:
            run_start = index
        elif count and run_start is not None:
            begin = span.start + timedelta(seconds=bucket * run_start)
            end = min(span.end, span.start + timedelta(seconds=bucket * index))
            gaps.append(Gap(start=iso(begin) or "", end=iso(end) or "",
                            minutes=round((end - begin).total_seconds() / 60, 1)))
            run_start = None
    return gaps


def search_logs(
    sources: Sources,
    query: Annotated[str, Field(description="Datadog log query, e.g. 'service:api kube_namespace:prod status:error'")],
    start: Annotated[str, Field(description="window start: 'now-15m', ISO time, or epoch seconds")] = "now-15m",
    end: Annotated[str, Field(description="window end: 'now' or a time")] = "now",
    limit: Annotated[int, Field(ge=0, le=MAX_SAMPLES, description="sample lines to return")] = 5,
) -> LogSearchResult:
    """Search logs and summarise them: total, counts by service and status, per-minute volume with gaps, the
    previous window of equal length, and when the last matching line was seen. Zero lines is a real signal: a
    service that normally logs and has gone silent is probably not running."""
    parse_log_query(query)
    span = resolve_range(start, end, sources.clock())
    bucket = _buckets(span)
    counts = sources.logs.count(query, span.start, span.end, [], bucket)
    n_buckets = math.ceil(span.duration.total_seconds() / bucket)
    volume = [0] * n_buckets
    for row in counts:
        if row.time is not None:
            volume[max(0, min(n_buckets - 1, int((row.time - span.start).total_seconds() // bucket)))] += row.count
    total = sum(volume)
    by_service: dict[str, int] = {}
    by_status: dict[str, int] = {}
    for row in sources.logs.count(query, span.start, span.end, ["service", "status"], None):
        service, status = row.group.get("service") or "(none)", row.group.get("status") or "(none)"
        by_service[service] = by_service.get(service, 0) + row.count
        by_status[status] = by_status.get(status, 0) + row.count
    previous = span.previous()
    previous_total = sum(r.count for r in sources.logs.count(query, previous.start, previous.end, [], None))
    samples = sources.logs.search(query, span.start, span.end, max(limit, 1)) if total else []
    newest = samples[0].timestamp if samples else None
    if newest is None:
        before = sources.logs.search(query, span.end - LOOKBACK_FOR_LAST_LINE, span.start, 1)
        newest = before[0].timestamp if before else None
    lines = [LogLine(time=iso(r.timestamp) or "", service=r.service, status=r.status, message=r.message[:240])
             for r in samples[:limit]]
    gaps = _gaps(span, bucket, volume)
    return LogSearchResult(
        summary=_log_summary(span, total, previous_total, newest, gaps, by_status),
        query=query, window=Window.of(span), total=total,
        previous_window=PreviousWindow(start=iso(previous.start) or "", end=iso(previous.end) or "",
                                       total=previous_total),
        last_line_at=iso(newest), by_service=dict(sorted(by_service.items(), key=lambda kv: -kv[1])[:10]),
        by_status=by_status, bucket_seconds=bucket, volume=volume, gaps=gaps, samples=lines)


def _log_summary(span: TimeRange, total: int, previous: int, newest: datetime | None, gaps: list[Gap],
                 by_status: dict[str, int]) -> str:
    minutes = f"{span.duration.total_seconds() / 60:.3g}"
    text = f"{total} lines in {hhmm(span.start)}–{hhmm(span.end)} ({minutes} min)"
    text += f"; {previous} in the previous {minutes} min"
    if newest is None:
        text += "; no matching line in the last 24 h"
    else:
        ago = (span.end - newest).total_seconds() / 60
        text += f"; last line at {hhmm(newest)} ({ago:.1f} min before window end)"
    if total == 0 and previous > 0:
        text += ". SILENT: this source logged before and has stopped"
    elif gaps and total:
        trailing = gaps[-1]
        if trailing.end == iso(span.end):
            text += f". Silent since {trailing.start[11:]} ({trailing.minutes} min)"
    errors = by_status.get("error", 0) + by_status.get("critical", 0)
    if errors:
        text += f"; {errors} error lines"
    return text


class SeriesResult(BaseModel):
    tags: list[str]
    summary: str
    trend: Trend
    interval_seconds: int
    start: str
    values: list[float | None] = Field(description="downsampled, oldest first, one per interval")


class MetricResult(BaseModel):
    summary: str
    query: str
    window: Window
    series: list[SeriesResult]
    omitted_series: int = 0
    known_tags: list[str] | None = Field(None, description="tags this metric reports with, when nothing matched")


def get_metric(
    sources: Sources,
    query: Annotated[str, Field(description="Datadog metric query, e.g. 'avg:kubernetes_state.deployment."
                                            "replicas_available{kube_namespace:prod} by {kube_deployment}'")],
    start: Annotated[str, Field(description="window start: 'now-1h', ISO time, or epoch seconds")] = "now-1h",
    end: Annotated[str, Field(description="window end: 'now' or a time")] = "now",
) -> MetricResult:
    """Query a metric and summarise each series: first/last/min/max, slope per minute, when it last changed,
    and up to 60 downsampled values. Useful: kubernetes_state.deployment.replicas_available|replicas_desired,
    rabbitmq.queue.messages|consumers|messages.publish.rate|messages.ack.rate, kubernetes.cpu.usage.total."""
    parsed = parse_metric_query(query)
    span = resolve_range(start, end, sources.clock())
    raw = sources.metrics.query(query, span.start, span.end)
    raw.sort(key=lambda s: -(next((v for _, v in reversed(s.points) if v is not None), 0.0) or 0.0))
    results = []
    for series in raw[:MAX_SERIES]:
        trend = Trend.of(series.points)
        points = downsample(series.points)
        interval = int((points[1][0] - points[0][0]).total_seconds()) if len(points) > 1 else 0
        label = ",".join(series.tags) or "*"
        results.append(SeriesResult(
            tags=series.tags, summary=f"{label}: {trend.phrase()}", trend=trend, interval_seconds=interval,
            start=iso(points[0][0]) if points else iso(span.start) or "",
            values=[None if v is None else round(v, 4) for _, v in points]))
    known_tags = None
    if not results:
        known_tags = sources.metrics.metric_tags(parsed.metric)[:40]
        summary = (f"no series of {parsed.metric} match the filter in {hhmm(span.start)}–{hhmm(span.end)}; "
                   "see known_tags for the tag keys and values it reports with")
    else:
        summary = "; ".join(r.summary for r in results[:3]) + (f" (+{len(raw) - 3} more)" if len(raw) > 3 else "")
    return MetricResult(summary=summary, query=query, window=Window.of(span), series=results,
                        omitted_series=max(0, len(raw) - MAX_SERIES), known_tags=known_tags)
