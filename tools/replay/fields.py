"""The field types of the scenario format that carry its limits: times, names, counts, rates, each refusing a value
past `tools.replay.limits` with an error naming the value, the limit and its name."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

from tools.replay.limits import (
    EARLIEST,
    LATEST,
    MAX_CPU_MILLICORES,
    MAX_LATENCY_MS,
    MAX_MEMORY_MIB,
    MAX_METRIC_VALUE,
    MAX_NOISE,
    MAX_PER_REPLICA,
    MAX_PREFETCH,
    MAX_QUEUE_DEPTH,
    MAX_RATE_PER_MIN,
    MAX_REPLICAS,
    MAX_SECONDS,
)


def at_most(limit: float, name: str) -> AfterValidator:
    """A field bounded by one of `tools.replay.limits`: the error names the value, the limit and its name."""

    def check(value: float) -> float:
        if abs(value) > limit:
            raise PydanticCustomError("limit", "{value} is above the limit of {limit} ({name})",
                                      {"value": value, "limit": limit, "name": name})
        return value

    return AfterValidator(check)


def _moment(value: datetime) -> datetime:
    """A time in a scenario file: one without a zone is UTC; one outside EARLIEST..LATEST is refused (arithmetic on
    it would overflow)."""
    value = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    if not EARLIEST <= value <= LATEST:
        raise PydanticCustomError("limit", "{value} is outside the limits {earliest}..{latest} (EARLIEST, LATEST)",
                                  {"value": value.isoformat(), "earliest": EARLIEST.date().isoformat(),
                                   "latest": LATEST.date().isoformat()})
    return value


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty or blank")
    return value


def _whole(value: Any) -> Any:
    """1e20 written for an integer is the integer it means, so that the limit, not a parse error, reports it."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


Moment = Annotated[datetime, AfterValidator(_moment)]
Name = Annotated[str, AfterValidator(_not_blank)]
Whole = Annotated[int, BeforeValidator(_whole)]
Replicas = Annotated[Whole, Field(ge=0), at_most(MAX_REPLICAS, "MAX_REPLICAS")]
Rate = Annotated[float, Field(gt=0), at_most(MAX_RATE_PER_MIN, "MAX_RATE_PER_MIN")]
Seconds = Annotated[Whole, Field(ge=0), at_most(MAX_SECONDS, "MAX_SECONDS")]
PodCount = Annotated[Whole, Field(ge=1), at_most(MAX_REPLICAS, "MAX_REPLICAS")]
PollSeconds = Annotated[Whole, Field(ge=5), at_most(MAX_SECONDS, "MAX_SECONDS")]
Depth = Annotated[Whole, Field(ge=0), at_most(MAX_QUEUE_DEPTH, "MAX_QUEUE_DEPTH")]
PerReplica = Annotated[Whole, Field(ge=1), at_most(MAX_PER_REPLICA, "MAX_PER_REPLICA")]
Prefetch = Annotated[Whole, Field(ge=1), at_most(MAX_PREFETCH, "MAX_PREFETCH")]
LatencyMs = Annotated[float, Field(gt=0), at_most(MAX_LATENCY_MS, "MAX_LATENCY_MS")]
Millicores = Annotated[float, Field(ge=0), at_most(MAX_CPU_MILLICORES, "MAX_CPU_MILLICORES")]
MiB = Annotated[float, Field(ge=0), at_most(MAX_MEMORY_MIB, "MAX_MEMORY_MIB")]
MetricValue = Annotated[float, at_most(MAX_METRIC_VALUE, "MAX_METRIC_VALUE")]
Noise = Annotated[float, Field(ge=0), at_most(MAX_NOISE, "MAX_NOISE")]


def ordered(begin: datetime | None, end: datetime | None, what: str) -> None:
    if begin is not None and end is not None and end <= begin:
        raise ValueError(f"{what} ({end.isoformat()}) must be after its start ({begin.isoformat()})")
