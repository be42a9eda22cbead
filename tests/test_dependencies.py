"""Callers' error lines address a dependency: in their namespace or another, the address telling which."""

from __future__ import annotations

from agent.findings import addressed_workloads, blamed_dependencies


def _lines(*messages: str, service: str = "checkout") -> dict[str, object]:
    return {"samples": [{"service": service, "status": "error", "message": m} for m in messages]}


WORKLOADS = [("shop", "checkout"), ("shop", "pricing"), ("geo", "pricing"), ("tax", "tax-engine")]


def test_the_address_names_the_dependencys_namespace() -> None:
    logs = _lines('POST http://pricing.geo.svc.cluster.local:8080/quote: connection refused')
    assert addressed_workloads(logs, "shop", WORKLOADS) == [("geo", "pricing")]


def test_without_a_namespace_in_the_address_the_callers_own_is_meant() -> None:
    assert addressed_workloads(_lines("dial tcp pricing:8080: i/o timeout"), "shop", WORKLOADS) == [("shop", "pricing")]


def test_a_name_only_another_namespace_holds_is_that_one() -> None:
    logs = _lines("upstream=tax-engine returned 503")
    assert addressed_workloads(logs, "shop", WORKLOADS) == [("tax", "tax-engine")]


def test_an_ambiguous_name_in_neither_namespace_is_not_guessed() -> None:
    logs = _lines("dial tcp pricing:8080: connection refused")
    assert addressed_workloads(logs, "billing", WORKLOADS) == []


def test_a_cluster_address_names_a_service_in_a_namespace_not_yet_listed() -> None:
    logs = _lines(*['Get "http://geocoder.maps.svc.cluster.local:8080/v2": connection refused'] * 3)
    assert addressed_workloads(logs, "shop", WORKLOADS, ["shop", "maps"]) == [("maps", "geocoder")], "once"
    assert addressed_workloads(logs, "shop", WORKLOADS) == []  # no namespace known: nothing guessed


def test_only_error_lines_address_a_dependency() -> None:
    logs = {"samples": [{"service": "checkout", "status": "info",
                         "message": "GET http://pricing.geo.svc:8080/quote 200"}]}
    assert addressed_workloads(logs, "shop", WORKLOADS, ["geo"]) == []


def test_each_caller_is_credited_with_what_it_blames() -> None:
    logs = _lines('GET "http://pricing.geo.svc:8080": connection refused')
    assert blamed_dependencies(logs, "shop", WORKLOADS) == {"checkout": [("geo", "pricing")]}


def test_a_queue_name_in_several_vhosts_is_read_in_each_of_them() -> None:
    from agent.baseline.reading import QueueRef, Reading
    from agent.llm.conversation import Seen

    listing = {"queues": [{"queue": "jobs", "vhost": "/eu", "messages": 4, "consumers": 2},
                          {"queue": "jobs", "vhost": "/us", "messages": 90, "consumers": 0},
                          {"queue": "mail", "vhost": "/eu", "messages": 0, "consumers": 1}]}
    reading = Reading(Seen(results={"c1": ("get_queue_stats", {}, listing)}, order=["c1"]))
    assert reading.interesting_queues() == [QueueRef("/eu", "jobs"), QueueRef("/us", "jobs")]
    assert [reading.queue_args(q) for q in reading.interesting_queues()] == [
        {"queue": "jobs", "vhost": "/eu"}, {"queue": "jobs", "vhost": "/us"}]
    assert reading.queue_args(QueueRef("/eu", "mail")) == {"queue": "mail"}
    assert f"{QueueRef('/us', 'jobs')} is growing" == "jobs is growing"
