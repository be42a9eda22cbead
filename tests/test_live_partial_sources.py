"""Live mode with any subset of the sources: the configured ones are built, the others answer NotConfigured naming
what to set, and a source configured but unusable, or no source at all, is one ConfigError (exit 2 in the CLI)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tests.misbehaving_server import Fault, MisbehavingServer, misbehaving
from tools.errors import NotConfigured
from tools.kubernetes.history import ClusterWithEventHistory
from tools.live import NONE_CONFIGURED, NOT_CONFIGURED, live_sources
from tools.rabbitmq.live import rabbitmq_login
from tools.registry import TOOL_SOURCES, default_toolbox
from tools.settings import ConfigError, Settings
from tools.timerange import parse_time
from tools.unconfigured import HINT, Unconfigured

__all__ = ["misbehaving"]

SOURCE_VARIABLES = ("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "DD_HOST", "KUBECONFIG", "KUBE_CONTEXT", "KUBE_IN_CLUSTER",
                    "KUBERNETES_SERVICE_HOST", "RABBITMQ_URL", "RABBITMQ_USER", "RABBITMQ_PASSWORD")
QUEUE = {"vhost": "/", "name": "invoice-jobs", "messages": 3, "messages_ready": 3, "messages_unacknowledged": 0,
         "consumers": 0, "durable": True, "state": "running", "idle_since": "2026-11-30T05:15:57.862+00:00"}
EVENT = {"metadata": {"name": "worker.1", "namespace": "payments", "creationTimestamp": "2026-11-30T05:50:00Z"},
         "involvedObject": {"kind": "Deployment", "name": "worker", "namespace": "payments"},
         "reason": "ScalingReplicaSet", "message": "Scaled down replica set worker-5d4f to 0 from 1", "type": "Normal",
         "count": 1, "firstTimestamp": "2026-11-30T05:50:00Z", "lastTimestamp": "2026-11-30T05:50:00Z",
         "source": {"component": "deployment-controller"}}
runner = CliRunner()


@pytest.fixture
def bare_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[pytest.MonkeyPatch]:
    """No source configured: none of their variables, and a HOME without ~/.kube/config."""
    for variable in SOURCE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("SRE_AGENT_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("SRE_AGENT_TIMEOUT_SECONDS", "2")
    yield monkeypatch


def kubeconfig(tmp_path: Path, server: str) -> str:
    path = tmp_path / "kubeconfig"
    path.write_text("apiVersion: v1\nkind: Config\ncurrent-context: test\n"
                    f"clusters: [{{name: test, cluster: {{server: '{server}'}}}}]\n"
                    "users: [{name: test, user: {token: partial-sources-token}}]\n"
                    "contexts: [{name: test, context: {cluster: test, user: test}}]\n")
    return str(path)


def test_only_rabbitmq_url_builds_the_broker_and_names_what_is_missing(bare_env: pytest.MonkeyPatch,
                                                                      misbehaving: MisbehavingServer) -> None:
    port = misbehaving.server_address[1]
    bare_env.setenv("RABBITMQ_URL", f"http://mon%40ops:p%3Ass%2Fw0rd@127.0.0.1:{port}/")
    misbehaving.fault = Fault("ok", body=[QUEUE])
    sources = live_sources()
    assert sources.missing == {"datadog": "Datadog is not configured: set DD_API_KEY and DD_APP_KEY",
                               "kubernetes": NOT_CONFIGURED["kubernetes"]}
    [queue] = sources.broker.list_queues()
    assert (queue.name, queue.messages, queue.consumers) == ("invoice-jobs", 3, 0)
    path, headers = misbehaving.seen[-1]
    assert path == "/api/queues"
    assert headers["authorization"] == "Basic " + base64.b64encode(b"mon@ops:p:ss/w0rd").decode()
    with pytest.raises(NotConfigured) as datadog:
        sources.logs.search("service:billing", parse_time("now-15m", sources.clock()), sources.clock(), 5)
    assert (datadog.value.message, datadog.value.hints) == (NOT_CONFIGURED["datadog"], [HINT])
    with pytest.raises(NotConfigured, match=r"^Datadog is not configured: set DD_API_KEY and DD_APP_KEY$"):
        sources.metrics.metric_names()
    with pytest.raises(NotConfigured) as kube:
        sources.cluster.list_namespaces()
    assert kube.value.message == ("Kubernetes is not configured: set KUBECONFIG (and KUBE_CONTEXT) to a kubeconfig, "
                                  "or KUBE_IN_CLUSTER=1 in a pod with a service account")


def test_tools_of_a_missing_source_return_not_configured(bare_env: pytest.MonkeyPatch,
                                                         misbehaving: MisbehavingServer) -> None:
    bare_env.setenv("RABBITMQ_URL", misbehaving.url)
    bare_env.setenv("RABBITMQ_USER", "monitor")
    bare_env.setenv("RABBITMQ_PASSWORD", "monitor-pass")
    misbehaving.fault = Fault("ok", body=[QUEUE])
    sources, toolbox = live_sources(), default_toolbox()
    calls = {"list_namespaces": {}, "get_deployment": {"namespace": "payments"},
             "list_events": {"namespace": "payments"}, "search_logs": {"query": "service:billing"},
             "get_metric": {"query": "avg:rabbitmq.queue.messages{*}"}, "get_queue_stats": {}}
    assert set(calls) == set(toolbox.names()) == set(TOOL_SOURCES)
    for name, args in calls.items():
        outcome = toolbox.call(sources, name, args)
        source = TOOL_SOURCES[name]
        if source in sources.missing:
            assert outcome.data() == {"error": "not_configured", "message": sources.missing[source], "hints": [HINT]}
        else:
            assert outcome.ok, outcome.text()


def test_kubernetes_without_datadog_reads_the_api_events_alone(bare_env: pytest.MonkeyPatch, tmp_path: Path,
                                                               misbehaving: MisbehavingServer) -> None:
    bare_env.setenv("KUBECONFIG", kubeconfig(tmp_path, misbehaving.url))
    misbehaving.fault = Fault("ok", body={"kind": "EventList", "apiVersion": "v1", "metadata": {}, "items": [EVENT]})
    sources = live_sources()
    assert set(sources.missing) == {"datadog", "rabbitmq"}
    cluster = sources.cluster
    assert isinstance(cluster, ClusterWithEventHistory) and isinstance(cluster.history, Unconfigured)
    [event] = cluster.list_events("payments", parse_time("2026-11-30T05:00:00Z", sources.clock()))
    assert (event.kind, event.name, event.reason) == ("Deployment", "worker", "ScalingReplicaSet")
    assert cluster.history_gap == f"{NOT_CONFIGURED['datadog']} (not_configured); {HINT}"
    assert misbehaving.seen[-1][1]["authorization"] == "Bearer partial-sources-token"


def test_no_source_at_all_is_one_config_error(bare_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError) as caught:
        live_sources()
    assert str(caught.value) == NONE_CONFIGURED
    result = runner.invoke(app, ["ask", "why is nothing shipped?", "--live", "--model", "playbook"])
    assert (result.exit_code, result.stderr) == (2, f"error: {NONE_CONFIGURED}\n")


def test_a_source_configured_but_unusable_is_a_config_error(bare_env: pytest.MonkeyPatch) -> None:
    bare_env.setenv("DD_APP_KEY", "only-the-app-key")
    with pytest.raises(ConfigError, match=r"^DD_API_KEY is not set; export DD_API_KEY"):
        live_sources()
    bare_env.delenv("DD_APP_KEY")
    bare_env.setenv("RABBITMQ_URL", "http://127.0.0.1:15672/")
    expected = ("RABBITMQ_USER is not set (nor RABBITMQ_PASSWORD); export RABBITMQ_USER and RABBITMQ_PASSWORD, or "
                "give them as the userinfo of RABBITMQ_URL (user:password@ before the host)")
    with pytest.raises(ConfigError) as caught:
        live_sources()
    assert str(caught.value) == expected
    result = runner.invoke(app, ["ask", "why is nothing shipped?", "--live", "--model", "playbook"])
    assert (result.exit_code, result.stderr) == (2, f"error: {expected}\n")
    bare_env.delenv("RABBITMQ_URL")
    bare_env.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    with pytest.raises(ConfigError, match="KUBECONFIG"):
        live_sources()


def test_rabbitmq_credentials_from_the_url_and_the_variables() -> None:
    url = "https://ops:s%40lt%3Ay@broker.example:15671/mgmt/"
    assert rabbitmq_login(Settings(rabbitmq_url=url)) == ("https://broker.example:15671/mgmt/", "ops", "s@lt:y")
    assert rabbitmq_login(Settings(rabbitmq_url=url, rabbitmq_user="monitor")) == (
        "https://broker.example:15671/mgmt/", "monitor", "s@lt:y")
    assert rabbitmq_login(Settings(rabbitmq_url=url, rabbitmq_user="monitor", rabbitmq_password="explicit")) == (
        "https://broker.example:15671/mgmt/", "monitor", "explicit")
    with pytest.raises(ConfigError, match=r"^RABBITMQ_PASSWORD is not set; export"):
        rabbitmq_login(Settings(rabbitmq_url="http://ops@broker:15672"))


@pytest.mark.parametrize(("url", "message"), [
    ("broker:15672", "RABBITMQ_URL must be an http(s) URL like http://host:15672/, not 'broker:15672'"),
    ("amqp://ops:***@broker:5672", "RABBITMQ_URL must be an http(s) URL like http://host:15672/, "
                                   "not 'amqp://ops:***@broker:5672'"),
    ("http://broker:mgmt/", "RABBITMQ_URL is not a valid URL (Port could not be cast to integer value as 'mgmt'); "
                            "expected http://host:15672/"),
])
def test_a_malformed_rabbitmq_url_is_a_config_error(url: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        rabbitmq_login(Settings(rabbitmq_url=url.replace("***", "amqp-secret"), rabbitmq_user="u",
                                rabbitmq_password="p"))
    assert str(caught.value) == message


def test_ask_live_with_only_rabbitmq_answers_without_a_traceback(bare_env: pytest.MonkeyPatch,
                                                                 misbehaving: MisbehavingServer) -> None:
    bare_env.setenv("RABBITMQ_URL", misbehaving.url.replace("http://", "http://monitor:monitor-pass@"))
    misbehaving.fault = Fault("ok", routes={"/api/queues": [QUEUE], "/api/queues/%2F/invoice-jobs": QUEUE,
                                            "/api/nodes": [{"name": "rabbit@broker-0", "mem_alarm": False}]})
    result = runner.invoke(app, ["ask", "why are invoices not going out?", "--live", "--model", "playbook", "--json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 0, result.output
    assert "status" in json.loads(result.stdout)
    assert {path.split("?")[0] for path, _ in misbehaving.seen} >= {"/api/queues", "/api/queues/%2F/invoice-jobs"}
