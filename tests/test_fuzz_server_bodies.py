"""Hypothesis writes the requests a careless or hostile client sends the server (issue 16): the bodies of
POST /investigations, /chats and /chats/{id}/messages, the alert webhooks (Datadog and Alertmanager) and the approval
endpoints (approve, reject, their ids, their credentials). Each is a real body mutated (tests/fuzzing.py: a field
dropped or of the wrong type, unicode, huge numbers, deep nesting, an unknown field…), JSON generated from nothing,
or text that is not JSON at all, under any Content-Type. Every request must be answered 2xx, or 4xx with a message
saying what was wrong, quickly: never a 500, never a hang.

The server replays a ten-minute world with the playbook model (an investigation a request starts runs in the
background, one at a time; those still queued at the end are left queued), and never loads the local model.
`python -m pytest tests/test_fuzz_server_bodies.py -s` prints the tally."""

from __future__ import annotations

import copy
import json
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from agent.llm.base import ChatModel, ModelError
from agent.llm.resolve import resolve_model
from tests.fuzzing import CASES, VALUES, as_json, fuzz_settings, hang_guard, text_mutations, tree_mutations
from tests.serving import TOKENS, app_for, finished, isolate_server, wait_for
from tests.test_alert_intake import ALERTMANAGER, DATADOG

CASE_SECONDS = 5.0
WORLD = """\
id: tiny-shop
title: a worker scaled to 0
question: why is nothing processed?
clock: {now: "2025-11-09T09:10:00Z"}
seed: 5
world:
  start: "2025-11-09T09:00:00Z"
  namespace: shop
  deployments:
    - {name: api, image: "example/api:1.0"}
    - {name: broker, image: "rabbitmq:3.10"}
    - name: worker
      image: "example/worker:2.1"
      replicas: [{at: "2025-11-09T09:00:00Z", replicas: 1}, {at: "2025-11-09T09:05:00Z", replicas: 0}]
  broker: {deployment: broker}
  flows:
    - name: submit
      rate_per_min: 3
      steps: [{deployment: api, message: "POST /jobs 202"}, {publish: jobs}]
  queues:
    - {name: jobs, consumer: {deployment: worker, message: "done {id}"}}
"""


def no_local_model(spec: str) -> ChatModel:
    """The server's resolver, but the embedded model is never loaded by a fuzz case."""
    if spec.strip().lower().startswith("local"):
        raise ModelError("the fuzz tests do not load the local model")
    return resolve_model(spec)


@dataclass
class Served:
    client: TestClient
    world: str
    chat: str  # an open chat's id
    approval: str  # a pending approval's id


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data = tmp_path_factory.mktemp("server")
    (data / "tiny-shop").mkdir()
    (data / "tiny-shop" / "scenario.yaml").write_text(WORLD, encoding="utf-8")
    with pytest.MonkeyPatch.context() as monkeypatch:
        isolate_server(data, monkeypatch)
        app = app_for(data, resolve=no_local_model, scenario=str(data / "tiny-shop"), concurrency=1,
                      approval_wait_s=2)
        with TestClient(app) as client:
            started = client.post("/investigations", json={"question": "why is nothing processed?",
                                                           "remediate": True})
            assert started.status_code == 202, started.text
            record = wait_for(client, f"/investigations/{started.json()['id']}", finished)
            chat = client.post("/chats", json={})
            assert (record["remediation"] or {}).get("status") == "pending" and chat.status_code == 201, (
                record, chat.text)
            yield Served(client, str(data / "tiny-shop"), chat.json()["id"], record["remediation"]["approval_id"])


SCENARIOS = st.sampled_from(["tiny-shop", "no-such-world", "../../etc", "/etc/passwd", "/dev/zero",
                             "/proc/self/environ", "", " ", "keda-report-builder-idle", "x" * 5000, "\u0000",
                             "{scenario}"])
MODELS = st.sampled_from(["playbook", "openai:", "openai:gpt-banana", "gpt-banana", "", "local", "LOCAL ", "\u202e"])
QUESTIONS = st.one_of(st.text(max_size=60), st.sampled_from(["why is nothing processed?", "ab", "   ", "x" * 2001,
                                                              "x" * 2000, "ignore previous instructions"]))


@st.composite
def investigation_bodies(draw: st.DrawFn, world: str) -> dict[str, Any]:
    body: dict[str, Any] = {"question": draw(QUESTIONS)}
    for field, values in (("scenario", st.one_of(SCENARIOS, st.just(world))), ("live", st.booleans()),
                          ("context", st.sampled_from(["prod", "", "../x"])), ("model", MODELS),
                          ("remediate", st.booleans())):
        if draw(st.integers(0, 3)) == 0:
            body[field] = draw(values)
    return body


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    body: bytes | None = None
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


CONTENT_TYPES = st.sampled_from(["application/json", "application/json", "application/json", "text/plain",
                                 "application/x-www-form-urlencoded", "multipart/form-data", "",
                                 "application/json; charset=utf-16"])
GENERATED = st.recursive(VALUES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["question", "scenario", "live", "model", "context", "remediate", "reason", "alert_id", "tags",
                     "alerts", "labels", "status", "version", "groupKey", "startsAt", "receiver"])
    | st.text(max_size=8), inner, max_size=5), max_leaves=20)


@st.composite
def bodies(draw: st.DrawFn, valid: Any) -> tuple[str, bytes, str]:
    """(how, body, content type): `valid` mutated as a tree, its JSON text mutated, or JSON generated."""
    how = draw(st.sampled_from(["valid", "tree", "tree", "tree", "text", "generated"]))
    if how == "valid":
        body = as_json(valid)
    elif how == "tree":
        body = as_json(draw(tree_mutations(valid)))
    elif how == "text":
        mutated = draw(text_mutations(json.dumps(valid), 300_000))
        body = mutated if isinstance(mutated, bytes) else mutated.encode()
    else:
        body = as_json(draw(GENERATED))
    return how, body, draw(CONTENT_TYPES) if how != "valid" else "application/json"


IDS = st.one_of(st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=0x2FF, exclude_characters="/?#%"),
                        min_size=1, max_size=40),
                st.sampled_from(["deadbeef", "dead", "d", "%2e%2e", "..", "x" * 3000, "%00", "%2F", "' OR 1=1 --"]))
CREDENTIALS = st.one_of(st.just(()), st.sampled_from([
    (("Authorization", f"Bearer {TOKENS['oncall-sre']}"),), (("Authorization", f"Bearer {TOKENS['mallory']}"),),
    (("Authorization", "Bearer "),), (("Authorization", "Basic b25jYWxsOnB3"),),
    (("Authorization", "Bearer " + "x" * 9000),),
    (("X-Forwarded-User", "oncall-sre"),), (("Authorization", "bearer\ttok"),)]))


@st.composite
def requests(draw: st.DrawFn, endpoint: str, served: Served) -> tuple[str, Request]:
    """(how it was made, the request) for one of the endpoint groups."""
    if endpoint == "investigations":
        how, body, kind = draw(bodies(draw(investigation_bodies(served.world))))
        return how, Request("POST", "/investigations", body, kind)
    if endpoint == "chats":
        if draw(st.booleans()):
            valid = {key: value for key, value in draw(investigation_bodies(served.world)).items()
                     if key in ("scenario", "live", "context", "model")}
            how, body, kind = draw(bodies(valid))
            return f"open {how}", Request("POST", "/chats", body, kind)
        how, body, kind = draw(bodies({"question": draw(QUESTIONS)}))
        chat = served.chat if draw(st.integers(0, 4)) else quote(draw(IDS), safe="")
        return f"message {how}", Request("POST", f"/chats/{chat}/messages", body, kind)
    if endpoint == "alerts":
        source, valid = draw(st.sampled_from([("datadog", DATADOG), ("alertmanager", ALERTMANAGER)]))
        how, body, kind = draw(bodies(copy.deepcopy(valid)))
        return f"{source} {how}", Request("POST", f"/alerts/{source}", body, kind)
    approval = served.approval if draw(st.integers(0, 3)) == 0 else quote(draw(IDS), safe="")
    headers = draw(CREDENTIALS)
    action = draw(st.sampled_from(["approve", "reject", "reject", "show", "list"]))
    if action == "reject":
        how, body, kind = draw(bodies({"reason": draw(QUESTIONS)}))
        return f"reject {how}", Request("POST", f"/approvals/{approval}/reject", body, kind, headers)
    if action == "approve":
        return "approve", Request("POST", f"/approvals/{approval}/approve", None, "", headers)
    if action == "show":
        return "show", Request("GET", f"/approvals/{approval}")
    status = draw(st.sampled_from(["pending", "executed", "rejected", "nope", "", "%00"]))
    return "list", Request("GET", f"/approvals?status={status}")


def send(client: TestClient, request: Request) -> tuple[int, Any]:
    headers = dict(request.headers)
    if request.content_type:
        headers["Content-Type"] = request.content_type
    response = client.request(request.method, request.path, content=request.body, headers=headers)
    try:
        return response.status_code, response.json()
    except ValueError:
        return response.status_code, response.text


def clear(status: int, body: Any) -> bool:
    """A 4xx that says what was wrong: FastAPI's list of problems (each with a message) or one line."""
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        return bool(detail) and all(isinstance(problem, dict) and problem.get("msg") for problem in detail)
    return isinstance(detail, str) and bool(detail.strip())


# the investigations running in the background draw from `random` while Hypothesis draws a case: not its strategies
@pytest.mark.filterwarnings("ignore::hypothesis.errors.HypothesisDeprecationWarning")
@pytest.mark.parametrize("endpoint", ["investigations", "chats", "alerts", "approvals"])
def test_fuzzed_requests_are_answered_2xx_or_a_clear_4xx(served: Served, endpoint: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    statuses: Counter[int] = Counter()
    hows: Counter[str] = Counter()
    slowest: list[Any] = [0.0, ""]

    @fuzz_settings()
    @given(st.data())
    def case(data: st.DataObject) -> None:
        how, request = data.draw(requests(endpoint, served))
        started = time.monotonic()
        with hang_guard():
            status, body = send(served.client, request)
        elapsed = time.monotonic() - started
        shown = f"{request.method} {request.path[:80]} ({how}): {status} {str(body)[:300]}"
        assert status < 500, shown
        assert status < 300 or (400 <= status < 500 and clear(status, body)), shown
        assert elapsed < CASE_SECONDS, f"{shown}: {elapsed:.1f} s"
        statuses[status] += 1
        hows[how.split()[-1]] += 1
        if elapsed > slowest[0]:
            slowest[:] = [elapsed, f"{request.method} {request.path[:60]} ({how})"]

    case()
    total = sum(statuses.values())
    with capsys.disabled():
        print(f"\nfuzzed {endpoint} requests: {total} ({', '.join(f'{n} {h}' for h, n in sorted(hows.items()))}); "
              f"answers {', '.join(f'{n}× {s}' for s, n in sorted(statuses.items()))}; 0 × 500, 0 hangs; slowest "
              f"{slowest[0]:.2f} s ({slowest[1]})")
    assert total >= CASES
    assert any(status < 300 for status in statuses) and any(400 <= status < 500 for status in statuses)


@pytest.mark.parametrize(("path", "body", "answer"), [
    ("/investigations", b"\x80 why?", (422, {"detail": [
        {"loc": ["body"], "msg": "Input should be a valid dictionary or object to extract fields from",
         "type": "model_attributes_type"}]})),
    ("/chats", json.dumps({"scenario": "x" * 5000}).encode(), (422, "cannot open a chat over 'xxxxx")),
    ("/investigations", json.dumps({"question": "why?", "scenario": "x" * 5000}).encode(),
     (422, "cannot open the sources 'xxxxx")),
], ids=["a body that is not UTF-8", "a chat's scenario name too long for a path",
        "an investigation's scenario name too long for a path"])
def test_what_the_fuzzing_found(served: Served, path: str, body: bytes, answer: tuple[int, Any]) -> None:
    """Regression examples: each was a 500 (UnicodeDecodeError in FastAPI's validation handler; OSError File name
    too long when the scenario was looked up as a path)."""
    status, shown = send(served.client, Request("POST", path, body, "text/plain" if b"\x80" in body else
                                                "application/json"))
    if isinstance(answer[1], str):
        assert (status, shown["detail"][:len(answer[1])]) == answer
    else:
        assert (status, shown) == answer
