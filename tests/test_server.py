"""`sre-agent serve`: investigations, their event stream, the queue, restarts, approvals, health and metrics."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from agent.server.records import InvestigationRecord, InvestigationStore
from tests.serving import (
    Gate,
    app_for,
    bearer,
    finished,
    isolate_server,
    playbook_verdict,
    samples,
    sse,
    wait_for,
)
from tools.registry import TOOL_SOURCES

QUESTION = "why are shipments not going out?"
COMMAND = "kubectl -n sock-shop scale deployment/queue-master --replicas=1"


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_server(tmp_path, monkeypatch)


def test_an_investigation_on_the_replay_reaches_its_incident_verdict(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path)) as client:
        accepted = client.post("/investigations", json={"question": QUESTION, "model": "playbook"})
        assert accepted.status_code == 202
        queued = accepted.json()
        assert (queued["status"], queued["question"], queued["sources"], queued["model"], queued["verdict"]) == (
            "queued", QUESTION, "incident-5", "playbook", None)
        done = wait_for(client, f"/investigations/{queued['id']}", finished)
        listed = client.get("/investigations").json()
    assert done["status"] == "done" and done["error"] is None and done["remediation"] is None
    verdict = {k: v for k, v in done["verdict"].items() if k != "trace"}
    assert verdict == playbook_verdict(QUESTION)
    assert verdict["status"] == "incident"
    assert verdict["root_cause"]["component"] == {"kind": "Deployment", "namespace": "sock-shop",
                                                  "name": "queue-master"}
    tools = [event for event in done["trace"] if event["kind"] == "tool"]
    assert [e["id"] for e in tools] == [c["id"] for c in done["verdict"]["trace"]["tool_calls"]]
    assert [e["kind"] for e in done["trace"][:2]] == ["status", "status"]
    assert listed == [{"id": queued["id"], "status": "done", "question": QUESTION, "created_at": queued["created_at"],
                       "verdict_status": "incident", "remediation_status": None, "approval_id": None}]
    stored = InvestigationStore(tmp_path / "approvals.sqlite").get(queued["id"])  # in the database, beside approvals
    assert stored is not None and stored.model_dump(mode="json") == done
    assert not (tmp_path / "investigations").exists()


def test_the_event_stream_yields_progress_then_the_verdict(tmp_path: Path) -> None:
    gate = Gate()
    with TestClient(app_for(tmp_path, resolve=gate.resolve)) as client:
        started = client.post("/investigations", json={"question": QUESTION}).json()
        wait_for(client, f"/investigations/{started['id']}", lambda body: body["status"] == "running")
        gate.opened.set()  # the stream follows the run as it goes
        with client.stream("GET", f"/investigations/{started['id']}/events") as stream:
            assert stream.headers["content-type"].startswith("text/event-stream")
            live = sse(stream.read().decode())
        record = client.get(f"/investigations/{started['id']}").json()
        replayed = sse(client.get(f"/investigations/{started['id']}/events").text)  # finished: from the record
        tail = sse(client.get(f"/investigations/{started['id']}/events",
                              headers={"Last-Event-ID": str(len(live) - 3)}).text)
    kinds = [kind for _, kind, _ in live]
    assert kinds[:2] == ["status", "status"] and [d for _, _, d in live[:2]] == [{"status": "queued"},
                                                                                 {"status": "running"}]
    assert set(kinds[2:-1]) == {"model", "tool"} and kinds[-1] == "verdict"
    assert live[-1][2] == record["verdict"]
    assert [i for i, _, _ in live] == [str(n) for n in range(len(live))]
    assert [(kind, data) for _, kind, data in live[:-1]] == [(e["kind"], {k: v for k, v in e.items() if k != "kind"})
                                                             for e in record["trace"]]
    assert replayed == live
    assert tail == live[-2:]


def test_the_concurrency_limit_queues_the_third_of_three(tmp_path: Path) -> None:
    gate = Gate()
    with TestClient(app_for(tmp_path, resolve=gate.resolve, concurrency=2)) as client:
        ids = [client.post("/investigations", json={"question": QUESTION}).json()["id"] for _ in range(3)]
        wait_for(client, f"/investigations/{ids[1]}", lambda body: body["status"] == "running")
        statuses = [client.get(f"/investigations/{i}").json()["status"] for i in ids]
        gauges = samples(client.get("/metrics").text)
        gate.opened.set()
        done = [wait_for(client, f"/investigations/{i}", finished)["status"] for i in ids]
        after = samples(client.get("/metrics").text)
    assert statuses == ["running", "running", "queued"]
    assert (gauges[("sre_agent_investigations_running", ())], gauges[("sre_agent_investigations_queued", ())]) == (
        2.0, 1.0)
    assert done == ["done", "done", "done"]
    assert after[("sre_agent_investigations_total", (("outcome", "incident"),))] == 3.0
    assert after[("sre_agent_investigation_duration_seconds_count", ())] == 3.0
    assert (after[("sre_agent_investigations_running", ())], after[("sre_agent_investigations_queued", ())]) == (
        0.0, 0.0)


def test_a_restarted_server_marks_the_running_investigation_interrupted_and_runs_the_queued(tmp_path: Path) -> None:
    gate = Gate()
    with TestClient(app_for(tmp_path, resolve=gate.resolve, concurrency=1)) as first:
        running = first.post("/investigations", json={"question": QUESTION}).json()["id"]
        wait_for(first, f"/investigations/{running}", lambda body: body["status"] == "running")
        # a record left queued by a server that stopped before it could start it
        queued = InvestigationRecord(id="inv-0000000000aa", question=QUESTION, sources="incident-5", model="playbook")
        InvestigationStore(tmp_path / "approvals.sqlite").save(queued)
        with TestClient(app_for(tmp_path)) as second:  # the restarted server, on the same data dir
            interrupted = second.get(f"/investigations/{running}").json()
            events = sse(second.get(f"/investigations/{running}/events").text)
            rerun = wait_for(second, f"/investigations/{queued.id}", finished)
            metrics = samples(second.get("/metrics").text)
        gate.opened.set()
    assert (interrupted["status"], interrupted["error"]) == (
        "interrupted", "the server stopped while this investigation was running; start it again")
    assert interrupted["finished_at"] is not None
    assert events[-1][1:] == ("interrupted", {"error": interrupted["error"]})
    assert (rerun["status"], rerun["verdict"]["status"]) == ("done", "incident")
    assert metrics[("sre_agent_investigations_total", (("outcome", "interrupted"),))] == 1.0
    assert metrics[("sre_agent_investigations_total", (("outcome", "incident"),))] == 1.0


def pending_run(client: TestClient) -> tuple[str, str]:
    started = client.post("/investigations", json={"question": QUESTION, "remediate": True}).json()
    done = wait_for(client, f"/investigations/{started['id']}", finished)
    assert (done["status"], done["verdict"]["status"], done["remediation"]["status"]) == (
        "done", "incident", "pending")
    assert done["remediation"]["command"] == COMMAND
    return started["id"], done["remediation"]["approval_id"]


def test_only_an_authenticated_approver_in_the_policy_approves_and_the_run_recovers(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path)) as client:
        investigation, approval = pending_run(client)
        pending = client.get("/approvals").json()
        anonymous = client.post(f"/approvals/{approval}/approve")
        forged = client.post(f"/approvals/{approval}/approve", headers={"Authorization": "Bearer not-a-token"})
        outsider = client.post(f"/approvals/{approval}/approve", headers=bearer("mallory"))
        still = client.get(f"/approvals/{approval}").json()
        approved = client.post(f"/approvals/{approval}/approve", headers=bearer("oncall-sre"))
        run = wait_for(client, f"/investigations/{investigation}",
                       lambda body: body["remediation"]["status"] not in ("pending", "approved"))
        final = client.get(f"/approvals/{approval}").json()
        again = client.post(f"/approvals/{approval}/approve", headers=bearer("oncall-sre"))
        metrics = samples(client.get("/metrics").text)
        missing = client.post("/approvals/ffffffff/approve", headers=bearer("oncall-sre"))
    assert [(r["id"], r["command"], r["status"]) for r in pending] == [(approval, COMMAND, "pending")]
    assert (anonymous.status_code, anonymous.headers["www-authenticate"]) == (401, "Bearer")
    assert anonymous.json() == {"detail": "authentication needed: send Authorization: Bearer <your approver token>"}
    assert forged.status_code == 401
    assert forged.json() == {"detail": "the bearer token is not one of the approver tokens"}
    assert outsider.status_code == 403
    assert "'mallory' may not approve" in outsider.json()["detail"]
    assert "mallory is not a listed approver (oncall-sre)" in outsider.json()["detail"]
    assert still["status"] == "pending" and still["approver"] is None
    assert approved.status_code == 200
    body = approved.json()
    assert body["decided_by"] == "oncall-sre" and body["approval"]["approver"] == "oncall-sre"
    assert body["approval"]["status"] in ("approved", "executing", "executed")
    assert run["remediation"]["status"] == "recovered"
    assert run["remediation"]["verification"]["summary"] == "backlog 5 → 0 in 10 s; consumers 0 → 1; available 0 → 1"
    assert (final["status"], final["approver"]) == ("executed", "oncall-sre")
    assert again.status_code == 409 and "already executed" in again.json()["detail"]
    assert metrics[("sre_agent_approvals_total", (("decision", "approved"),))] == 1.0
    assert metrics[("sre_agent_approvals_total", (("decision", "refused"),))] == 2.0  # mallory; approving again
    assert missing.status_code == 404


def test_a_rejection_needs_a_reason_and_ends_the_run(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path)) as client:
        investigation, approval = pending_run(client)
        unauthenticated = client.post(f"/approvals/{approval}/reject", json={"reason": "not now"})
        reasonless = client.post(f"/approvals/{approval}/reject", json={}, headers=bearer("oncall-sre"))
        blank = client.post(f"/approvals/{approval}/reject", json={"reason": "  "}, headers=bearer("oncall-sre"))
        rejected = client.post(f"/approvals/{approval}/reject", json={"reason": "maintenance window"},
                               headers=bearer("oncall-sre"))
        run = wait_for(client, f"/investigations/{investigation}",
                       lambda body: body["remediation"]["status"] != "pending")
        metrics = samples(client.get("/metrics").text)
    assert unauthenticated.status_code == 401
    assert reasonless.status_code == 422 and reasonless.json()["detail"][0]["loc"] == ["body", "reason"]
    assert blank.status_code == 422 and "a rejection needs a reason" in blank.json()["detail"][0]["msg"]
    assert rejected.status_code == 200
    assert (rejected.json()["approval"]["status"], rejected.json()["approval"]["reason"]) == (
        "rejected", "maintenance window")
    assert (run["remediation"]["status"], run["remediation"]["reason"]) == ("rejected", "maintenance window")
    assert metrics[("sre_agent_approvals_total", (("decision", "rejected"),))] == 1.0


def test_a_trusted_proxy_header_names_the_approver_only_from_a_trusted_address(tmp_path: Path) -> None:
    header = {"X-Forwarded-User": "oncall-sre"}
    with TestClient(app_for(tmp_path, identity_header="X-Forwarded-User")) as client:
        _, approval = pending_run(client)
        untrusted = client.post(f"/approvals/{approval}/approve", headers=header)  # "testclient" is no proxy
    assert untrusted.status_code == 401
    assert untrusted.json() == {"detail": "X-Forwarded-User is only believed from a trusted proxy (testclient is "
                                          "not one)"}
    with TestClient(app_for(tmp_path, identity_header="X-Forwarded-User", trusted_proxies=["testclient"])) as client:
        approved = client.post(f"/approvals/{approval}/approve", headers=header)
    assert approved.status_code == 200 and approved.json()["decided_by"] == "oncall-sre"


def test_bad_requests_get_a_reason_and_start_nothing(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path, scenario=None)) as client:
        answers = [client.post("/investigations", json=body) for body in (
            {"question": QUESTION},  # no default source on this server
            {"question": QUESTION, "scenario": "no-such-scenario"},
            {"question": QUESTION, "scenario": "incident-5", "live": True},
            {"question": QUESTION, "scenario": "incident-5", "model": "gpt-17"},
            {"question": QUESTION, "scenario": "incident-5", "extra": 1},
            {"question": ""},
        )]
        nothing = client.get("/investigations").json()
        unknown = client.get("/investigations/inv-000000000000")
    assert [a.status_code for a in answers] == [422] * 6
    assert answers[0].json() == {"detail": "name a scenario or live: the server has no default source "
                                           "(SRE_AGENT_SERVE_SCENARIO or SRE_AGENT_SERVE_LIVE)"}
    assert answers[1].json()["detail"].startswith("cannot open the sources 'no-such-scenario': ")
    assert answers[2].json() == {"detail": "choose scenario or live, not both"}
    assert answers[3].json()["detail"].startswith("unknown model 'gpt-17'")
    assert nothing == [] and unknown.status_code == 404


def test_tool_errors_are_counted_by_source(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path)) as client:
        started = client.post("/investigations", json={"question": QUESTION, "scenario": "partial-telemetry"}).json()
        done = wait_for(client, f"/investigations/{started['id']}", finished)
        metrics = samples(client.get("/metrics").text)
    failed = Counter(TOOL_SOURCES[e["name"]] for e in done["trace"] if e["kind"] == "tool" and not e["ok"])
    assert failed["datadog"] > 0 and failed["rabbitmq"] > 0
    counted = {dict(labels)["source"]: value for (name, labels), value in metrics.items()
               if name == "sre_agent_tool_errors_total"}
    assert counted == {source: float(n) for source, n in failed.items()}


def test_health_and_readiness(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path)) as client:
        health, ready = client.get("/healthz"), client.get("/readyz")
        docs = client.get("/openapi.json").json()
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"ready": True, "checks": {
        "data": f"writable: {tmp_path}", "sources": "ok: incident-5"}})
    assert {"/investigations", "/investigations/{investigation_id}/events", "/approvals/{approval_id}/approve",
            "/alerts/datadog", "/alerts/alertmanager", "/metrics", "/readyz"} <= set(docs["paths"])
    with TestClient(app_for(tmp_path, scenario="no-such-scenario")) as client:
        unready = client.get("/readyz")
    assert unready.status_code == 503
    assert unready.json()["ready"] is False
    assert unready.json()["checks"]["sources"].startswith("cannot open the default sources 'no-such-scenario': ")
