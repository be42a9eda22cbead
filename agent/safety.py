"""Instruction-like text inside tool results (log lines, annotations, event messages) is data. It is detected in
code so every verdict reports it, whatever the model did with it; it never reaches a shell or an action."""

from __future__ import annotations

import re
from typing import Any

_PATTERNS = re.compile(
    r"ignore (all |any |the )?(previous|prior|above) instructions|disregard (all |the )?(previous|prior|above)"
    r"|\b(system|assistant|ai agent)\s*(instruction|override|prompt)?\s*:|priority override"
    r"|kubectl\s+(delete|drain|cordon|exec)|rm\s+-rf|scale (every|all) deployments?",
    re.IGNORECASE,
)
MAX_NOTES = 3


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for item in value.values() for s in _strings(item)]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    return []


def find_injections(data: dict[str, Any]) -> list[str]:
    """Distinct instruction-like texts found in a tool result."""
    found: list[str] = []
    for text in _strings(data):
        if len(text) > 20 and _PATTERNS.search(text) and text[:160] not in found:
            found.append(text[:160])
    return found[:MAX_NOTES]
