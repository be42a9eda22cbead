"""The graph's state: the conversation, what the tools returned, and the budget counters."""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypedDict

from agent.llm.base import Message


@dataclass(frozen=True)
class Budgets:
    max_llm_calls: int = 12
    max_tool_calls: int = 30
    max_tokens: int = 150_000
    timeout_s: float = 600.0


GUIDED_BUDGETS = Budgets(max_llm_calls=8, max_tool_calls=16)

class AgentState(TypedDict, total=False):
    mode: Literal["investigate", "chat"]
    messages: Annotated[list[Message], operator.add]
    observations: Annotated[list[dict[str, Any]], operator.add]
    llm_calls: int
    tool_calls: int
    prompt_tokens: int
    completion_tokens: int
    llm_seconds: float
    tool_seconds: float
    started_at: float
    stop_reason: str | None
    answer: str | None
    verdict: dict[str, Any] | None
    remediation: dict[str, Any] | None
