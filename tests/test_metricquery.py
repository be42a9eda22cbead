import pytest

from tools.datadog.metricquery import MetricQuery, TagFilter, parse_metric_query
from tools.errors import BadQuery


def test_full_metric_query() -> None:
    query = "sum:rabbitmq.queue.messages{rabbitmq_queue:orders-*,!rabbitmq_vhost:test} by {rabbitmq_queue}"
    parsed = parse_metric_query(query)
    assert parsed == MetricQuery(
        "sum", "rabbitmq.queue.messages",
        (TagFilter("rabbitmq_queue", "orders-*"), TagFilter("rabbitmq_vhost", "test", negated=True)),
        ("rabbitmq_queue",),
    )
    assert parsed.matches({"rabbitmq_queue": "orders-a", "rabbitmq_vhost": "/"})
    assert not parsed.matches({"rabbitmq_queue": "orders-a", "rabbitmq_vhost": "test"})


def test_defaults_and_suffixes() -> None:
    assert parse_metric_query("kubernetes.cpu.usage.total{*}.rollup(avg, 60)") == MetricQuery(
        "avg", "kubernetes.cpu.usage.total")


@pytest.mark.parametrize("query", ["rabbitmq.queue.messages", "median:foo{*}", "avg:foo{bad}", "avg:{x:y}"])
def test_malformed_metric_queries(query: str) -> None:
    with pytest.raises(BadQuery):
        parse_metric_query(query)
