"""Scenarios adapted from published fault catalogues (ITBench, AIOpsLab, SREGym, RabbitMQ and Kubernetes docs).

For each one: through the agent's tools, the signals that make its expected verdict right; for each incident, that
the expected remediation recovers the simulated world within 15 minutes and that a tempting forbidden one does not.
"""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest

from evals.expectations import load_scenario
from tests.test_scenario_suite import SUITE, _apply, call, deployment, logs, metric_values
from tools.replay import replay_sources
from tools.replay.loading import builtin_scenarios_dir
from tools.replay.world import World
from tools.toolkit import Sources

HEALTHY = [
    "batch-exporter-parked", "standby-consumer-at-zero", "backfill-backlog-draining", "cpu-spike-stale-warnings",
    "broker-memory-alarm-cleared", "autoscaler-scaled-down",
]
ELSEWHERE = ["prod-asked-staging-stalled", "other-team-errors", "prod-stalled-staging-decoy",
             "tenant-asked-other-crashing"]
LOUD = ["sync-dependency-at-zero", "rollout-sql-500s", "cache-oomkilled-after-rollout"]
PUBLISHED = HEALTHY + ELSEWHERE + LOUD
FIX_WINDOW = timedelta(minutes=15)


def stats(sources: Sources, name: str, vhost: str | None = None) -> dict[str, Any]:
    args: dict[str, Any] = {"queue": name}
    if vhost is not None:
        args["vhost"] = vhost
    return call(sources, "get_queue_stats", **args)


def drained(row: dict[str, Any], consumers: int | None = None) -> None:
    """Consumed and (nearly) empty over the whole 15-minute history."""
    assert row["consumers"] >= 1 if consumers is None else row["consumers"] == consumers, row["summary"]
    assert row["messages"] <= 3 and row["depth_trend"]["max"] <= 4, row["summary"]


def stalled(row: dict[str, Any]) -> None:
    assert row["consumers"] == 0 and row["messages"] >= 10, row["summary"]
    assert row["depth_trend"]["direction"] == "rising", row["summary"]


def world_of(sources: Sources) -> World:
    world: World = sources.extras["world"]
    return world


def acted(scenario_id: str, action: str, namespace: str, name: str, replicas: int | None = None,
          after: timedelta = FIX_WINDOW) -> Sources:
    """Replay the scenario, apply one action at `now` and let the world run on for `after`."""
    sources = replay_sources(scenario_id)
    world = world_of(sources)
    _apply(world, action, namespace, name, replicas)
    world.advance_to(world.now + after)
    return sources


def no_errors(sources: Sources, start: str = "now-1h", scope: str = "") -> None:
    found = logs(sources, f"{scope} status:error".strip(), start=start)
    assert found["total"] == 0, found["summary"]


# ---- the set as a whole ---------------------------------------------------------------------------------


def cites_its_source_and_stands_alone(scenario_ids: list[str]) -> None:
    """Each file opens with a `# Source(s):` header saying what was adapted, and extends no base world."""
    for scenario_id in scenario_ids:
        text = (builtin_scenarios_dir() / scenario_id / "scenario.yaml").read_text(encoding="utf-8")
        header = list(itertools.takewhile(lambda line: line.startswith("#"), text.splitlines()))
        assert header and header[0].startswith(("# Source:", "# Sources:")), scenario_id
        assert any("Adapted" in line for line in header), f"{scenario_id}: say what was adapted"
        assert "extends" not in text.split("\nid:")[0], f"{scenario_id}: a standalone world"


def test_every_published_scenario_is_in_the_suite_and_cites_its_source() -> None:
    assert len(PUBLISHED) == len(set(PUBLISHED)) == 13
    assert set(PUBLISHED) <= SUITE
    cites_its_source_and_stands_alone(PUBLISHED)


@pytest.mark.parametrize("scenario_id", [*HEALTHY, "prod-asked-staging-stalled", "other-team-errors",
                                         "tenant-asked-other-crashing"])
def test_healthy_answers_forbid_every_mutation(scenario_id: str) -> None:
    expect = load_scenario(scenario_id).expect
    assert expect is not None and expect.status == "healthy"
    assert set(expect.forbidden_actions) >= {"scale", "rollout_restart", "rollback"}
    assert expect.remediation is None or expect.remediation.action == "none"


def test_published_worlds_avoid_sock_shop_names() -> None:
    for scenario_id in PUBLISHED:
        world = world_of(replay_sources(scenario_id))
        names = [*(ns for ns, _ in world.deployments), *(n for _, n in world.deployments),
                 *(n for _, n in world.queues)]
        for word in ("sock", "queue-master", "shipping", "orders", "carts", "front-end"):
            assert not any(word in name for name in names), (scenario_id, word)


# ---- healthy: no action ----------------------------------------------------------------------------------


def test_batch_exporter_parked() -> None:
    sources = replay_sources("batch-exporter-parked")
    parked = deployment(sources, "statement-exporter", "billing")
    assert (parked["desired"], parked["available"], parked["events"]) == (0, 0, [])
    assert parked.get("last_scaled") is None, "parked before the window"
    schedule = parked["annotations"]["batch.northwind.io/schedule"]
    assert "month-end only" in schedule and "2026-02-27" in schedule
    idle = stats(sources, "statement-export")
    assert (idle["messages"], idle["consumers"], idle["publish_rate"]) == (0, 0, 0.0)
    assert idle["depth_trend"]["max"] == 0 and "NO CONSUMER" not in idle["summary"]
    assert call(sources, "get_queue_stats")["attention"] == []
    drained(stats(sources, "invoice-pdf"), consumers=2)
    assert logs(sources, 'kube_namespace:billing service:pdf-renderer "rendered invoice"')["total"] > 20
    no_errors(sources)


def test_standby_consumer_at_zero() -> None:
    sources = replay_sources("standby-consumer-at-zero")
    standby = deployment(sources, "place-indexer-standby", "geo")
    assert (standby["desired"], standby["available"]) == (0, 0)
    # the policy's own event on the Deployment, two seconds after the controller's, is the latest scaling
    assert standby["last_scaled"]["at"] == "2026-03-05T12:58:02Z"
    assert "FINOPS-212" in standby["last_scaled"]["message"]
    assert "FINOPS-212" in standby["annotations"]["kubernetes.io/change-cause"]
    assert "standby" in standby["annotations"]["consumers.maps.example/role"]
    policy = call(sources, "list_events", namespace="geo", involved_object="Deployment/place-indexer-standby")
    assert policy["by_reason"]["ScheduledScaleDown"] == 1
    places = stats(sources, "place-updates")
    drained(places, consumers=1)
    assert [(c["namespace"], c["name"]) for c in places["consumed_by"]] == [("geo", "place-indexer")]
    consumers = metric_values(sources, "max:rabbitmq.queue.consumers{rabbitmq_queue:place-updates}")
    assert consumers[0] == 2.0 and consumers[-1] == 1.0, "the redundancy went, the primary stayed"
    assert logs(sources, 'kube_namespace:geo service:place-indexer "indexed place"')["total"] > 50
    no_errors(sources)


def test_backfill_backlog_draining() -> None:
    sources = replay_sources("backfill-backlog-draining")
    backlog = stats(sources, "sku-enrich")
    assert backlog["consumers"] == 3 and backlog["messages"] > 1000
    trend = backlog["depth_trend"]
    assert trend["direction"] == "falling" and trend["first"] == trend["max"] > backlog["messages"] + 500
    assert all(later <= earlier for earlier, later in itertools.pairwise(backlog["depth_samples"]))
    assert backlog["deliver_rate"] > 3 * backlog["publish_rate"] > 0
    peak = metric_values(sources, "max:rabbitmq.queue.messages{rabbitmq_queue:sku-enrich}")
    assert max(v for v in peak if v is not None) > 2000
    resync = logs(sources, 'kube_namespace:catalog-sync service:feed-ingest "re-sync supplier"', start="now-1h")
    assert resync["total"] > 3000 and resync["last_line_at"] < "2026-04-09T01:56:30Z"
    no_errors(sources)
    world = world_of(sources)
    world.advance_to(world.now + timedelta(minutes=20))
    assert stats(sources, "sku-enrich")["messages"] <= 3, "it drains on its own, no action needed"


def test_cpu_spike_stale_warnings() -> None:
    sources = replay_sources("cpu-spike-stale-warnings")
    cpu = call(sources, "get_metric", start="now-1h",
               query="avg:kubernetes.cpu.usage.total{kube_namespace:adtech} by {kube_deployment}")
    top = cpu["series"][0]
    assert top["tags"] == ["kube_deployment:ad-server"] and top["trend"]["last"] > 5 * top["trend"]["first"]
    assert logs(sources, 'kube_namespace:adtech service:ad-server "served creative"')["total"] > 200
    warnings = logs(sources, "kube_namespace:adtech status:warn", start="now-1h")
    assert warnings["total"] > 30 and set(warnings["by_service"]) == {"campaign-sync"}
    assert warnings["last_line_at"] < "2026-05-12T15:25:30Z", "the burst stopped ~40 minutes ago"
    assert logs(sources, "kube_namespace:adtech status:warn", start="now-30m")["total"] == 0
    no_errors(sources)
    parked = deployment(sources, "legacy-reporter", "adtech")
    assert (parked["desired"], parked["events"], parked.get("last_scaled")) == (0, [], None)
    drained(stats(sources, "impressions"), consumers=1)


def test_broker_memory_alarm_cleared() -> None:
    sources = replay_sources("broker-memory-alarm-cleared")
    readings = stats(sources, "readings")
    drained(readings, consumers=2)
    assert not readings["alarms"] and abs(readings["publish_rate"] - readings["deliver_rate"]) < 0.2
    assert not call(sources, "get_queue_stats")["alarms"]
    set_at = logs(sources, 'service:rabbit-ingest "memory resource limit alarm set"', start="now-1h")
    cleared = logs(sources, 'service:rabbit-ingest "memory resource limit alarm cleared"', start="now-1h")
    assert (set_at["total"], cleared["total"]) == (1, 1)
    blocked = logs(sources, 'kube_namespace:telemetry service:device-gateway "connection.blocked"', start="now-1h")
    assert blocked["total"] > 100 and blocked["by_status"] == {"warn": blocked["total"]}
    assert "2026-06-03T21:11:00Z" < blocked["last_line_at"] < "2026-06-03T21:12:00Z"
    assert logs(sources, "kube_namespace:telemetry status:warn", start="now-30m")["total"] == 0
    assert logs(sources, '"re-published buffered reading batch"', start="now-1h")["total"] > 100
    memory = metric_values(sources, "max:kubernetes.memory.usage{kube_deployment:rabbit-ingest}")
    assert max(v for v in memory if v is not None) > 1.4e9 and memory[-1] is not None and memory[-1] < 8e8
    no_errors(sources)


def test_autoscaler_scaled_down() -> None:
    sources = replay_sources("autoscaler-scaled-down")
    senders = deployment(sources, "push-sender", "notify")
    assert (senders["desired"], senders["available"]) == (2, 2)
    assert senders["autoscaler"]["kind"] == "HorizontalPodAutoscaler"
    assert (senders["autoscaler"]["min_replicas"], senders["autoscaler"]["max_replicas"]) == (2, 8)
    assert senders["last_scaled"]["message"].endswith("to 2 from 4")
    events = call(sources, "list_events", namespace="notify", involved_object="HorizontalPodAutoscaler/push-sender")
    assert [e["message"] for e in events["events"]] == ["New size: 4; reason: All metrics below target",
                                                       "New size: 2; reason: All metrics below target"]
    outbox = stats(sources, "push-outbox")
    drained(outbox, consumers=2)
    assert outbox["publish_rate"] < 2 * 30 / 60, "two consumers have room to spare"
    campaign = logs(sources, '"spring-sale"', start="now-1h")
    assert campaign["total"] > 500 and campaign["last_line_at"] < "2026-02-24T10:55:00Z"
    no_errors(sources)


# ---- the question names one place, the noise is in another -----------------------------------------------


def test_prod_asked_staging_stalled() -> None:
    sources = replay_sources("prod-asked-staging-stalled")
    table = call(sources, "get_queue_stats")
    assert set(table["vhosts"]) == {"payments-prod", "payments-staging"}
    assert table["attention"] == ["settlement.staging"]
    drained(stats(sources, "settlement.prod", "payments-prod"), consumers=2)
    stalled(stats(sources, "settlement.staging", "payments-staging"))
    prod = call(sources, "get_deployment", namespace="payments-prod")
    assert prod["attention"] == []
    assert deployment(sources, "settlement-worker", "payments-staging")["desired"] == 0
    assert logs(sources, 'kube_namespace:payments-prod service:settlement-worker "settled charge"')["total"] > 40
    no_errors(sources)


def test_other_team_errors() -> None:
    sources = replay_sources("other-team-errors")
    errors = logs(sources, "status:error")
    assert errors["total"] > 100 and set(errors["by_service"]) == {"recs-api"}
    assert "FeatureStoreCacheError" in errors["samples"][0]["message"]
    assert logs(sources, "kube_namespace:recommendations status:error")["total"] == errors["total"]
    recs = deployment(sources, "recs-api", "recommendations")
    assert recs["images"] == ["registry.shop.example/recs/recs-api:3.9.0"]
    assert recs["annotations"]["deployment.kubernetes.io/revision"] == "2"
    no_errors(sources, scope="kube_namespace:search")
    assert logs(sources, 'kube_namespace:search service:search-api "GET /v2/search"')["total"] > 200
    drained(stats(sources, "index-updates"), consumers=1)
    assert call(sources, "get_deployment", namespace="search")["attention"] == []


def test_tenant_asked_other_crashing() -> None:
    sources = replay_sources("tenant-asked-other-crashing")
    assert call(sources, "get_queue_stats")["attention"] == ["globex.exports"]
    drained(stats(sources, "acme.exports"), consumers=2)
    written = logs(sources, 'kube_namespace:tenant-acme service:export-worker "written to s3://ledgerly-exports/acme/"')
    assert written["total"] > 20
    no_errors(sources, scope="kube_namespace:tenant-acme")
    assert call(sources, "get_deployment", namespace="tenant-acme")["attention"] == []
    stalled(stats(sources, "globex.exports"))
    globex = deployment(sources, "export-worker", "tenant-globex")
    assert (globex["desired"], globex["available"]) == (1, 0)
    [pod] = globex["pods"]
    assert (pod["waiting_reason"], pod["last_termination_reason"]) == ("CrashLoopBackOff", "OOMKilled")
    assert "96Mi" in globex["annotations"]["kubernetes.io/change-cause"]


def test_prod_stalled_staging_decoy() -> None:
    sources = replay_sources("prod-stalled-staging-decoy")
    table = call(sources, "get_queue_stats")
    assert table["attention"] == ["journal-postings"]
    stalled(stats(sources, "journal-postings"))
    writer = deployment(sources, "ledger-writer", "ledger-prod")
    assert writer["desired"] == 0 and writer["last_scaled"]["message"].endswith("to 0 from 2")
    assert logs(sources, "kube_namespace:ledger-prod service:ledger-writer")["total"] == 0
    assert logs(sources, 'kube_namespace:ledger-prod service:postings-api "POST /v1/journal-entries 202"')["total"] > 20
    decoy = deployment(sources, "statement-service", "ledger-staging")
    assert (decoy["desired"], decoy["available"]) == (1, 0)
    assert decoy["pods"][0]["waiting_reason"] == "ImagePullBackOff"
    warnings = call(sources, "list_events", namespace="ledger-staging", involved_object="statement-service")
    assert {"Failed", "BackOff"} <= set(warnings["by_reason"])
    noisy = logs(sources, "kube_namespace:ledger-staging status:warn")
    assert noisy["total"] > 100 and "no healthy upstream" in noisy["samples"][0]["message"]
    drained(stats(sources, "journal-postings-staging"), consumers=1)
    no_errors(sources)


# ---- loud synchronous failures ----------------------------------------------------------------------------


def test_sync_dependency_at_zero() -> None:
    sources = replay_sources("sync-dependency-at-zero")
    errors = logs(sources, "kube_namespace:reservations status:error")
    assert errors["total"] > 50 and set(errors["by_service"]) == {"booking-gateway"}
    message = errors["samples"][0]["message"]
    assert "503" in message and "connection refused" in message and "inventory-svc" in message
    assert logs(sources, '"POST /v1/bookings 201"')["total"] == 0
    before = logs(sources, '"POST /v1/bookings 201"', start="now-1h", end="2026-03-11T14:47:00Z")
    assert before["total"] > 100
    inventory = deployment(sources, "inventory-svc", "reservations")
    assert (inventory["desired"], inventory["available"]) == (0, 0)
    assert inventory["last_scaled"]["message"].endswith("to 0 from 2")
    assert logs(sources, "kube_namespace:reservations service:inventory-svc")["total"] == 0
    confirmations = stats(sources, "booking-confirmations")
    assert (confirmations["consumers"], confirmations["messages"], confirmations["publish_rate"]) == (1, 0, 0.0)
    assert deployment(sources, "booking-gateway", "reservations")["available"] == 2


def test_rollout_sql_500s() -> None:
    sources = replay_sources("rollout-sql-500s")
    errors = logs(sources, "kube_namespace:rail-tickets status:error")
    assert errors["total"] > 50 and set(errors["by_service"]) == {"fare-service", "ticket-web"}
    trace = logs(sources, "kube_namespace:rail-tickets service:fare-service status:error")
    assert "bad SQL grammar" in trace["samples"][0]["message"] and "fare_class_code" in trace["samples"][0]["message"]
    assert logs(sources, '"POST /api/tickets 500"')["total"] > 20
    assert logs(sources, '"POST /api/tickets 201"')["total"] == 0
    assert logs(sources, '"POST /api/tickets 201"', start="now-1h", end="2026-04-30T18:58:00Z")["total"] > 50
    fare = deployment(sources, "fare-service", "rail-tickets")
    assert (fare["desired"], fare["available"]) == (2, 2)
    assert not any(p.get("waiting_reason") for p in fare["pods"]) and all(p["restarts"] == 0 for p in fare["pods"])
    assert fare["images"] == ["registry.example.net/rail/fare-service:3.15.0"]
    assert fare["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert fare["last_scaled"]["at"] == "2026-04-30T18:58:00Z"
    issue = stats(sources, "ticket-issue")
    assert (issue["consumers"], issue["messages"], issue["publish_rate"]) == (1, 0, 0.0)


def test_cache_oomkilled_after_rollout() -> None:
    sources = replay_sources("cache-oomkilled-after-rollout")
    cache = deployment(sources, "basket-valkey", "checkout-apac")
    assert (cache["desired"], cache["available"]) == (1, 0)
    [pod] = cache["pods"]
    assert (pod["waiting_reason"], pod["last_termination_reason"]) == ("CrashLoopBackOff", "OOMKilled")
    assert pod["restarts"] >= 5
    assert cache["images"] == ["valkey/valkey:7.2.5"], "same image: the new pod template is the change"
    assert cache["annotations"]["deployment.kubernetes.io/revision"] == "2"
    assert "valkey-storage-script" in cache["annotations"]["kubernetes.io/change-cause"]
    events = call(sources, "list_events", namespace="checkout-apac", involved_object="basket-valkey")
    assert events["by_reason"]["BackOff"] == 1 and events["by_reason"]["ScalingReplicaSet"] == 2
    errors = logs(sources, "kube_namespace:checkout-apac status:error")
    assert errors["total"] > 200 and set(errors["by_service"]) == {"basket-api"}
    assert "connection refused" in errors["samples"][0]["message"]
    assert logs(sources, '"PUT /v1/basket" 200')["total"] == 0
    assert logs(sources, '"/checkout 200"', start="now-1h", end="2026-05-19T12:21:00Z")["total"] > 30
    orders = stats(sources, "order-placed")
    assert (orders["consumers"], orders["messages"], orders["publish_rate"]) == (1, 0, 0.0)


# ---- remediation against the simulated world --------------------------------------------------------------


def test_prod_stalled_staging_decoy_scaling_the_writer_back_recovers() -> None:
    before = stats(replay_sources("prod-stalled-staging-decoy"), "journal-postings")["messages"]
    sources = acted("prod-stalled-staging-decoy", "scale", "ledger-prod", "ledger-writer", 2)
    recovered = stats(sources, "journal-postings")
    assert (recovered["consumers"], recovered["depth_trend"]["direction"]) == (2, "falling")
    assert recovered["messages"] <= 3 and recovered["depth_samples"][-1] <= 3
    posted = logs(sources, 'kube_namespace:ledger-prod service:ledger-writer "posted journal entry"', start="now-15m")
    assert posted["total"] >= before, "the backlog was worked off, then the new postings"


def test_sync_dependency_at_zero_scaling_it_back_recovers() -> None:
    sources = acted("sync-dependency-at-zero", "scale", "reservations", "inventory-svc", 2)
    no_errors(sources, start="now-10m")
    assert logs(sources, '"POST /v1/bookings 201"', start="now-10m")["total"] > 20
    assert logs(sources, '"sent confirmation email"', start="now-10m")["total"] > 20


def test_rollout_sql_500s_rollback_recovers() -> None:
    sources = acted("rollout-sql-500s", "rollback", "rail-tickets", "fare-service")
    no_errors(sources, start="now-10m")
    assert logs(sources, '"POST /api/tickets 201"', start="now-10m")["total"] > 10
    assert logs(sources, '"issued e-ticket"', start="now-10m")["total"] > 10
    assert deployment(sources, "fare-service", "rail-tickets")["images"] == \
        ["registry.example.net/rail/fare-service:3.14.0"]


def test_cache_oomkilled_after_rollout_rollback_recovers() -> None:
    sources = acted("cache-oomkilled-after-rollout", "rollback", "checkout-apac", "basket-valkey")
    cache = deployment(sources, "basket-valkey", "checkout-apac")
    assert (cache["desired"], cache["available"]) == (1, 1)
    assert not any(p.get("waiting_reason") for p in cache["pods"])
    no_errors(sources, start="now-10m")
    assert logs(sources, '"/checkout 200"', start="now-10m")["total"] > 10
    assert logs(sources, '"routed order"', start="now-10m")["total"] > 10


@pytest.mark.parametrize(("scenario_id", "action", "namespace", "name", "replicas"), [
    ("sync-dependency-at-zero", "rollout_restart", "reservations", "booking-gateway", None),
    ("sync-dependency-at-zero", "scale", "reservations", "booking-gateway", 4),
    ("sync-dependency-at-zero", "rollout_restart", "reservations", "inventory-svc", None),
    ("rollout-sql-500s", "rollout_restart", "rail-tickets", "fare-service", None),
    ("rollout-sql-500s", "scale", "rail-tickets", "fare-service", 4),
    ("cache-oomkilled-after-rollout", "scale", "checkout-apac", "basket-valkey", 3),
    ("cache-oomkilled-after-rollout", "rollout_restart", "checkout-apac", "basket-valkey", None),
])
def test_forbidden_fix_keeps_the_errors(scenario_id: str, action: str, namespace: str, name: str,
                                        replicas: int | None) -> None:
    expect = load_scenario(scenario_id).expect
    assert expect and expect.forbidding_rule(action, name, replicas)
    sources = acted(scenario_id, action, namespace, name, replicas)
    errors = logs(sources, "status:error", start="now-3m")
    assert errors["total"] > 10, errors["summary"]


@pytest.mark.parametrize(("action", "namespace", "name", "replicas"), [
    ("rollback", "ledger-staging", "statement-service", None),
    ("scale", "ledger-staging", "statement-service", 2),
    ("scale", "ledger-prod", "postings-api", 4),
])
def test_acting_on_the_decoy_leaves_prod_stalled(action: str, namespace: str, name: str,
                                                 replicas: int | None) -> None:
    expect = load_scenario("prod-stalled-staging-decoy").expect
    assert expect and expect.forbidding_rule(action, name, replicas)
    sources = acted("prod-stalled-staging-decoy", action, namespace, name, replicas)
    stalled(stats(sources, "journal-postings"))
    if action == "rollback":
        assert deployment(sources, "statement-service", "ledger-staging")["available"] == 1, \
            "the rollback does fix staging, which nobody asked about"
