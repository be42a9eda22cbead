"""Scenarios built on the newer world features (hung consumers, partial hangs, KEDA and HPA owners, long look-back
across namespaces, active broker alarms, unready rollouts, several consumers of one queue, hung synchronous
dependencies), each adapted from a published catalogue or document.

For each one: through the agent's tools, the signals that make its expected verdict right; for each incident, that
the expected remediation recovers the simulated world within 15 minutes and that a listed wrong one does not.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from evals.expectations import load_scenario
from tests.test_published_scenarios import cites_its_source_and_stands_alone
from tests.test_scenario_suite import SUITE, _apply, call, deployment, logs
from tools.replay import replay_sources
from tools.replay.world import World
from tools.toolkit import Sources

FEATURES = [
    "claims-ocr-worker-hung", "tile-renderer-one-pod-hung", "keda-report-builder-idle",
    "hpa-statefulset-scaled-to-zero", "cross-ns-reconciler-zero-5h", "broker-memory-alarm-active",
    "dependency-rollout-unready", "primary-consumer-zero-secondary-slow", "dependency-hung-timeouts",
]
FIX_WINDOW = timedelta(minutes=15)


def stats(sources: Sources, name: str) -> dict[str, Any]:
    return call(sources, "get_queue_stats", queue=name)


def metric_trend(sources: Sources, query: str, start: str = "now-1h") -> dict[str, Any]:
    result = call(sources, "get_metric", query=query, start=start)
    assert len(result["series"]) == 1, result["summary"]
    trend: dict[str, Any] = result["series"][0]["trend"]
    return trend


def acted(scenario_id: str, action: str, namespace: str, name: str, replicas: int | None = None,
          after: timedelta = FIX_WINDOW) -> Sources:
    """Replay the scenario, apply one action at `now` and let the world run on for `after`."""
    sources = replay_sources(scenario_id)
    world: World = sources.extras["world"]
    _apply(world, action, namespace, name, replicas)
    world.advance_to(world.now + after)
    return sources


def forbidden(scenario_id: str, action: str, namespace: str, name: str, replicas: int | None) -> None:
    expect = load_scenario(scenario_id).expect
    assert expect is not None
    assert expect.forbidding_rule(action, name, replicas, namespace), (scenario_id, action, name, replicas)


def no_errors(sources: Sources, start: str = "now-1h", scope: str = "") -> None:
    found = logs(sources, f"{scope} status:error".strip(), start=start)
    assert found["total"] == 0, found["summary"]


def drained(row: dict[str, Any]) -> None:
    assert row["consumers"] >= 1 and row["unacked"] == 0, row["summary"]
    assert row["messages"] <= 3 and row["depth_samples"][-1] <= 3, row["summary"]


def growing(row: dict[str, Any]) -> None:
    assert row["messages"] >= 50 and row["depth_trend"]["direction"] == "rising", row["summary"]


# ---- the set as a whole ---------------------------------------------------------------------------------


def test_every_feature_scenario_is_in_the_suite_cites_its_source_and_stands_alone() -> None:
    assert len(FEATURES) == len(set(FEATURES)) == 9
    assert set(FEATURES) <= SUITE
    cites_its_source_and_stands_alone(FEATURES)


def test_feature_worlds_avoid_sock_shop_names_and_each_other() -> None:
    seen: set[tuple[str, str]] = set()
    for scenario_id in FEATURES:
        world: World = replay_sources(scenario_id).extras["world"]
        names = [*(ns for ns, _ in world.deployments), *(n for _, n in world.deployments),
                 *(n for _, n in world.queues)]
        for word in ("sock", "queue-master", "shipping", "orders", "carts", "front-end"):
            assert not any(word in name for name in names), (scenario_id, word)
        workloads = set(world.deployments)
        assert not workloads & seen, f"{scenario_id} reuses {workloads & seen}"
        seen |= workloads


@pytest.mark.parametrize("scenario_id", FEATURES)
def test_questions_never_name_the_culprit(scenario_id: str) -> None:
    scenario = load_scenario(scenario_id)
    question = scenario.question.lower()
    for _, name in replay_sources(scenario).extras["world"].deployments:
        if scenario.expect and scenario.expect.component and name == scenario.expect.component.name:
            assert name not in question


# ---- 1. a hung consumer -----------------------------------------------------------------------------------


def test_claims_ocr_worker_hung() -> None:
    sources = replay_sources("claims-ocr-worker-hung")
    row = stats(sources, "claim-documents")
    assert (row["consumers"], row["unacked"], row["ack_rate"], row["deliver_rate"]) == (2, 30, 0.0, 0.0)
    assert row["consumer_utilisation"] == 0.0
    assert row["ready"] > 200 and row["depth_trend"]["direction"] == "rising"
    assert "NO CONSUMER" not in row["summary"]
    assert [(c["namespace"], c["name"], c["consumers"]) for c in row["consumed_by"]] == [("claims", "ocr-worker", 2)]
    worker = deployment(sources, "ocr-worker", "claims")
    assert (worker["desired"], worker["available"]) == (2, 2)
    assert all(p["ready"] and p["restarts"] == 0 and p["phase"] == "Running" for p in worker["pods"])
    assert worker["annotations"]["deployment.kubernetes.io/revision"] == "1", "nothing to roll back to"
    silent = logs(sources, "kube_namespace:claims service:ocr-worker")
    assert silent["total"] == 0 and silent["previous_window"]["total"] > 0
    assert silent["last_line_at"] < "2026-07-02T11:09:00Z"
    assert logs(sources, 'kube_namespace:claims service:claims-intake "documents 202"')["total"] > 100
    assert call(sources, "list_events", namespace="claims")["total"] == 0, "no Kubernetes signal at all"
    unacked = metric_trend(sources, "max:rabbitmq.queue.messages_unacknowledged{rabbitmq_queue:claim-documents}")
    assert (unacked["first"], unacked["last"]) == (0, 30)
    no_errors(sources)


def test_claims_ocr_worker_hung_restart_recovers() -> None:
    sources = acted("claims-ocr-worker-hung", "rollout_restart", "claims", "ocr-worker")
    row = stats(sources, "claim-documents")
    drained(row)
    assert row["consumer_utilisation"] == 1.0 and row["ack_rate"] > 0
    assert row["depth_trend"]["first"] > 100, "the backlog of the last 15 minutes was worked off"
    done = logs(sources, 'kube_namespace:claims service:ocr-worker "OCR complete"', start="now-15m")
    assert done["total"] > 280, "the held and queued documents were processed"
    no_errors(sources, start="now-3m")


@pytest.mark.parametrize("replicas", [3, 4])
def test_claims_ocr_worker_hung_scale_up_keeps_the_held_documents(replicas: int) -> None:
    forbidden("claims-ocr-worker-hung", "scale", "claims", "ocr-worker", replicas)
    sources = acted("claims-ocr-worker-hung", "scale", "claims", "ocr-worker", replicas)
    row = stats(sources, "claim-documents")
    assert row["unacked"] == 30, "the hung pods still hold their prefetch: those documents never finish"
    assert row["consumer_utilisation"] == round((replicas - 2) / replicas, 3)


# ---- 2. one of three consumer pods hung ---------------------------------------------------------------------


def test_tile_renderer_one_pod_hung() -> None:
    sources = replay_sources("tile-renderer-one-pod-hung")
    row = stats(sources, "tile-render")
    assert (row["consumers"], row["unacked"], row["consumer_utilisation"]) == (3, 20, 0.667)
    assert abs(row["ack_rate"] - 2 * 22 / 60) < 0.05, "the queue moves at two consumers' pace, not three"
    assert row["depth_trend"]["direction"] == "rising" and row["messages"] > 100
    unacked = metric_trend(sources, "max:rabbitmq.queue.messages_unacknowledged{rabbitmq_queue:tile-render}")
    assert (unacked["max"], unacked["last"]) == (20, 20) and unacked["last_change"] < "2026-07-08T15:48:00Z", \
        "one consumer's prefetch has been stuck since the hang"
    renderer = deployment(sources, "tile-renderer", "maps-render")
    assert (renderer["desired"], renderer["available"]) == (3, 3)
    assert all(p["ready"] and p["restarts"] == 0 for p in renderer["pods"])
    per_pod = sorted(logs(sources, f"pod_name:{p['name']}")["total"] for p in renderer["pods"])
    assert per_pod[0] == 0 and per_pod[1] > 100, "one pod is silent, two keep rendering"
    rendered = logs(sources, 'service:tile-renderer "rendered tile"', start="now-25m")["total"]
    requested = logs(sources, 'service:tile-api "POST /v1/rerender 202"', start="now-25m")["total"]
    assert 0.8 * requested < rendered < requested - 50, "still rendering, but falling behind"
    no_errors(sources)


def test_tile_renderer_one_pod_hung_restart_recovers() -> None:
    sources = acted("tile-renderer-one-pod-hung", "rollout_restart", "maps-render", "tile-renderer")
    row = stats(sources, "tile-render")
    drained(row)
    assert (row["consumers"], row["consumer_utilisation"]) == (3, 1.0)
    no_errors(sources, start="now-3m")


def test_tile_renderer_one_pod_hung_scale_up_hides_the_depth_but_not_the_stuck_tiles() -> None:
    forbidden("tile-renderer-one-pod-hung", "scale", "maps-render", "tile-renderer", 4)
    sources = acted("tile-renderer-one-pod-hung", "scale", "maps-render", "tile-renderer", 4)
    row = stats(sources, "tile-render")
    assert row["ready"] <= 3, "three working pods keep up"
    assert row["unacked"] == 20 and row["consumer_utilisation"] == 0.75, "the 20 held tiles never come back"


# ---- 3. a KEDA batch consumer at rest ------------------------------------------------------------------------


def test_keda_report_builder_idle() -> None:
    sources = replay_sources("keda-report-builder-idle")
    builder = deployment(sources, "report-builder", "analytics")
    assert (builder["kind"], builder["desired"], builder["available"]) == ("StatefulSet", 0, 0)
    assert builder["autoscaler"]["kind"] == "ScaledObject"
    assert (builder["autoscaler"]["min_replicas"], builder["autoscaler"]["max_replicas"]) == (0, 4)
    assert "report-requests" in builder["autoscaler"]["trigger"]
    history = call(sources, "list_events", namespace="analytics", since="now-1h", involved_object="report-builder")
    assert history["by_reason"]["KEDAScaleTargetActivated"] == 3
    assert history["by_reason"]["KEDAScaleTargetDeactivated"] == 3
    assert not any(e["type"] == "Warning" for e in history["events"])
    assert history["events"][-1]["reason"] in ("KEDAScaleTargetDeactivated", "Killing", "SuccessfulDelete")
    row = stats(sources, "report-requests")
    assert (row["messages"], row["consumers"], row["publish_rate"]) == (0, 0, 0.0)
    assert row["depth_samples"][-1] == 0 and "NO CONSUMER" not in row["summary"]
    assert call(sources, "get_queue_stats")["attention"] == []
    replicas = metric_trend(sources,
                            "max:kubernetes_state.statefulset.replicas_desired{kube_stateful_set:report-builder}")
    assert (replicas["first"], replicas["last"]) == (0, 0) and replicas["max"] >= 2
    scheduled = logs(sources, 'kube_namespace:analytics "scheduled report job"', start="now-1h")
    rendered = logs(sources, 'kube_namespace:analytics service:report-builder "report rendered"', start="now-1h")
    assert scheduled["total"] == rendered["total"] > 200, "every job of every batch was rendered"
    no_errors(sources)


def test_keda_report_builder_idle_a_manual_scale_is_undone_by_keda() -> None:
    forbidden("keda-report-builder-idle", "scale", "analytics", "report-builder", 2)
    sources = acted("keda-report-builder-idle", "scale", "analytics", "report-builder", 2, after=timedelta(minutes=6))
    builder = deployment(sources, "report-builder", "analytics")
    assert builder["desired"] == 0, "the ScaledObject deactivates it again after the cooldown"
    recent = call(sources, "list_events", namespace="analytics", since="now-6m", involved_object="report-builder")
    assert recent["by_reason"]["KEDAScaleTargetDeactivated"] == 1


# ---- 4. an HPA-owned StatefulSet scaled to 0 by hand ----------------------------------------------------------


def test_hpa_statefulset_scaled_to_zero() -> None:
    sources = replay_sources("hpa-statefulset-scaled-to-zero")
    writer = deployment(sources, "index-writer", "search-index")
    assert (writer["kind"], writer["desired"], writer["available"], writer["pods"]) == ("StatefulSet", 0, 0, [])
    scaler = writer["autoscaler"]
    assert (scaler["kind"], scaler["min_replicas"], scaler["max_replicas"], scaler["current_replicas"]) == (
        "HorizontalPodAutoscaler", 2, 6, 0), "below the HPA's minimum: the HPA did not do this"
    events = call(sources, "list_events", namespace="search-index", involved_object="index-writer")
    deleted = sorted(e["message"] for e in events["events"] if e["reason"] == "SuccessfulDelete")
    assert deleted == [f"delete Pod index-writer-{i} in StatefulSet index-writer successful" for i in range(3)]
    assert "ScalingReplicaSet" not in events["by_reason"], "a StatefulSet has no ReplicaSets"
    row = stats(sources, "doc-index-batches")
    assert row["consumers"] == 0 and "NO CONSUMER" in row["summary"]
    growing(row)
    assert logs(sources, "kube_namespace:search-index service:index-writer")["total"] == 0
    assert logs(sources, 'service:catalog-feeder "published document batch"')["total"] > 200
    no_errors(sources)


@pytest.mark.parametrize("replicas", [2, 3])
def test_hpa_statefulset_scaled_to_zero_scaling_back_recovers(replicas: int) -> None:
    sources = acted("hpa-statefulset-scaled-to-zero", "scale", "search-index", "index-writer", replicas)
    writer = deployment(sources, "index-writer", "search-index")
    assert (writer["desired"], writer["available"]) == (replicas, replicas)
    assert [p["name"] for p in writer["pods"]] == [f"index-writer-{i}" for i in range(replicas)]
    drained(stats(sources, "doc-index-batches"))
    no_errors(sources, start="now-3m")


def test_hpa_statefulset_scaled_to_zero_restart_creates_no_pods() -> None:
    forbidden("hpa-statefulset-scaled-to-zero", "rollout_restart", "search-index", "index-writer", None)
    sources = acted("hpa-statefulset-scaled-to-zero", "rollout_restart", "search-index", "index-writer")
    assert deployment(sources, "index-writer", "search-index")["desired"] == 0
    growing(stats(sources, "doc-index-batches"))


# ---- 5. a cross-namespace consumer scaled to 0 five hours ago -------------------------------------------------


def test_cross_ns_reconciler_zero_5h() -> None:
    sources = replay_sources("cross-ns-reconciler-zero-5h")
    row = stats(sources, "stock-movements")
    assert row["vhost"] == "inventory" and row["consumers"] == 0 and row["messages"] > 2000
    assert row["depth_trend"]["direction"] == "rising" and "NO CONSUMER" in row["summary"]
    reconciler = deployment(sources, "stock-reconciler", "warehouse-sync")
    assert (reconciler["desired"], reconciler["pods"], reconciler["events"]) == (0, [], [])
    assert call(sources, "list_events", namespace="warehouse-sync")["total"] == 0, "gone from the Kubernetes API"
    history = call(sources, "list_events", namespace="warehouse-sync", since="now-6h")
    [scaled] = [e for e in history["events"] if e["reason"] == "ScalingReplicaSet"]
    assert scaled["last_seen"] == "2026-07-23T07:10:00Z" and scaled["message"].endswith("to 0 from 3")
    desired = metric_trend(sources, "max:kubernetes_state.deployment.replicas_desired"
                                    "{kube_deployment:stock-reconciler}", start="now-6h")
    assert (desired["first"], desired["last"]) == (3, 0) and desired["last_change"] < "2026-07-23T07:11:00Z"
    depth = metric_trend(sources, "max:rabbitmq.queue.messages{rabbitmq_queue:stock-movements}", start="now-6h")
    assert depth["first"] == 0 and depth["last"] > 2000
    assert logs(sources, "kube_namespace:warehouse-sync", start="now-4h")["total"] == 0
    assert logs(sources, 'kube_namespace:web service:storefront-api "checkout 201"')["total"] > 50
    for namespace in ("web", "messaging"):
        assert call(sources, "get_deployment", namespace=namespace)["attention"] == []
    no_errors(sources, start="now-6h")


def test_cross_ns_reconciler_zero_5h_scaling_back_recovers() -> None:
    sources = acted("cross-ns-reconciler-zero-5h", "scale", "warehouse-sync", "stock-reconciler", 3)
    drained(stats(sources, "stock-movements"))
    done = logs(sources, 'kube_namespace:warehouse-sync "reconciled stock movement"', start="now-15m")
    assert done["total"] > 2500, "five hours of stock movements were reconciled"


def test_cross_ns_reconciler_zero_5h_restart_creates_no_pods() -> None:
    forbidden("cross-ns-reconciler-zero-5h", "rollout_restart", "warehouse-sync", "stock-reconciler", None)
    sources = acted("cross-ns-reconciler-zero-5h", "rollout_restart", "warehouse-sync", "stock-reconciler")
    growing(stats(sources, "stock-movements"))
    assert stats(sources, "stock-movements")["consumers"] == 0


# ---- 6. a broker memory alarm set now ------------------------------------------------------------------------


def test_broker_memory_alarm_active() -> None:
    sources = replay_sources("broker-memory-alarm-active")
    table = call(sources, "get_queue_stats")
    assert table["alarms"] == ["memory"] and "publishers are blocked" in table["summary"]
    for queue, notifier in (("payout-events", "payout-notifier"), ("refund-events", "refund-notifier")):
        row = stats(sources, queue)
        assert (row["messages"], row["consumers"], row["publish_rate"], row["deliver_rate"]) == (0, 1, 0.0, 0.0)
        assert row["depth_trend"]["max"] == 0, "not growing: nothing gets in"
        idle = logs(sources, f"kube_namespace:merchant-events service:{notifier}")
        assert idle["total"] == 0 and idle["last_line_at"] < "2026-07-27T19:19:00Z"
        assert deployment(sources, notifier, "merchant-events")["available"] == 1
    blocked = logs(sources, '"connection.blocked"', start="now-20m")
    assert blocked["total"] > 300 and set(blocked["by_service"]) == {"payout-api", "refund-api"}
    assert blocked["by_status"] == {"warn": blocked["total"]}
    assert logs(sources, '"connection.blocked"', start="now-1h", end="2026-07-27T19:19:00Z")["total"] == 0
    assert logs(sources, '"POST /v1/payouts 202"', start="now-15m")["total"] > 100, "requests still accepted"
    alarm = logs(sources, 'service:events-rabbit "memory resource limit alarm set"', start="now-1h")
    assert alarm["total"] == 1 and not logs(sources, '"alarm cleared"', start="now-1h")["total"]
    memory = metric_trend(sources, "max:kubernetes.memory.usage{kube_deployment:events-rabbit}")
    assert memory["first"] < 1.0e9 and memory["last"] > 1.7e9
    broker = deployment(sources, "events-rabbit", "rabbitmq-system")
    assert (broker["kind"], broker["desired"], broker["available"]) == ("StatefulSet", 1, 1)
    no_errors(sources)


@pytest.mark.parametrize(("action", "namespace", "name", "replicas"), [
    ("rollout_restart", "rabbitmq-system", "events-rabbit", None),
    ("scale", "rabbitmq-system", "events-rabbit", 3),
    ("scale", "merchant-events", "payout-notifier", 3),
    ("rollout_restart", "merchant-events", "payout-api", None),
])
def test_broker_memory_alarm_active_no_available_action_unblocks_publishers(
        action: str, namespace: str, name: str, replicas: int | None) -> None:
    expect = load_scenario("broker-memory-alarm-active").expect
    assert expect and expect.remediation and expect.remediation.action == "none"
    forbidden("broker-memory-alarm-active", action, namespace, name, replicas)
    sources = acted("broker-memory-alarm-active", action, namespace, name, replicas)
    assert call(sources, "get_queue_stats")["alarms"] == ["memory"]
    assert logs(sources, '"connection.blocked"', start="now-3m")["total"] > 20
    assert stats(sources, "payout-events")["publish_rate"] == 0.0


# ---- 7. a synchronous dependency rolled out to unready pods --------------------------------------------------


def test_dependency_rollout_unready() -> None:
    sources = replay_sources("dependency-rollout-unready")
    pricer = deployment(sources, "surge-pricer", "rides")
    assert (pricer["desired"], pricer["available"]) == (2, 0)
    assert [(p["phase"], p["ready"], p.get("waiting_reason")) for p in pricer["pods"]] == [("Running", False, None)] * 2
    assert pricer["images"] == ["registry.trippa.com.br/rides/surge-pricer:4.0.0"]
    assert pricer["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert "/ready" in pricer["annotations"]["kubernetes.io/change-cause"]
    assert pricer["last_scaled"]["at"] == "2026-08-01T07:04:00Z"
    events = call(sources, "list_events", namespace="rides", involved_object="surge-pricer")
    assert events["by_reason"]["Unhealthy"] == 2
    assert "Readiness probe failed: HTTP probe failed with statuscode: 404" in {e["message"] for e in events["events"]}
    errors = logs(sources, "kube_namespace:rides status:error")
    assert errors["total"] > 300 and set(errors["by_service"]) == {"dispatch-api"}
    assert "503" in errors["samples"][0]["message"] and "no healthy upstream" in errors["samples"][0]["message"]
    assert logs(sources, '"POST /v2/quotes 200"')["total"] == 0
    assert logs(sources, '"POST /v2/quotes 200"', start="now-1h", end="2026-08-01T07:04:00Z")["total"] > 500
    assert logs(sources, "kube_namespace:rides service:surge-pricer")["total"] == 0
    apm = metric_trend(sources, "sum:trace.http.request.errors{service:dispatch-api}", start="now-15m")
    assert apm["min"] > 0, "every interval has failed quotes"
    dispatch = deployment(sources, "dispatch-api", "rides")
    assert (dispatch["available"], dispatch["annotations"]["deployment.kubernetes.io/revision"]) == (3, "1")
    assert stats(sources, "quote-issued")["publish_rate"] == 0.0


def test_dependency_rollout_unready_rollback_recovers() -> None:
    sources = acted("dependency-rollout-unready", "rollback", "rides", "surge-pricer")
    pricer = deployment(sources, "surge-pricer", "rides")
    assert (pricer["available"], pricer["images"]) == (2, ["registry.trippa.com.br/rides/surge-pricer:3.9.4"])
    no_errors(sources, start="now-10m")
    assert logs(sources, '"POST /v2/quotes 200"', start="now-10m")["total"] > 200
    assert logs(sources, '"recorded quote"', start="now-10m")["total"] > 200


@pytest.mark.parametrize(("action", "name", "replicas"), [
    ("rollout_restart", "dispatch-api", None),
    ("scale", "dispatch-api", 6),
    ("rollout_restart", "surge-pricer", None),
    ("scale", "surge-pricer", 4),
])
def test_dependency_rollout_unready_wrong_fix_keeps_the_503s(action: str, name: str, replicas: int | None) -> None:
    forbidden("dependency-rollout-unready", action, "rides", name, replicas)
    sources = acted("dependency-rollout-unready", action, "rides", name, replicas)
    assert logs(sources, "status:error", start="now-3m")["total"] > 50
    assert logs(sources, '"POST /v2/quotes 200"', start="now-3m")["total"] == 0


# ---- 8. two consumer workloads, the primary at 0 -------------------------------------------------------------


def test_primary_consumer_zero_secondary_slow() -> None:
    sources = replay_sources("primary-consumer-zero-secondary-slow")
    row = stats(sources, "transcode-jobs")
    assert row["consumers"] == 1 and "NO CONSUMER" not in row["summary"]
    assert [(c["namespace"], c["name"]) for c in row["consumed_by"]] == [("media-batch", "transcoder-spot")]
    growing(row)
    assert row["publish_rate"] > 2 * row["deliver_rate"] > 0
    primary = deployment(sources, "transcoder", "media")
    assert primary["desired"] == 0 and primary["last_scaled"]["message"].endswith("to 0 from 3")
    assert primary["last_scaled"]["at"] == "2026-08-04T21:46:00Z"
    assert logs(sources, "kube_namespace:media service:transcoder")["total"] == 0
    helper = deployment(sources, "transcoder-spot", "media-batch")
    assert (helper["desired"], helper["available"]) == (1, 1)
    busy = logs(sources, "kube_namespace:media-batch service:transcoder-spot")
    assert busy["total"] > 150 and not busy["gaps"], "the helper works at its normal rate"
    consumers = metric_trend(sources, "max:rabbitmq.queue.consumers{rabbitmq_queue:transcode-jobs}")
    assert (consumers["first"], consumers["last"]) == (4, 1)
    no_errors(sources)


def test_primary_consumer_zero_secondary_slow_scaling_the_primary_back_recovers() -> None:
    sources = acted("primary-consumer-zero-secondary-slow", "scale", "media", "transcoder", 3)
    row = stats(sources, "transcode-jobs")
    drained(row)
    assert {(c["namespace"], c["name"]) for c in row["consumed_by"]} == {("media", "transcoder"),
                                                                       ("media-batch", "transcoder-spot")}
    no_errors(sources, start="now-3m")


@pytest.mark.parametrize(("action", "replicas"), [("rollout_restart", None), ("scale", 2)])
def test_primary_consumer_zero_secondary_slow_touching_the_helper_does_not(action: str, replicas: int | None) -> None:
    forbidden("primary-consumer-zero-secondary-slow", action, "media-batch", "transcoder-spot", replicas)
    sources = acted("primary-consumer-zero-secondary-slow", action, "media-batch", "transcoder-spot", replicas)
    growing(stats(sources, "transcode-jobs"))


# ---- 9. a hung synchronous dependency -----------------------------------------------------------------------


def test_dependency_hung_timeouts() -> None:
    sources = replay_sources("dependency-hung-timeouts")
    lock = deployment(sources, "seat-lock", "ticketing")
    assert (lock["desired"], lock["available"], lock["events"]) == (2, 2, [])
    assert all(p["ready"] and p["restarts"] == 0 for p in lock["pods"])
    assert lock["annotations"]["deployment.kubernetes.io/revision"] == "1", "no rollout, nothing to roll back"
    silent = logs(sources, "kube_namespace:ticketing service:seat-lock")
    assert silent["total"] == 0 and silent["last_line_at"] < "2026-08-12T19:44:00Z"
    errors = logs(sources, "kube_namespace:ticketing status:error")
    assert errors["total"] > 250 and set(errors["by_service"]) == {"seat-api"}
    assert "context deadline exceeded" in errors["samples"][0]["message"]
    assert logs(sources, '"PUT /v1/holds 200"')["total"] == 0
    assert logs(sources, '"PUT /v1/holds 200"', start="now-1h", end="2026-08-12T19:44:00Z")["total"] > 500
    assert logs(sources, '"seatmap 200"')["total"] > 500, "browsing, which needs no lock, is fine"
    before = metric_trend(sources, "avg:trace.http.request.duration{service:seat-api}", start="now-1h")
    assert before["first"] < 0.1
    during = metric_trend(sources, "avg:trace.http.request.duration{service:seat-api}", start="now-15m")
    assert during["min"] > 2.0, "the caller's requests now wait out their deadline"
    lock_hits = metric_trend(sources, "sum:trace.http.request.hits{service:seat-lock}", start="now-15m")
    assert lock_hits["max"] == 0, "the dependency answers nothing"
    assert stats(sources, "hold-expiry")["publish_rate"] == 0.0
    assert call(sources, "get_queue_stats")["attention"] == []


def test_dependency_hung_timeouts_restart_recovers() -> None:
    sources = acted("dependency-hung-timeouts", "rollout_restart", "ticketing", "seat-lock")
    no_errors(sources, start="now-10m")
    assert logs(sources, '"PUT /v1/holds 200"', start="now-10m")["total"] > 100
    assert logs(sources, "kube_namespace:ticketing service:seat-lock", start="now-10m")["total"] > 100
    latency = metric_trend(sources, "avg:trace.http.request.duration{service:seat-api}", start="now-10m")
    assert latency["max"] < 0.1


@pytest.mark.parametrize(("action", "replicas"), [("rollout_restart", None), ("scale", 6)])
def test_dependency_hung_timeouts_acting_on_the_callers_keeps_the_timeouts(action: str, replicas: int | None) -> None:
    forbidden("dependency-hung-timeouts", action, "ticketing", "seat-api", replicas)
    sources = acted("dependency-hung-timeouts", action, "ticketing", "seat-api", replicas)
    errors = logs(sources, "status:error", start="now-3m")
    assert errors["total"] > 30 and "context deadline exceeded" in errors["samples"][0]["message"]
