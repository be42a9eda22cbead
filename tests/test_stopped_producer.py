"""A queue that went quiet when the workload upstream of it went to 0: the work stops at its source. The finding
is defined once (`agent.producers.stopped_producer`); the baseline drafts it and guided mode offers it."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from agent.findings import addressed_workloads
from agent.guided.verdicts import consistent_options, observed_symptoms
from agent.producers import quiet_since, rolled_out_at, stopped_producer, went_to_zero_at
from agent.signals import Observation, signals_for
from tools.registry import default_toolbox
from tools.replay import replay_sources

TOOLBOX = default_toolbox()
QUIET = {"queue": "q", "consumers": 2, "messages": 0, "publish_rate": 0.0, "idle_since": "2026-01-01T10:00:00Z",
         "consumed_by": [{"kind": "Deployment", "namespace": "ns", "name": "mailer", "consumers": 2}]}


def at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-01-01T{hhmm}:00+00:00").astimezone(UTC)


def test_a_queue_is_quiet_only_with_consumers_waiting_and_nothing_arriving() -> None:
    assert quiet_since(QUIET) == at("10:00")
    assert quiet_since({**QUIET, "messages": 4}) is None
    assert quiet_since({**QUIET, "publish_rate": 0.2}) is None
    assert quiet_since({**QUIET, "consumers": 0}) is None
    assert quiet_since({**QUIET, "idle_since": None}) is None


def test_the_workload_that_went_to_zero_as_the_queue_went_quiet_is_its_producer() -> None:
    assert stopped_producer(QUIET, {("ns", "composer"): at("10:02"), ("ns", "other"): at("09:00")}) == (
        "ns", "composer")
    assert stopped_producer(QUIET, {("ns", "composer"): at("10:05")}) is None, "minutes apart: unrelated"
    assert stopped_producer(QUIET, {("ns", "mailer"): at("10:00")}) is None, "its own consumer is no producer"


def test_when_a_workload_went_to_zero_comes_from_its_scaling_else_its_replica_history() -> None:
    scaled = {"desired": 0, "last_scaled": {"at": "2026-01-01T09:52:00Z", "message": "Scaled down … to 0 from 3"}}
    assert went_to_zero_at(scaled, None) == at("09:52")
    history = {"series": [{"trend": {"last": 0, "max": 3, "last_change": "2026-01-01T04:10:00Z"}}]}
    assert went_to_zero_at({"desired": 0, "last_scaled": None}, history) == at("04:10")
    assert went_to_zero_at({"desired": 2, "last_scaled": None}, history) is None


def observe(sources: Any, calls: list[tuple[str, dict[str, Any]]]) -> list[Observation]:
    found = []
    for index, (tool, args) in enumerate(calls, 1):
        data = TOOLBOX.call(sources, tool, args).data()
        found.append(Observation(call_id=f"c{index}", tool=tool, args=args, ok=True, data=data,
                                 signals=signals_for(tool, args, True, data)))
    return found


def test_guided_mode_offers_the_producer_as_the_dependency_to_bring_back() -> None:
    sources = replay_sources("producer-scaled-to-zero")
    seen = observe(sources, [
        ("get_deployment", {"namespace": "billing-run"}),
        ("get_deployment", {"namespace": "billing-run", "name": "statement-composer"}),
        ("get_queue_stats", {"queue": "billing.statements.render-done"}),
    ])
    symptoms = observed_symptoms(seen)
    assert "stopped_producer:billing-run/statement-composer" in symptoms
    assert consistent_options(seen[1].data, symptoms) == (["dependency_unavailable"], ["scale", "none"])
    paused = {**seen[1].data, "annotations": {"ops.example.com/maintenance": "paused until 12:00 for the migration"}}
    assert "stopped_producer:billing-run/statement-composer" not in observed_symptoms(
        [*seen[:1], Observation(call_id="c2", tool="get_deployment", args=seen[1].args, ok=True, data=paused),
         seen[2]]), "a pause with its reason is intended"


def test_a_rollout_is_a_change_at_the_time_its_new_template_took_over() -> None:
    detail = {"revision": 4, "pods": [{"name": "orchestrator-7c9d-abcde"}], "events": [
        {"reason": "ScalingReplicaSet", "last_seen": "2026-01-01T10:01:00Z",
         "message": "Scaled up replica set orchestrator-7c9d to 3"},
        {"reason": "ScalingReplicaSet", "last_seen": "2026-01-01T10:01:30Z",
         "message": "Scaled down replica set orchestrator-5b8f to 0 from 3"}]}
    assert rolled_out_at(detail) == datetime(2026, 1, 1, 10, 1, 30, tzinfo=UTC)
    assert stopped_producer(QUIET, {("ns", "orchestrator"): rolled_out_at(detail)}) == ("ns", "orchestrator")
    assert rolled_out_at({**detail, "revision": 1}) is None, "a first revision rolled out nothing"


def test_a_service_address_names_the_workload_its_app_label_calls_it() -> None:
    line = {"status": "error", "service": "quote-api",
            "message": "rating call failed: connection failure (rating-engine.pricing.svc.cluster.local:8443)"}
    workloads = [("pricing", "svc-rating"), ("pricing", "svc-home-rater"), ("quotes", "svc-quote-api")]
    aliases = {("pricing", "rating-engine"): "svc-rating", ("quotes", "quote-api"): "svc-quote-api"}
    assert addressed_workloads({"samples": [line]}, "quotes", workloads, aliases=aliases) == [("pricing", "svc-rating")]
    assert addressed_workloads({"samples": [line]}, "quotes", workloads) == [], "without the label nothing matches"


def test_errors_of_a_name_in_one_namespace_are_not_its_namesakes_in_another() -> None:
    errors = {"by_service": {"login": 40}, "by_status": {"error": 40},
              "samples": [{"service": "login", "status": "error", "message": "POST /login 500"}]}
    seen = [Observation(call_id="c1", tool="search_logs", args={"query": "kube_namespace:eu-prod status:error"},
                        ok=True, data=errors)]
    symptoms = observed_symptoms(seen)
    prod = {"namespace": "eu-prod", "name": "login", "desired": 2, "available": 2, "revision": 1}
    staging = {**prod, "namespace": "eu-staging"}
    assert consistent_options(prod, symptoms)[0] == ["app_errors"]
    assert consistent_options(staging, symptoms) == ([], []), "healthy in staging, whatever its name"


def test_the_consumer_at_zero_a_backlog_waits_for_is_offered_though_another_consumer_is_attached() -> None:
    sources = replay_sources("primary-consumer-zero-secondary-slow")
    seen = observe(sources, [
        ("get_deployment", {"namespace": "media"}),
        ("get_deployment", {"namespace": "media", "name": "transcoder"}),
        ("get_queue_stats", {"queue": "transcode-jobs"}),
    ])
    from agent.guided.verdicts import finding_options

    assert finding_options(("media", "transcoder"), seen[1].data, seen) == (["consumer_unavailable"],
                                                                              ["scale", "none"])
    assert consistent_options(seen[1].data, observed_symptoms(seen)) == ([], []), \
        "a backlog its attached consumer holds is not, by itself, a zero workload's"
