from datetime import UTC, datetime

import pytest

from tools.datadog.logquery import parse_log_query
from tools.datadog.protocol import LogRecord
from tools.errors import BadQuery

RECORD = LogRecord(
    timestamp=datetime(2025, 11, 9, 14, 40, tzinfo=UTC), service="shipping", status="warn", host="node-1",
    message="Unable to add to queue (the queue is probably down). Accepting anyway.",
    tags=["kube_namespace:shop", "kube_deployment:shipping", "pod_name:shipping-abc-123"],
    attributes={"http": {"status_code": 201}, "duration": 35},
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", True),
        ("service:shipping", True),
        ("service:orders", False),
        ("-service:orders", True),
        ("NOT service:shipping", False),
        ("kube_namespace:shop service:shipping", True),
        ("kube_namespace:shop AND service:orders", False),
        ("service:orders OR status:warn", True),
        ("service:(orders OR shipping)", True),
        ("service:ship*", True),
        ("kube_deployment:ship*ng", True),
        ("status:error", False),
        ('"accepting anyway"', True),
        ("unable", True),
        ("queue*down", True),
        ("@http.status_code:201", True),
        ("@http.status_code:500", False),
        ("@duration:>30", True),
        ("@duration:<=30", False),
        ("(service:orders OR service:shipping) -status:error", True),
        ("pod_name:shipping-abc-123", True),
        ("host:node-2", False),
    ],
)
def test_log_query_semantics(query: str, expected: bool) -> None:
    assert parse_log_query(query)(RECORD) is expected


@pytest.mark.parametrize("query", ["service:(orders", "(service:x", "service:x)", "service:", "a AND"])
def test_malformed_log_queries_are_bad_query(query: str) -> None:
    with pytest.raises(BadQuery) as info:
        parse_log_query(query)
    assert info.value.hints
