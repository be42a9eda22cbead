"""Shared pieces of tool results: the window a result answers and numeric trends, summaries first."""

from __future__ import annotations

import itertools
from datetime import datetime

from pydantic import BaseModel

from tools.timerange import TimeRange, hhmm, iso


class Window(BaseModel):
    start: str
    end: str
    minutes: float

    @classmethod
    def of(cls, span: TimeRange) -> Window:
        return cls(start=iso(span.start) or "", end=iso(span.end) or "",
                   minutes=round(span.duration.total_seconds() / 60, 1))


class Trend(BaseModel):
    first: float | None
    last: float | None
    min: float | None
    max: float | None
    slope_per_min: float | None
    last_change: str | None = None
    direction: str

    @classmethod
    def of(cls, points: list[tuple[datetime, float | None]]) -> Trend:
        known = [(t, v) for t, v in points if v is not None]
        if not known:
            return cls(first=None, last=None, min=None, max=None, slope_per_min=None, direction="no data")
        values = [v for _, v in known]
        slope = _slope(known)
        last_change = None
        for (_, before), (moment, after) in itertools.pairwise(known):
            if after != before:
                last_change = iso(moment)
        span = max(values) - min(values)
        net = values[-1] - values[0]
        if span == 0:
            direction = "flat"
        elif abs(net) < 0.2 * span:
            direction = "fluctuating"
        else:
            direction = "rising" if net > 0 else "falling"
        return cls(first=_round(values[0]), last=_round(values[-1]), min=_round(min(values)),
                   max=_round(max(values)), slope_per_min=_round(slope) if slope is not None else None,
                   last_change=last_change, direction=direction)

    def phrase(self) -> str:
        if self.first is None:
            return "no data points"
        text = f"{_fmt(self.first)} → {_fmt(self.last)} (min {_fmt(self.min)}, max {_fmt(self.max)}), {self.direction}"
        if self.slope_per_min:
            text += f" {self.slope_per_min:+.3g}/min"
        if self.last_change:
            text += f", last change {hhmm(datetime.fromisoformat(self.last_change.replace('Z', '+00:00')))}"
        return text


def _slope(points: list[tuple[datetime, float]]) -> float | None:
    if len(points) < 2:
        return None
    origin = points[0][0]
    xs = [(t - origin).total_seconds() / 60 for t, _ in points]
    ys = [v for _, v in points]
    mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
    var = sum((x - mean_x) ** 2 for x in xs)
    if var == 0:
        return None
    return sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / var


def _round(value: float) -> float:
    return round(value, 4) if abs(value) < 1000 else round(value, 1)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.3g}"


def downsample(points: list[tuple[datetime, float | None]], limit: int = 60) -> list[tuple[datetime, float | None]]:
    """Average consecutive points into at most `limit` buckets (a bucket with no data stays None)."""
    if len(points) <= limit:
        return points
    size = -(-len(points) // limit)
    result: list[tuple[datetime, float | None]] = []
    for index in range(0, len(points), size):
        chunk = points[index:index + size]
        values = [v for _, v in chunk if v is not None]
        result.append((chunk[0][0], sum(values) / len(values) if values else None))
    return result
