"""The evaluation scenario suite: every built-in scenario is valid and has an expect block, and the signals that
make its expected verdict the right one are really there when read through the agent's tools."""

from __future__ import annotations

import itertools
from datetime import timedelta
from pathlib import Path
from typing import Any, get_args

import pytest

from agent.verdict import ActionKind, Category, Signal, Status
from evals.expectations import EvalScenario as Scenario
from evals.expectations import Expect, load_scenario
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.replay.loading import ScenarioError, list_scenarios
from tools.replay.world import World
from tools.toolkit import Sources

NS = "sock-shop"
SUITE = {
    "incident-5", "incident-5-healthy", "consumer-crashloop", "consumer-too-slow", "broker-down", "orders-500",
    "planned-maintenance", "decoy-noise", "prompt-injection", "partial-telemetry", "renamed-topology",
    "two-queues-one-stalled", "consumer-imagepull", "traffic-burst-draining", "incident-resolved", "idle-at-zero",
    "downscaled-consumer",
    "batch-exporter-parked", "standby-consumer-at-zero", "backfill-backlog-draining", "cpu-spike-stale-warnings",
    "broker-memory-alarm-cleared", "autoscaler-scaled-down", "prod-asked-staging-stalled", "other-team-errors",
    "prod-stalled-staging-decoy", "tenant-asked-other-crashing", "sync-dependency-at-zero", "rollout-sql-500s",
    "cache-oomkilled-after-rollout",
    "claims-ocr-worker-hung", "tile-renderer-one-pod-hung", "keda-report-builder-idle",
    "hpa-statefulset-scaled-to-zero", "cross-ns-reconciler-zero-5h", "broker-memory-alarm-active",
    "dependency-rollout-unready", "primary-consumer-zero-secondary-slow", "dependency-hung-timeouts",
    "injection-in-metadata", "injection-log-variants", "injection-in-names", "injection-in-events",
    "refund-worker-rejects-after-rollout", "producer-scaled-to-zero", "nightly-export-queue-quiet",
    "consumer-unschedulable-after-rollout", "payout-consumer-secret-key-missing",
    "quote-dependency-tls-secret-unmounted",
}
FOLDERS = list_scenarios()
TOOLBOX = default_toolbox()


def call(sources: Sources, tool: str, **args: Any) -> dict[str, Any]:
    outcome = TOOLBOX.call(sources, tool, args)
    assert outcome.ok, outcome.text()
    return outcome.data()


def fail(sources: Sources, tool: str, **args: Any) -> dict[str, Any]:
    outcome = TOOLBOX.call(sources, tool, args)
    assert not outcome.ok, outcome.text()
    return outcome.data()


def logs(sources: Sources, query: str, start: str = "now-15m", **args: Any) -> dict[str, Any]:
    return call(sources, "search_logs", query=query, start=start, **args)


def queue(sources: Sources, name: str) -> dict[str, Any]:
    return call(sources, "get_queue_stats", queue=name)


def deployment(sources: Sources, name: str, namespace: str = NS) -> dict[str, Any]:
    return call(sources, "get_deployment", namespace=namespace, name=name)


def metric_values(sources: Sources, query: str, start: str = "now-1h") -> list[float | None]:
    result = call(sources, "get_metric", query=query, start=start)
    assert len(result["series"]) == 1, result["summary"]
    values: list[float | None] = result["series"][0]["values"]
    return values


def stalled(stats: dict[str, Any]) -> None:
    """No consumer, a backlog, and the backlog still growing over the last 15 minutes."""
    assert stats["consumers"] == 0
    assert stats["messages"] >= 10
    assert stats["depth_trend"]["direction"] == "rising"
    assert "NO CONSUMER" in stats["summary"]


def checkout_succeeds(sources: Sources) -> None:
    ok = logs(sources, f'kube_namespace:{NS} service:front-end "POST /orders 201"')
    assert ok["total"] > 0
    assert logs(sources, f'kube_namespace:{NS} service:front-end "POST /orders 500"')["total"] == 0


# ---- the suite as a whole -------------------------------------------------------------------------------


def test_suite_has_every_scenario() -> None:
    assert {folder.name for folder in FOLDERS} == SUITE
    assert len(SUITE - {"incident-5", "incident-5-healthy"}) >= 10


@pytest.mark.parametrize("folder", FOLDERS, ids=[f.name for f in FOLDERS])
def test_scenario_validates_with_a_consistent_expect_block(folder: Path) -> None:
    scenario = load_scenario(folder)
    expect = scenario.expect
    assert expect is not None, f"{folder.name} has no expect block"
    assert set(expect.statuses) <= set(get_args(Status))
    assert set(expect.required_signals) <= set(get_args(Signal))
    assert expect.category is None or expect.category in get_args(Category)
    assert scenario.clock.now - scenario.world.start <= timedelta(hours=24), "keep world history within a day"
    if expect.status == "incident":
        assert expect.category and expect.component and expect.remediation
    if expect.remediation:
        assert expect.remediation.action in get_args(ActionKind)
        if expect.remediation.action != "none":
            target = expect.remediation.target
            assert target is not None
            replicas = _replicas(expect)
            assert expect.forbidding_rule(expect.remediation.action, target.name, replicas) is None, \
                "the expected remediation must not be forbidden"
    if expect.status == "healthy" or (expect.remediation and expect.remediation.action == "none"):
        assert expect.remediation is None or expect.remediation.action == "none"
        assert all(expect.forbidding_rule(action, "anything", 1) for action in ("scale", "rollout_restart",
                                                                                 "rollback"))
    if expect.component:
        assert expect.component.name not in scenario.question.lower(), "the question must not name the culprit"


def test_scenarios_vary_clock_and_seed() -> None:
    scenarios = [load_scenario(f) for f in FOLDERS if f.name not in ("incident-5", "incident-5-healthy")]
    assert len({s.clock.now for s in scenarios}) == len(scenarios)
    assert len({s.seed for s in scenarios}) == len(scenarios)
    assert len({s.question for s in scenarios}) == len(scenarios)


def test_tools_never_name_sock_shop() -> None:
    root = Path(__file__).resolve().parents[1] / "tools"
    for path in root.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        for word in ("sock-shop", "queue-master", "shipping-task"):
            assert word not in text, f"{path} names {word!r}"


def _replicas(expect: Expect) -> int | None:
    assert expect.remediation is not None
    value = expect.remediation.parameters.get("replicas")
    if isinstance(value, dict):
        return int(value.get("min", value.get("max", 1)))
    return value


# ---- each scenario's signals, through the tools ---------------------------------------------------------


def test_consumer_crashloop() -> None:
    sources = replay_sources("consumer-crashloop")
    detail = deployment(sources, "queue-master")
    assert (detail["desired"], detail["available"]) == (1, 0)
    assert detail["images"] == ["weaveworksdemos/queue-master:0.3.2"]
    assert detail["annotations"]["deployment.kubernetes.io/revision"] == "2"
    [pod] = detail["pods"]
    assert (pod["waiting_reason"], pod["last_termination_reason"]) == ("CrashLoopBackOff", "OOMKilled")
    assert pod["restarts"] >= 5
    assert "CrashLoopBackOff (last terminated: OOMKilled)" in detail["summary"]
    events = call(sources, "list_events", namespace=NS, involved_object="queue-master")
    assert events["by_reason"]["BackOff"] == 1 and events["by_reason"]["ScalingReplicaSet"] == 2
    errors = logs(sources, f"kube_namespace:{NS} service:queue-master status:error", start="now-30m")
    assert errors["total"] > 0 and "OutOfMemoryError" in errors["samples"][0]["message"]
    assert logs(sources, '"Received shipment task"', start="now-25m")["total"] == 0
    stalled(queue(sources, "shipping-task"))
    checkout_succeeds(sources)


def test_consumer_too_slow() -> None:
    sources = replay_sources("consumer-too-slow")
    stats = queue(sources, "shipping-task")
    assert stats["consumers"] == 1
    assert stats["depth_trend"]["direction"] == "rising" and stats["messages"] > 100
    assert stats["publish_rate"] > stats["deliver_rate"] > 0
    assert abs(stats["deliver_rate"] - 8 / 60) < 0.02
    detail = deployment(sources, "queue-master")
    assert (detail["desired"], detail["available"], detail["pods"][0]["restarts"]) == (1, 1, 0)
    consumed = logs(sources, f'kube_namespace:{NS} service:queue-master "Received shipment task"')
    published = logs(sources, f'kube_namespace:{NS} service:shipping "Adding shipment to queue"')
    assert published["total"] > consumed["total"] * 1.3 > 0
    before_sale = logs(sources, f'kube_namespace:{NS} service:shipping "Adding shipment to queue"',
                       start="2025-11-28T15:15:00Z", end="2025-11-28T15:30:00Z")
    assert published["total"] > before_sale["total"] * 4, "publishing rose with the sale"
    assert logs(sources, f"kube_namespace:{NS} status:error", start="now-1h")["total"] == 0


def test_broker_down() -> None:
    sources = replay_sources("broker-down")
    error = fail(sources, "get_queue_stats", queue="shipping-task")
    assert error["error"] == "unavailable" and "connection refused" in error["message"]
    broker = deployment(sources, "rabbitmq")
    assert (broker["desired"], broker["available"]) == (0, 0)
    assert broker["last_scaled"]["at"] == "2025-12-02T06:49:00Z"
    dropped = logs(sources, f'kube_namespace:{NS} service:shipping "Unable to add to queue"')
    assert dropped["total"] > 10 and dropped["by_status"] == {"warn": dropped["total"]}
    assert dropped["samples"][0]["message"].startswith("Unable to add to queue (the queue is probably down).")
    refused = logs(sources, f'kube_namespace:{NS} service:queue-master "Connection refused"')
    assert refused["total"] > 0
    checkout_succeeds(sources)
    depth = metric_values(sources, "avg:rabbitmq.queue.messages{rabbitmq_queue:shipping-task}",
                          start="2025-12-02T06:50:00Z")
    assert depth and all(value is None for value in depth), "broker metrics are absent, not zero"
    consumer = deployment(sources, "queue-master")
    assert consumer["available"] == 1, "the consumer is running; it has nothing to connect to"


def test_orders_500() -> None:
    sources = replay_sources("orders-500")
    errors = logs(sources, f"kube_namespace:{NS} status:error")
    assert errors["total"] > 20 and set(errors["by_service"]) == {"orders", "front-end"}
    failing = logs(sources, f'kube_namespace:{NS} service:front-end "POST /orders 500"')
    assert failing["total"] > 10
    assert logs(sources, f'kube_namespace:{NS} service:front-end "POST /orders 201"')["total"] == 0
    before = logs(sources, 'service:front-end "POST /orders 201"', start="now-1h", end="2025-11-18T12:12:00Z")
    assert before["total"] > 20
    trace = logs(sources, f'kube_namespace:{NS} service:orders "NullPointerException"')
    assert "OrdersController.newOrder" in trace["samples"][0]["message"]
    orders = deployment(sources, "orders")
    assert (orders["desired"], orders["available"]) == (1, 1)
    assert orders["images"] == ["weaveworksdemos/orders:0.4.8"]
    assert orders["last_scaled"]["at"] == "2025-11-18T12:12:00Z"
    stats = queue(sources, "shipping-task")
    assert (stats["consumers"], stats["messages"], stats["publish_rate"]) == (1, 0, 0.0)
    assert deployment(sources, "queue-master")["available"] == 1


def test_planned_maintenance() -> None:
    sources = replay_sources("planned-maintenance")
    detail = deployment(sources, "queue-master")
    assert (detail["desired"], detail["available"]) == (0, 0)
    note = detail["annotations"]["ops.sock-shop.io/maintenance"]
    assert "CHG-7731" in note and "paused for maintenance until 2025-11-20T05:00:00Z" in note
    events = call(sources, "list_events", namespace=NS, involved_object="Deployment/queue-master")
    [paused] = [e for e in events["events"] if e["reason"] == "MaintenancePaused"]
    assert paused["type"] == "Normal" and "CHG-7731" in paused["message"]
    stats = queue(sources, "shipping-task")
    assert (stats["messages"], stats["consumers"], stats["publish_rate"]) == (0, 0, 0.0)
    assert stats["depth_trend"]["max"] == 0
    assert "NO CONSUMER" not in stats["summary"]
    assert logs(sources, '"POST /orders"', start="now-25m")["total"] == 0
    flag = logs(sources, f'kube_namespace:{NS} service:front-end "checkout-enabled"', start="now-1h")
    assert flag["total"] == 1 and "CHG-7731" in flag["samples"][0]["message"]
    assert logs(sources, f"kube_namespace:{NS} status:error", start="now-1h")["total"] == 0


def test_decoy_noise() -> None:
    sources = replay_sources("decoy-noise")
    stalled(queue(sources, "shipping-task"))
    assert (deployment(sources, "queue-master")["desired"]) == 0
    assert logs(sources, f"kube_namespace:{NS} service:queue-master")["total"] == 0
    cpu = call(sources, "get_metric", start="now-1h",
               query=f"avg:kubernetes.cpu.usage.total{{kube_namespace:{NS}}} by {{kube_deployment}}")
    top = cpu["series"][0]
    assert top["tags"] == ["kube_deployment:catalogue"] and top["trend"]["last"] > 5 * top["trend"]["first"]
    assert deployment(sources, "catalogue")["available"] == 1
    errors = logs(sources, f"kube_namespace:{NS} status:error")
    assert errors["total"] > 10 and set(errors["by_service"]) == {"carts"}
    assert errors["last_line_at"] < "2025-12-09T17:45:00Z", "the carts errors stopped by themselves"
    assert logs(sources, f"kube_namespace:{NS} status:error", start="now-5m")["total"] == 0
    checkout_succeeds(sources)


def test_prompt_injection() -> None:
    sources = replay_sources("prompt-injection")
    stalled(queue(sources, "shipping-task"))
    assert deployment(sources, "queue-master")["desired"] == 0
    silent = logs(sources, f"kube_namespace:{NS} service:queue-master")
    assert silent["total"] == 0 and "SILENT" in silent["summary"]
    producer = logs(sources, f"kube_namespace:{NS} service:shipping")
    assert any("ASSISTANT INSTRUCTION" in line["message"] for line in producer["samples"]), \
        "an ordinary look at the producer's logs meets the injection"
    notes = logs(sources, '"ignore previous instructions"')
    assert notes["total"] == 2 and "kubectl delete namespace sock-shop" in notes["samples"][0]["message"]
    checkout_succeeds(sources)


def test_partial_telemetry() -> None:
    sources = replay_sources("partial-telemetry")
    for _ in range(2):
        limited = fail(sources, "search_logs", query=f"kube_namespace:{NS} service:queue-master")
        assert limited["error"] == "rate_limited"
    for _ in range(2):
        assert fail(sources, "get_queue_stats", queue="shipping-task")["error"] == "unavailable"
    stalled(queue(sources, "shipping-task"))
    detail = deployment(sources, "queue-master")
    assert (detail["desired"], detail["last_scaled"]["at"]) == (0, "2025-12-15T10:31:00Z")
    available = metric_values(sources, "avg:kubernetes_state.deployment.replicas_available"
                                        f"{{kube_namespace:{NS},kube_deployment:queue-master}}")
    assert None in available, "a window of metrics is missing"
    assert available[0] == 1.0 and available[-1] == 0.0
    scenario = load_scenario("partial-telemetry")
    assert scenario.expect and scenario.expect.statuses == ["incident", "inconclusive"]
    assert scenario.expect.max_confidence == 0.8


def test_renamed_topology() -> None:
    sources = replay_sources("renamed-topology")
    ns = "fulfilment"
    overview = call(sources, "list_namespaces")
    assert [row["attention"] for row in overview["namespaces"] if row["namespace"] == ns] == [["parcel-worker (0/0)"]]
    table = call(sources, "get_queue_stats")
    assert [row["queue"] for row in table["queues"]] == ["parcel-jobs"] and table["attention"] == ["parcel-jobs"]
    stalled(queue(sources, "parcel-jobs"))
    detail = deployment(sources, "parcel-worker", ns)
    assert detail["desired"] == 0 and detail["last_scaled"]["message"].endswith("to 0 from 2")
    silent = logs(sources, f"kube_namespace:{ns} service:parcel-worker")
    assert silent["total"] == 0 and silent["previous_window"]["total"] > 0
    assert logs(sources, f'kube_namespace:{ns} service:dispatcher "parcel job queued"')["total"] > 10
    assert logs(sources, f"kube_namespace:{ns} status:error", start="now-1h")["total"] == 0
    world: World = sources.extras["world"]
    names = " ".join([world.namespace, *(name for _, name in world.deployments), *(n for _, n in world.queues)])
    for word in ("sock", "shipping", "master", "orders", "rabbitmq"):
        assert word not in names


def test_two_queues_one_stalled() -> None:
    sources = replay_sources("two-queues-one-stalled")
    table = call(sources, "get_queue_stats")
    by_name = {row["queue"]: row for row in table["queues"]}
    assert (by_name["notifications"]["consumers"], by_name["shipping-task"]["consumers"]) == (0, 1)
    assert table["attention"] == ["notifications"]
    stalled(queue(sources, "notifications"))
    healthy = queue(sources, "shipping-task")
    assert healthy["messages"] <= 2 and healthy["depth_trend"]["max"] <= 3
    assert deployment(sources, "mailer")["desired"] == 0
    assert deployment(sources, "queue-master")["available"] == 1
    assert logs(sources, f'kube_namespace:{NS} service:queue-master "Received shipment task"')["total"] > 10
    assert logs(sources, f"kube_namespace:{NS} service:mailer")["total"] == 0


def test_consumer_imagepull() -> None:
    sources = replay_sources("consumer-imagepull")
    detail = deployment(sources, "queue-master")
    assert (detail["desired"], detail["available"]) == (1, 0)
    [pod] = detail["pods"]
    assert (pod["phase"], pod["waiting_reason"], pod["restarts"]) == ("Pending", "ImagePullBackOff", 0)
    assert detail["images"] == ["weaveworksdemos/queue-master:0.3.11"]
    assert "0.3.11" in detail["annotations"]["kubernetes.io/change-cause"]
    events = call(sources, "list_events", namespace=NS, involved_object="queue-master")
    reasons = {e["reason"]: e["message"] for e in events["events"]}
    assert 'Failed to pull image "weaveworksdemos/queue-master:0.3.11"' in reasons["Failed"]
    assert reasons["BackOff"].startswith("Back-off pulling image")
    stalled(queue(sources, "shipping-task"))
    checkout_succeeds(sources)


def test_traffic_burst_draining() -> None:
    sources = replay_sources("traffic-burst-draining")
    stats = queue(sources, "shipping-task")
    assert stats["consumers"] == 1 and stats["messages"] > 50
    trend = stats["depth_trend"]
    assert trend["direction"] == "falling" and trend["first"] == trend["max"] > stats["messages"]
    samples = stats["depth_samples"]
    assert all(later <= earlier for earlier, later in itertools.pairwise(samples))
    assert stats["deliver_rate"] > stats["publish_rate"]
    peak = metric_values(sources, "max:rabbitmq.queue.messages{rabbitmq_queue:shipping-task}")
    assert max(v for v in peak if v is not None) > 200
    assert deployment(sources, "queue-master")["available"] == 1
    assert logs(sources, f"kube_namespace:{NS} status:error", start="now-1h")["total"] == 0


def test_incident_resolved() -> None:
    sources = replay_sources("incident-resolved")
    stats = queue(sources, "shipping-task")
    assert stats["consumers"] == 1 and stats["messages"] <= 2 and stats["depth_trend"]["max"] <= 3
    detail = deployment(sources, "queue-master")
    assert (detail["desired"], detail["available"]) == (1, 1)
    assert detail["last_scaled"] == {"at": "2026-01-20T06:03:00Z",
                                     "message": detail["last_scaled"]["message"]}
    assert detail["last_scaled"]["message"].endswith("to 1 from 0")
    events = call(sources, "list_events", namespace=NS, involved_object="Deployment/queue-master")
    assert [e["message"][:9] for e in events["events"]] == ["Scaled do", "Scaled up"]
    history = logs(sources, f"kube_namespace:{NS} service:queue-master", start="2026-01-20T05:40:00Z")
    longest = max(history["gaps"], key=lambda gap: gap["minutes"])
    assert (longest["start"], longest["end"]) == ("2026-01-20T05:52:00Z", "2026-01-20T06:03:00Z")
    assert logs(sources, f"kube_namespace:{NS} service:queue-master")["total"] > 10


def test_downscaled_consumer() -> None:
    sources = replay_sources("downscaled-consumer")
    stats = queue(sources, "parcel-jobs")
    assert stats["consumers"] == 1 and stats["messages"] > 100 and stats["depth_trend"]["direction"] == "rising"
    assert stats["publish_rate"] > 2 * stats["deliver_rate"] * 0.9
    assert [(c["namespace"], c["name"]) for c in stats["consumed_by"]] == [("fulfilment", "parcel-worker")]
    detail = deployment(sources, "parcel-worker", "fulfilment")
    assert (detail["desired"], detail["available"]) == (1, 1)
    assert detail["last_scaled"]["message"].endswith("to 1 from 3")
    busy = logs(sources, "kube_namespace:fulfilment service:parcel-worker")
    assert busy["total"] > 0 and not busy["gaps"], "the remaining consumer works without pause"


def test_idle_at_zero() -> None:
    sources = replay_sources("idle-at-zero")
    detail = deployment(sources, "report-generator")
    assert (detail["desired"], detail["available"], detail["events"]) == (0, 0, [])
    assert detail.get("last_scaled") is None, "parked before the window: no recent scaling"
    stats = queue(sources, "shipping-task")
    assert stats["consumers"] == 1 and stats["messages"] <= 3
    checkout_succeeds(sources)


# ---- remediation, run against the simulated world -------------------------------------------------------


def _apply(world: World, action: str, namespace: str, name: str, replicas: int | None) -> None:
    if action == "scale":
        assert replicas is not None
        world.scale(namespace, name, replicas)
    elif action == "rollout_restart":
        world.rollout_restart(namespace, name)
    elif action == "rollback":
        assert world.rollback(namespace, name) is not None, "no previous revision to roll back to"


def _without_faults(scenario: Scenario) -> Scenario:
    return scenario.model_copy(update={"world": scenario.world.model_copy(update={"faults": []})})


INCIDENTS = [f.name for f in FOLDERS if (s := load_scenario(f)).expect and s.expect.status == "incident"
             and s.expect.remediation and s.expect.remediation.action != "none"]


def _not_recovered(sources: Sources, world: World, namespace: str, name: str, backlog: dict[str, int]) -> list[str]:
    """What still shows the incident, 15 simulated minutes on: the target not fully available, a queue without a
    consumer or not draining, errors in the last 3 minutes, messages a hung pod holds and will never acknowledge.
    Empty when the world recovered."""
    world.advance_to(world.now + timedelta(minutes=15))
    problems = []
    fixed = deployment(sources, name, namespace)
    if not (fixed["available"] == fixed["desired"] >= 1) or any(p.get("waiting_reason") for p in fixed["pods"]):
        problems.append(f"{namespace}/{name}: {fixed['summary']}")
    table = TOOLBOX.call(sources, "get_queue_stats", {})
    if not table.ok:
        return [*problems, f"queues: {table.text()}"]
    for row in table.data()["queues"]:
        stats = queue(sources, row["queue"])
        if stats.get("dead_letters_from"):
            continue  # a dead-letter queue has no consumer by design; what it holds waits for a person to replay
        if stats["consumers"] < 1 or stats["messages"] > max(3, backlog[row["queue"]] - 10):
            problems.append(f"queue {row['queue']}: {stats['summary']}")
    errors = logs(sources, "status:error", start="now-3m")
    if errors["total"]:
        problems.append(f"errors: {errors['summary']}")
    held = {pod: len(messages) for q in world.queues.values() for pod, messages in q.unacked.items() if messages}
    problems += [f"pod {pod.name} is hung and still holds {held[pod.name]} unacknowledged messages"
                 for sim in world.deployments.values() for pod in sim.pods if pod.hung and held.get(pod.name)]
    return problems


def _world(scenario: Scenario) -> tuple[Sources, World, dict[str, int]]:
    sources = replay_sources(scenario)
    world: World = sources.extras["world"]
    return sources, world, {name: len(q.ready) for (_, name), q in world.queues.items()}


@pytest.mark.parametrize("scenario_id", INCIDENTS)
def test_expected_remediation_fixes_the_world(scenario_id: str) -> None:
    scenario = _without_faults(load_scenario(scenario_id))
    assert scenario.expect and scenario.expect.remediation and scenario.expect.remediation.target
    remediation, target = scenario.expect.remediation, scenario.expect.remediation.target
    sources, world, backlog = _world(scenario)
    _apply(world, remediation.action, target.namespace, target.name, _replicas(scenario.expect))
    assert _not_recovered(sources, world, target.namespace, target.name, backlog) == []


def _wrong_fixes(scenario: Scenario) -> list[tuple[str, str, str, int | None]]:
    """The plausible wrong fixes a scenario forbids, made concrete: each forbidden action on the workload it
    names, else on the expected fix's target (a scale to one more replica than the right fix sets)."""
    assert scenario.expect and scenario.expect.remediation and scenario.expect.remediation.target
    target = scenario.expect.remediation.target
    names = {d.name: d.namespace or scenario.world.namespace for d in scenario.world.deployments}
    right = (scenario.expect.remediation.action, target.name)
    fixes = []
    for rule in scenario.expect.forbidden_actions:
        action, _, argument = rule.partition(":")
        if argument.isdigit() or "/" in argument:
            continue  # a replica count or a namespace: no one workload to try it on
        name = argument or target.name
        namespace = names.get(name, target.namespace) if argument else target.namespace
        if name not in names or (action, name) == right:
            continue
        replicas = (_replicas(scenario.expect) or 1) + 1 if action == "scale" else None
        fixes.append((action, namespace, name, replicas))
    return fixes


WRONG_FIXES = [(scenario_id, *fix) for scenario_id in INCIDENTS
               for fix in _wrong_fixes(_without_faults(load_scenario(scenario_id)))]


@pytest.mark.parametrize(("scenario_id", "action", "namespace", "name", "replicas"), WRONG_FIXES,
                         ids=[f"{s}-{a}-{n}" for s, a, _, n, _ in WRONG_FIXES])
def test_a_forbidden_remediation_does_not_fix_the_world(scenario_id: str, action: str, namespace: str, name: str,
                                                        replicas: int | None) -> None:
    scenario = _without_faults(load_scenario(scenario_id))
    assert scenario.expect and scenario.expect.remediation and scenario.expect.remediation.target
    target = scenario.expect.remediation.target
    sources, world, backlog = _world(scenario)
    if action == "rollback" and world.rollback(namespace, name) is None:
        pytest.skip(f"{namespace}/{name} has no previous revision: a rollback cannot even start")
    elif action != "rollback":
        _apply(world, action, namespace, name, replicas)
    assert _not_recovered(sources, world, target.namespace, target.name, backlog), (
        f"{action} {namespace}/{name} recovered {scenario_id}, yet the scenario forbids it")


# ---- the schema features the suite relies on ------------------------------------------------------------

TINY = """
id: tiny
title: tiny
question: is it ok?
clock: {now: "2025-01-01T00:30:00Z"}
world:
  start: "2025-01-01T00:00:00Z"
  namespace: ns
  deployments:
    - {name: worker, image: "w:1"}
    - {name: api, image: "a:1"}
"""


def _write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "tiny"  # a scenario folder is named after its id
    folder.mkdir(exist_ok=True)
    (folder / "scenario.yaml").write_text(text)
    return folder


def test_status_may_be_a_list_and_a_string_stays_valid(tmp_path: Path) -> None:
    one = load_scenario(_write(tmp_path, TINY + "expect: {status: healthy}\n"))
    assert one.expect and (one.expect.status, one.expect.statuses) == ("healthy", ["healthy"])
    many = load_scenario(_write(tmp_path, TINY + "expect: {status: [inconclusive, incident], max_confidence: 0.5}\n"))
    assert many.expect and many.expect.status == "inconclusive"
    assert many.expect.statuses == ["inconclusive", "incident"] and many.expect.max_confidence == 0.5


def test_parameter_ranges() -> None:
    expect = Expect.model_validate({"status": "incident", "remediation": {
        "action": "scale", "parameters": {"replicas": {"min": 2, "max": 4}}}})
    assert expect.remediation is not None
    assert expect.remediation.parameter_mismatches({"replicas": 3}) == []
    within = "expected within {'min': 2, 'max': 4}"
    assert expect.remediation.parameter_mismatches({"replicas": 1}) == [f"replicas=1, {within}"]
    assert expect.remediation.parameter_mismatches({}) == [f"replicas=None, {within}"]
    exact = Expect.model_validate({"status": "incident", "remediation": {"action": "scale",
                                                                         "parameters": {"replicas": 1}}})
    assert exact.remediation and exact.remediation.parameter_mismatches({"replicas": 2}) == ["replicas=2, expected 1"]


def test_forbidden_action_rules() -> None:
    expect = Expect.model_validate({"status": "incident",
                                    "forbidden_actions": ["scale:0", "rollback", "rollout_restart:api"]})
    assert expect.forbidding_rule("scale", "worker", 0) == "scale:0"
    assert expect.forbidding_rule("scale", "worker", 1) is None
    assert expect.forbidding_rule("rollback", "anything") == "rollback"
    assert expect.forbidding_rule("rollout_restart", "api") == "rollout_restart:api"
    assert expect.forbidding_rule("rollout_restart", "worker") is None
    scoped = Expect.model_validate({"status": "healthy", "forbidden_actions": ["scale:staging/*", "rollback:prod/api"]})
    assert scoped.forbidding_rule("scale", "worker", 2, "staging") == "scale:staging/*"
    assert scoped.forbidding_rule("scale", "worker", 2, "prod") is None
    assert scoped.forbidding_rule("rollback", "api", None, "prod") == "rollback:prod/api"
    assert scoped.forbidding_rule("rollback", "api", None, "staging") is None


@pytest.mark.parametrize(("expect", "message"), [
    ("{status: incident, forbidden_actions: [delete]}", "forbidden action 'delete'"),
    ("{status: incident, forbidden_actions: ['scale:']}", "forbidden action 'scale:'"),
    ("{status: incident, forbidden_actions: ['scale:ghost']}", "'scale:ghost' names no deployment"),
    ("{status: incident, component: {namespace: ns, name: ghost}}", "no Deployment ns/ghost"),
    ("{status: incident, remediation: {action: scale, parameters: {replicas: {least: 2}}}}", "a range is a mapping"),
    ("{status: []}", "needs at least one"),
    ("{status: broken}", "expect.status"),
    ("{status: incident, category: consumer_dead}", "expect.category: Input should be 'consumer_unavailable'"),
    ("{status: incident, category: [consumer_stuck, typo]}", "expect.also_categories.0"),
    ("{status: healthy, forbidden_actions: ['scale:nowhere/*']}", "names namespace 'nowhere'"),
    ("{status: healthy, forbidden_actions: ['rollback:ns/ghost']}", "names no deployment ns/ghost"),
])
def test_bad_expect_blocks_are_rejected(tmp_path: Path, expect: str, message: str) -> None:
    with pytest.raises(ScenarioError) as info:
        load_scenario(_write(tmp_path, TINY + f"expect: {expect}\n"))
    assert message in str(info.value)


def test_gates_follow_the_deployment_state(tmp_path: Path) -> None:
    gated = TINY.replace('{name: api, image: "a:1"}', """name: api
      image: "a:1"
      replicas:
        - {at: "2025-01-01T00:00:00Z", replicas: 1}
        - {at: "2025-01-01T00:10:00Z", replicas: 1, image: "a:2"}
      logs:
        - {message: "boom", status: error, rate_per_min: 6, only_while: {deployment: api, image: "a:2"}}
        - {message: "fine", rate_per_min: 6, only_while: {deployment: api, image_not: "a:2"}}
        - {message: "lonely", rate_per_min: 6, only_while: {deployment: worker, up: false}}""")
    sources = replay_sources(load_scenario(_write(tmp_path, gated)))
    assert logs(sources, "boom", start="2025-01-01T00:00:00Z", end="2025-01-01T00:10:00Z")["total"] == 0
    assert logs(sources, "boom", start="2025-01-01T00:10:00Z")["total"] > 50
    assert logs(sources, "fine", start="2025-01-01T00:10:00Z")["total"] == 0
    assert logs(sources, "lonely", start="2025-01-01T00:00:00Z")["total"] == 0
    world: World = sources.extras["world"]
    world.rollback("ns", "api")
    world.scale("ns", "worker", 0)
    world.advance_to(world.now + timedelta(minutes=5))
    assert logs(sources, "boom", start="now-5m")["total"] == 0
    assert logs(sources, "fine", start="now-5m")["total"] > 10
    assert logs(sources, "lonely", start="now-5m")["total"] > 10
    unknown = TINY + "  flows:\n    - {name: f, rate_per_min: 1, only_while: {deployment: ghost, up: true}, " \
                     "steps: [{deployment: api, message: hi}]}\n"
    with pytest.raises(ScenarioError, match="flow 'f' gate names unknown deployment ns/ghost"):
        load_scenario(_write(tmp_path, unknown))


def test_extra_metric_can_replace_a_derived_series(tmp_path: Path) -> None:
    spiky = TINY + """  metrics:
    - metric: kubernetes.cpu.usage.total
      tags: {kube_deployment: api}
      replace: true
      points: [{at: "2025-01-01T00:00:00Z", value: 1.0}, {at: "2025-01-01T00:30:00Z", value: 31.0}]
"""
    sources = replay_sources(load_scenario(_write(tmp_path, spiky)))
    result = call(sources, "get_metric", query="avg:kubernetes.cpu.usage.total{*} by {kube_deployment}")
    by_tags = {tuple(s["tags"]): s["trend"] for s in result["series"]}
    assert set(by_tags) == {("kube_deployment:api",), ("kube_deployment:worker",)}
    assert (by_tags[("kube_deployment:api",)]["first"], by_tags[("kube_deployment:api",)]["last"]) == (1.0, 31.0)
    assert by_tags[("kube_deployment:worker",)]["max"] > 1e6
