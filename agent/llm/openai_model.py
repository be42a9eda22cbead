"""Any OpenAI-compatible chat endpoint (OpenAI, vLLM, Ollama, llama.cpp) behind the model protocol."""

from __future__ import annotations

import json
import logging
from typing import Any

import openai
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from agent.llm.base import AssistantTurn, Message, ModelError, ToolCall

log = logging.getLogger(__name__)

_RETRYABLE = (openai.RateLimitError, openai.APITimeoutError, openai.APIConnectionError, openai.InternalServerError)


class OpenAIChatModel:
    is_baseline = False

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None,
                 timeout_s: float = 120.0, temperature: float = 0.0, seed: int | None = 7,
                 extra_body: dict[str, Any] | None = None, label: str | None = None, guided: bool = False) -> None:
        self.guided = guided
        self.model = model
        self.name = label or f"openai:{model}"
        self.temperature, self.seed = temperature, seed
        self.extra_body = extra_body or {}
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key or "not-needed", timeout=timeout_s,
                                    max_retries=0)

    @retry(retry=retry_if_exception_type(_RETRYABLE), stop=stop_after_attempt(4),
           wait=wait_exponential(multiplier=1, max=20), reraise=True)
    def _create(self, **kwargs: Any) -> Any:
        return self.client.chat.completions.create(**kwargs)

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 response_schema: dict[str, Any] | None = None) -> AssistantTurn:
        kwargs: dict[str, Any] = {"model": self.model, "messages": messages, "temperature": self.temperature}
        if self.seed is not None:
            kwargs["seed"] = self.seed
        if tools:
            kwargs["tools"] = tools
        if response_schema is not None:
            kwargs["response_format"] = {"type": "json_schema",
                                         "json_schema": {"name": "verdict", "schema": response_schema}}
        if self.extra_body:
            kwargs["extra_body"] = self.extra_body
        try:
            response = self._create(**kwargs)
        except openai.AuthenticationError as exc:
            raise ModelError(f"{self.name}: authentication failed; check OPENAI_API_KEY ({exc.message})") from None
        except openai.NotFoundError as exc:
            raise ModelError(f"{self.name}: model or endpoint not found; check the model name and "
                             f"OPENAI_BASE_URL ({exc.message})") from None
        except _RETRYABLE as exc:
            raise ModelError(f"{self.name}: endpoint unavailable after retries ({exc})") from None
        except openai.BadRequestError as exc:
            raise ModelError(f"{self.name}: request rejected ({exc.message})") from None
        choice = response.choices[0].message
        calls = []
        for call in choice.tool_calls or []:
            raw = call.function.arguments or "{}"
            try:
                arguments: dict[str, Any] | str = json.loads(raw)
            except json.JSONDecodeError:
                arguments = raw
            calls.append(ToolCall(id=call.id or "", name=call.function.name, arguments=arguments))
        usage = response.usage
        timings = (response.model_extra or {}).get("timings") or {}  # llama.cpp's server reports these
        details = getattr(usage, "prompt_tokens_details", None) if usage else None
        cached = timings.get("cache_n") or (getattr(details, "cached_tokens", 0) if details else 0) or 0
        return AssistantTurn(content=choice.content, tool_calls=calls,
                             prompt_tokens=usage.prompt_tokens if usage else 0,
                             completion_tokens=usage.completion_tokens if usage else 0, cached_tokens=int(cached),
                             prompt_ms=timings.get("prompt_ms"), generation_ms=timings.get("predicted_ms"))
