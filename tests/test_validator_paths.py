"""The validator checks the exact value it is shown: an observed number is matched at its path in the cited
result, never by a same-named field somewhere deeper."""

from __future__ import annotations

from typing import Any

import pytest

from agent.signals import Observation
from agent.validator import evidence_problem
from agent.verdict import Evidence

LOGS = {"summary": "0 lines in window; 4 in the previous 5 min", "total": 0,
        "previous_window": {"total": 4}, "by_service": {}}
TABLE = {"summary": "", "queues": [{"queue": "jobs", "messages": 7, "consumers": 0}], "attention": ["jobs"]}
METRIC = {"summary": "", "series": [{"tags": [], "trend": {"first": 0.0, "last": 5.0}, "values": [0.0, 5.0]}]}


def check(data: dict[str, Any], observed: dict[str, Any], tool: str = "search_logs",
          signal: str = "consumer_logs") -> str | None:
    obs = Observation("c1", tool, {}, True, data, signals={signal})
    return evidence_problem(Evidence(signal=signal, claim="x", tool_call_id="c1", observed=observed),  # type: ignore[arg-type]
                            {"c1": obs})


def test_a_nested_total_does_not_vouch_for_the_windows_own_total() -> None:
    assert check(LOGS, {"total": 4}) == "observed total=4 but c1 returned [0]"
    assert check(LOGS, {"total": 0}) is None
    assert check(LOGS, {"previous_window.total": 4}) is None


@pytest.mark.parametrize(("observed", "problem"), [
    ({"messages": 7}, None),
    ({"messages": 8}, "observed messages=8 but c1 returned [7]"),
    ({"queues.0.consumers": 0}, None),
    ({"queues.1.consumers": 0}, "observed field 'queues.1.consumers' is not in the result of c1"),
])
def test_a_bare_key_may_name_a_row_of_a_table(observed: dict[str, Any], problem: str | None) -> None:
    assert check(TABLE, observed, "get_queue_stats", "queue_depth") == problem


def test_series_statistics_are_cited_by_path() -> None:
    assert check(METRIC, {"series.0.trend.last": 5.0}, "get_metric", "queue_depth") is None
    assert check(METRIC, {"last": 5.0}, "get_metric", "queue_depth") == \
        "observed field 'last' is not in the result of c1"
