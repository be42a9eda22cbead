"""The model protocol: messages in OpenAI chat format in, one assistant turn out."""

from __future__ import annotations

from typing import Any, Protocol

from pydantic import BaseModel, Field

Message = dict[str, Any]


class ToolCall(BaseModel):
    id: str
    name: str
    arguments: dict[str, Any] | str = Field(description="parsed JSON object, or the raw text when it was not JSON")


class AssistantTurn(BaseModel):
    content: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = Field(0, description="prompt tokens the server reused from its cache")
    prompt_ms: float | None = Field(None, description="the server's prompt-processing time, when it reports one")
    generation_ms: float | None = Field(None, description="the server's generation time, when it reports one")

    def as_message(self) -> Message:
        message: Message = {"role": "assistant", "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [
                {"id": call.id, "type": "function",
                 "function": {"name": call.name, "arguments": call.arguments if isinstance(call.arguments, str)
                              else _json(call.arguments)}}
                for call in self.tool_calls
            ]
        return message


def _json(value: Any) -> str:
    import json

    return json.dumps(value, separators=(",", ":"))


class ChatModel(Protocol):
    """One assistant turn. With `response_schema`, the turn's content must be JSON matching that schema."""

    name: str
    is_baseline: bool
    guided: bool

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 response_schema: dict[str, Any] | None = None) -> AssistantTurn: ...


class ModelError(Exception):
    """The model could not be reached or configured; the message says what to do."""
