"""Hypothesis mutates the HTTP answers of every live source (issue 16), starting from the real bodies recorded in
tests/cassettes/: RabbitMQ's management API, Datadog's logs, metrics and events, and the Kubernetes API's lists and
objects. A local server answers each request with the recorded body of its endpoint, except one endpoint whose
answer is mutated; the live backends and the tools on top of them then read it. Every read must end in a valid
result or the source's typed error (SourceError: bad_response, unavailable, auth…; a tool's ToolError), within a
time bound: never another exception, never a hang.

An answer is mutated as a tree (tests/fuzzing.py: a field dropped or of the wrong type, numbers scaled up, NaN,
unicode, deep nesting, an unknown field, an entry duplicated), as text (cut, spliced with bytes, binary, 200 kB
longer, nested past any JSON parser's depth), replaced by generated JSON, given another status code, or given
another Content-Type or Date header. `python -m pytest tests/test_fuzz_http_bodies.py -s` prints the tally."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from kubernetes import client

from tests.cassettes import CASSETTES
from tests.fuzzing import CASES, VALUES, as_json, fuzz_settings, hang_guard, text_mutations, tree_mutations
from tools.datadog.events import DatadogEvents
from tools.datadog.live import DatadogLogs, DatadogMetrics
from tools.errors import SourceError
from tools.kubernetes.history import ClusterWithEventHistory
from tools.kubernetes.live import KubernetesCluster
from tools.rabbitmq.live import RabbitMQManagement
from tools.registry import default_toolbox
from tools.settings import Settings
from tools.timerange import fixed_clock
from tools.toolkit import Sources, ToolOutcome

NOW = datetime(2025, 11, 9, 14, 45, tzinfo=UTC)
START = NOW - timedelta(minutes=15)
CASE_SECONDS = 5.0
TOOLBOX = default_toolbox()


def recorded(source: str, cassette: str, index: int) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) of one recorded answer."""
    answer = yaml.safe_load((CASSETTES / source / f"{cassette}.yaml").read_text())["interactions"][index]["response"]
    headers = {name: values[0] for name, values in answer["headers"].items() if name.lower() in ("content-type",
                                                                                                   "date")}
    return answer["status"]["code"], headers, answer["body"]["string"].encode()


# kind → endpoint → the recorded answer. An endpoint is the start of the request's path and query, optionally
# with a text its body must hold (`path | text`); the longest that matches answers.
ENDPOINTS: dict[str, dict[str, tuple[int, dict[str, str], bytes]]] = {
    "rabbitmq": {
        "/api/queues/%2F/invoice-jobs?lengths_age": recorded("rabbitmq", "real_queue_no_consumer", 1),
        "/api/queues/%2F/invoice-jobs": recorded("rabbitmq", "real_queue_no_consumer", 0),
        "/api/queues": recorded("rabbitmq", "real_queue_no_consumer", 3),
        "/api/nodes": recorded("rabbitmq", "real_queue_no_consumer", 2),
    },
    "datadog logs": {
        "/api/v2/logs/events/search": recorded("datadog", "tool_search_logs", 3),
        "/api/v2/logs/analytics/aggregate | timeseries": recorded("datadog", "tool_search_logs", 0),
        "/api/v2/logs/analytics/aggregate | group_by": recorded("datadog", "tool_search_logs", 1),
        "/api/v2/logs/analytics/aggregate": recorded("datadog", "tool_search_logs", 2),
    },
    "datadog metrics": {
        "/api/v1/query": recorded("datadog", "metric_query", 0),
        "/api/v1/metrics": recorded("datadog", "metric_unknown", 1),
        "/api/v2/metrics/": recorded("datadog", "metric_tags", 0),
    },
    "datadog events": {
        "/api/v2/events/search": recorded("datadog", "events_search_two_pages", 1),
    },
    "kubernetes": {
        "/api/v1/namespaces/payments/pods": recorded("kubernetes", "pods_crashloop", 0),
        "/api/v1/namespaces/payments/events": recorded("kubernetes", "tool_get_deployment", 2),
        "/api/v1/namespaces": recorded("kubernetes", "tool_list_namespaces", 0),
        "/apis/apps/v1/namespaces/payments/deployments/dispatcher": recorded("kubernetes",
                                                                            "deployment_with_scaledobject", 0),
        "/apis/apps/v1/namespaces/payments/deployments": recorded("kubernetes", "workloads_with_scaledobject_defaults",
                                                                  0),
        "/apis/apps/v1/namespaces/payments/statefulsets": recorded("kubernetes",
                                                                  "workloads_with_scaledobject_defaults", 1),
        "/apis/autoscaling/v2/namespaces/payments/horizontalpodautoscalers": recorded(
            "kubernetes", "workloads_with_scaledobject_defaults", 2),
        "/apis/keda.sh/v1alpha1/namespaces/payments/scaledobjects": recorded(
            "kubernetes", "workloads_with_scaledobject_defaults", 3),
    },
}
RECORDED = {endpoint: answer for endpoints in ENDPOINTS.values() for endpoint, answer in endpoints.items()}


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = dict(RECORDED)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up on a body (too large, a deadline) is expected

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else each answer waits 40 ms for the client's delayed ACK

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer(b"")

    def do_POST(self) -> None:
        self._answer(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def _answer(self, body: bytes) -> None:
        def fits(endpoint: str) -> bool:
            path, _, needle = endpoint.partition(" | ")
            return self.path.startswith(path) and needle.encode() in body

        endpoint = max((e for e in self.server.answers if fits(e)), key=len, default=None)
        status, headers, payload = self.server.answers[endpoint] if endpoint else (404, {}, b'{"error": "none"}')
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    running = Server()
    thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.shutdown()
        running.server_close()
        thread.join(5)


@dataclass
class Live:
    """The live backends over the fuzz server, and the tools' Sources of them."""

    broker: RabbitMQManagement
    logs: DatadogLogs
    metrics: DatadogMetrics
    events: DatadogEvents
    cluster: KubernetesCluster
    sources: Sources

    def close(self) -> None:
        """Close the clients' connection pools now: left to the garbage collector, their sockets are finalised at
        a random later moment, perhaps deep inside a recursion another case provokes, where even reporting the
        unclosed socket fails."""
        for backend in (self.logs, self.metrics, self.events):
            backend.api_client.close()
        self.cluster.api_client.close()


def settings(url: str) -> Settings:
    return Settings(rabbitmq_url=url, rabbitmq_user="monitor", rabbitmq_password="monitor-pass", dd_host=url,
                    dd_api_key="dd-api", dd_app_key="dd-app", timeout_seconds=2, max_attempts=1, max_wait_seconds=0,
                    call_deadline_seconds=4)


def live(url: str, broker: RabbitMQManagement) -> Live:
    """New backends (nothing cached from an earlier case) but for `broker`, whose httpx client takes 20 ms to make
    and which caches nothing."""
    configuration = client.Configuration(host=url)
    configuration.retries = False
    cluster = KubernetesCluster(settings(url), client.ApiClient(configuration))
    events = DatadogEvents(settings(url))
    logs, metrics = DatadogLogs(settings(url)), DatadogMetrics(settings(url), clock=fixed_clock(NOW))
    sources = Sources(logs=logs, metrics=metrics, cluster=ClusterWithEventHistory(cluster, events), broker=broker,
                      clock=fixed_clock(NOW), label="live")
    return Live(broker, logs, metrics, events, cluster, sources)


def tool(tool_name: str, **args: Any) -> Callable[[Live], ToolOutcome]:
    return lambda backends: TOOLBOX.call(backends.sources, tool_name, args)


# kind → the reads that use its endpoints: the backends' own methods, then the tools over them.
READS: dict[str, dict[str, Callable[[Live], Any]]] = {
    "rabbitmq": {
        "list_queues": lambda b: b.broker.list_queues("/"),
        "get_queue": lambda b: b.broker.get_queue("/", "invoice-jobs", 900),
        "alarms": lambda b: b.broker.alarms(),
        "tool get_queue_stats": tool("get_queue_stats"),
        "tool get_queue_stats queue": tool("get_queue_stats", queue="invoice-jobs"),
    },
    "datadog logs": {
        "search": lambda b: b.logs.search("service:billing", START, NOW, 5),
        "count": lambda b: b.logs.count("service:billing", START, NOW, ["service", "status"], None),
        "count by minute": lambda b: b.logs.count("service:billing", START, NOW, [], 60),
        "tool search_logs": tool("search_logs", query="service:billing"),
    },
    "datadog metrics": {
        "query": lambda b: b.metrics.query("avg:rabbitmq.queue.messages{*}", START, NOW),
        "metric_names": lambda b: b.metrics.metric_names(),
        "metric_tags": lambda b: b.metrics.metric_tags("rabbitmq.queue.messages"),
        "tool get_metric": tool("get_metric", query="avg:rabbitmq.queue.messages{*}"),
    },
    "datadog events": {
        "list_events": lambda b: b.events.list_events("payments", START),
        "tool list_events": tool("list_events", namespace="payments"),
    },
    "kubernetes": {
        "list_namespaces": lambda b: b.cluster.list_namespaces(),
        "list_deployments": lambda b: b.cluster.list_deployments("payments"),
        "read_deployment": lambda b: b.cluster.read_deployment("payments", "dispatcher"),
        "list_pods": lambda b: b.cluster.list_pods("payments", {"app": "worker"}),
        "list_events": lambda b: b.cluster.list_events("payments", START),
        "tool list_namespaces": tool("list_namespaces"),
        "tool get_deployment": tool("get_deployment", namespace="payments", name="dispatcher"),
        "tool get_deployment all": tool("get_deployment", namespace="payments"),
        "tool list_events": tool("list_events", namespace="payments"),
    },
}
STATUSES = st.sampled_from([200, 200, 201, 204, 301, 304, 400, 401, 403, 404, 409, 418, 422, 429, 500, 502, 503, 599])
CONTENT_TYPES = st.sampled_from(["application/json", "text/html", "application/json; charset=latin-1",
                                 "application/json; charset=no-such-codec", "", "application/octet-stream"])
DATES = st.one_of(st.sampled_from(["Thu, 03 Dec 2026 17:02:56 GMT", "", "yesterday", "Mon, 32 Foo 99999 99:99:99 GMT",
                                   "Thu, 03 Dec 10000 17:02:56 GMT", "0", "Thu, 03 Dec 2026 17:02:56 +9999"]),
                  st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=40))
GENERATED = st.recursive(VALUES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["data", "items", "metadata", "spec", "status", "series", "pointlist", "meta", "page", "after",
                     "attributes", "name", "vhost", "messages", "buckets", "computes", "c0", "timestamp", "sample",
                     "messages_details", "samples", "metrics", "tags", "kind", "replicas"]) | st.text(max_size=8),
    inner, max_size=5), max_leaves=20)


@st.composite
def answers(draw: st.DrawFn, kind: str) -> tuple[str, str, tuple[int, dict[str, str], bytes]]:
    """(endpoint, how it was mutated, the mutated answer) for one of `kind`'s endpoints."""
    endpoint = draw(st.sampled_from(sorted(ENDPOINTS[kind])))
    status, headers, body = ENDPOINTS[kind][endpoint]
    how = draw(st.sampled_from(["tree", "tree", "tree", "text", "text", "generated", "status", "headers"]))
    if how == "tree":
        body = as_json(draw(tree_mutations(json.loads(body))))
    elif how == "text":
        mutated = draw(text_mutations(body.decode(), 200_000))
        body = mutated if isinstance(mutated, bytes) else mutated.encode()
    elif how == "generated":
        body = as_json(draw(GENERATED))
    elif how == "status":
        status = draw(STATUSES)
        if draw(st.booleans()):
            body = as_json(draw(GENERATED))
    else:
        headers = {"content-type": draw(CONTENT_TYPES), "date": draw(DATES)}
    return endpoint, how, (status, headers, body)


def read(backends: Live, name: str, call: Callable[[Live], Any]) -> str:
    """'valid' or 'typed error'; any other exception propagates and fails the case."""
    try:
        result = call(backends)
    except SourceError as exc:
        assert exc.message and "Traceback" not in exc.message, (name, exc.message)
        return "typed error"
    if isinstance(result, ToolOutcome):
        json.loads(result.text())  # what the model is given
        return "valid" if result.ok else "typed error"
    return "valid"


@pytest.mark.parametrize("kind", sorted(ENDPOINTS))
def test_mutated_http_answers_read_as_results_or_typed_errors(server: Server, kind: str,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    broker = RabbitMQManagement(settings(server.url))
    hows: Counter[str] = Counter()
    reads: Counter[str] = Counter()
    slowest: list[Any] = [0.0, ""]

    @fuzz_settings()
    @given(answers(kind))
    def case(drawn: tuple[str, str, tuple[int, dict[str, str], bytes]]) -> None:
        endpoint, how, answer = drawn
        server.answers = {**RECORDED, endpoint: answer}
        started = time.monotonic()
        backends = live(server.url, broker)
        try:
            with hang_guard():
                for name, call in READS[kind].items():
                    reads[read(backends, name, call)] += 1
        finally:
            backends.close()
        elapsed = time.monotonic() - started
        assert elapsed < CASE_SECONDS, f"{endpoint} ({how}): {elapsed:.1f} s"
        hows[how] += 1
        if elapsed > slowest[0]:
            slowest[:] = [elapsed, f"{endpoint}, {how}"]

    case()
    broker.http.close()
    total = sum(hows.values())
    with capsys.disabled():
        print(f"\nfuzzed {kind} answers: {total} cases ({', '.join(f'{n} {h}' for h, n in sorted(hows.items()))}), "
              f"{reads.total()} reads: {reads['valid']} valid, {reads['typed error']} typed errors, 0 tracebacks, "
              f"0 hangs; slowest {slowest[0]:.2f} s ({slowest[1]})")
    assert total >= CASES
    assert reads["valid"] and reads["typed error"]


def _with(endpoint: str, body: bytes, content_type: str = "application/json") -> dict[str, Any]:
    status, headers, _ = RECORDED[endpoint]
    return {**RECORDED, endpoint: (status, {**headers, "content-type": content_type}, body)}


DEEP = b"[" * 5000 + b"]" * 5000
FOUND = {  # what the fuzzing found: each was a RecursionError, TypeError, LookupError or OSError traceback
    "rabbitmq nested past the recursion limit": (
        "rabbitmq", "list_queues", _with("/api/queues", DEEP),
        "RabbitMQ management API returned a body that is not JSON (application/json, 10000 bytes) from "
        "/api/queues/%2F"),
    "rabbitmq sample time past the platform's range": (
        "rabbitmq", "get_queue", _with("/api/queues/%2F/invoice-jobs?lengths_age", b'{"messages_details": '
                                       b'{"samples": [{"sample": 1, "timestamp": 1e21}]}}'),
        "RabbitMQ management API returned JSON of an unexpected shape from /api/queues/%2F/invoice-jobs (OSError: "
        "[Errno 75] Value too large for defined data type)"),
    "datadog events a list for the response object": (
        "datadog events", "list_events", _with("/api/v2/events/search", b"[1, 2, 3, 4]"),
        "Datadog returned a body that does not match its API from POST /api/v2/events/search (TypeError: "
        "EventsListResponse.__init__() takes from 1 to 4 positional arguments but 5 were given)"),
    "datadog events a number for an event": (
        "datadog events", "list_events", _with("/api/v2/events/search", b'{"data": [7.5]}'),
        "Datadog returned a body that does not match its API from POST /api/v2/events/search (TypeError: "
        "datadog_api_client.model_utils.UnparsedObject() argument after ** must be a mapping, not float)"),
    "datadog logs nested past the recursion limit": (
        "datadog logs", "search", _with("/api/v2/logs/events/search", b'{"data": ' + DEEP + b"}"),
        "Datadog returned a body that does not match its API from POST /api/v2/logs/events/search "
        "(RecursionError: maximum recursion depth exceeded while decoding a JSON array from a unicode string)"),
    "datadog metric point past the platform's range": (
        "datadog metrics", "query", _with("/api/v1/query", b'{"status": "ok", "series": [{"metric": "m", '
                                          b'"pointlist": [[1e21, 1.0]]}]}'),
        "Datadog returned a body that does not match its API from GET /api/v1/query (OSError: [Errno 75] Value "
        "too large for defined data type)"),
    "kubernetes a charset that does not exist": (
        "kubernetes", "list_namespaces", _with("/api/v1/namespaces", RECORDED["/api/v1/namespaces"][2],
                                               "application/json; charset=no-such-codec"),
        "the Kubernetes API returned JSON that is not namespaces as its API returns them (LookupError: unknown "
        "encoding: no-such-codec)"),
}


@pytest.mark.parametrize("name", list(FOUND))
def test_what_the_fuzzing_found(server: Server, name: str) -> None:
    kind, read_name, answers_, message = FOUND[name]
    server.answers = answers_
    backends = live(server.url, RabbitMQManagement(settings(server.url)))
    with pytest.raises(SourceError) as caught:
        READS[kind][read_name](backends)
    backends.close()
    backends.broker.http.close()
    assert (caught.value.kind, caught.value.message) == ("bad_response", message)
