"""What makes a question usable, for every door it comes in by (the CLI, chat, the HTTP API, an alert)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

MAX_QUESTION_CHARS = 2000


def usable_question(text: str) -> str:
    """The question with surrounding blanks removed; ValueError saying what is wrong with one that cannot be asked:
    empty, longer than MAX_QUESTION_CHARS, or holding control characters (a NUL, an escape sequence)."""
    question = text.strip()
    if not question:
        raise ValueError("the question is empty: ask what you want investigated, e.g. \"why are orders stuck?\"")
    if len(question) > MAX_QUESTION_CHARS:
        raise ValueError(f"the question is {len(question):,} characters, above the limit of "
                         f"{MAX_QUESTION_CHARS:,}: ask it in a sentence or two")
    control = next((c for c in question if not c.isprintable() and c not in "\n\t"), None)
    if control is not None:
        raise ValueError(f"the question holds the control character U+{ord(control):04X}: ask in plain text")
    return question


Question = Annotated[str, Field(min_length=1, max_length=MAX_QUESTION_CHARS), AfterValidator(usable_question)]
"""A question in a request body."""
