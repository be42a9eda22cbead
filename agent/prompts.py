"""Prompt files from `prompts/`, rendered with explicit context."""

from __future__ import annotations

from importlib import resources


def load(name: str) -> str:
    return resources.files("prompts").joinpath(f"{name}.md").read_text(encoding="utf-8")


def system_prompt(now: str, sources: str) -> str:
    return load("system").format(now=now, sources=sources) + "\n\n" + load("playbook")


def verdict_prompt(calls: str) -> str:
    return load("verdict").format(calls=calls)


def guided_system_prompt(now: str, sources: str) -> str:
    return load("guided").format(now=now, sources=sources)


def guided_verdict_prompt() -> str:
    return load("guided_verdict")


def guided_static_prefix() -> str:
    """The guided system prompt up to its first per-run value: the same text in every process."""
    cut = "\x00"
    return guided_system_prompt(now=cut, sources=cut).split(cut, 1)[0]
