"""Entry points: one investigation to a verdict, or a chat session that keeps the conversation."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from langgraph.checkpoint.memory import InMemorySaver

from agent.graph import EventSink, build_graph, observations_of
from agent.llm.base import ChatModel, Message
from agent.prompts import system_prompt
from agent.signals import Observation
from agent.state import Budgets
from agent.verdict import Verdict
from tools.registry import default_toolbox
from tools.timerange import iso
from tools.toolkit import Sources, Toolbox

RECURSION_LIMIT = 200


def opening(question: str, sources: Sources) -> list[Message]:
    described = "recorded scenario replay" if sources.label.startswith("replay") else "live production sources"
    return [{"role": "system", "content": system_prompt(iso(sources.clock()) or "", described)},
            {"role": "user", "content": question}]


def fresh_turn(mode: str) -> dict[str, Any]:
    return {"mode": mode, "started_at": time.time(), "llm_calls": 0, "tool_calls": 0, "prompt_tokens": 0,
            "completion_tokens": 0, "llm_seconds": 0.0, "tool_seconds": 0.0, "stop_reason": None,
            "answer": None, "verdict": None}


@dataclass
class Investigation:
    verdict: Verdict
    observations: list[Observation]


def run_investigation(question: str, model: ChatModel, sources: Sources, *, toolbox: Toolbox | None = None,
                      budgets: Budgets | None = None, on_event: EventSink | None = None) -> Investigation:
    graph = build_graph(model, toolbox or default_toolbox(), sources, budgets, on_event=on_event)
    state = graph.invoke({**fresh_turn("investigate"), "messages": opening(question, sources)},
                         {"recursion_limit": RECURSION_LIMIT})
    return Investigation(Verdict.model_validate(state["verdict"]), observations_of(state))


def investigate(question: str, model: ChatModel, sources: Sources, *, toolbox: Toolbox | None = None,
                budgets: Budgets | None = None, on_event: EventSink | None = None) -> Verdict:
    return run_investigation(question, model, sources, toolbox=toolbox, budgets=budgets, on_event=on_event).verdict


@dataclass
class ChatReply:
    verdict: Verdict | None = None
    answer: str | None = None


@dataclass
class ChatSession:
    """Multi-turn: the first question gets a full verdict, follow-ups reuse the conversation and its results."""

    model: ChatModel
    sources: Sources
    budgets: Budgets | None = None
    on_event: EventSink | None = None
    thread: str = field(default_factory=lambda: uuid.uuid4().hex)
    turns: int = 0

    def __post_init__(self) -> None:
        self.graph = build_graph(self.model, default_toolbox(), self.sources, self.budgets,
                                 checkpointer=InMemorySaver(), on_event=self.on_event)

    def ask(self, question: str) -> ChatReply:
        first = self.turns == 0
        self.turns += 1
        messages = opening(question, self.sources) if first else [{"role": "user", "content": question}]
        state = self.graph.invoke({**fresh_turn("investigate" if first else "chat"), "messages": messages},
                                  {"configurable": {"thread_id": self.thread}, "recursion_limit": RECURSION_LIMIT})
        if state.get("verdict"):
            return ChatReply(verdict=Verdict.model_validate(state["verdict"]))
        return ChatReply(answer=str(state["messages"][-1].get("content") or ""))
