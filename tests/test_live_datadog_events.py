"""Kubernetes events from Datadog's event stream (recorded v2 events search), merged into the cluster's own events,
and paging through logs-aggregate groups."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.cassettes import played
from tools.datadog.events import DatadogEvents, parse_event
from tools.datadog.live import DatadogLogs, datadog_client
from tools.datadog.protocol import LogCount
from tools.errors import AuthFailed
from tools.kubernetes.history import ClusterWithEventHistory, merge_events
from tools.kubernetes.protocol import DeploymentInfo, KubeEvent, PodInfo
from tools.live import live_sources
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.settings import Settings
from tools.timerange import fixed_clock
from tools.toolkit import Sources

HOST = "https://127.0.0.1:9443"
NOW = datetime(2025, 11, 9, 14, 45, tzinfo=UTC)
NS = "sock-shop"
AT = datetime(2025, 11, 9, 12, 31, 7, tzinfo=UTC)
FOOTER = " \n _Events emitted by the deployment-controller seen at 2025-11-09 12:31:07 +0000 UTC since " \
         "2025-11-09 12:31:07 +0000 UTC_ \n\n %%%"


def at(hhmmss: str) -> datetime:
    return datetime.fromisoformat(f"2025-11-09T{hhmmss}+00:00")


def kube_event(kind: str, name: str, reason: str, message: str, seen: datetime, *, first: datetime | None = None,
               count: int = 1, source: str = "deployment-controller") -> KubeEvent:
    return KubeEvent(namespace=NS, reason=reason, message=message, kind=kind, name=name, source=source,
                     first_seen=first or seen, last_seen=seen, count=count)


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("DD_HOST", HOST)
    return Settings(max_wait_seconds=0)


@pytest.fixture
def events(settings: Settings) -> DatadogEvents:
    return DatadogEvents(settings)


class FakeCluster:
    """The Kubernetes API side: one deployment at 0, no pods, and only the events the API server still holds."""

    def __init__(self, events: list[KubeEvent]) -> None:
        self.events = events

    def list_namespaces(self) -> list[str]:
        return [NS]

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]:
        return [self.read_deployment(namespace, "queue-master")]

    def read_deployment(self, namespace: str, name: str) -> DeploymentInfo:
        return DeploymentInfo(namespace=namespace, name=name, desired=0, images=["weaveworksdemos/queue-master:0.3.1"],
                              labels={"name": name}, selector={"name": name})

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[PodInfo]:
        return []

    def list_events(self, namespace: str, since: datetime, kind: str | None = None,
                    name: str | None = None) -> list[KubeEvent]:
        return [e for e in self.events if e.namespace == namespace and e.last_seen >= since
                and (kind is None or e.kind.lower() == kind.lower()) and (name is None or e.name == name)]


def sources_over(cluster: FakeCluster, history: DatadogEvents) -> Sources:
    base = replay_sources("incident-5")
    return Sources(logs=base.logs, metrics=base.metrics, cluster=ClusterWithEventHistory(cluster, history),
                   broker=base.broker, clock=fixed_clock(NOW), label="live")


def test_parses_a_bundle_of_one_event() -> None:
    text = "%%% \n1 **ScalingReplicaSet**: Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1\n" + FOOTER
    assert parse_event("Events from the Deployment sock-shop/queue-master", text, AT, status="info") == [
        KubeEvent(namespace=NS, type="Normal", reason="ScalingReplicaSet", kind="Deployment", name="queue-master",
                  message="Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1", source="datadog",
                  first_seen=AT, last_seen=AT, count=1)]


def test_parses_every_line_of_a_bundle() -> None:
    text = ("%%% \n1 **ScalingReplicaSet**: Scaled down replica set queue-master-5d4b9c7f86 to 0 from 1\n"
            " 1 **ScalingReplicaSet**: Scaled up replica set queue-master-6c7d8f9b5 to 1\n" + FOOTER)
    parsed = parse_event("Events from the Deployment sock-shop/queue-master", text, AT)
    assert [(e.count, e.reason, e.message) for e in parsed] == [
        (1, "ScalingReplicaSet", "Scaled down replica set queue-master-5d4b9c7f86 to 0 from 1"),
        (1, "ScalingReplicaSet", "Scaled up replica set queue-master-6c7d8f9b5 to 1")]


def test_warning_bundle_keeps_counts_and_is_warning() -> None:
    text = ("%%% \n2 **BackOff**: Back-off restarting failed container orders in pod orders-7f9c6b8d4-wq2lm\n"
            " 3 **Unhealthy**: Readiness probe failed: HTTP probe failed with statuscode: 503\n \n"
            " _Events emitted by the kubelet seen at 2025-11-09 12:05:41 +0000 UTC since 2025-11-09 12:05:12 +0000 UTC_"
            " \n\n %%%")
    parsed = parse_event("Events from the Pod sock-shop/orders-7f9c6b8d4-wq2lm", text, AT, status="warning")
    assert [(e.type, e.count, e.reason, e.kind, e.name) for e in parsed] == [
        ("Warning", 2, "BackOff", "Pod", "orders-7f9c6b8d4-wq2lm"),
        ("Warning", 3, "Unhealthy", "Pod", "orders-7f9c6b8d4-wq2lm")]
    assert parsed[1].message == "Readiness probe failed: HTTP probe failed with statuscode: 503"


def test_message_with_colons_stars_tildes_and_several_lines() -> None:
    text = ('%%% \n1 **Failed**: Error: failed to pull "registry.local:5000/orders:1.2": **not found**: \\~v1\\~\n'
            "stack: line two\n 4 **Pulling**: Pulling image \"registry.local:5000/orders:1.2\"\n \n"
            " _New events emitted by the kubelet seen at 2018-01-10 13:23:35 +0000 UTC_ \n\n %%%")
    parsed = parse_event("Events from the Pod sock-shop/orders-1", text, AT, status="error")
    assert [(e.reason, e.count, e.type, e.message) for e in parsed] == [
        ("Failed", 1, "Warning", 'Error: failed to pull "registry.local:5000/orders:1.2": **not found**: ~v1~\n'
                                 "stack: line two"),
        ("Pulling", 4, "Warning", 'Pulling image "registry.local:5000/orders:1.2"')]


def test_unbundled_event_and_titles_without_namespace() -> None:
    [single] = parse_event("Deployment sock-shop/queue-master: ScalingReplicaSet",
                           "Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1", AT)
    assert (single.kind, single.name, single.reason, single.count) == ("Deployment", "queue-master",
                                                                       "ScalingReplicaSet", 1)
    [node] = parse_event("Events from the Node ip-10-0-1-12", "%%% \n1 **NodeNotReady**: Node is not ready\n %%%",
                         AT, namespace="kube-system")
    assert (node.namespace, node.kind, node.name) == ("kube-system", "Node", "ip-10-0-1-12")


@pytest.mark.parametrize(("title", "text"), [
    ("Deployment finished", "%%% \n1 **ScalingReplicaSet**: Scaled down\n %%%"),
    ("[Monitor] queue-master down", "queue-master has 0 replicas"),
    ("Events from the Deployment sock-shop/queue-master", "%%% \nno bundled lines here\n %%%"),
    ("", ""),
])
def test_events_of_other_shapes_are_skipped(title: str, text: str) -> None:
    assert parse_event(title, text, AT) == []


def test_search_follows_the_cursor_and_stops_at_a_short_page(events: DatadogEvents) -> None:
    events.page_size = 3
    with played("datadog", "events_search_two_pages"):
        found = events.list_events(NS, NOW - timedelta(hours=3))
    assert [(e.last_seen.time().isoformat(), e.type, e.kind, e.name, e.reason, e.count) for e in found] == [
        ("12:00:02", "Normal", "Deployment", "queue-master", "ScalingReplicaSet", 1),
        ("12:00:02", "Normal", "Deployment", "queue-master", "ScalingReplicaSet", 1),
        ("12:05:41", "Warning", "Pod", "orders-7f9c6b8d4-wq2lm", "BackOff", 2),
        ("12:05:41", "Warning", "Pod", "orders-7f9c6b8d4-wq2lm", "Unhealthy", 3),
        ("12:31:07", "Normal", "Deployment", "queue-master", "ScalingReplicaSet", 1),
        ("12:31:08", "Normal", "ReplicaSet", "queue-master-6c7d8f9b5", "SuccessfulDelete", 1),
        ("12:31:09", "Normal", "Pod", "queue-master-6c7d8f9b5-k2x7q", "Killing", 1),
    ]
    assert found[4].message == "Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1"
    assert found[3].message == ('Readiness probe failed: Get "http://10.8.1.14:80/health": context deadline exceeded '
                                "(Client.Timeout exceeded while awaiting headers)")
    assert {(e.namespace, e.source) for e in found} == {(NS, "datadog")}


def test_kind_is_filtered_in_code(events: DatadogEvents) -> None:
    events.page_size = 3
    with played("datadog", "events_search_two_pages"):
        found = events.list_events(NS, NOW - timedelta(hours=3), kind="deployment")
    assert [(e.last_seen.time().isoformat(), e.message) for e in found] == [
        ("12:00:02", "Scaled down replica set queue-master-5d4b9c7f86 to 0 from 1"),
        ("12:00:02", "Scaled up replica set queue-master-6c7d8f9b5 to 1"),
        ("12:31:07", "Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1"),
    ]


def test_forbidden_is_auth_failed_naming_the_keys(events: DatadogEvents) -> None:
    with played("datadog", "events_forbidden"), pytest.raises(AuthFailed) as caught:
        events.list_events(NS, NOW - timedelta(hours=3))
    assert caught.value.message == "Datadog 403 Forbidden: Forbidden; check DD_API_KEY and DD_APP_KEY"


def test_merge_drops_what_the_kubernetes_api_already_has() -> None:
    scaled = "Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1"
    current = [kube_event("Deployment", "queue-master", "ScalingReplicaSet", scaled, at("14:30:00"),
                          first=at("14:12:03"), count=2)]
    history = [kube_event("Deployment", "queue-master", "ScalingReplicaSet", scaled, at("14:12:03")),
               kube_event("Deployment", "queue-master", "ScalingReplicaSet", scaled, at("14:30:40")),
               kube_event("Deployment", "queue-master", "ScalingReplicaSet", scaled, at("12:31:07")),
               kube_event("Deployment", "queue-master", "ScalingReplicaSet", "Scaled up replica set x to 1",
                          at("14:12:03"))]
    merged = merge_events(current, history)
    assert [(e.last_seen.time().isoformat(), e.message, e.count) for e in merged] == [
        ("12:31:07", scaled, 1), ("14:12:03", "Scaled up replica set x to 1", 1), ("14:30:00", scaled, 2)]


def test_scale_down_older_than_the_kubernetes_api_keeps_reaches_list_events(events: DatadogEvents) -> None:
    events.page_size = 3
    recent = kube_event("Pod", "carts-5d8f7c9b6-p4m2x", "Pulled", 'Container image "weaveworksdemos/carts:0.4.8" '
                        "already present on machine", at("14:20:11"), source="kubelet")
    sources = sources_over(FakeCluster([recent]), events)
    with played("datadog", "events_search_two_pages"):
        outcome = default_toolbox().call(sources, "list_events", {"namespace": NS, "since": "now-3h",
                                                                  "involved_object": "queue-master"})
    assert outcome.ok, outcome.text()
    result = outcome.data()
    assert result["by_reason"] == {"ScalingReplicaSet": 3, "SuccessfulDelete": 1, "Killing": 1}
    assert [(e["last_seen"], e["object"], e["message"]) for e in result["events"]][-3:] == [
        ("2025-11-09T12:31:07Z", "Deployment/queue-master",
         "Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1"),
        ("2025-11-09T12:31:08Z", "ReplicaSet/queue-master-6c7d8f9b5", "Deleted pod: queue-master-6c7d8f9b5-k2x7q"),
        ("2025-11-09T12:31:09Z", "Pod/queue-master-6c7d8f9b5-k2x7q", "Stopping container queue-master"),
    ]


def test_get_deployment_shows_each_event_once(events: DatadogEvents) -> None:
    scaled = kube_event("Deployment", "queue-master", "ScalingReplicaSet",
                        "Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1", at("14:12:03"))
    killing = kube_event("Pod", "queue-master-6c7d8f9b5-k2x7q", "Killing", "Stopping container queue-master",
                         at("14:12:04"), source="kubelet")
    sources = sources_over(FakeCluster([scaled, killing]), events)
    with played("datadog", "events_get_deployment"):
        outcome = default_toolbox().call(sources, "get_deployment", {"namespace": NS, "name": "queue-master"})
    assert outcome.ok, outcome.text()
    detail = outcome.data()
    assert detail["last_scaled"] == {"at": "2025-11-09T14:12:03Z",
                                     "message": "Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1"}
    assert [(e["reason"], e["object"]) for e in detail["events"]] == [
        ("ScalingReplicaSet", "Deployment/queue-master"), ("Killing", "Pod/queue-master-6c7d8f9b5-k2x7q"),
        ("SuccessfulDelete", "ReplicaSet/queue-master-6c7d8f9b5")]


def test_kubernetes_events_survive_a_datadog_failure(events: DatadogEvents, caplog: pytest.LogCaptureFixture) -> None:
    scaled = kube_event("Deployment", "queue-master", "ScalingReplicaSet",
                        "Scaled down replica set queue-master-6c7d8f9b5 to 0 from 1", at("14:12:03"))
    sources = sources_over(FakeCluster([scaled]), events)
    with played("datadog", "events_forbidden"), caplog.at_level(logging.WARNING):
        outcome = default_toolbox().call(sources, "list_events", {"namespace": NS, "since": "now-3h"})
    assert outcome.ok, outcome.text()
    assert [e["reason"] for e in outcome.data()["events"]] == ["ScalingReplicaSet"]
    gap = outcome.data()["history_gap"]
    assert gap.startswith("Datadog 403 Forbidden: Forbidden; check DD_API_KEY and DD_APP_KEY (auth); ")
    assert gap in caplog.text
    assert outcome.data()["summary"].endswith("events older than the cluster keeps (~1 h) are missing: "
                                             "the event history (Datadog) could not be read")


def test_live_sources_read_events_through_datadog(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: test\n"
                          "clusters: [{name: test, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
                          "users: [{name: test, user: {token: test-dummy-token}}]\n"
                          "contexts: [{name: test, context: {cluster: test, user: test}}]\n")
    for name, value in (("KUBECONFIG", str(kubeconfig)), ("RABBITMQ_USER", "guest"), ("RABBITMQ_PASSWORD", "guest")):
        monkeypatch.setenv(name, value)
    cluster = live_sources(Settings()).cluster
    assert isinstance(cluster, ClusterWithEventHistory)
    assert isinstance(cluster.history, DatadogEvents)


def test_aggregate_follows_the_group_cursor(settings: Settings) -> None:
    logs = DatadogLogs(settings, datadog_client(settings))
    logs.group_limit = 2
    start = NOW - timedelta(minutes=15)
    with played("datadog", "logs_aggregate_two_pages"):
        counts = logs.count("kube_namespace:payments", start, NOW, ["service"], None)
    assert counts == [LogCount(group={"service": "billing"}, count=415),
                      LogCount(group={"service": "ledger"}, count=129),
                      LogCount(group={"service": "notifier"}, count=37)]
