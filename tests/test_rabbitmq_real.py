"""The live RabbitMQ backend against a real broker: a queue with no consumer grows, then a consumer attaches.

Set RECORD_RABBITMQ_CASSETTE=1 to (re)record tests/cassettes/rabbitmq/real_*.yaml from this server.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pika
import pytest
import vcr
from pydantic import SecretStr

from tests import rabbitmq_server
from tests.rabbitmq_server import PASSWORD, USER, RabbitNode
from tools.errors import AuthFailed, NotFound
from tools.rabbitmq.live import RabbitMQManagement
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.settings import Settings
from tools.timerange import system_clock
from tools.toolkit import Sources, Toolbox

rabbit_node = rabbitmq_server.rabbit_node
pytestmark = pytest.mark.rabbitmq

QUEUE = "orders-dispatch"
RECORDED_QUEUE = "invoice-jobs"
CASSETTES = Path(__file__).parent / "cassettes" / "rabbitmq"
RECORDED_BASE = "http://127.0.0.1:15672"


@pytest.fixture(scope="module")
def channel(rabbit_node: RabbitNode) -> Iterator[Any]:
    params = pika.ConnectionParameters(host="127.0.0.1", port=rabbit_node.amqp_port,
                                       credentials=pika.PlainCredentials(USER, PASSWORD))
    connection = pika.BlockingConnection(params)
    try:
        opened = connection.channel()
        opened.queue_declare(queue=QUEUE, durable=False)
        yield opened
    finally:
        connection.close()


@pytest.fixture(scope="module")
def sources(rabbit_node: RabbitNode) -> Sources:
    settings = Settings(rabbitmq_url=rabbit_node.management_url, rabbitmq_user=USER, rabbitmq_password=PASSWORD,
                        timeout_seconds=5, max_wait_seconds=1)
    base = replay_sources("incident-5")
    return Sources(logs=base.logs, metrics=base.metrics, cluster=base.cluster, broker=RabbitMQManagement(settings),
                   clock=system_clock, label="live-broker")


def publish(channel: Any, count: int) -> None:
    for index in range(count):
        channel.basic_publish(exchange="", routing_key=QUEUE, body=f'{{"id": {index}}}'.encode())


def poll(toolbox: Toolbox, sources: Sources, until: Callable[[dict[str, Any]], bool], **args: Any) -> dict[str, Any]:
    deadline = time.monotonic() + 20
    while True:
        outcome = toolbox.call(sources, "get_queue_stats", args)
        assert outcome.ok, outcome.text()
        data = outcome.data()
        if until(data) or time.monotonic() > deadline:
            return data
        time.sleep(0.5)


def test_queue_without_consumer_grows_then_a_consumer_attaches(channel: Any, sources: Sources) -> None:
    toolbox = default_toolbox()
    publish(channel, 5)
    first = poll(toolbox, sources, lambda d: d["messages"] == 5, queue=QUEUE)
    assert (first["messages"], first["ready"], first["consumers"]) == (5, 5, 0)
    assert first["depth_samples"][-1] == 5 and first["depth_trend"]["last"] == 5.0
    assert first["summary"].endswith("NO CONSUMER: messages are accumulating and nothing processes them")

    publish(channel, 7)
    second = poll(toolbox, sources, lambda d: d["messages"] == 12, queue=QUEUE)
    assert second["messages"] > first["messages"] and second["consumers"] == 0

    table = poll(toolbox, sources, lambda d: QUEUE in d["attention"])
    assert table["attention"] == [QUEUE]
    assert table["queues"][0]["queue"] == QUEUE and table["queues"][0]["consumers"] == 0

    channel.basic_qos(prefetch_count=1)
    channel.basic_consume(queue=QUEUE, on_message_callback=lambda *_: None, auto_ack=False)
    attached = poll(toolbox, sources, lambda d: d["consumers"] == 1 and d["unacked"] == 1, queue=QUEUE)
    assert (attached["consumers"], attached["messages"], attached["unacked"]) == (1, 12, 1)
    assert "NO CONSUMER" not in attached["summary"]


def test_missing_queue_is_not_found_with_the_vhost_queues_as_hint(channel: Any, sources: Sources) -> None:
    outcome = default_toolbox().call(sources, "get_queue_stats", {"queue": "orders-dispach"})
    assert not outcome.ok
    assert outcome.data() == {"error": "not_found", "message": "queue 'orders-dispach' not found in vhost '/'",
                              "hints": [f"queues in '/': {QUEUE}"]}


def test_wrong_password_is_auth_failed(rabbit_node: RabbitNode) -> None:
    settings = Settings(rabbitmq_url=rabbit_node.management_url, rabbitmq_user=USER, rabbitmq_password="wrong",
                        max_attempts=1)
    with pytest.raises(AuthFailed) as caught:
        RabbitMQManagement(settings).list_queues()
    assert caught.value.message.startswith("RabbitMQ management API 401")
    assert "RABBITMQ_USER and RABBITMQ_PASSWORD" in caught.value.hints[0]


@pytest.mark.skipif(not os.environ.get("RECORD_RABBITMQ_CASSETTE"), reason="set RECORD_RABBITMQ_CASSETTE=1 to record")
def test_record_cassette(channel: Any, rabbit_node: RabbitNode) -> None:
    port = rabbit_node.management_url.rsplit(":", 1)[1]

    def portable(request: Any) -> Any:
        request.uri = request.uri.replace(f"127.0.0.1:{port}", "127.0.0.1:15672")
        request.headers["host"] = "127.0.0.1:15672"
        return request

    recorder = vcr.VCR(record_mode="all", filter_headers=["authorization"], decode_compressed_response=True,
                       before_record_request=portable)
    settings = Settings(rabbitmq_url=rabbit_node.management_url, rabbitmq_user=USER, rabbitmq_password=PASSWORD)
    broker = RabbitMQManagement(settings)
    channel.queue_declare(queue=RECORDED_QUEUE, durable=True)
    for index in range(3):
        channel.basic_publish(exchange="", routing_key=RECORDED_QUEUE, body=f'{{"invoice": {index}}}'.encode())
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        queue = broker.get_queue("/", RECORDED_QUEUE)
        if queue.messages == 3 and queue.idle_since:
            break
        time.sleep(0.5)
    for old in CASSETTES.glob("real_*.yaml"):
        old.unlink()
    with recorder.use_cassette(str(CASSETTES / "real_queue_no_consumer.yaml")):
        broker.get_queue("/", RECORDED_QUEUE, 900)
        broker.alarms()
        broker.list_queues("/")  # the queue tool asks which queues dead-letter into this one
    with recorder.use_cassette(str(CASSETTES / "real_queue_not_found.yaml")), pytest.raises(NotFound):
        broker.get_queue("/", "invoice-job")
    intruder = RabbitMQManagement(settings.model_copy(update={"rabbitmq_password": SecretStr("wrong")}))
    with recorder.use_cassette(str(CASSETTES / "real_unauthorized.yaml")), pytest.raises(AuthFailed):
        intruder.list_queues("/")


def test_ask_live_with_only_rabbitmq_url_names_what_it_could_not_check(
        channel: Any, sources: Sources, rabbit_node: RabbitNode, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    """`sre-agent ask --live` with nothing but RABBITMQ_URL (credentials in its userinfo), on a real broker holding
    a queue nothing consumes: a verdict, never healthy, that names Datadog and Kubernetes as not checked."""
    import json

    from typer.testing import CliRunner

    from agent.cli import app
    from tests.test_live_partial_sources import SOURCE_VARIABLES

    for variable in SOURCE_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RABBITMQ_URL", rabbit_node.management_url.replace("http://", f"http://{USER}:{PASSWORD}@"))
    publish(channel, 3)
    poll(default_toolbox(), sources, lambda d: d["messages"] >= 3, queue=QUEUE)
    result = CliRunner().invoke(app, ["ask", "is anything stuck?", "--live", "--model", "playbook", "--json"])
    assert result.exit_code == 0, result.output
    verdict = json.loads(result.stdout)
    assert verdict["status"] != "healthy", verdict["summary"]
    assert sorted(line.split(" ")[0] for line in verdict["limitations"]) == ["Datadog", "Kubernetes"]
    assert all("not configured" in line for line in verdict["limitations"])
    assert PASSWORD not in result.output


def test_a_consumer_that_gives_back_every_message_and_the_dead_letter_queue(channel: Any, sources: Sources) -> None:
    """Against the real broker: a queue dead-lettering to another through the default exchange, and a consumer
    that rejects every third message (dead-lettered) and gives the rest back (requeued, forever): redeliveries
    without acks, and dead letters in the other queue."""
    channel.queue_declare(queue="refunds.dlq")
    channel.queue_declare(queue="refunds", arguments={"x-dead-letter-exchange": "",
                                                      "x-dead-letter-routing-key": "refunds.dlq"})
    for index in range(30):
        channel.basic_publish(exchange="", routing_key="refunds", body=f'{{"id": {index}}}'.encode())

    def give_back(chan: Any, method: Any, _properties: Any, body: bytes) -> None:
        if int(body.decode().split(": ")[1].rstrip("}")) % 3 == 0:
            chan.basic_reject(method.delivery_tag, requeue=False)
        else:
            chan.basic_nack(method.delivery_tag, requeue=True)

    channel.basic_qos(prefetch_count=5)
    tag = channel.basic_consume("refunds", give_back)
    toolbox = default_toolbox()
    try:
        deadline = time.monotonic() + 20
        while True:
            channel.connection.process_data_events(time_limit=0.5)
            data = toolbox.call(sources, "get_queue_stats", {"queue": "refunds"}).data()
            if (data.get("redeliver_rate") or 0) > 0 or time.monotonic() > deadline:
                break
    finally:
        channel.basic_cancel(tag)
    assert data["dead_letters_to"] == "queue refunds.dlq"
    assert data["redeliver_rate"] > 0 and not data["ack_rate"]
    assert "dead letters go to queue refunds.dlq" in data["summary"] and "none is acked" in data["summary"]
    dlq = poll(toolbox, sources, lambda d: d["messages"] > 0, queue="refunds.dlq")
    assert dlq["messages"] > 0  # requeued messages go back to the head: which ones are rejected depends on order
    assert dlq["dead_letters_from"] == ["refunds"] and "NO CONSUMER" not in dlq["summary"]
    assert "dead-letter queue of refunds" in dlq["summary"]
    table = toolbox.call(sources, "get_queue_stats", {}).data()
    assert {r["queue"]: r.get("dead_letters_to") for r in table["queues"]}["refunds"] == "queue refunds.dlq"
    assert "refunds.dlq" not in table["attention"]  # a dead-letter queue has no consumer by design
    assert "dead-letter queues (no consumer by design): refunds.dlq" in table["summary"]
