"""Each live backend against a local server that misbehaves (tests/misbehaving_server.py): every fault ends in a
typed SourceError, within the call's deadline, never in a traceback or a hang."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from tests.misbehaving_server import Fault, MisbehavingServer, elapsed, misbehaving
from tools.datadog.events import DatadogEvents
from tools.datadog.live import DatadogLogs, DatadogMetrics
from tools.errors import BadResponse, RateLimited, SourceError, TimedOut, Unavailable
from tools.kubernetes.live import KubernetesCluster
from tools.rabbitmq.live import RabbitMQManagement
from tools.registry import default_toolbox
from tools.settings import Settings
from tools.timerange import fixed_clock
from tools.toolkit import Sources

__all__ = ["misbehaving"]

NOW = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
START = NOW - timedelta(minutes=15)
HANG_GUARD_S = 15
DEADLINE_S = 2.0
TIMEOUT_S = 0.5
MAX_WAIT_S = 1.0
EXPECTED: dict[str, tuple[type[SourceError], str]] = {
    "500": (Unavailable, "500"),
    "503": (Unavailable, "503"),
    "429": (RateLimited, "429"),
    "slow": (TimedOut, f"did not answer within {TIMEOUT_S} s"),
    "trickle": (TimedOut, f"did not finish answering within {DEADLINE_S:g} s"),
    "truncated": (BadResponse, "not JSON"),
    "html": (BadResponse, "not JSON"),
    "wrong_types": (BadResponse, "unexpected shape|does not match its API|Kubernetes"),
}
BOUND_S = {"slow": 2 * TIMEOUT_S + 0.5 + 1.0, "trickle": DEADLINE_S + 1.0, "429": MAX_WAIT_S + 1.0}


def settings(**extra: Any) -> Settings:
    return Settings(timeout_seconds=TIMEOUT_S, max_attempts=2, max_wait_seconds=MAX_WAIT_S,
                    call_deadline_seconds=DEADLINE_S, **extra)


def rabbitmq(server: MisbehavingServer) -> Callable[[], Any]:
    broker = RabbitMQManagement(settings(rabbitmq_url=server.url, rabbitmq_user="monitor",
                                         rabbitmq_password="monitor-pass"))
    return lambda: broker.list_queues("/")


def rabbitmq_queue(server: MisbehavingServer) -> Callable[[], Any]:
    broker = RabbitMQManagement(settings(rabbitmq_url=server.url, rabbitmq_user="monitor",
                                         rabbitmq_password="monitor-pass"))
    return lambda: broker.get_queue("/", "invoice-jobs", 900)


def datadog_settings(server: MisbehavingServer) -> Settings:
    return settings(dd_host=server.url, dd_api_key="dd-api", dd_app_key="dd-app")


def datadog_logs(server: MisbehavingServer) -> Callable[[], Any]:
    logs = DatadogLogs(datadog_settings(server))
    return lambda: logs.search("service:billing", START, NOW, 5)


def datadog_metrics(server: MisbehavingServer) -> Callable[[], Any]:
    metrics = DatadogMetrics(datadog_settings(server), clock=fixed_clock(NOW))
    return lambda: metrics.query("avg:rabbitmq.queue.messages{*}", START, NOW)


def datadog_events(server: MisbehavingServer) -> Callable[[], Any]:
    events = DatadogEvents(datadog_settings(server))
    return lambda: events.list_events("payments", START)


def kubernetes(server: MisbehavingServer) -> Callable[[], Any]:
    configuration = client.Configuration()
    configuration.host = server.url
    configuration.retries = False
    cluster = KubernetesCluster(settings(), client.ApiClient(configuration))
    return lambda: cluster.list_deployments("payments")


BACKENDS = {"rabbitmq": rabbitmq, "rabbitmq_queue": rabbitmq_queue, "datadog_logs": datadog_logs,
            "datadog_metrics": datadog_metrics, "datadog_events": datadog_events, "kubernetes": kubernetes}
CASES = [pytest.param(backend, fault, id=f"{backend}-{fault}") for backend in BACKENDS for fault in EXPECTED]


@pytest.mark.parametrize(("backend", "fault"), CASES)
def test_every_fault_is_a_typed_error_within_the_deadline(misbehaving: MisbehavingServer, backend: str,
                                                          fault: str) -> None:
    call = BACKENDS[backend](misbehaving)
    misbehaving.fault = Fault(fault, body={"items": [], "data": []})
    kind, pattern = EXPECTED[fault]
    began = time.monotonic()
    with pytest.raises(SourceError) as caught:
        call()
    took = elapsed(began)
    assert isinstance(caught.value, kind), f"{type(caught.value).__name__}: {caught.value.message}"
    assert re.search(pattern, caught.value.message), caught.value.message
    assert took < min(BOUND_S.get(fault, 1.5), HANG_GUARD_S), took


def test_a_long_rate_limit_reset_waits_at_most_the_cap_per_call(misbehaving: MisbehavingServer,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []
    real_sleep = time.sleep
    monkeypatch.setattr(time, "sleep", lambda seconds: (slept.append(seconds), real_sleep(seconds)))
    misbehaving.fault = Fault("429")
    broker = RabbitMQManagement(Settings(rabbitmq_url=misbehaving.url, rabbitmq_user="u", rabbitmq_password="pass",
                                         max_attempts=5, max_wait_seconds=0.6, call_deadline_seconds=10))
    logs = DatadogLogs(Settings(dd_host=misbehaving.url, dd_api_key="k", dd_app_key="a", max_attempts=5,
                                max_wait_seconds=0.6, call_deadline_seconds=10))
    for call in (broker.list_queues, lambda: logs.search("*", START, NOW, 1)):
        slept.clear()
        misbehaving.requests = 0
        began = time.monotonic()
        with pytest.raises(RateLimited) as caught:
            call()
        assert (slept, misbehaving.requests) == ([0.6], 2) and elapsed(began) < 3
    assert caught.value.hints == ["rate limit resets in 3600 s", "narrow the query or the time range"]


def test_the_deadline_also_stops_the_waits(misbehaving: MisbehavingServer) -> None:
    misbehaving.fault = Fault("503")
    broker = RabbitMQManagement(Settings(rabbitmq_url=misbehaving.url, rabbitmq_user="u", rabbitmq_password="pass",
                                         max_attempts=10, max_wait_seconds=20, call_deadline_seconds=1.5))
    began = time.monotonic()
    with pytest.raises(Unavailable):
        broker.list_queues()
    assert elapsed(began) < 1.6 and misbehaving.requests == 2  # waits 0.5 then 1 s; a third would cross 1.5 s


def test_queue_fields_of_the_wrong_type_are_a_bad_response(misbehaving: MisbehavingServer) -> None:
    misbehaving.fault = Fault("ok", body=[{"vhost": "/", "name": "invoice-jobs", "messages": "many"}])
    broker = RabbitMQManagement(settings(rabbitmq_url=misbehaving.url, rabbitmq_user="u", rabbitmq_password="pass"))
    with pytest.raises(BadResponse) as caught:
        broker.list_queues("/")
    assert caught.value.message.startswith(
        "RabbitMQ management API returned JSON of an unexpected shape from /api/queues/%2F (ValidationError: ")


def test_html_page_message_names_type_size_and_path(misbehaving: MisbehavingServer) -> None:
    misbehaving.fault = Fault("html")
    broker = RabbitMQManagement(settings(rabbitmq_url=misbehaving.url, rabbitmq_user="u", rabbitmq_password="pass"))
    with pytest.raises(BadResponse) as caught:
        broker.list_queues()
    assert caught.value.message == ("RabbitMQ management API returned a body that is not JSON (text/html, 542 bytes) "
                                    "from /api/queues")
    assert caught.value.kind == "bad_response"


def test_the_queue_tool_returns_the_typed_error(misbehaving: MisbehavingServer, incident5: Sources) -> None:
    misbehaving.fault = Fault("trickle", body=[])
    broker = RabbitMQManagement(settings(rabbitmq_url=misbehaving.url, rabbitmq_user="u", rabbitmq_password="pass"))
    sources = Sources(logs=incident5.logs, metrics=incident5.metrics, cluster=incident5.cluster, broker=broker,
                      clock=incident5.clock, label="live-broker")
    began = time.monotonic()
    outcome = default_toolbox().call(sources, "get_queue_stats", {})
    assert not outcome.ok and elapsed(began) < DEADLINE_S + 1
    assert outcome.data() == {"error": "timeout",
                              "message": "the RabbitMQ management API did not finish answering within 2 s",
                              "hints": ["the server is overloaded or sends its answer very slowly",
                                        "SRE_AGENT_CALL_DEADLINE_SECONDS bounds one call"]}
