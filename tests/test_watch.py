"""The watcher: sweeps with no LLM find silent failures soon after they begin, tell people once, say when they end,
and stay quiet where nothing is wrong (intentional zeros, autoscalers at rest, bursts that drain)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from threading import Thread
from typing import Any, ClassVar

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.watch.notify import WebhookNotifier, pagerduty_event
from agent.watch.sweep import Anomaly, sweep
from agent.watch.watcher import Notice, Watcher, replay_steps
from evals.bench_watch import watch_scenario
from evals.expectations import load_scenario
from tools.replay import replay_sources
from tools.replay.loading import builtin_scenarios_dir, list_scenarios

MINUTE = timedelta(minutes=1)


def _timeline(scenario_id: str, start: datetime, until: datetime, **watcher: Any) -> tuple[Watcher, list[Notice]]:
    sources = replay_sources(scenario_id, now=start, horizon=until)
    watch = Watcher(sources, **watcher)
    notices = [n for _ in replay_steps(sources, start, until, MINUTE) for n in watch.step()]
    return watch, notices


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def test_incident5_is_noticed_within_two_simulated_minutes_once() -> None:
    watch, notices = _timeline("incident-5", at("2025-11-09T13:46:00Z"), at("2025-11-09T14:47:30Z"))
    raised = [n for n in notices if n.event == "raised"]
    assert [n.anomaly.key for n in raised] == ["no_consumer:shipping-task"]
    assert raised[0].at - at("2025-11-09T14:43:00Z") <= 2 * MINUTE
    assert "queue-master" in raised[0].anomaly.workloads and "shipping-task" in raised[0].anomaly.question()
    assert watch.sweeps == 62


def test_a_new_anomaly_opens_an_investigation_whose_verdict_rides_on_the_notice() -> None:
    from agent.baseline.policy import PlaybookPolicy
    from agent.run import run_investigation

    sources = replay_sources("incident-5", now=at("2025-11-09T14:44:00Z"))
    model = PlaybookPolicy()
    watch = Watcher(sources, investigate=lambda a: run_investigation(a.question(), model, sources)
                    .verdict.model_dump(mode="json"))
    [notice] = watch.step()
    assert notice.verdict is not None and notice.verdict["status"] == "incident"
    assert notice.verdict["root_cause"]["component"]["name"] == "queue-master"
    assert watch.step() == []  # seen again: nobody is told twice


def test_resolved_after_the_fix_and_flapping_within_the_cooldown_is_not_told_again() -> None:
    sources = replay_sources("incident-5", now=at("2025-11-09T14:44:00Z"))
    world = sources.extras["world"]
    watch = Watcher(sources, cooldown=timedelta(minutes=30))
    assert [n.event for n in watch.step()] == ["raised"]
    world.scale("sock-shop", "queue-master", 1)
    world.advance_to(world.now + 3 * MINUTE)
    assert [n.event for n in watch.step()] == ["resolved"]
    world.scale("sock-shop", "queue-master", 0)
    world.advance_to(world.now + 3 * MINUTE)
    assert watch.step() == []  # back within the cooldown: the same anomaly, already told
    assert [a.key for a in watch.open_anomalies()] == ["no_consumer:shipping-task"]


def test_back_after_the_cooldown_is_told_again() -> None:
    sources = replay_sources("incident-5", now=at("2025-11-09T14:44:00Z"))
    world = sources.extras["world"]
    watch = Watcher(sources, cooldown=timedelta(minutes=2))
    watch.step()
    world.scale("sock-shop", "queue-master", 1)
    world.advance_to(world.now + 3 * MINUTE)
    watch.step()
    world.scale("sock-shop", "queue-master", 0)
    world.advance_to(world.now + 5 * MINUTE)
    assert [n.event for n in watch.step()] == ["raised"]


def test_an_anomaly_waits_out_its_grace_before_anyone_is_told() -> None:
    sources = replay_sources("claims-ocr-worker-hung")
    found = sweep(sources)
    stuck = [a for a in found.anomalies if a.kind == "stuck_consumers"]
    assert stuck and stuck[0].grace_s > 0
    watch = Watcher(sources)
    assert watch.step() == []  # first sight of a stuck consumer: not yet
    sources.extras["world"].advance_to(sources.clock() + timedelta(seconds=stuck[0].grace_s))
    assert [n.anomaly.kind for n in watch.step()] == ["stuck_consumers"]


def test_a_sweep_that_cannot_read_a_source_resolves_nothing_and_reports_it() -> None:
    sources = replay_sources("incident-5", now=at("2025-11-09T14:44:00Z"))
    watch = Watcher(sources)
    watch.step()

    class Down:
        def list_queues(self, vhost: str | None = None) -> Any:
            from tools.errors import Unavailable

            raise Unavailable("cannot reach the RabbitMQ management API: connection refused")

        alarms = get_queue = list_queues

    sources.broker = Down()  # type: ignore[assignment]
    assert watch.step() == []  # the queue cannot be seen: not "resolved"
    assert watch.unread and [a.key for a in watch.open_anomalies()] == ["no_consumer:shipping-task"]
    assert "unreadable:rabbitmq" in {a.key for a in sweep(sources).anomalies}


def test_an_intentional_zero_is_quiet_and_says_why() -> None:
    _, notices = _timeline("planned-maintenance", at("2025-11-20T01:50:00Z"),
                           load_scenario("planned-maintenance").clock.now)
    assert notices == []


@pytest.mark.parametrize("path", list_scenarios(builtin_scenarios_dir()), ids=lambda p: p.name)
def test_every_suite_world(path: Any) -> None:
    """Incidents are told within 5 simulated minutes of their onset (a slow consumer's backlog must outlast a
    burst: 25); healthy and decoy worlds raise nothing but the real faults their worlds hold (`expect.watch`)."""
    result = watch_scenario(path, MINUTE)
    if result.status == "incident":
        assert result.detect_s is not None, result.raised
        assert result.detect_s <= (25 if "falling_behind" in (result.raised[0] if result.raised else "") else 5) * 60
    else:
        assert result.false_alarms == []


class _Receiver(BaseHTTPRequestHandler):
    bodies: ClassVar[list[dict[str, Any]]] = []
    status: ClassVar[int] = 200

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", 0))
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(type(self).status)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Any:
    _Receiver.bodies, _Receiver.status = [], 200
    server = HTTPServer(("127.0.0.1", 0), _Receiver)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()


def _notice() -> Notice:
    anomaly = Anomaly("no_consumer:jobs", "no_consumer", "queue jobs has no consumer", queues=("jobs",))
    return Notice("raised", anomaly, at("2026-01-01T10:00:00Z"), at("2026-01-01T10:00:00Z"))


def test_webhook_notifier_posts_the_notice(receiver: str) -> None:
    assert WebhookNotifier(receiver)(_notice()) is True
    assert _Receiver.bodies[0]["key"] == "no_consumer:jobs" and _Receiver.bodies[0]["event"] == "raised"


def test_webhook_notifier_reports_a_refusal_without_raising(receiver: str) -> None:
    _Receiver.status = 500
    notifier = WebhookNotifier(receiver)
    assert notifier(_notice()) is False
    assert len(_Receiver.bodies) == 3 and "500" in notifier.failures[0]  # retried, then given up


def test_pagerduty_event_shape() -> None:
    event = pagerduty_event(_notice(), "R0UT1NG")
    assert event["event_action"] == "trigger" and event["dedup_key"] == "no_consumer:jobs"
    assert event["payload"]["severity"] == "error" and event["payload"]["source"] == "sre-agent watch"
    resolved = pagerduty_event(Notice("resolved", _notice().anomaly, _notice().at, _notice().at), "R0UT1NG")
    assert resolved == {"routing_key": "R0UT1NG", "event_action": "resolve", "dedup_key": "no_consumer:jobs"}


def test_cli_replays_a_timeline_and_posts_to_the_webhook(receiver: str) -> None:
    result = CliRunner().invoke(app, ["watch", "--scenario", "incident-5", "--model", "playbook", "--json",
                                      "--notify-url", receiver])
    assert result.exit_code == 0, result.output
    [line] = [json.loads(text) for text in result.stdout.splitlines() if text.startswith("{")]
    assert line["at"].startswith("2025-11-09T14:44") and line["verdict"]["status"] == "incident"
    assert _Receiver.bodies and _Receiver.bodies[0]["key"] == "no_consumer:shipping-task"


@pytest.mark.parametrize("args, message", [
    (["--from", "2025-11-09T13:00:00Z"], "is not after the world's start"),
    (["--from", "tomorrow"], "--from: cannot read time"),
    (["--until", "2025-11-09T13:50:00Z", "--from", "2025-11-09T14:00:00Z"], "is before --from"),
    (["--notify-format", "teams"], "use json or pagerduty"),
    (["--notify-format", "pagerduty", "--notify-url", "http://127.0.0.1:9/"], "routing key"),
])
def test_cli_bad_arguments_get_one_clear_line(args: list[str], message: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRE_AGENT_PAGERDUTY_ROUTING_KEY", raising=False)
    result = CliRunner().invoke(app, ["watch", "--scenario", "incident-5", "--no-investigate", *args])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


class _Broker:
    """A broker with a work queue whose consumer gives every message back, and its dead-letter queue."""

    def __init__(self, dlq_depths: list[int]) -> None:
        from tools.rabbitmq.protocol import QueueInfo

        now = datetime(2025, 11, 9, 14, 47, 30, tzinfo=UTC)
        self.queues = [
            QueueInfo(vhost="/", name="refunds", messages=5, ready=0, unacked=5, consumers=1, publish_rate=0.5,
                      deliver_rate=6.0, ack_rate=0.0, redeliver_rate=5.5, consumer_utilisation=1.0,
                      dead_letter_exchange="", dead_letter_routing_key="refunds.dlq",
                      depth_samples=[(now - timedelta(seconds=45 * (20 - i)), 5) for i in range(21)]),
            QueueInfo(vhost="/", name="refunds.dlq", messages=dlq_depths[-1], ready=dlq_depths[-1], consumers=0,
                      depth_samples=[(now - timedelta(seconds=45 * (len(dlq_depths) - 1 - i)), depth)
                                     for i, depth in enumerate(dlq_depths)]),
        ]

    def list_queues(self, vhost: str | None = None) -> list[Any]:
        return [q for q in self.queues if vhost in (None, q.vhost)]

    def get_queue(self, vhost: str, name: str, history_seconds: int = 0) -> Any:
        return next(q for q in self.queues if (q.vhost, q.name) == (vhost, name))

    def alarms(self) -> list[str]:
        return []


def test_consumers_giving_every_message_back_and_a_growing_dead_letter_queue() -> None:
    sources = replay_sources("incident-5-healthy")
    sources.broker = _Broker(list(range(10, 31)))  # type: ignore[assignment]
    found = {a.kind: a for a in sweep(sources).anomalies}
    assert set(found) == {"failing_consumers", "dead_letters"}, found
    assert "give every one back" in found["failing_consumers"].summary
    assert "refunds" in found["dead_letters"].summary and found["dead_letters"].queues[0] == "refunds.dlq"


def test_a_dead_letter_queue_that_holds_old_messages_is_quiet() -> None:
    sources = replay_sources("incident-5-healthy")
    broker = _Broker([30] * 21)
    broker.queues[0] = broker.queues[0].model_copy(update={"redeliver_rate": 0.0, "ack_rate": 6.0, "unacked": 0})
    sources.broker = broker  # type: ignore[assignment]
    result = sweep(sources)
    assert result.anomalies == [] and any("dead-letter queue" in line for line in result.quiet)
