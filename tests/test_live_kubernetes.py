"""The live Kubernetes backend over recorded API-server responses, and the tools on top of it."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from kubernetes import client

from tests.cassettes import played, stored_secrets
from tools.errors import AuthFailed, NotFound
from tools.kubernetes.live import KubernetesCluster
from tools.kubernetes.protocol import KubeEvent, PodInfo
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.settings import ConfigError, Settings
from tools.timerange import fixed_clock
from tools.toolkit import Sources

HOST = "https://127.0.0.1:6443"
TOKEN = "test-dummy-token"
NOW = datetime(2025, 11, 9, 14, 45, tzinfo=UTC)
NS = "payments"


@pytest.fixture
def cluster() -> KubernetesCluster:
    configuration = client.Configuration(host=HOST, api_key={"authorization": TOKEN},
                                         api_key_prefix={"authorization": "Bearer"})
    return KubernetesCluster(Settings(max_wait_seconds=0), client.ApiClient(configuration))


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def test_deployment_scaled_to_zero_reads_as_zero(cluster: KubernetesCluster) -> None:
    with played("kubernetes", "deployment_scaled_to_zero"):
        info = cluster.read_deployment(NS, "dispatcher")
    assert (info.desired, info.ready, info.available, info.updated, info.unavailable) == (0, 0, 0, 0, 0)
    assert info.images == ["registry.example.com/payments/dispatcher:2.4.1"]
    assert (info.selector, info.revision, info.created) == ({"app": "dispatcher"}, 4, at("2025-10-10T09:12:44"))
    assert [(c.type, c.status, c.reason) for c in info.conditions] == [
        ("Available", "True", "MinimumReplicasAvailable"), ("Progressing", "True", "NewReplicaSetAvailable")]


def test_missing_deployment_is_not_found(cluster: KubernetesCluster) -> None:
    with played("kubernetes", "deployment_not_found"), pytest.raises(NotFound) as caught:
        cluster.read_deployment(NS, "dispatch")
    assert caught.value.message == "deployments.apps \"dispatch\" not found in namespace 'payments'"


def test_crash_looping_pod_shows_oomkilled(cluster: KubernetesCluster) -> None:
    with played("kubernetes", "pods_crashloop"):
        pods = cluster.list_pods(NS, {"app": "worker"})
    assert pods == [PodInfo(name="worker-5d8f9c7b6-q7lxn", phase="Running", ready=False, restarts=7,
                            waiting_reason="CrashLoopBackOff", last_termination_reason="OOMKilled",
                            started_at=at("2025-11-09T14:21:07"), node="node-b", ip="10.244.2.31",
                            owner="worker", owner_kind="Deployment")]


def test_events_use_the_best_timestamp_and_honour_since(cluster: KubernetesCluster) -> None:
    with played("kubernetes", "events_of_deployment"):
        events = cluster.list_events(NS, NOW - timedelta(hours=1), kind="deployment", name="dispatcher")
    scaling = {"namespace": NS, "reason": "ScalingReplicaSet", "kind": "Deployment", "name": "dispatcher",
               "source": "deployment-controller"}
    micro, plain = at("2025-11-09T14:20:05.123456"), at("2025-11-09T14:43:00")
    assert events == [
        KubeEvent(**scaling, message="Scaled up replica set dispatcher-7c9d5b6f4d to 2 from 1", first_seen=micro,
                  last_seen=micro),
        KubeEvent(**scaling, message="Scaled down replica set dispatcher-7c9d5b6f4d to 0 from 2", first_seen=plain,
                  last_seen=plain),
    ]


def test_forbidden_is_auth_failed(cluster: KubernetesCluster) -> None:
    with played("kubernetes", "namespaces_forbidden"), pytest.raises(AuthFailed) as caught:
        cluster.list_namespaces()
    assert caught.value.message.startswith("Kubernetes API 403: namespaces is forbidden: User ")
    assert caught.value.hints == ["check KUBECONFIG / KUBE_CONTEXT and the account's RBAC (get, list)"]


def test_unavailable_then_ok_is_retried(cluster: KubernetesCluster, monkeypatch: pytest.MonkeyPatch) -> None:
    waited: list[float] = []
    monkeypatch.setattr(time, "sleep", waited.append)
    with played("kubernetes", "namespaces_unavailable_then_ok"):
        assert cluster.list_namespaces() == ["default", "kube-system", NS]
    assert waited == [0.0]


def test_tools_run_unchanged_over_live_kubernetes(cluster: KubernetesCluster) -> None:
    base = replay_sources("incident-5")
    sources = Sources(logs=base.logs, metrics=base.metrics, cluster=cluster, broker=base.broker,
                      clock=fixed_clock(NOW), label="live")
    toolbox = default_toolbox()
    with played("kubernetes", "tool_get_deployment"):
        outcome = toolbox.call(sources, "get_deployment", {"namespace": NS, "name": "dispatcher"})
    assert outcome.ok, outcome.text()
    detail = outcome.data()
    assert (detail["desired"], detail["available"], detail["pods"]) == (0, 0, [])
    assert detail["last_scaled"] == {"at": "2025-11-09T14:43:00Z",
                                     "message": "Scaled down replica set dispatcher-7c9d5b6f4d to 0 from 2"}
    assert [e["reason"] for e in detail["events"]] == ["ScalingReplicaSet", "ScalingReplicaSet", "SuccessfulDelete",
                                                       "Killing"]
    with played("kubernetes", "tool_list_namespaces"):
        outcome = toolbox.call(sources, "list_namespaces", {})
    assert outcome.ok, outcome.text()
    assert outcome.data()["namespaces"] == [
        {"namespace": "kube-system", "deployments": 1, "attention": []},
        {"namespace": NS, "deployments": 2, "attention": ["dispatcher (0/0)", "worker (0/1)"]},
    ]


def test_no_secret_is_stored_in_cassettes() -> None:
    assert stored_secrets("kubernetes", [TOKEN]) == []


def test_unreadable_kubeconfig_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    with pytest.raises(ConfigError, match="KUBECONFIG"):
        KubernetesCluster(Settings())


def test_a_refused_connection_is_unavailable_not_a_timeout() -> None:
    """Regression (issue 16): urllib3's NewConnectionError is a ConnectTimeoutError, so a closed port read as
    "the Kubernetes API did not answer within 1.0 s" after a few milliseconds."""
    import socket

    from tools.errors import Unavailable

    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    closed = KubernetesCluster(Settings(max_attempts=1, timeout_seconds=1),
                               client.ApiClient(client.Configuration(host=f"https://127.0.0.1:{port}")))
    with pytest.raises(Unavailable) as caught:
        closed.list_namespaces()
    assert caught.value.message == (f"cannot reach the Kubernetes API: HTTPSConnection(host='127.0.0.1', port={port}):"
                                    " Failed to establish a new connection: [Errno 111] Connection refused")
