"""A question is usable at every door: not empty, not oversized, no control characters."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from agent.answers import asks
from agent.question import MAX_QUESTION_CHARS, Question, usable_question


@pytest.mark.parametrize(("text", "says"), [
    ("", "empty"), (" \n\t ", "empty"), ("x" * (MAX_QUESTION_CHARS + 1), "above the limit"),
    ("why\x00", r"U\+0000"), ("clear \x1b[2J screen", r"U\+001B"),
])
def test_unusable_questions_say_why(text: str, says: str) -> None:
    with pytest.raises(ValueError, match=says):
        usable_question(text)


def test_a_usable_question_is_kept_as_asked_without_surrounding_blanks() -> None:
    assert usable_question("  why are orders\nstuck?  ") == "why are orders\nstuck?"


def test_request_bodies_apply_the_same_rule() -> None:
    with pytest.raises(ValidationError, match="empty"):
        TypeAdapter(Question).validate_python("   ")


@pytest.mark.parametrize("question", [
    "how many settlement-api pods are we running in prod right now?",
    "How many replicas does carts have?", "how many ledger-poster instances are up?",
])
def test_replica_questions_are_recognised_with_a_name_in_between(question: str) -> None:
    assert asks(question) == ["replicas"]
