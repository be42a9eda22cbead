"""When a fix counts as working: the workload serving and its queue back at baseline, or still above it but
lower after two minutes of looks and never above where it stood (a backlog that takes hours to work off is being
worked off)."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.remediation.models import QueueRef, VerifyTarget
from agent.remediation.verify import Observation, draining, recovered

TARGET = VerifyTarget(namespace="ns", deployment="worker", queue=QueueRef(name="jobs"))
START = datetime(2026, 1, 1, tzinfo=UTC)


def looks(*depths: int, every_s: float = 30, consumers: int = 2) -> list[Observation]:
    return [Observation(at=START, elapsed_s=i * every_s, desired=2, available=2, depth=depth, consumers=consumers)
            for i, depth in enumerate(depths)]


def test_a_backlog_falling_over_two_minutes_is_recovering() -> None:
    assert draining(looks(411, 400, 390, 379, 366), TARGET)
    assert recovered(looks(411, 409, 409, 406, 405), TARGET), "messages trickle out between looks"


def test_a_backlog_that_stalls_rises_or_was_watched_too_briefly_is_not() -> None:
    assert not recovered(looks(411, 420, 400, 390, 380), TARGET), "above where it stood in between"
    assert not recovered(looks(411, 411, 411, 411, 411), TARGET), "flat"
    assert not recovered(looks(300, 320, 340, 360, 380), TARGET), "rising"
    assert not recovered(looks(411, 400, 390), TARGET), "a minute only"
    assert not recovered(looks(411, 400, 390, 379, 366, consumers=0), TARGET), "no consumer"


def test_back_at_baseline_is_recovered_at_once() -> None:
    assert recovered(looks(0), TARGET)
    assert not recovered(looks(0, consumers=0), TARGET)
