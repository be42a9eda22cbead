"""Chat sessions over the HTTP API: a first question gets its verdict, follow-ups reuse the conversation, and bad
requests get a reason."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.remediation.paths import DATA_ENV
from tests.serving import app_for


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))


def test_a_chat_investigates_then_answers_follow_ups_in_the_same_conversation(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path)) as client:
        opened = client.post("/chats", json={"model": "playbook"})
        chat = opened.json()["id"]
        first = client.post(f"/chats/{chat}/messages", json={"question": "why are shipments not going out?"})
        follow = client.post(f"/chats/{chat}/messages", json={"question": "what if I restart shipping?"})
        transcript = client.get(f"/chats/{chat}").json()
        ended = client.delete(f"/chats/{chat}")
        gone = client.get(f"/chats/{chat}")
    assert opened.status_code == 201 and opened.json()["sources"] == "incident-5"
    assert first.status_code == 200 and first.json()["verdict"]["status"] == "incident"
    assert first.json()["verdict"]["root_cause"]["component"]["name"] == "queue-master"
    reply = follow.json()
    assert follow.status_code == 200 and reply["error"] is None
    assert "shipping" in (reply["answer"] or reply["verdict"]["summary"])
    assert [t["question"] for t in transcript["turns"]] == ["why are shipments not going out?",
                                                           "what if I restart shipping?"]
    assert ended.status_code == 204 and gone.status_code == 404


@pytest.mark.parametrize(("path", "body", "status", "reason"), [
    ("/chats", {"scenario": "no-such-world", "model": "playbook"}, 422, "no-such-world"),
    ("/chats", {"model": "playbook", "colour": "red"}, 422, "colour"),
    ("/chats/chat-000000000000/messages", {"question": "hello?"}, 404, "no chat"),
])
def test_bad_chat_requests_get_a_reason(tmp_path: Path, path: str, body: dict[str, object], status: int,
                                        reason: str) -> None:
    with TestClient(app_for(tmp_path)) as client:
        response = client.post(path, json=body)
    assert response.status_code == status and reason in response.text
