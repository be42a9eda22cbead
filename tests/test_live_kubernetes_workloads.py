"""The live Kubernetes backend beyond Deployments, over recorded API-server responses: StatefulSets (apps/v1), the
autoscaler that targets a workload (autoscaling/v2 HPAs, KEDA keda.sh/v1alpha1 ScaledObjects), a cluster without the
KEDA CRD, an account that may not list HPAs, and the get_deployment tool on top."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from kubernetes import client

from tests.cassettes import played
from tools.kubernetes.live import KubernetesCluster
from tools.kubernetes.protocol import AutoscalerInfo, DeploymentInfo, PodInfo
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.settings import Settings
from tools.timerange import fixed_clock
from tools.toolkit import Sources

HOST = "https://127.0.0.1:6443"
TOKEN = "test-dummy-token"
NOW = datetime(2025, 11, 9, 14, 45, tzinfo=UTC)
NS = "payments"
LEDGER_HPA = AutoscalerInfo(kind="HorizontalPodAutoscaler", name="ledger", min_replicas=1, max_replicas=4,
                            current_replicas=0, trigger="cpu utilization 70%")
FORBIDDEN = ('HorizontalPodAutoscalers could not be read: Kubernetes API 403: horizontalpodautoscalers.autoscaling '
             'is forbidden: User "system:serviceaccount:sre:agent" cannot list resource "horizontalpodautoscalers" '
             'in API group "autoscaling" in the namespace "payments"')


@pytest.fixture
def cluster() -> KubernetesCluster:
    configuration = client.Configuration(host=HOST, api_key={"authorization": TOKEN},
                                         api_key_prefix={"authorization": "Bearer"})
    return KubernetesCluster(Settings(max_wait_seconds=0), client.ApiClient(configuration))


def live(cluster: KubernetesCluster) -> Sources:
    base = replay_sources("incident-5")
    return Sources(logs=base.logs, metrics=base.metrics, cluster=cluster, broker=base.broker, clock=fixed_clock(NOW),
                   label="live")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_statefulset_at_zero_is_read_with_the_hpa_that_targets_it(cluster: KubernetesCluster) -> None:
    """No Deployment "ledger" (404), so the StatefulSet of that name; of the two HPAs the one whose scaleTargetRef
    is StatefulSet/ledger. A StatefulSet's status keeps `replicas: 0`/`availableReplicas: 0`, the HPA omits
    `currentReplicas` at 0."""
    with played("kubernetes", "statefulset_at_zero_with_hpa"):
        info = cluster.read_deployment(NS, "ledger")
    assert info == DeploymentInfo(
        namespace=NS, name="ledger", kind="StatefulSet", desired=0, ready=0, available=0, updated=0, unavailable=0,
        images=["registry.example.com/payments/ledger:5.2.0"], labels={"app": "ledger", "tier": "data"},
        selector={"app": "ledger"}, conditions=[], revision=3, created=at("2025-09-22T11:04:09"),
        autoscaler=LEDGER_HPA, autoscaler_gap=None)


def test_deployment_at_zero_with_a_keda_scaledobject_of_min_zero(cluster: KubernetesCluster) -> None:
    """The ScaledObject (scaleTargetRef without a kind: a Deployment) speaks for the workload; the HPA KEDA creates
    for it (keda-hpa-dispatcher, owned by the ScaledObject, min 1) is not the autoscaler."""
    with played("kubernetes", "deployment_with_scaledobject"):
        info = cluster.read_deployment(NS, "dispatcher")
    assert (info.kind, info.desired, info.available, info.revision) == ("Deployment", 0, 0, 4)
    assert info.autoscaler == AutoscalerInfo(
        kind="ScaledObject", name="dispatcher", min_replicas=0, max_replicas=10, current_replicas=0,
        trigger="rabbitmq queue payment-jobs (target 20 messages per replica)")
    assert info.autoscaler_gap is None


def test_a_cluster_without_the_keda_crd_has_no_scaledobjects(cluster: KubernetesCluster) -> None:
    """keda.sh is not served there: the API server answers `404 page not found` (text/plain), which is no
    ScaledObjects, not an error; Deployments and StatefulSets are listed together, by name."""
    with played("kubernetes", "workloads_without_keda"):
        workloads = cluster.list_deployments("billing")
    assert [(w.kind, w.name, w.desired, w.ready, w.available, w.updated, w.unavailable) for w in workloads] == [
        ("Deployment", "api", 3, 3, 3, 3, 0), ("StatefulSet", "cache", 3, 2, 2, 3, 1)]
    assert [w.autoscaler for w in workloads] == [
        AutoscalerInfo(kind="HorizontalPodAutoscaler", name="api", min_replicas=2, max_replicas=6, current_replicas=3,
                       trigger="cpu utilization 60%"), None]
    assert [w.autoscaler_gap for w in workloads] == [None, None]


def test_hpas_forbidden_leave_the_deployment_readable_and_say_why(cluster: KubernetesCluster,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="tools.kubernetes.live"), \
            played("kubernetes", "autoscalers_forbidden"):
        info = cluster.read_deployment(NS, "dispatcher")
    assert (info.name, info.desired, info.autoscaler, info.autoscaler_gap) == ("dispatcher", 0, None, FORBIDDEN)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", f"autoscalers in payments are unknown: {FORBIDDEN}")]


def test_statefulset_pods_are_owned_directly_deployment_pods_through_their_replicaset(
        cluster: KubernetesCluster) -> None:
    with played("kubernetes", "pods_of_statefulset"):
        pods = cluster.list_pods(NS, {"tier": "data"})
    assert [(p.name, p.owner, p.owner_kind, p.ready, p.node) for p in pods] == [
        ("ledger-0", "ledger", "StatefulSet", True, "node-a"), ("ledger-1", "ledger", "StatefulSet", True, "node-c"),
        ("ledger-proxy-84c6b7d9f5-wz2qk", "ledger-proxy", "Deployment", True, "node-b")]
    assert pods[0] == PodInfo(name="ledger-0", phase="Running", ready=True, started_at=at("2025-11-09T09:00:11"),
                              node="node-a", ip="10.244.1.40", owner="ledger", owner_kind="StatefulSet")


def test_get_deployment_renders_the_hpa_of_a_statefulset_at_zero(cluster: KubernetesCluster) -> None:
    with played("kubernetes", "tool_get_statefulset"):
        outcome = default_toolbox().call(live(cluster), "get_deployment", {"namespace": NS, "name": "ledger"})
    assert outcome.ok, outcome.text()
    detail = outcome.data()
    assert detail["summary"] == (
        "StatefulSet desired 0, available 0/0; scaled to 0: no pods are running and nothing this workload does is "
        "happening; replicas set by HorizontalPodAutoscaler ledger min 1 max 4 on cpu utilization 70% (below its "
        "minimum: the autoscaler is not acting)")
    assert (detail["kind"], detail["desired"], detail["pods"], detail.get("last_scaled")) == (
        "StatefulSet", 0, [], None)
    assert detail["autoscaler"] == LEDGER_HPA.model_dump()
    assert [(e["last_seen"], e["reason"], e["object"], e["message"]) for e in detail["events"]] == [
        ("2025-11-09T14:12:05Z", "SuccessfulDelete", "StatefulSet/ledger",
         "delete Pod ledger-1 in StatefulSet ledger successful"),
        ("2025-11-09T14:12:05Z", "Killing", "Pod/ledger-1", "Stopping container ledger"),
        ("2025-11-09T14:12:20Z", "SuccessfulDelete", "StatefulSet/ledger",
         "delete Pod ledger-0 in StatefulSet ledger successful"),
        ("2025-11-09T14:12:20Z", "Killing", "Pod/ledger-0", "Stopping container ledger"),
    ]


def test_get_deployment_lists_workloads_with_scaledobject_defaults(cluster: KubernetesCluster) -> None:
    """A ScaledObject without minReplicaCount/maxReplicaCount has KEDA's 0 and 100; one whose scaleTargetRef names
    kind StatefulSet targets the StatefulSet; a trigger never shows a connection string (hostFromEnv)."""
    with played("kubernetes", "workloads_with_scaledobject_defaults"):
        outcome = default_toolbox().call(live(cluster), "get_deployment", {"namespace": NS})
    assert outcome.ok, outcome.text()
    table = outcome.data()
    assert table["summary"] == "3 deployments in payments; needing attention: dispatcher (0/0), ledger (0/0)"
    rows = [(r["kind"], r["name"], r["desired"], r["available"], r.get("autoscaler")) for r in table["deployments"]]
    assert rows == [
        ("Deployment", "dispatcher", 0, 0, None),
        ("StatefulSet", "ledger", 0, 0, {"kind": "ScaledObject", "name": "ledger", "min_replicas": 0,
                                         "max_replicas": 3, "current_replicas": 0,
                                         "trigger": "cron 0 6 * * * to 0 20 * * * (Europe/Berlin)"}),
        ("Deployment", "worker", 1, 1, {"kind": "ScaledObject", "name": "worker-jobs", "min_replicas": 0,
                                        "max_replicas": 100, "current_replicas": 1,
                                        "trigger": "rabbitmq queue invoice-jobs (target 50 messages/s published per "
                                                   "replica)"}),
    ]
    assert "RABBITMQ_URL" not in outcome.text()
