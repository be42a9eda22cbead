"""A source that could not be read never reads as healthy, and nothing it would have shown is ruled out."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from agent.baseline.policy import PlaybookPolicy
from agent.coverage import still_possible, unread_sources
from agent.run import investigate
from agent.signals import Observation
from tools.errors import RateLimited, SourceError, Unavailable
from tools.replay import replay_sources
from tools.toolkit import Sources

QUESTION = "Is anything stuck right now?"


class Failing:
    """Any reader whose every call fails the way a source that is down, or throttling, does."""

    def __init__(self, error: SourceError) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        def fail(*_args: Any, **_kwargs: Any) -> Any:
            raise self.error
        return fail


def with_failing(sources: Sources, field: str, error: SourceError) -> Sources:
    return replace(sources, **{field: Failing(error)})


def obs(call_id: str, tool: str, ok: bool, error: str | None = None) -> Observation:
    return Observation(call_id, tool, {}, ok, {"error": error, "message": "boom"} if error else {"summary": "ok"})


@pytest.mark.parametrize("error", [Unavailable("cannot reach the RabbitMQ management API"),
                                   RateLimited("RabbitMQ API 429: slow down")])
def test_a_healthy_world_with_the_broker_unread_is_inconclusive(error: SourceError) -> None:
    sources = with_failing(replay_sources("incident-5-healthy"), "broker", error)
    verdict = investigate(QUESTION, PlaybookPolicy(), sources)
    assert verdict.status == "inconclusive"
    assert verdict.confidence <= 0.5
    assert "work is flowing" not in verdict.summary and "RabbitMQ could not be read" in verdict.summary
    assert not [line for line in verdict.ruled_out if line.startswith(("consumer_", "broker_"))]
    assert verdict.limitations and verdict.limitations[0].startswith("RabbitMQ could not be read")


def test_an_incident_the_other_sources_prove_stays_an_incident_and_names_what_was_not_read() -> None:
    sources = with_failing(replay_sources("incident-5"), "logs", Unavailable("Datadog logs API 503"))
    verdict = investigate("why are shipments not going out?", PlaybookPolicy(), sources)
    assert verdict.status == "incident"
    assert verdict.confidence <= 0.75
    assert [line.split(" ")[0] for line in verdict.limitations] == ["Datadog"]


def test_the_same_world_read_in_full_is_healthy() -> None:
    verdict = investigate(QUESTION, PlaybookPolicy(), replay_sources("incident-5-healthy"))
    assert verdict.status == "healthy" and verdict.limitations == []


def test_a_source_counts_as_read_once_a_later_call_of_the_same_tool_answers() -> None:
    history = [obs("c1", "get_queue_stats", False, "timeout"), obs("c2", "get_queue_stats", True),
               obs("c3", "search_logs", False, "bad_query"), obs("c4", "get_metric", False, "rate_limited")]
    unread = unread_sources(history)
    assert [(u.source, u.call_ids) for u in unread] == [("Datadog", ("c4",))]
    assert still_possible(["app_errors: no error burst", "broker_unavailable: the queue API answered",
                           "a free-text line"], unread) == ["broker_unavailable: the queue API answered",
                                                             "a free-text line"]
