"""The live Datadog backends over recorded HTTP in Datadog's wire format, and the tools on top of them."""

from __future__ import annotations

import os
import socket
import time
from datetime import UTC, datetime, timedelta

import pytest

from tests.cassettes import played, stored_secrets
from tools.datadog.live import DatadogLogs, DatadogMetrics, datadog_client
from tools.datadog.protocol import LogCount
from tools.errors import AuthFailed, TimedOut, UnknownMetric
from tools.live import live_sources
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.settings import ConfigError, Settings
from tools.timerange import fixed_clock
from tools.toolkit import Sources

HOST = "https://127.0.0.1:9443"
NOW = datetime(2025, 11, 9, 14, 45, tzinfo=UTC)
START = NOW - timedelta(minutes=15)
QUERY = "avg:rabbitmq.queue.messages{rabbitmq_queue:orders-dispatch} by {rabbitmq_queue}"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DD_HOST", HOST)
    return Settings(max_wait_seconds=0)


@pytest.fixture
def logs(settings: Settings) -> DatadogLogs:
    return DatadogLogs(settings)


@pytest.fixture
def metrics(settings: Settings) -> DatadogMetrics:
    return DatadogMetrics(settings, clock=fixed_clock(NOW))


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    waited: list[float] = []
    monkeypatch.setattr(time, "sleep", waited.append)
    return waited


def test_search_follows_the_cursor_across_two_pages(logs: DatadogLogs) -> None:
    logs.page_size = 2
    with played("datadog", "logs_search_two_pages"):
        records = logs.search("service:billing status:error", START, NOW, 3)
    assert [(r.timestamp.isoformat(), r.host, r.message) for r in records] == [
        ("2025-11-09T14:44:51.112000+00:00", "ip-10-0-1-12", "failed to send invoice 8812: 421 try again later"),
        ("2025-11-09T14:41:07.530000+00:00", "ip-10-0-1-12", "failed to send invoice 8807: 421 try again later"),
        ("2025-11-09T14:33:40.004000+00:00", "ip-10-0-2-40", "ledger write timed out for invoice 8790"),
    ]
    first = records[0]
    assert (first.service, first.status) == ("billing", "error")
    assert "pod_name:billing-6d9f7c9b8-x2kq4" in first.tags
    assert first.attributes == {"error": {"kind": "SMTPException", "message": "421 try again later"},
                                "invoice_id": 8812, "logger": {"name": "billing.mailer"}}


def test_counts_by_facet_and_by_time_bucket(logs: DatadogLogs) -> None:
    with played("datadog", "logs_aggregate"):
        grouped = logs.count("kube_namespace:payments", START, NOW, ["service", "status"], None)
        bucketed = logs.count("kube_namespace:payments", START, NOW, [], 300)
    assert grouped == [
        LogCount(group={"service": "billing", "status": "info"}, count=412),
        LogCount(group={"service": "ledger", "status": "info"}, count=128),
        LogCount(group={"service": "billing", "status": "error"}, count=3),
        LogCount(group={"service": "ledger", "status": "warn"}, count=1),
    ]
    assert bucketed == [LogCount(time=START, count=301), LogCount(time=START + timedelta(minutes=5), count=243)]


def test_metric_query_returns_series(metrics: DatadogMetrics) -> None:
    with played("datadog", "metric_query"):
        [series] = metrics.query(QUERY, START, NOW)
    assert (series.metric, series.tags, series.unit) == ("rabbitmq.queue.messages",
                                                         ["rabbitmq_queue:orders-dispatch"], "message")
    assert len(series.points) == 15
    assert series.points[0] == (START, 0.0)
    assert series.points[-2] == (START + timedelta(minutes=13), None)
    assert series.points[-1] == (START + timedelta(minutes=14), 12.0)


def test_unknown_metric_suggests_close_names(metrics: DatadogMetrics) -> None:
    with played("datadog", "metric_unknown"), pytest.raises(UnknownMetric) as caught:
        metrics.query("avg:rabbitmq.queue.mesages{*}", START, NOW)
    assert caught.value.message == "no metric named 'rabbitmq.queue.mesages' has reported data"
    assert caught.value.hints == ["closest known metrics: rabbitmq.queue.messages, rabbitmq.queue.messages_ready, "
                                  "rabbitmq.queue.messages.ack.rate, rabbitmq.queue.consumers, "
                                  "rabbitmq.queue.messages.publish.rate"]


def test_metric_tags(metrics: DatadogMetrics) -> None:
    with played("datadog", "metric_tags"):
        tags = metrics.metric_tags("rabbitmq.queue.messages")
    assert tags == ["rabbitmq_node:rabbit@broker-0", "rabbitmq_queue:invoice-jobs", "rabbitmq_queue:orders-dispatch",
                    "rabbitmq_vhost:/"]


def test_rate_limited_then_success_waits_for_the_reset(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    monkeypatch.setenv("DD_HOST", HOST)
    metrics = DatadogMetrics(Settings(max_wait_seconds=30), clock=fixed_clock(NOW))
    with played("datadog", "metric_rate_limited"):
        [series] = metrics.query(QUERY, START, NOW)
    assert sleeps == [7.0]
    assert series.points[-1][1] == 12.0


def test_rate_limit_reset_is_capped(monkeypatch: pytest.MonkeyPatch, sleeps: list[float]) -> None:
    monkeypatch.setenv("DD_HOST", HOST)
    metrics = DatadogMetrics(Settings(max_wait_seconds=2), clock=fixed_clock(NOW))
    with played("datadog", "metric_rate_limited"):
        metrics.query(QUERY, START, NOW)
    assert sleeps == [2.0]


def test_forbidden_is_auth_failed_naming_the_keys(logs: DatadogLogs) -> None:
    with played("datadog", "logs_forbidden"), pytest.raises(AuthFailed) as caught:
        logs.search("service:billing", START, NOW, 5)
    assert caught.value.message == "Datadog 403 Forbidden: Forbidden; check DD_API_KEY and DD_APP_KEY"


def test_tools_run_unchanged_over_live_datadog(settings: Settings) -> None:
    base = replay_sources("incident-5")
    client = datadog_client(settings)
    sources = Sources(logs=DatadogLogs(settings, client), metrics=DatadogMetrics(settings, client, fixed_clock(NOW)),
                      cluster=base.cluster, broker=base.broker, clock=fixed_clock(NOW), label="live")
    toolbox = default_toolbox()
    with played("datadog", "tool_search_logs"):
        logs = toolbox.call(sources, "search_logs", {"query": "service:billing", "limit": 2})
    assert logs.ok, logs.text()
    result = logs.data()
    assert (result["total"], result["previous_window"]["total"]) == (121, 190)
    assert result["by_status"] == {"info": 118, "error": 3}
    assert result["volume"] == [12, 9, 11, 10, 8, 13, 9, 10, 11, 12, 9, 7, 0, 0, 0]
    assert result["gaps"] == [{"start": "2025-11-09T14:42:00Z", "end": "2025-11-09T14:45:00Z", "minutes": 3.0}]
    assert result["last_line_at"] == "2025-11-09T14:41:57Z"
    assert [s["message"] for s in result["samples"]] == ["invoice 8815 queued for delivery",
                                                         "invoice 8814 queued for delivery"]
    with played("datadog", "metric_query"):
        metric = toolbox.call(sources, "get_metric", {"query": QUERY, "start": "now-15m"})
    assert metric.ok, metric.text()
    trend = metric.data()["series"][0]["trend"]
    assert (trend["first"], trend["last"], trend["direction"]) == (0.0, 12.0, "rising")


def test_silent_server_is_timed_out_after_bounded_attempts(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("DD_HOST", f"http://127.0.0.1:{silent.getsockname()[1]}")
        logs = DatadogLogs(Settings(timeout_seconds=0.2, max_attempts=2, max_wait_seconds=0))
        began = time.monotonic()
        with pytest.raises(TimedOut, match=r"Datadog did not answer within 0\.2 s"):
            logs.search("service:billing", START, NOW, 5)
    assert time.monotonic() - began < 2


def test_no_secret_is_stored_in_cassettes() -> None:
    assert stored_secrets("datadog", [os.environ["DD_API_KEY"], os.environ["DD_APP_KEY"]]) == []


def test_missing_api_key_is_a_config_error_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DD_API_KEY")
    expected = "DD_API_KEY is not set; export DD_API_KEY to use the live source that needs it"
    for build in (DatadogLogs, live_sources):
        with pytest.raises(ConfigError) as caught:
            build(Settings())
        assert str(caught.value) == expected


def test_site_and_host_settings_choose_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_SITE", "datadoghq.eu")
    assert datadog_client(Settings()).configuration.host == "https://api.datadoghq.eu"
    monkeypatch.setenv("DD_HOST", HOST)
    assert datadog_client(Settings()).configuration.host == HOST


def test_every_setting_is_documented() -> None:
    undocumented = [name for name, field in Settings.model_fields.items() if not field.description]
    assert undocumented == []
