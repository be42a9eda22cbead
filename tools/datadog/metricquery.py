"""Datadog metric query syntax: `avg:metric.name{tag:value,!tag:other} by {tag}` (plus ignored rollup suffixes)."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from typing import Literal

from tools.errors import BadQuery

Aggregator = Literal["avg", "sum", "min", "max"]

_QUERY = re.compile(
    r"^\s*(?:(?P<agg>[a-z]+):)?(?P<metric>[A-Za-z][\w.]*)\s*\{(?P<scope>[^{}]*)\}"
    r"(?:\s+by\s+\{(?P<by>[^{}]*)\})?(?P<suffix>(?:\.\w+\([^()]*\))*)\s*$"
)
_EXAMPLE = "e.g. 'avg:rabbitmq.queue.messages{rabbitmq_queue:my-queue} by {rabbitmq_queue}'"


@dataclass(frozen=True)
class TagFilter:
    key: str
    value: str
    negated: bool = False

    def matches(self, tags: dict[str, str]) -> bool:
        actual = tags.get(self.key)
        found = actual is not None and fnmatch.fnmatchcase(actual, self.value)
        return not found if self.negated else found


@dataclass(frozen=True)
class MetricQuery:
    aggregator: Aggregator
    metric: str
    filters: tuple[TagFilter, ...] = ()
    group_by: tuple[str, ...] = field(default_factory=tuple)

    def matches(self, tags: dict[str, str]) -> bool:
        return all(f.matches(tags) for f in self.filters)


def parse_metric_query(query: str) -> MetricQuery:
    match = _QUERY.match(query)
    if not match:
        if "{" not in query:
            raise BadQuery(f"metric query {query!r} has no scope; add '{{*}}' or '{{tag:value}}'", hints=[_EXAMPLE])
        raise BadQuery(f"cannot read metric query {query!r}", hints=[_EXAMPLE])
    aggregator = match.group("agg") or "avg"
    if aggregator not in ("avg", "sum", "min", "max"):
        raise BadQuery(f"unknown space aggregator {aggregator!r}; use avg, sum, min or max", hints=[_EXAMPLE])
    filters: list[TagFilter] = []
    for raw in (part.strip() for part in match.group("scope").split(",")):
        if raw in ("", "*"):
            continue
        negated = raw.startswith("!")
        key, sep, value = raw.lstrip("!").partition(":")
        if not sep or not key or not value:
            raise BadQuery(f"scope item {raw!r} must be tag:value (or !tag:value)", hints=[_EXAMPLE])
        filters.append(TagFilter(key, value, negated))
    group_by = tuple(t.strip() for t in (match.group("by") or "").split(",") if t.strip())
    return MetricQuery(aggregator, match.group("metric"), tuple(filters), group_by)  # type: ignore[arg-type]
