"""A scripted model for tests: hands out scripted turns in order, records every call, and fails on an
unexpected call or on turns left over."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from agent.llm.base import AssistantTurn, Message, ToolCall

Step = AssistantTurn | Callable[[list[Message], list[dict[str, Any]], dict[str, Any] | None], AssistantTurn]


class ScriptExhausted(AssertionError):
    """The graph asked the model for more turns than the script has."""


@dataclass
class RecordedCall:
    messages: list[Message]
    tool_names: list[str]
    response_schema: dict[str, Any] | None


@dataclass
class ScriptedModel:
    steps: list[Step]
    name: str = "scripted"
    is_baseline: bool = False
    guided: bool = False
    calls: list[RecordedCall] = field(default_factory=list)

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 response_schema: dict[str, Any] | None = None) -> AssistantTurn:
        self.calls.append(RecordedCall([dict(m) for m in messages], [t["function"]["name"] for t in tools],
                                       response_schema))
        if not self.steps:
            raise ScriptExhausted(f"unexpected model call #{len(self.calls)}: the script has no turns left")
        step = self.steps.pop(0)
        return step if isinstance(step, AssistantTurn) else step(messages, tools, response_schema)

    def assert_done(self) -> None:
        if self.steps:
            raise AssertionError(f"{len(self.steps)} scripted turn(s) were never used")


def tool_turn(*calls: tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str], tokens: int = 0) -> AssistantTurn:
    """An assistant turn calling tools; ids default to call_1, call_2, ... within the turn unless given."""
    made = []
    for index, call in enumerate(calls, start=1):
        call_id = call[2] if len(call) == 3 else f"call_{index}"
        made.append(ToolCall(id=call_id, name=call[0], arguments=call[1]))
    return AssistantTurn(tool_calls=made, prompt_tokens=tokens, completion_tokens=tokens // 10)


def verdict_turn(verdict: dict[str, Any]) -> AssistantTurn:
    return AssistantTurn(content=json.dumps(verdict))
