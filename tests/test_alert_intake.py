"""Alert intake: Datadog and Alertmanager webhooks start an investigation scoped to the alert, repeats join it,
malformed or unsigned deliveries change nothing; and one run through a real uvicorn server on loopback."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from agent.remediation.audit import AuditLog
from tests.serving import TOKENS, Gate, app_for, bearer, finished, isolate_server, samples, sse, wait_for

SECRET = "webhook-secret-for-tests-0123456789"

# What Datadog sends with the payload template of docs/serve.md, for a multi-alert monitor grouped by queue.
DATADOG: dict[str, Any] = {
    "alert_id": "81237645",
    "alert_title": "[Triggered on {kube_namespace:sock-shop,rabbitmq_queue:shipping-task}] Queue has messages but "
                   "no consumers",
    "alert_transition": "Triggered",
    "alert_scope": "kube_namespace:sock-shop,rabbitmq_queue:shipping-task",
    "alert_status": "rabbitmq.queue.consumers over kube_namespace:sock-shop,rabbitmq_queue:shipping-task was <= 0.0 "
                    "on average during the last 5m.",
    "alert_metric": "rabbitmq.queue.consumers",
    "alert_priority": "P2",
    "alert_cycle_key": "7136312834501232118",
    "tags": "env:prod,kube_namespace:sock-shop,kube_deployment:queue-master,monitor,rabbitmq_queue:shipping-task,"
            "service:queue-master",
    "body": "%%%\nQueue shipping-task holds messages and nothing consumes it.\n\n@webhook-sre-agent\n%%%",
    "title": "[Triggered on {kube_namespace:sock-shop,rabbitmq_queue:shipping-task}] Queue has messages but no "
             "consumers",
    "id": "7927843620583211201",
    "link": "https://app.datadoghq.com/event/event?id=7927843620583211201",
    "date": "1762699650000",
}
DD_QUESTION = ("Datadog alert: Queue has messages but no consumers. Investigate in namespace sock-shop, service "
               "queue-master, queue shipping-task: what is wrong and why?")

# An Alertmanager webhook_config delivery (version 4): two firing alerts in one group.
ALERTMANAGER: dict[str, Any] = {
    "receiver": "sre-agent",
    "status": "firing",
    "alerts": [
        {"status": "firing",
         "labels": {"alertname": "RabbitMQQueueNoConsumers", "namespace": "sock-shop", "queue": "shipping-task",
                    "vhost": "/", "severity": "critical", "service": "rabbitmq-exporter", "job": "rabbitmq",
                    "instance": "10.42.0.17:9419"},
         "annotations": {"summary": "Queue shipping-task has messages but no consumers",
                         "runbook_url": "https://runbooks.example/rabbitmq/no-consumers"},
         "startsAt": "2025-11-09T14:45:30.000Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus:9090/graph?g0.expr=rabbitmq_queue_consumers+%3D%3D+0",
         "fingerprint": "5b1c0f6a2e9d7c34"},
        {"status": "firing",
         "labels": {"alertname": "KubeDeploymentAtZero", "namespace": "sock-shop", "deployment": "queue-master",
                    "severity": "warning", "service": "kube-state-metrics", "job": "kube-state-metrics"},
         "annotations": {"summary": "Deployment queue-master has 0 replicas"},
         "startsAt": "2025-11-09T14:44:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
         "generatorURL": "http://prometheus:9090/graph?g0.expr=kube_deployment_spec_replicas+%3D%3D+0",
         "fingerprint": "e3a9d1f07b2c6d58"},
    ],
    "groupLabels": {"namespace": "sock-shop"},
    "commonLabels": {"namespace": "sock-shop"},
    "commonAnnotations": {},
    "externalURL": "http://alertmanager:9093",
    "version": "4",
    "groupKey": '{}:{namespace="sock-shop"}',
    "truncatedAlerts": 0,
}
AM_QUESTION = ("Alertmanager alert: RabbitMQQueueNoConsumers, KubeDeploymentAtZero: Queue shipping-task has messages "
               "but no consumers. Investigate in namespace sock-shop, service queue-master, queue shipping-task: what "
               "is wrong and why?")


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    isolate_server(tmp_path, monkeypatch)


def signed(payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(payload).encode()
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return body, {"Content-Type": "application/json", "X-SRE-Agent-Signature": f"sha256={digest}"}


def test_a_datadog_alert_starts_an_investigation_scoped_to_its_tags_and_a_repeat_joins_it(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path, scenario="incident-5")) as client:
        started = client.post("/alerts/datadog", json=DATADOG)
        repeat = client.post("/alerts/datadog", json=DATADOG)
        record = wait_for(client, f"/investigations/{started.json()['investigation_id']}", finished)
        after_verdict = client.post("/alerts/datadog", json=DATADOG)  # still open: its fix awaits approval
        recovered = client.post("/alerts/datadog", json={**DATADOG, "alert_transition": "Recovered"})
        other_group = client.post("/alerts/datadog", json={**DATADOG, "alert_scope": "kube_namespace:sock-shop,"
                                                                                    "rabbitmq_queue:other-task"})
        listed = client.get("/investigations").json()
        metrics = samples(client.get("/metrics").text)
    assert started.status_code == 202
    investigation = started.json()["investigation_id"]
    assert started.json() == {"investigation_id": investigation, "result": "started", "status": "queued",
                              "question": DD_QUESTION, "reason": None}
    assert (repeat.status_code, repeat.json()["investigation_id"], repeat.json()["result"]) == (
        200, investigation, "joined")
    assert (after_verdict.status_code, after_verdict.json()["investigation_id"]) == (200, investigation)
    assert (recovered.status_code, recovered.json()) == (200, {
        "investigation_id": None, "result": "ignored", "status": None, "question": None,
        "reason": "monitor 81237645 recovered: nothing to investigate"})
    assert other_group.status_code == 202 and other_group.json()["investigation_id"] != investigation
    alert = record["alert"]
    assert {k: v for k, v in alert.items() if k not in ("last_received_at", "deliveries")} == {
        "source": "datadog", "title": "Queue has messages but no consumers",
        "keys": ["datadog:81237645:kube_namespace:sock-shop,rabbitmq_queue:shipping-task"],
        "namespaces": ["sock-shop"], "workloads": ["queue-master"], "queues": ["shipping-task"], "notes": []}
    assert record["question"] == DD_QUESTION and record["remediate"] is True
    verdict = record["verdict"]
    assert verdict["status"] == "incident"
    assert verdict["root_cause"]["component"] == {"kind": "Deployment", "namespace": "sock-shop",
                                                  "name": "queue-master"}
    assert record["remediation"]["status"] == "pending"  # the alert's fix waits for an approver
    assert [row["id"] for row in listed] == [investigation, other_group.json()["investigation_id"]]
    assert listed[0]["question"] == DD_QUESTION
    assert [(dict(labels)["result"], value) for (name, labels), value in sorted(metrics.items())
            if name == "sre_agent_alerts_total"] == [("ignored", 1.0), ("joined", 2.0), ("started", 2.0)]


def test_an_alertmanager_group_starts_one_investigation_and_repeats_join_it(tmp_path: Path) -> None:
    regrouped = copy.deepcopy(ALERTMANAGER)
    regrouped["groupKey"] = '{}:{alertname="RabbitMQQueueNoConsumers"}'
    regrouped["alerts"] = regrouped["alerts"][:1]  # the same alert (fingerprint) in another group
    resolved = copy.deepcopy(ALERTMANAGER)
    resolved["status"] = "resolved"
    for alert in resolved["alerts"]:
        alert["status"] = "resolved"
    gate = Gate()  # the investigation stays open until both repeats have arrived
    with TestClient(app_for(tmp_path, gate.resolve, alerts_remediate=False)) as client:
        started = client.post("/alerts/alertmanager", json=ALERTMANAGER)
        repeat = client.post("/alerts/alertmanager", json=ALERTMANAGER)
        joined = client.post("/alerts/alertmanager", json=regrouped)
        gate.opened.set()
        record = wait_for(client, f"/investigations/{started.json()['investigation_id']}", finished)
        ignored = client.post("/alerts/alertmanager", json=resolved)
        later = client.post("/alerts/alertmanager", json=ALERTMANAGER)  # done, nothing pending: a new incident
    investigation = started.json()["investigation_id"]
    assert (started.status_code, started.json()["result"], started.json()["question"]) == (202, "started",
                                                                                           AM_QUESTION)
    assert [(r.status_code, r.json()["investigation_id"]) for r in (repeat, joined)] == [(200, investigation)] * 2
    assert record["alert"]["deliveries"] == 3
    assert record["alert"]["keys"] == ['alertmanager:group:{}:{namespace="sock-shop"}',
                                       "alertmanager:fingerprint:5b1c0f6a2e9d7c34",
                                       "alertmanager:fingerprint:e3a9d1f07b2c6d58",
                                       'alertmanager:group:{}:{alertname="RabbitMQQueueNoConsumers"}']
    assert (record["alert"]["namespaces"], record["alert"]["workloads"], record["alert"]["queues"]) == (
        ["sock-shop"], ["queue-master"], ["shipping-task"])  # the exporters' `service` labels are not workloads
    assert (record["status"], record["verdict"]["status"], record["remediation"]) == ("done", "incident", None)
    assert record["verdict"]["root_cause"]["component"]["name"] == "queue-master"
    assert (ignored.status_code, ignored.json()["result"]) == (200, "ignored")
    assert ignored.json()["reason"] == 'group {}:{namespace="sock-shop"} is resolved: nothing to investigate'
    assert later.status_code == 202 and later.json()["investigation_id"] != investigation


def without(payload: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in payload.items() if k != key}


def test_malformed_payloads_get_a_reason_and_start_nothing(tmp_path: Path) -> None:
    no_alerts = {**ALERTMANAGER, "alerts": []}
    bad_alert = copy.deepcopy(ALERTMANAGER)
    del bad_alert["alerts"][0]["labels"]
    with TestClient(app_for(tmp_path)) as client:
        answers = {
            "datadog without alert_id": client.post("/alerts/datadog", json=without(DATADOG, "alert_id")),
            "datadog template not filled": client.post("/alerts/datadog", json={**DATADOG, "alert_id": "$ALERT_ID"}),
            "datadog not json": client.post("/alerts/datadog", content=b"alert_id=1&title=x",
                                            headers={"Content-Type": "application/x-www-form-urlencoded"}),
            "datadog a list": client.post("/alerts/datadog", json=[DATADOG]),
            "alertmanager version 3": client.post("/alerts/alertmanager", json={**ALERTMANAGER, "version": "3"}),
            "alertmanager no alerts": client.post("/alerts/alertmanager", json=no_alerts),
            "alertmanager alert without labels": client.post("/alerts/alertmanager", json=bad_alert),
            "alertmanager without groupKey": client.post("/alerts/alertmanager", json=without(ALERTMANAGER,
                                                                                              "groupKey")),
        }
        nothing = client.get("/investigations").json()
    assert {name: r.status_code for name, r in answers.items()} == {name: 422 for name in answers}
    locations = {name: [e["loc"] for e in r.json()["detail"]] for name, r in answers.items()}
    assert locations["datadog without alert_id"] == [["body", "alert_id"]]
    assert locations["alertmanager version 3"] == [["body", "version"]]
    assert locations["alertmanager no alerts"] == [["body", "alerts"]]
    assert locations["alertmanager alert without labels"] == [["body", "alerts", 0, "labels"]]
    assert "was not substituted" in answers["datadog template not filled"].json()["detail"][0]["msg"]
    assert nothing == []


def test_with_a_secret_unsigned_deliveries_are_refused_and_change_nothing(tmp_path: Path) -> None:
    with TestClient(app_for(tmp_path, webhook_secret=SECRET, alerts_remediate=False)) as client:
        unsigned = client.post("/alerts/datadog", json=DATADOG)
        wrong_bearer = client.post("/alerts/datadog", json=DATADOG, headers={"Authorization": "Bearer guess"})
        body, headers = signed(DATADOG)
        tampered = client.post("/alerts/datadog", content=body.replace(b"81237645", b"81237646"), headers=headers)
        nothing = client.get("/investigations").json()
        by_signature = client.post("/alerts/datadog", content=body, headers=headers)
        by_bearer = client.post("/alerts/alertmanager", json=ALERTMANAGER,
                                headers={"Authorization": f"Bearer {SECRET}"})
        approver_token = client.post("/alerts/alertmanager", json=ALERTMANAGER, headers=bearer("oncall-sre"))
        for answer in (by_signature, by_bearer):
            wait_for(client, f"/investigations/{answer.json()['investigation_id']}", finished)
    assert [r.status_code for r in (unsigned, wrong_bearer, tampered, approver_token)] == [401] * 4
    assert unsigned.json() == {"detail": "unsigned: send Authorization: Bearer <webhook secret> or "
                                         "X-SRE-Agent-Signature: sha256=<HMAC of the body>"}
    assert wrong_bearer.json() == {"detail": "the bearer token is not the webhook secret"}
    assert tampered.json() == {"detail": "X-SRE-Agent-Signature does not match the body (expected "
                                         "sha256=<hex HMAC-SHA256 of the body>)"}
    assert SECRET not in json.dumps([r.json() for r in (unsigned, wrong_bearer, tampered)])
    assert nothing == []
    assert (by_signature.status_code, by_bearer.status_code) == (202, 202)


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """`app` on a real uvicorn server on 127.0.0.1 (an ephemeral port), in a thread; its base URL."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def test_end_to_end_over_loopback_alert_to_recovered(tmp_path: Path) -> None:
    """A signed Alertmanager webhook → an investigation streamed to its verdict → a pending approval → refused for
    someone the policy does not list → approved by the on-call → executed, verified, audited; a repeat joins."""
    body, headers = signed(ALERTMANAGER)
    with serving(app_for(tmp_path, webhook_secret=SECRET)) as url, httpx.Client(base_url=url, timeout=20) as http:
        started = http.post("/alerts/alertmanager", content=body, headers=headers)
        investigation = started.json()["investigation_id"]
        with http.stream("GET", f"/investigations/{investigation}/events") as stream:
            events = sse(stream.read().decode())
        repeat = http.post("/alerts/alertmanager", content=body, headers=headers)
        record = http.get(f"/investigations/{investigation}").json()
        approval = record["remediation"]["approval_id"]
        refused = http.post(f"/approvals/{approval}/approve", headers=bearer("mallory"))
        approved = http.post(f"/approvals/{approval}/approve",
                             headers={"Authorization": f"Bearer {TOKENS['oncall-sre']}"})
        deadline = time.monotonic() + 20
        while (done := http.get(f"/investigations/{investigation}").json())["remediation"]["status"] in (
                "pending", "approved", "executed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        metrics = samples(http.get("/metrics").text)
    assert started.status_code == 202 and started.json()["question"] == AM_QUESTION
    assert events[-1][1] == "verdict" and events[-1][2]["status"] == "incident"
    assert {kind for _, kind, _ in events[:-1]} == {"status", "model", "tool"}
    assert (repeat.status_code, repeat.json()["investigation_id"], repeat.json()["result"]) == (
        200, investigation, "joined")
    assert refused.status_code == 403
    assert approved.status_code == 200 and approved.json()["decided_by"] == "oncall-sre"
    assert done["remediation"]["status"] == "recovered"
    assert done["remediation"]["execution"]["approver"] == "oncall-sre"
    audit = [(r.event, r.actor) for r in AuditLog(tmp_path / "audit.jsonl").read(approval_id=approval)]
    assert [event for event, _ in audit] == ["proposed", "refused", "approved", "dry_run", "executed", "verified"]
    assert audit[1:3] == [("refused", "mallory"), ("approved", "oncall-sre")]
    assert metrics[("sre_agent_alerts_total", (("result", "started"), ("source", "alertmanager")))] == 1.0
    assert metrics[("sre_agent_alerts_total", (("result", "joined"), ("source", "alertmanager")))] == 1.0
    assert metrics[("sre_agent_approvals_total", (("decision", "refused"),))] == 1.0
    assert metrics[("sre_agent_approvals_total", (("decision", "approved"),))] == 1.0
