"""The live RabbitMQ backend over management-API responses recorded from a real RabbitMQ 3.10 (real_*.yaml) and
a hand-written 3.6-era listing (legacy_*.yaml), and the queue tool on top of it."""

from __future__ import annotations

import base64
import socket
from datetime import UTC, datetime, timedelta

import pytest

from tests.cassettes import played, stored_secrets
from tools.errors import AuthFailed, NotFound, TimedOut, Unavailable
from tools.rabbitmq.live import RabbitMQManagement
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.settings import ConfigError, Settings
from tools.timerange import fixed_clock
from tools.toolkit import Sources

URL = "http://127.0.0.1:15672"
USER = PASSWORD = "guest"
RECORDED_AT = datetime(2026, 12, 3, 17, 2, 56, tzinfo=UTC)


@pytest.fixture
def broker() -> RabbitMQManagement:
    return RabbitMQManagement(Settings(rabbitmq_url=URL, rabbitmq_user=USER, rabbitmq_password=PASSWORD,
                                       max_wait_seconds=0))


def test_queue_without_consumers_with_depth_history(broker: RabbitMQManagement) -> None:
    with played("rabbitmq", "real_queue_no_consumer"):
        queue = broker.get_queue("/", "invoice-jobs", 900)
        assert broker.alarms() == []
        assert [q.name for q in broker.list_queues("/")] == ["invoice-jobs", "orders-dispatch"]
    assert (queue.vhost, queue.name, queue.messages, queue.ready, queue.unacked, queue.consumers) == (
        "/", "invoice-jobs", 3, 3, 0, 0)
    assert (queue.durable, queue.state, queue.publish_rate, queue.deliver_rate) == (True, "running", 0.0, 0.0)
    assert queue.idle_since == datetime(2026, 12, 3, 17, 2, 55, 966000, tzinfo=UTC)
    times = [t for t, _ in queue.depth_samples]
    assert times == sorted(times) and len(times) == 21 and times[-1] - times[0] < timedelta(seconds=900)
    assert queue.depth_samples[-2:] == [(RECORDED_AT - timedelta(seconds=41), 0), (RECORDED_AT, 3)]


def test_missing_queue_is_not_found_listing_the_vhost(broker: RabbitMQManagement) -> None:
    with played("rabbitmq", "real_queue_not_found"), pytest.raises(NotFound) as caught:
        broker.get_queue("/", "invoice-job")
    assert caught.value.message == "queue 'invoice-job' not found in vhost '/'"
    assert caught.value.hints == ["queues in '/': invoice-jobs, orders-dispatch"]


def test_bad_login_is_auth_failed_naming_the_variables(broker: RabbitMQManagement) -> None:
    with played("rabbitmq", "real_unauthorized"), pytest.raises(AuthFailed) as caught:
        broker.list_queues("/")
    assert caught.value.message == "RabbitMQ management API 401: Login failed"
    assert "RABBITMQ_USER and RABBITMQ_PASSWORD" in caught.value.hints[0]


def test_legacy_listing_with_space_separated_idle_since(broker: RabbitMQManagement) -> None:
    with played("rabbitmq", "legacy_list_queues"):
        audit, labels = broker.list_queues("/")
        assert broker.alarms() == []
    assert (audit.name, audit.messages, audit.consumers, audit.consumer_utilisation) == ("audit-archive", 0, 0, None)
    assert audit.idle_since == datetime(2025, 11, 9, 14, 43, tzinfo=UTC)
    assert (audit.publish_rate, audit.deliver_rate, audit.ack_rate) == (0.0, 0.0, 0.0)
    assert (labels.name, labels.messages, labels.consumers, labels.publish_rate, labels.depth_rate) == (
        "label-print", 5, 0, 0.4, 0.4)
    assert labels.idle_since is None


def test_refused_connection_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    broker = RabbitMQManagement(Settings(rabbitmq_url=closed, rabbitmq_user=USER, rabbitmq_password=PASSWORD,
                                         max_attempts=2, max_wait_seconds=0))
    with pytest.raises(Unavailable) as caught:
        broker.get_queue("/", "invoice-jobs")
    assert caught.value.message.startswith(f"cannot reach the RabbitMQ management API at {closed}")


def test_silent_broker_is_timed_out() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        broker = RabbitMQManagement(Settings(rabbitmq_url=f"http://127.0.0.1:{silent.getsockname()[1]}",
                                             rabbitmq_user=USER, rabbitmq_password=PASSWORD, timeout_seconds=0.2,
                                             max_attempts=2, max_wait_seconds=0))
        with pytest.raises(TimedOut, match=r"did not answer within 0\.2 s"):
            broker.list_queues()


def test_queue_tool_runs_unchanged_over_live_rabbitmq(broker: RabbitMQManagement) -> None:
    base = replay_sources("incident-5")
    sources = Sources(logs=base.logs, metrics=base.metrics, cluster=base.cluster, broker=broker,
                      clock=fixed_clock(RECORDED_AT), label="live")
    toolbox = default_toolbox()
    with played("rabbitmq", "real_queue_no_consumer"):
        stats = toolbox.call(sources, "get_queue_stats", {"queue": "invoice-jobs"})
    assert stats.ok, stats.text()
    data = stats.data()
    assert (data["messages"], data["consumers"], data["idle_since"]) == (3, 0, "2026-12-03T17:02:55Z")
    assert data["summary"].endswith("NO CONSUMER: messages are accumulating and nothing processes them")
    assert (data["depth_trend"]["last"], data["depth_trend"]["direction"]) == (3.0, "rising")
    with played("rabbitmq", "legacy_list_queues"):
        table = toolbox.call(sources, "get_queue_stats", {"vhost": "/"})
    assert table.ok, table.text()
    assert table.data()["attention"] == ["label-print"]
    assert table.data()["alarms"] == []


def test_missing_credentials_are_named() -> None:
    with pytest.raises(ConfigError, match="RABBITMQ_USER is not set"):
        RabbitMQManagement(Settings(rabbitmq_url=URL, rabbitmq_user=None))


def test_no_secret_is_stored_in_cassettes() -> None:
    logins = [base64.b64encode(f"{USER}:{password}".encode()).decode() for password in (PASSWORD, "wrong")]
    assert stored_secrets("rabbitmq", logins) == []
