"""One redaction at the boundary: credentials never reach a SourceError, a ConfigError, a tool result or the CLI."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from tools.errors import SourceError, Unavailable
from tools.live import live_sources
from tools.redaction import RedactingFilter, redact
from tools.registry import default_toolbox
from tools.settings import ConfigError, Settings

runner = CliRunner()
DD_API = "dd-api-0123456789abcdef"
DD_APP = "dd-app-fedcba9876543210"
RABBIT = "S3cr!t/Pass"  # in RABBITMQ_URL as S3cr%21t%2FPass
KUBE_TOKEN = "sha256~kube-token-secret-42"
SECRETS = (DD_API, DD_APP, RABBIT, "S3cr%21t%2FPass", KUBE_TOKEN)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.mark.parametrize(("text", "expected"), [
    ("cannot reach http://admin:PASSWORD@broker:15672/api/queues",
     "cannot reach http://admin:***@broker:15672/api/queues"),
    ("postgresql://agent:p@ss:w0rd@db.internal:5432/sre", "postgresql://agent:***@db.internal:5432/sre"),
    ("Authorization: Bearer eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln", "Authorization: ***"),
    ("{'authorization': 'Basic bW9uaXRvcjpwYXNz', 'accept': 'application/json'}",
     "{'authorization': '***', 'accept': 'application/json'}"),
    ("the server rejected bearer abc.DEF-123_x", "the server rejected bearer ***"),
    ("DD-API-KEY: 1234abcd, DD-APPLICATION-KEY=zz99", "DD-API-KEY: ***, DD-APPLICATION-KEY=***"),
    ("GET /api/v1/query?api_key=abc123&application_key=def456&query=avg:x{*}",
     "GET /api/v1/query?api_key=***&application_key=***&query=avg:x{*}"),
    ('{"user": "ops", "password": "hunter22", "token":"t0k3n"}', '{"user": "ops", "password": "***", "token":"***"}'),
    ("users:\n- name: ops\n  user:\n    token: sha256~abcdef\n    client-key-data: LS0tLS1CRUdJTg==\n"
     "    password: pw-1234\n    client-secret: cs-9\n",
     "users:\n- name: ops\n  user:\n    token: ***\n    client-key-data: ***\n    password: ***\n"
     "    client-secret: ***\n"),
    ("key:\n-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA\n-----END RSA PRIVATE KEY-----\nend", "key:\n***\nend"),
])
def test_patterns(text: str, expected: str) -> None:
    assert redact(text) == expected
    assert redact(expected) == expected


@pytest.mark.parametrize("text", [
    "Datadog is not configured: set DD_API_KEY and DD_APP_KEY",
    "check RABBITMQ_USER and RABBITMQ_PASSWORD (the user needs the monitoring or management tag)",
    "cannot reach the RabbitMQ management API at http://127.0.0.1:15672/: [Errno 111] Connection refused",
    "DD_API_KEY is not set; export DD_API_KEY to use the live source that needs it",
    "the Kubernetes API did not answer within 10.0 s; a token bucket of 5 requests",
    "",
])
def test_ordinary_text_is_unchanged(text: str) -> None:
    assert redact(text) == text


def test_secret_values_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DD_API_KEY", DD_API)
    monkeypatch.setenv("RABBITMQ_PASSWORD", "rabbit-pass-77")
    monkeypatch.setenv("RABBITMQ_URL", "http://ops:S3cr%21t%2FPass@broker:15672/")
    monkeypatch.setenv("SRE_AGENT_DATABASE_URL", "postgresql://agent:db-secret-5@db/sre")
    monkeypatch.setenv("SLACK_WEBHOOK_TOKEN", "xoxb-slack-1")
    monkeypatch.setenv("KUBE_CONTEXT", "prod")
    text = (f"key {DD_API} pass rabbit-pass-77 decoded {RABBIT} encoded S3cr%21t%2FPass db db-secret-5 "
            "slack xoxb-slack-1 context prod")
    assert redact(text) == "key *** pass *** decoded *** encoded *** db *** slack *** context prod"


def test_values_too_short_to_mask_by_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RABBITMQ_PASSWORD", "pw")
    assert redact("a pw in a sentence; password=pw") == "a pw in a sentence; password=***"


def test_source_and_config_errors_are_redacted_where_they_are_made() -> None:
    error = SourceError("GET http://ops:hunter22@broker/api failed", hints=["retry with token=abc123"])
    assert (error.message, error.hints, str(error)) == (
        "GET http://ops:***@broker/api failed", ["retry with token=***"], "GET http://ops:***@broker/api failed")
    assert str(ConfigError("RABBITMQ_URL 'amqp://ops:hunter22@broker' is not http")) == (
        "RABBITMQ_URL 'amqp://ops:***@broker' is not http")


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    """A distinct secret in every credential, every endpoint an unreachable port on loopback."""
    port = closed_port()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\ncurrent-context: c\n"
                          f"clusters: [{{name: c, cluster: {{server: 'http://127.0.0.1:{port}'}}}}]\n"
                          f"users: [{{name: u, user: {{token: '{KUBE_TOKEN}'}}}}]\n"
                          "contexts: [{name: c, context: {cluster: c, user: u}}]\n")
    for name, value in (("DD_API_KEY", DD_API), ("DD_APP_KEY", DD_APP), ("DD_HOST", f"http://127.0.0.1:{port}"),
                        ("RABBITMQ_URL", f"http://admin:S3cr%21t%2FPass@127.0.0.1:{port}/"),
                        ("KUBECONFIG", str(kubeconfig)), ("HOME", str(tmp_path)),
                        ("SRE_AGENT_MAX_ATTEMPTS", "1"), ("SRE_AGENT_TIMEOUT_SECONDS", "2")):
        monkeypatch.setenv(name, value)
    for name in ("RABBITMQ_USER", "RABBITMQ_PASSWORD", "KUBE_CONTEXT", "KUBERNETES_SERVICE_HOST"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def leaked(text: str) -> list[str]:
    return [secret for secret in SECRETS if secret in text]


def test_no_secret_in_connection_failures(secret_env: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="tools")
    sources = live_sources()
    assert sources.missing == {}
    with pytest.raises(Unavailable) as caught:
        sources.broker.list_queues()
    assert caught.value.message.startswith("cannot reach the RabbitMQ management API at http://127.0.0.1:")
    toolbox = default_toolbox()
    texts = [caught.value.message, *caught.value.hints]
    for name, args in (("get_queue_stats", {}), ("search_logs", {"query": "service:billing"}),
                       ("list_namespaces", {}), ("list_events", {"namespace": "payments"})):
        outcome = toolbox.call(sources, name, args)
        assert not outcome.ok, outcome.text()
        texts.append(outcome.text())
    assert leaked("\n".join(texts) + caplog.text) == []


def test_no_secret_in_config_errors(secret_env: pytest.MonkeyPatch) -> None:
    secret_env.setenv("RABBITMQ_URL", "amqp://admin:S3cr%21t%2FPass@127.0.0.1:5672/")
    with pytest.raises(ConfigError) as caught:
        live_sources()
    assert str(caught.value) == ("RABBITMQ_URL must be an http(s) URL like http://host:15672/, "
                                 "not 'amqp://admin:***@127.0.0.1:5672/'")
    result = runner.invoke(app, ["ask", "why is nothing shipped?", "--live", "--model", "playbook"])
    assert result.exit_code == 2 and leaked(result.output) == []
    assert result.stderr == f"error: {caught.value}\n"
    with pytest.raises(ConfigError) as broken:
        live_sources(Settings(rabbitmq_url="http://admin:S3cr%21t%2FPass@127.0.0.1:notaport/"))
    assert str(broken.value) == ("RABBITMQ_URL is not a valid URL (Port could not be cast to integer value as "
                                 "'notaport'); expected http://host:15672/")


def test_no_secret_in_the_cli_against_unreachable_sources(secret_env: pytest.MonkeyPatch) -> None:
    for extra in ([], ["--json"]):
        result = runner.invoke(app, ["ask", "why are invoices not going out?", "--live", "--model", "playbook",
                                     *extra])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert "Traceback" not in result.output
        assert leaked(result.stdout + result.stderr) == []


def test_the_logging_filter_redacts_each_record() -> None:
    record = logging.LogRecord("x", logging.WARNING, __file__, 1, "retrying %s with %s", (
        "http://ops:hunter22@broker/", {"password": "pw-123456"}), None)
    assert RedactingFilter().filter(record) is True
    assert record.getMessage() == "retrying http://ops:***@broker/ with {'password': '***'}"
