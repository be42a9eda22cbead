"""What the tools need from Datadog: logs and metrics. Live and replay backends both implement this."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, Field


class LogRecord(BaseModel):
    timestamp: datetime
    service: str | None = None
    status: str = "info"
    host: str | None = None
    message: str = ""
    tags: list[str] = Field(default_factory=list)
    attributes: dict[str, Any] = Field(default_factory=dict)


class LogCount(BaseModel):
    """One bucket of a log count: `time` is the bucket start (None when not bucketed by time)."""

    time: datetime | None = None
    group: dict[str, str] = Field(default_factory=dict)
    count: int


class Series(BaseModel):
    metric: str
    tags: list[str] = Field(default_factory=list)
    points: list[tuple[datetime, float | None]] = Field(default_factory=list)
    unit: str | None = None


class LogSource(Protocol):
    def search(self, query: str, start: datetime, end: datetime, limit: int) -> list[LogRecord]:
        """Matching records, newest first, at most `limit`."""
        ...

    def count(
        self, query: str, start: datetime, end: datetime, group_by: list[str], bucket_seconds: int | None
    ) -> list[LogCount]:
        """Counts of matching records, grouped by facets (`service`, `status`) and optionally by time bucket."""
        ...


class MetricSource(Protocol):
    def query(self, query: str, start: datetime, end: datetime) -> list[Series]:
        """Run a metric query (`avg:metric{tag:value} by {tag}`); raise UnknownMetric for a metric it lacks."""
        ...

    def metric_names(self) -> list[str]:
        """Names of metrics that have reported recently (used to suggest close matches)."""
        ...

    def metric_tags(self, metric: str) -> list[str]:
        """The `key:value` tags a metric has reported with (used when a filter matches nothing)."""
        ...
