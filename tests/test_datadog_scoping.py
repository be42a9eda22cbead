"""Live Datadog queries name the investigated cluster when its name is configured (SRE_AGENT_CLUSTER_NAME)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import pytest

from tests.misbehaving_server import Fault, MisbehavingServer
from tests.misbehaving_server import misbehaving as misbehaving
from tools.datadog.live import DatadogLogs, DatadogMetrics
from tools.datadog.scoping import scoped_logs, scoped_metric
from tools.errors import UnknownMetric
from tools.settings import Settings
from tools.timerange import fixed_clock

NOW = datetime(2025, 11, 9, 14, 47, tzinfo=UTC)


@pytest.mark.parametrize(("query", "expected"), [
    ("avg:rabbitmq.queue.messages{rabbitmq_queue:jobs}", "avg:rabbitmq.queue.messages{rabbitmq_queue:jobs,"
                                                         "kube_cluster_name:prod-eu}"),
    ("avg:kubernetes_state.deployment.replicas_available{*} by {kube_deployment}",
     "avg:kubernetes_state.deployment.replicas_available{kube_cluster_name:prod-eu} by {kube_deployment}"),
    ("avg:system.load.1", "avg:system.load.1{kube_cluster_name:prod-eu}"),
])
def test_a_metric_query_gets_the_cluster_in_its_scope_not_its_group_by(query: str, expected: str) -> None:
    assert scoped_metric(query, "prod-eu") == expected
    assert scoped_metric(query, None) == query


def test_a_log_query_is_anded_with_the_cluster() -> None:
    assert scoped_logs("service:a OR service:b", "prod-eu") == "(service:a OR service:b) kube_cluster_name:prod-eu"
    assert scoped_logs("", "prod-eu") == "kube_cluster_name:prod-eu"
    assert scoped_logs("service:a", None) == "service:a"


def test_the_live_backends_send_the_scoped_queries(misbehaving: MisbehavingServer) -> None:
    settings = Settings(dd_host=misbehaving.url, dd_api_key="k" * 8, dd_app_key="a" * 8, max_attempts=1,
                        kube_cluster_name="prod-eu")
    assert DatadogLogs(settings)._filter("service:billing", NOW - timedelta(minutes=5), NOW).query == (
        "(service:billing) kube_cluster_name:prod-eu")
    misbehaving.fault = Fault("ok", body={"status": "ok", "series": [], "query": "x"})
    with pytest.raises(UnknownMetric):  # no series came back: the query is all this test looks at
        DatadogMetrics(settings, clock=fixed_clock(NOW)).query("avg:rabbitmq.queue.messages{*}",
                                                               NOW - timedelta(hours=1), NOW)
    paths = [unquote(path) for path, _ in misbehaving.seen]
    assert any("avg:rabbitmq.queue.messages{kube_cluster_name:prod-eu}" in path for path in paths), paths
