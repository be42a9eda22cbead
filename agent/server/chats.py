"""The server's open chat sessions (in memory: a conversation is a model's context, not a record; a restarted
server has none, and the oldest is dropped beyond MAX_CHATS). The endpoints are in api_chats.py."""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

MAX_CHATS = 50


class Turn(BaseModel):
    question: str
    at: datetime
    verdict: dict[str, Any] | None = Field(None, description="the Verdict JSON, when the turn investigated")
    answer: str | None = Field(None, description="the reply, when the turn answered from the conversation")
    error: str | None = None


class ChatView(BaseModel):
    id: str
    sources: str
    model: str
    turns: list[Turn]


@dataclass
class Chat:
    id: str
    sources: str
    model: str
    session: Any  # agent.run.ChatSession
    turns: list[Turn] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def view(self) -> ChatView:
        return ChatView(id=self.id, sources=self.sources, model=self.model, turns=self.turns)


class Chats:
    """The server's open chat sessions, oldest first."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._open: OrderedDict[str, Chat] = OrderedDict()

    def add(self, chat: Chat) -> None:
        with self._lock:
            self._open[chat.id] = chat
            while len(self._open) > MAX_CHATS:
                self._open.popitem(last=False)

    def get(self, chat_id: str) -> Chat:
        with self._lock:
            found = self._open.get(chat_id)
        if found is None:
            raise LookupError(f"no chat {chat_id!r} (a restarted server has none: open a new one)")
        return found

    def drop(self, chat_id: str) -> None:
        with self._lock:
            self._open.pop(chat_id, None)


