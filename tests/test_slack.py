"""The Slack app: signed requests from Slack into the real server on loopback, and the Web API calls it makes,
played from cassettes in Slack's wire format (tests/cassettes/slack/).

Requests are signed as Slack signs them (v0 HMAC-SHA256 of `v0:{timestamp}:{body}` with the signing secret,
`slack_sdk.signature.SignatureVerifier`). The app's WebClient points at https://slack.test/api/, a host that does
not resolve, so nothing reaches Slack. Every cassette is played with record_mode=none and must be played
entirely: an extra, missing or different call (method, path, body) fails the test. The ids an investigation and an
approval get are fixed per test, so the messages in the cassettes are exact.
"""

from __future__ import annotations

import itertools
import json
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import vcr
from slack_sdk.signature import SignatureVerifier

from agent import run as agent_run
from agent.remediation import approvals as approvals_module
from agent.remediation.audit import AuditLog
from agent.remediation.flow import CHECKPOINTER_ENV
from agent.remediation.paths import DATA_ENV
from agent.remediation.policy import POLICY_ENV
from agent.server import api_investigations
from agent.server.records import InvestigationRecord
from agent.server.settings import ServerConfigError, ServerSettings
from agent.server.slack import question_of
from agent.server.slack_blocks import verdict_message
from tests.serving import app_for, samples
from tests.test_alert_intake import ALERTMANAGER, AM_QUESTION, serving

CASSETTES = Path(__file__).parent / "cassettes" / "slack"
SLACK_API = "https://slack.test/api/"
HOOKS = "https://hooks.slack.test/"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BOT_TOKEN = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
TEAM, APP, BOT_USER = "T0A1B2C3D", "A0SREAGENT", "U0SREBOT1"
ONCALL, MALLORY, STRANGER = "U0ONCALL1", "U0MALLORY", "U0STRANGE"
ALERTS, SHIPPING = "C0ALERTS1", "C0SHIPPNG"
QUESTION = "why are shipments not going out?"
POLICY = """version: 1
approval:
  approvers: [oncall-sre]
  identity: authenticated
rules:
  - name: workloads
    namespaces: ["*"]
    allow:
      scale: {min_replicas: 1, max_replicas: 5}
      rollout_restart: {}
"""

player = vcr.VCR(cassette_library_dir=str(CASSETTES), record_mode="none", ignore_localhost=True,
                 match_on=["method", "scheme", "host", "port", "path", "query", "body"],
                 filter_headers=["authorization", "user-agent"], decode_compressed_response=True)


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    monkeypatch.delenv(CHECKPOINTER_ENV, raising=False)
    policy = tmp_path / "policy.yaml"
    policy.write_text(POLICY, encoding="utf-8")
    monkeypatch.setenv(POLICY_ENV, str(policy))
    for name in ("SCENARIO", "LIVE", "MODEL", "CONCURRENCY", "APPROVER_TOKENS", "IDENTITY_HEADER", "WEBHOOK_SECRET",
                 "SLACK_SIGNING_SECRET", "SLACK_BOT_TOKEN", "SLACK_APPROVERS", "SLACK_CHANNEL", "SLACK_API_URL"):
        monkeypatch.delenv(f"SRE_AGENT_SERVE_{name}", raising=False)
    investigations = itertools.count(1)
    monkeypatch.setattr(api_investigations, "new_investigation_id", lambda: f"inv-5ac0{next(investigations):08x}")
    runs = itertools.count(1)
    monkeypatch.setattr(agent_run, "new_run_id", lambda: f"run-5ac0{next(runs):08x}")
    approvals = itertools.count(1)
    monkeypatch.setattr(approvals_module, "secrets", SimpleNamespace(token_hex=lambda n: f"a9{next(approvals):06x}"))
    yield


def slack_app(data: Path, **settings: Any) -> Any:
    approvers = data / "slack-approvers.yaml"
    approvers.write_text(f"# Slack user id: approver name\n{ONCALL}: oncall-sre\n{MALLORY}: mallory\n",
                         encoding="utf-8")
    values: dict[str, Any] = {"slack_signing_secret": SIGNING_SECRET, "slack_bot_token": BOT_TOKEN,
                              "slack_approvers": approvers, "slack_api_url": SLACK_API, **settings}
    return app_for(data, **values)


# ---- what Slack sends ----------------------------------------------------------------------------------------

def signed(body: str, content_type: str, *, secret: str = SIGNING_SECRET, age_s: int = 0) -> dict[str, Any]:
    """Request arguments for `body` as Slack sends it: X-Slack-Request-Timestamp and the v0 signature."""
    timestamp = str(int(time.time()) - age_s)
    signature = SignatureVerifier(secret).generate_signature(timestamp=timestamp, body=body)
    return {"content": body.encode(), "headers": {"Content-Type": content_type, "X-Slack-Request-Timestamp": timestamp,
                                                  "X-Slack-Signature": signature}}


def form(fields: dict[str, str]) -> str:
    return urllib.parse.urlencode(fields)


def slash_command(text: str, user: str = ONCALL, channel: str = SHIPPING) -> str:
    """A slash command invocation, the fields Slack posts (application/x-www-form-urlencoded)."""
    return form({"token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": TEAM, "team_domain": "acme-ops",
                 "channel_id": channel, "channel_name": "shipping", "user_id": user, "user_name": "grace",
                 "command": "/sre-agent", "text": text, "api_app_id": APP, "is_enterprise_install": "false",
                 "response_url": f"{HOOKS}commands/{TEAM}/8185937102018/c3VwZXJzZWNyZXRyZXNwb25zZQ",
                 "trigger_id": "8185937102050.17653672481.4b5e2a3f0c7d9e1a"})


def block_actions(message: dict[str, Any], action_id: str, user: str) -> str:
    """A click on a button of `message` (the chat.postMessage arguments the app sent, and its ts), as the
    block_actions payload Slack posts back: the button's action id, block id and value come from the message."""
    blocks = message["blocks"]
    actions = next(block for block in blocks if block["type"] == "actions")
    button = next(element for element in actions["elements"] if element["action_id"] == action_id)
    payload = {
        "type": "block_actions",
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": APP, "token": "gIkuvaNzQIHg97ATvDxqgjtO",
        "container": {"type": "message", "message_ts": message["ts"], "channel_id": message["channel"],
                      "is_ephemeral": False, "thread_ts": message["thread_ts"]},
        "trigger_id": f"8186048561137.17653672481.{user.lower()}",
        "team": {"id": TEAM, "domain": "acme-ops"}, "enterprise": None, "is_enterprise_install": False,
        "channel": {"id": message["channel"], "name": "alerts"},
        "message": {"user": BOT_USER, "type": "message", "ts": message["ts"], "bot_id": "B0SREBOT1", "app_id": APP,
                    "text": message["text"], "team": TEAM, "blocks": blocks, "thread_ts": message["thread_ts"]},
        "state": {"values": {}},
        "response_url": f"{HOOKS}actions/{TEAM}/8186048561137/YWN0aW9ucmVzcG9uc2U",
        "actions": [{**button, "block_id": actions["block_id"], "action_ts": f"{time.time():.6f}"}],
    }
    return form({"payload": json.dumps(payload)})


def view_submission(view: dict[str, Any], reason: str, user: str = ONCALL) -> str:
    """The rejection modal submitted with `reason` (the view the app opened, as Slack echoes it back)."""
    payload = {
        "type": "view_submission", "team": {"id": TEAM, "domain": "acme-ops"},
        "user": {"id": user, "username": user.lower(), "name": user.lower(), "team_id": TEAM},
        "api_app_id": APP, "token": "gIkuvaNzQIHg97ATvDxqgjtO", "trigger_id": "8186048561999.17653672481.view",
        "view": {**view, "id": "V0REJECT01", "team_id": TEAM, "app_id": APP, "bot_id": "B0SREBOT1",
                 "state": {"values": {"reason": {"reason": {"type": "plain_text_input", "value": reason}}}},
                 "hash": "1762700000.Qx8bYdVQ", "root_view_id": "V0REJECT01", "previous_view_id": None},
        "response_urls": [], "is_enterprise_install": False, "enterprise": None,
    }
    return form({"payload": json.dumps(payload)})


def app_mention(text: str, event_id: str = "Ev0MENTION01", ts: str = "1762699800.000200") -> str:
    """An app_mention event callback (application/json)."""
    return json.dumps({
        "token": "gIkuvaNzQIHg97ATvDxqgjtO", "team_id": TEAM, "api_app_id": APP,
        "event": {"type": "app_mention", "user": ONCALL, "text": text, "ts": ts, "channel": SHIPPING,
                  "event_ts": ts, "client_msg_id": "7d3f0a52-8a3e-4d8e-9d61-0c3f3b1e2a44"},
        "type": "event_callback", "event_id": event_id, "event_time": int(float(ts)),
        "authorizations": [{"enterprise_id": None, "team_id": TEAM, "user_id": BOT_USER, "is_bot": True,
                            "is_enterprise_install": False}],
        "is_ext_shared_channel": False, "event_context": "4-eyJldCI6ImFwcF9tZW50aW9uIn0"})


# ---- waiting for what the app sends --------------------------------------------------------------------------

def calls(cassette: Any, method: str) -> list[dict[str, Any]]:
    """The arguments of each `method` call, in order. The cassette matches on the body, so these are the
    arguments the app sent."""
    return [json.loads(request.body or "{}") for request in cassette.requests if request.uri.endswith("/" + method)]


def methods(cassette: Any) -> list[str]:
    return ["response_url" if urllib.parse.urlsplit(request.uri).netloc.startswith("hooks.")
            else request.uri.rsplit("/", 1)[-1] for request in cassette.requests]


def wait_played(cassette: Any, count: int, timeout: float = 20.0) -> None:
    """Until the app has made `count` Slack calls, and no more (a call the cassette does not hold fails in the app:
    the log says which)."""
    deadline = time.monotonic() + timeout
    while cassette.play_count < count:
        assert time.monotonic() < deadline, f"the app made {cassette.play_count} of the {count} Slack calls expected"
        time.sleep(0.02)
    time.sleep(0.1)
    assert cassette.play_count == count, f"the app made {cassette.play_count} Slack calls, not {count}"


def played(cassette: Any) -> None:
    assert cassette.all_played, f"played {cassette.play_count} of the {len(cassette)} calls in the cassette"


def posted(cassette: Any, method: str, index: int) -> dict[str, Any]:
    """The `index`-th `method` call's arguments, with the ts and channel Slack answered with."""
    answers = [json.loads(response["body"]["string"]) for request, response in zip(
        cassette.requests, cassette.responses, strict=True) if request.uri.endswith("/" + method)]
    return {**calls(cassette, method)[index], "ts": answers[index]["ts"], "channel": answers[index]["channel"]}


def audit(folder: Path, approval: str) -> list[tuple[str, str]]:
    return [(r.event, r.actor) for r in AuditLog(folder / "audit.jsonl").read(approval_id=approval)]


# ---- the tests -----------------------------------------------------------------------------------------------

def test_end_to_end_alert_to_slack_verdict_to_a_signed_click_executed_verified_audited(tmp_path: Path) -> None:
    """The done-when of issue 12, over the real HTTP server on loopback: an Alertmanager webhook about the
    Incident-5 replay → an investigation proposing its fix → a Slack verdict with Approve/Reject → clicks by
    someone unmapped and by someone the policy does not list are refused and change nothing → a signed click by
    the on-call approver → executed → verified → audited; a second identical webhook joins the investigation."""
    with player.use_cassette("alert_to_recovered.yaml") as cassette:
        app = slack_app(tmp_path, slack_channel=ALERTS)
        with serving(app) as url, httpx.Client(base_url=url, timeout=20) as http:
            started = http.post("/alerts/alertmanager", json=ALERTMANAGER)
            investigation = started.json()["investigation_id"]
            wait_played(cassette, 9)  # auth.test; the alert notice; progress posted and updated 5 times; the verdict
            repeat = http.post("/alerts/alertmanager", json=ALERTMANAGER)
            record = http.get(f"/investigations/{investigation}").json()
            approval = record["remediation"]["approval_id"]
            verdict = posted(cassette, "chat.postMessage", 2)

            stranger = http.post("/slack/events", **signed(block_actions(verdict, "approve", STRANGER),
                                                           "application/x-www-form-urlencoded"))
            wait_played(cassette, 10)
            outsider = http.post("/slack/events", **signed(block_actions(verdict, "approve", MALLORY),
                                                           "application/x-www-form-urlencoded"))
            wait_played(cassette, 11)
            unchanged = http.get(f"/approvals/{approval}").json()
            audit_before = audit(tmp_path, approval)

            approved = http.post("/slack/events", **signed(block_actions(verdict, "approve", ONCALL),
                                                           "application/x-www-form-urlencoded"))
            wait_played(cassette, 13)  # the verdict updated: approved and running; then executed and verified
            done = http.get(f"/investigations/{investigation}").json()
            final = http.get(f"/approvals/{approval}").json()
            metrics = samples(http.get("/metrics").text)
        played(cassette)

    assert (started.status_code, started.json()["question"]) == (202, AM_QUESTION)
    assert (repeat.status_code, repeat.json()["result"], repeat.json()["investigation_id"]) == (
        200, "joined", investigation)
    assert methods(cassette) == [
        "auth.test", "chat.postMessage", "chat.postMessage", *["chat.update"] * 5, "chat.postMessage",
        "chat.postEphemeral", "chat.postEphemeral", "chat.update", "chat.update"]
    notice, progress = calls(cassette, "chat.postMessage")[:2]
    assert notice == {"channel": ALERTS, "text": (
        ":rotating_light: *Alertmanager alert*: RabbitMQQueueNoConsumers, KubeDeploymentAtZero: Queue shipping-task "
        f"has messages but no consumers\nInvestigating: `{investigation}`")}
    assert progress["thread_ts"] == verdict["thread_ts"] == "1762699651.000100"  # in the notice's thread
    assert [update["text"].split("\n")[0] for update in calls(cassette, "chat.update")[:5]] == [
        f":hourglass_flowing_sand: Investigating `{investigation}`: 0 tool calls so far",
        f":hourglass_flowing_sand: Investigating `{investigation}`: 4 tool calls so far",
        f":hourglass_flowing_sand: Investigating `{investigation}`: 8 tool calls so far",
        f":hourglass_flowing_sand: Investigating `{investigation}`: 12 tool calls so far",
        f":mag: Investigated `{investigation}` with 13 tool calls in 7 model turns"]
    assert [block["type"] for block in verdict["blocks"]] == [
        "header", "section", "section", "section", "section", "section", "context", "actions", "context"]
    assert verdict["blocks"][5]["text"]["text"] == (
        "*Proposed fix* (risk low)\n```kubectl -n sock-shop scale deployment/queue-master --replicas=1```\n"
        "restore the queue's consumer")
    buttons = verdict["blocks"][7]["elements"]
    assert [(b["action_id"], b["value"], b.get("style")) for b in buttons] == [
        ("approve", approval, "primary"), ("reject", approval, "danger")]

    assert [r.status_code for r in (stranger, outsider, approved)] == [200, 200, 200]  # acknowledged at once
    refusals = calls(cassette, "chat.postEphemeral")
    assert [(r["channel"], r["user"]) for r in refusals] == [(ALERTS, STRANGER), (ALERTS, MALLORY)]
    assert refusals[0]["text"] == (
        f":no_entry: Not done: your Slack user ({STRANGER}) is not mapped to an approver. An admin adds "
        f"`{STRANGER}: <your approver name>` to SRE_AGENT_SERVE_SLACK_APPROVERS.")
    assert refusals[1]["text"].startswith(":no_entry: Not done: 'mallory' may not approve approval")
    assert "mallory is not a listed approver (oncall-sre)" in refusals[1]["text"]
    assert (unchanged["status"], unchanged["approver"]) == ("pending", None)
    assert audit_before == [("proposed", "sre-agent"), ("refused", "mallory")]  # the stranger reached nothing

    approving, outcome = calls(cassette, "chat.update")[5:]
    assert (approving["channel"], approving["ts"]) == (outcome["channel"], outcome["ts"]) == (ALERTS, verdict["ts"])
    assert approving["blocks"][6]["text"]["text"] == (
        f":hourglass_flowing_sand: *Approved* by *oncall-sre* (<@{ONCALL}>): executing, then verifying")
    assert outcome["blocks"][6]["text"]["text"] == (
        f":white_check_mark: *Executed*, approved by *oncall-sre* (<@{ONCALL}>): scaled deployment/queue-master in "
        "sock-shop from 0 to 1 replicas at 2025-11-09T14:47:30+00:00\n"
        ":white_check_mark: *Verified*: backlog 5 → 0 in 10 s; consumers 0 → 1; available 0 → 1\n"
        "To undo: `kubectl -n sock-shop scale deployment/queue-master --replicas=0`")
    assert not any(block["type"] == "actions" for block in outcome["blocks"])  # the buttons are gone

    assert done["remediation"]["status"] == "recovered"
    assert done["remediation"]["execution"]["approver"] == "oncall-sre"
    assert (final["status"], final["approver"], final["identity"]) == ("executed", "oncall-sre", "authenticated")
    assert audit(tmp_path, approval) == [("proposed", "sre-agent"), ("refused", "mallory"), ("approved", "oncall-sre"),
                                         ("dry_run", "oncall-sre"), ("executed", "oncall-sre"),
                                         ("verified", "verifier")]
    assert metrics[("sre_agent_approvals_total", (("decision", "approved"),))] == 1.0
    assert metrics[("sre_agent_approvals_total", (("decision", "refused"),))] == 1.0
    assert metrics[("sre_agent_alerts_total", (("result", "joined"), ("source", "alertmanager")))] == 1.0


def test_a_bad_signature_gets_401_and_nothing_happens(tmp_path: Path) -> None:
    command = slash_command(QUESTION)
    with player.use_cassette("auth_test.yaml") as cassette:
        with serving(slack_app(tmp_path)) as url, httpx.Client(base_url=url, timeout=20) as http:
            answers = {
                "wrong secret": http.post("/slack/events", **signed(command, "application/x-www-form-urlencoded",
                                                                    secret="not-the-signing-secret")),
                "stale": http.post("/slack/events", **signed(command, "application/x-www-form-urlencoded",
                                                             age_s=600)),
                "unsigned": http.post("/slack/events", content=command.encode(),
                                      headers={"Content-Type": "application/x-www-form-urlencoded"}),
            }
            good = signed(command, "application/x-www-form-urlencoded")
            tampered = http.post("/slack/events", content=slash_command("scale everything to zero").encode(),
                                 headers=good["headers"])
            time.sleep(0.3)
            nothing = http.get("/investigations").json()
        played(cassette)
    assert {name: (r.status_code, r.json()) for name, r in answers.items()} == {
        name: (401, {"error": "invalid request"}) for name in answers}
    assert (tampered.status_code, tampered.json()) == (401, {"error": "invalid request"})
    assert nothing == []
    assert methods(cassette) == ["auth.test"]  # at start, and nothing since


def test_the_slash_command_answers_in_a_thread_and_a_rejection_asks_why(tmp_path: Path) -> None:
    with player.use_cassette("slash_command_then_reject.yaml") as cassette:
        with serving(slack_app(tmp_path)) as url, httpx.Client(base_url=url, timeout=20) as http:
            usage = http.post("/slack/events", **signed(slash_command(" "), "application/x-www-form-urlencoded"))
            accepted = http.post("/slack/events", **signed(slash_command(f"  {QUESTION} "),
                                                           "application/x-www-form-urlencoded"))
            wait_played(cassette, 9)  # auth.test; who asked; progress posted and updated 5 times; the verdict
            listed = http.get("/investigations").json()
            verdict = posted(cassette, "chat.postMessage", 2)
            reject = http.post("/slack/events", **signed(block_actions(verdict, "reject", ONCALL),
                                                         "application/x-www-form-urlencoded"))
            wait_played(cassette, 10)  # views.open: the modal asking why
            modal = calls(cassette, "views.open")[0]
            blank = http.post("/slack/events", **signed(view_submission(modal["view"], "   "),
                                                        "application/x-www-form-urlencoded"))
            reason = http.post("/slack/events", **signed(view_submission(modal["view"], "maintenance window"),
                                                         "application/x-www-form-urlencoded"))
            wait_played(cassette, 11)  # the verdict updated: rejected
            record = http.get(f"/investigations/{listed[0]['id']}").json()
        played(cassette)
    assert (usage.status_code, usage.text) == (200, "Ask a question: `/sre-agent why are shipments not going out?`")
    assert (accepted.status_code, accepted.text) == (200, "")
    assert [(r["question"], r["status"], r["verdict_status"]) for r in listed] == [(QUESTION, "done", "incident")]
    investigation = listed[0]["id"]
    asked, progress, _ = calls(cassette, "chat.postMessage")
    assert asked == {"channel": SHIPPING, "text": f"<@{ONCALL}> asked: {QUESTION} (`{investigation}`)"}
    assert progress == {"channel": SHIPPING, "thread_ts": verdict["thread_ts"],
                        "text": f":hourglass: Investigation `{investigation}` is queued: it starts when a slot is free"}
    assert verdict["text"].startswith("Incident: queue-master is scaled to 0, so shipping-task has no consumer")
    assert verdict["blocks"][0] == {"type": "header", "text": {
        "type": "plain_text", "text": ":rotating_light: Incident: Deployment sock-shop/queue-master", "emoji": True}}
    assert verdict["blocks"][3]["text"]["text"].split("\n")[:3] == [
        "*Evidence*",
        "• queue-master: 1 lines in 14:42:30Z–14:47:30Z (5 min); 4 in the previous 5 min; last line at 14:42:45Z "
        "(4.7 min before window end). Silent since 14:43:30Z (4.0 min) `pb_6` _search_logs_",
        "• queue-master: desired 0, available 0 `pb_5` _get_deployment_"]
    assert modal["trigger_id"] == f"8186048561137.17653672481.{ONCALL.lower()}"
    assert json.loads(modal["view"]["private_metadata"]) == {
        "approval": record["remediation"]["approval_id"], "channel": SHIPPING, "ts": verdict["ts"]}
    assert (blank.status_code, blank.json()) == (200, {"response_action": "errors",
                                                       "errors": {"reason": "Say why: it goes to the audit log"}})
    assert [(r.status_code, r.text) for r in (reject, reason)] == [(200, "")] * 2
    assert (record["remediation"]["status"], record["remediation"]["reason"]) == ("rejected", "maintenance window")
    rejected = calls(cassette, "chat.update")[-1]
    assert rejected["blocks"][6]["text"]["text"] == (
        f":no_entry_sign: *Rejected* by *oncall-sre* (<@{ONCALL}>): maintenance window")
    assert audit(tmp_path, record["remediation"]["approval_id"]) == [("proposed", "sre-agent"),
                                                                     ("rejected", "oncall-sre")]


def test_a_mention_answers_in_its_thread_and_a_retried_event_is_taken_once(tmp_path: Path) -> None:
    event = app_mention(f"<@{BOT_USER}> {QUESTION}")
    with player.use_cassette("mention.yaml") as cassette:
        with serving(slack_app(tmp_path)) as url, httpx.Client(base_url=url, timeout=20) as http:
            first = http.post("/slack/events", **signed(event, "application/json"))
            retry = signed(event, "application/json")
            retry["headers"].update({"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
            again = http.post("/slack/events", **retry)
            wait_played(cassette, 8)  # auth.test; progress posted and updated 5 times; the verdict
            listed = http.get("/investigations").json()
        played(cassette)
    assert [r.status_code for r in (first, again)] == [200, 200]
    assert [(r["question"], r["verdict_status"], r["remediation_status"]) for r in listed] == [
        (QUESTION, "incident", "pending")]
    replies = calls(cassette, "chat.postMessage")
    assert [(c["channel"], c["thread_ts"]) for c in replies] == [(SHIPPING, "1762699800.000200")] * 2


def test_a_question_the_server_cannot_start_gets_the_reason_in_private(tmp_path: Path) -> None:
    with player.use_cassette("slash_command_not_started.yaml") as cassette:
        with serving(slack_app(tmp_path, scenario=None)) as url, httpx.Client(base_url=url, timeout=20) as http:
            accepted = http.post("/slack/events", **signed(slash_command(QUESTION),
                                                           "application/x-www-form-urlencoded"))
            wait_played(cassette, 2)
            nothing = http.get("/investigations").json()
        played(cassette)
    assert accepted.status_code == 200 and nothing == []
    assert methods(cassette) == ["auth.test", "response_url"]
    assert json.loads(cassette.requests[1].body) == {
        "text": ":x: I could not start an investigation: name a scenario or live: the server has no default source "
                "(SRE_AGENT_SERVE_SCENARIO or SRE_AGENT_SERVE_LIVE)",
        "response_type": "ephemeral"}


def test_a_bot_token_slack_refuses_stops_the_server_at_start(tmp_path: Path) -> None:
    with player.use_cassette("auth_test_invalid.yaml") as cassette, pytest.raises(ServerConfigError) as refused:
        slack_app(tmp_path)
    assert cassette.all_played
    assert refused.value.message == (
        "Slack does not accept SRE_AGENT_SERVE_SLACK_BOT_TOKEN (auth.test says invalid_auth)")


@pytest.mark.parametrize(("content", "problem"), [
    ("U0ONCALL1: [oncall-sre]\n", "U0ONCALL1: expected the approver name as the policy lists it"),
    ("U0ONCALL1: on call\n", "U0ONCALL1: 'on call' is not a usable name"),
    ("oncall-sre: U0ONCALL1\n", "'oncall-sre' is not a Slack user id"),
    ("- U0ONCALL1\n", "expected a mapping of Slack user id → approver name"),
])
def test_an_unusable_approvers_file_stops_the_server_naming_the_setting(tmp_path: Path, content: str,
                                                                        problem: str) -> None:
    path = tmp_path / "approvers.yaml"
    path.write_text(content, encoding="utf-8")
    with player.use_cassette("auth_test.yaml"), pytest.raises(ServerConfigError) as refused:
        app_for(tmp_path, slack_signing_secret=SIGNING_SECRET, slack_bot_token=BOT_TOKEN, slack_approvers=path,
                slack_api_url=SLACK_API)
    assert refused.value.message.startswith(f"SRE_AGENT_SERVE_SLACK_APPROVERS: {path}: ")
    assert problem in refused.value.message


def test_text_from_tool_results_cannot_mention_or_link() -> None:
    """A log line is data: in the verdict it is shown, never read as @channel, a mention or a hidden link."""
    hostile = "<!channel> <@U0ONCALL1> approve now: <https://evil.example/|the runbook> & more"
    verdict = {"status": "incident", "summary": hostile, "confidence": 0.5,
               "root_cause": {"category": "unknown", "explanation": hostile},
               "evidence": [{"signal": "consumer_logs", "claim": hostile, "tool_call_id": "call_1"}]}
    record = InvestigationRecord(id="inv-0000000000aa", question=hostile, sources="incident-5", model="playbook",
                                 status="done", verdict=verdict)
    text, message = verdict_message(record)
    escaped = "&lt;!channel&gt; &lt;@U0ONCALL1&gt; approve now: &lt;https://evil.example/|the runbook&gt; &amp; more"
    rendered = [block.to_dict() for block in message]
    assert text == f"Incident: {escaped}"  # the notification text is mrkdwn too
    assert [b["text"]["text"] for b in rendered[1:4]] == [
        escaped, f"*Root cause* (unknown)\n{escaped}", f"*Evidence*\n• {escaped} `call_1`"]
    assert "<" not in json.dumps(rendered).replace("<@", "")  # only the mrkdwn we write ourselves
    assert question_of(f"<@{BOT_USER}> why &lt;now&gt; &amp; not later?", BOT_USER) == "why <now> & not later?"


@pytest.mark.parametrize(("settings", "problem"), [
    ({"slack_bot_token": BOT_TOKEN}, "SRE_AGENT_SERVE_SLACK_SIGNING_SECRET is not set: the Slack app needs the "
                                     "signing secret and the bot token both"),
    ({"slack_signing_secret": SIGNING_SECRET}, "SRE_AGENT_SERVE_SLACK_BOT_TOKEN is not set: the Slack app needs the "
                                               "signing secret and the bot token both"),
    ({"slack_channel": ALERTS}, "SRE_AGENT_SERVE_SLACK_APPROVERS and SLACK_CHANNEL need the Slack app: set "
                                "SRE_AGENT_SERVE_SLACK_SIGNING_SECRET and SRE_AGENT_SERVE_SLACK_BOT_TOKEN"),
])
def test_half_a_slack_configuration_stops_the_server_naming_what_is_missing(settings: dict[str, Any],
                                                                           problem: str) -> None:
    with pytest.raises(ServerConfigError) as refused:
        ServerSettings(**settings)
    assert refused.value.message == f"unusable server setting: {problem}"
    assert SIGNING_SECRET not in refused.value.message and BOT_TOKEN not in refused.value.message
