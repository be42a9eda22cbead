"""The embedded local model: llama.cpp serving a GGUF in-process, driven through the OpenAI-compatible provider."""

from __future__ import annotations

import atexit
import importlib.util
import logging
import os

from agent.llm.base import ChatModel, ModelError
from agent.llm.local import INSTALL_HINT, MODEL_SHA256, LocalModelError, LocalServer, default_cache_dir
from agent.llm.openai_model import OpenAIChatModel
from agent.llm.prefix_cache import PrefixCache
from agent.prompts import guided_static_prefix

logger = logging.getLogger(__name__)
PREFIX_CACHE_ENV = "SRE_AGENT_PREFIX_CACHE"  # 0 turns the persistent prompt-prefix cache off


def local_chat_model() -> ChatModel:
    if importlib.util.find_spec("xllamacpp") is None:
        raise ModelError(f"the embedded local model is not installed: run {INSTALL_HINT} "
                         "(or choose --model playbook, or openai:<model> with OPENAI_BASE_URL)")
    slots = default_cache_dir() / "slots"
    try:
        server = LocalServer(slot_dir=slots)
        server.__enter__()
    except LocalModelError as exc:
        raise ModelError(str(exc)) from None
    atexit.register(server.__exit__, None, None, None)
    if os.environ.get(PREFIX_CACHE_ENV, "1") != "0":
        cache = PrefixCache(server.base_url.removesuffix("/v1"), slots, model_sha256=MODEL_SHA256,
                            n_ctx=server.n_ctx, model=server.model)
        primed = cache.prime(guided_static_prefix())
        logger.info("prompt-prefix cache: %s (%d tokens, %.2f s)", primed.outcome, primed.tokens, primed.seconds)
    return OpenAIChatModel(server.model, base_url=server.base_url, label="local:qwen2.5-coder-1.5b",
                           extra_body={"cache_prompt": True}, guided=True, timeout_s=600.0)
