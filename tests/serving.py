"""Helpers for the server tests: an app over a temporary data dir, approver tokens, a model that waits at a gate,
polling, and reading server-sent events and Prometheus text."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from agent.baseline.policy import PlaybookPolicy
from agent.llm.base import AssistantTurn, ChatModel, Message
from agent.llm.resolve import resolve_model
from agent.server.app import create_app
from agent.server.auth import token_hash
from agent.server.settings import ServerSettings

TOKENS = {"oncall-sre": "tok-oncall-sre-0123456789abcdef", "mallory": "tok-mallory-0123456789abcdef"}
POLICY = """version: 1
approval:
  approvers: [oncall-sre]
rules:
  - name: workloads
    namespaces: ["*"]
    allow:
      scale: {min_replicas: 1, max_replicas: 5}
      rollout_restart: {}
"""


def isolate_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A test's server reads only its own data dir and POLICY: no checkpointer or SRE_AGENT_SERVE_* from outside."""
    from agent.remediation.flow import CHECKPOINTER_ENV
    from agent.remediation.paths import DATA_ENV
    from agent.remediation.policy import POLICY_ENV

    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    monkeypatch.delenv(CHECKPOINTER_ENV, raising=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    monkeypatch.setenv(POLICY_ENV, str(policy))
    for name in ("SCENARIO", "LIVE", "MODEL", "CONCURRENCY", "APPROVER_TOKENS", "IDENTITY_HEADER", "WEBHOOK_SECRET"):
        monkeypatch.delenv(f"SRE_AGENT_SERVE_{name}", raising=False)


def write_tokens(folder: Path) -> Path:
    path = folder / "approver-tokens.yaml"
    path.write_text("".join(f"{name}: {token_hash(token)}\n" for name, token in TOKENS.items()), encoding="utf-8")
    return path


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKENS[name]}"}


class Gate:
    """Models that wait at the gate before their first turn, so a test can see investigations running."""

    def __init__(self) -> None:
        self.opened = threading.Event()

    def resolve(self, spec: str) -> ChatModel:
        return GatedModel(resolve_model(spec), self.opened)


class GatedModel:
    def __init__(self, inner: ChatModel, opened: threading.Event) -> None:
        self.inner, self.opened = inner, opened
        self.name, self.is_baseline, self.guided = inner.name, inner.is_baseline, inner.guided

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 response_schema: dict[str, Any] | None = None) -> AssistantTurn:
        assert self.opened.wait(20), "the test never opened the gate"
        return self.inner.complete(messages, tools, response_schema)


def app_for(data: Path, resolve: Any = None, **settings: Any) -> FastAPI:
    values: dict[str, Any] = {"data": data, "scenario": "incident-5", "model": "playbook",
                              "approver_tokens": write_tokens(data), **settings}
    return create_app(ServerSettings(**values), resolve=resolve)


def wait_for(client: TestClient, path: str, done: Any, timeout: float = 20.0) -> dict[str, Any]:
    """GET `path` until `done(body)`; the last body."""
    deadline = time.monotonic() + timeout
    while True:
        body = client.get(path).json()
        if done(body):
            return body
        assert time.monotonic() < deadline, f"{path} never got there: {json.dumps(body)[:600]}"
        time.sleep(0.02)


def finished(body: dict[str, Any]) -> bool:
    return body["status"] in ("done", "failed", "interrupted")


def sse(text: str) -> list[tuple[str, str, Any]]:
    """(id, event, data) of each server-sent event in `text`; keep-alive comments skipped."""
    events = []
    for block in text.replace("\r\n", "\n").strip().split("\n\n"):
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            if line and not line.startswith(":"):
                key, _, value = line.partition(": ")
                fields[key] = value
        if "data" in fields:
            events.append((fields.get("id", ""), fields.get("event", "message"), json.loads(fields["data"])))
    return events


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Prometheus text → {(sample name, sorted labels): value}, without the *_created timestamps."""
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in text_string_to_metric_families(text)
            for s in family.samples if not s.name.endswith("_created")}


def playbook_verdict(question: str, scenario: str = "incident-5") -> dict[str, Any]:
    """The verdict the playbook gives on a fresh replay, outside the server, without its timing trace."""
    from agent.run import run_investigation
    from tools.replay import replay_sources

    verdict = run_investigation(question, PlaybookPolicy(), replay_sources(scenario)).verdict
    return verdict.model_dump(mode="json", exclude={"trace"})
