"""Chat sessions: POST /chats opens one over a replayed world or the live sources; POST /chats/{id}/messages asks
in it (the first question gets a verdict, follow-ups reuse the conversation and its tool results, as in
`sre-agent chat`); GET /chats/{id} is the transcript; DELETE /chats/{id} ends it.

Sessions live in the server's memory (agent/server/chats.py). What a chat proposes is not executed: remediation
goes through an investigation with `remediate`, so every change has its approval record.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field

from agent.llm.base import ModelError
from agent.question import Question
from agent.server.api_investigations import source_spec
from agent.server.chats import Chat, Chats, ChatView, Turn
from agent.server.context import ServerDep
from agent.server.records import now
from agent.server.runner import EXPECTED, describe, open_sources

router = APIRouter(tags=["chats"])


class ChatRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str | None = Field(None, description="a replayed world: scenario id or path on the server")
    live: bool = Field(False, description="read the live sources the server is configured for")
    context: str | None = Field(None, description="with live: the kubeconfig context")
    model: str | None = Field(None, description="playbook, openai:<model> or local (default: the server's)")


class MessageRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[Question, Field(examples=["show me the queue again"])]


def chats(here: ServerDep) -> Chats:
    return here.chats


def _chat(open_chats: Chats, chat_id: str) -> Chat:
    try:
        return open_chats.get(chat_id)
    except LookupError as exc:
        raise HTTPException(404, detail=str(exc)) from None


ChatsDep = Annotated[Chats, Depends(chats)]


@router.post("/chats", status_code=201, response_model=ChatView)
def open_chat(body: ChatRequest, here: ServerDep, open_chats: ChatsDep) -> ChatView:
    from agent.llm.resolve import default_spec
    from agent.run import ChatSession

    spec, kube_context = source_spec(here, body.scenario, body.live, body.context)
    model_spec = body.model or here.settings.model or default_spec()
    try:
        sources = open_sources(spec, kube_context)
        model = here.runner.resolve(model_spec)
    except (*EXPECTED, ModelError) as exc:
        raise HTTPException(422, detail=f"cannot open a chat over {spec!r} with {model_spec}: {describe(exc)}"
                            ) from None
    chat = Chat(id="chat-" + uuid.uuid4().hex[:12], sources=spec, model=model_spec,
                session=ChatSession(model, sources))
    open_chats.add(chat)
    return chat.view()


@router.post("/chats/{chat_id}/messages", response_model=Turn)
def ask(chat_id: str, body: MessageRequest, open_chats: ChatsDep) -> Turn:
    """Ask in the chat and wait for the reply (a verdict for the first question, an answer or a verdict later)."""
    chat = _chat(open_chats, chat_id)
    with chat.lock:  # one question at a time per conversation
        turn = Turn(question=" ".join(body.question.split()), at=now())
        try:
            reply = chat.session.ask(turn.question)
            turn.verdict = reply.verdict.model_dump(mode="json") if reply.verdict else None
            turn.answer = reply.answer
        except Exception as exc:  # the chat's failure is the turn's, never the server's
            turn.error = describe(exc)
        chat.turns.append(turn)
    return turn


@router.get("/chats/{chat_id}", response_model=ChatView)
def transcript(chat_id: str, open_chats: ChatsDep) -> ChatView:
    return _chat(open_chats, chat_id).view()


@router.delete("/chats/{chat_id}", status_code=204)
def end_chat(chat_id: str, open_chats: ChatsDep) -> None:
    _chat(open_chats, chat_id)
    open_chats.drop(chat_id)
