"""Reading tool calls and their results back out of an OpenAI-format conversation."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from agent.llm.base import Message


@dataclass
class Seen:
    """What the policy has learned from the conversation so far."""

    results: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)

    def calls(self, tool: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
        return [(cid, *self.results[cid][1:]) for cid in self.order if self.results[cid][0] == tool]

    def made(self, tool: str, **args: Any) -> bool:
        return any(all(a.get(k) == v for k, v in args.items()) and set(args) >= {k for k in a if a[k] is not None}
                   for _, a, _ in self.calls(tool))

    def find(self, tool: str, **args: Any) -> tuple[str, dict[str, Any]] | None:
        for cid, a, data in self.calls(tool):
            if all(a.get(k) == v for k, v in args.items()):
                return cid, data
        return None


def read_conversation(messages: list[Message]) -> Seen:
    seen = Seen()
    pending: dict[str, tuple[str, dict[str, Any]]] = {}
    for message in messages:
        if message.get("role") == "assistant":
            for call in message.get("tool_calls") or []:
                raw = call["function"]["arguments"]
                try:
                    args = json.loads(raw) if isinstance(raw, str) else dict(raw)
                except json.JSONDecodeError:
                    args = {}
                pending[call["id"]] = (call["function"]["name"], args)
        elif message.get("role") == "tool" and message.get("tool_call_id") in pending:
            name, args = pending[message["tool_call_id"]]
            try:
                data = json.loads(message.get("content") or "{}")
            except json.JSONDecodeError:
                data = {}
            seen.results[message["tool_call_id"]] = (name, args, data)
            seen.order.append(message["tool_call_id"])
    return seen
