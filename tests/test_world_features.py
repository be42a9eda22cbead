"""World-format features that real clusters need, read through the agent's own tools: a consumer that hangs while
attached, pods that run but are not ready, StatefulSets and KEDA ScaledObjects, queues in other vhosts and
namespaces, several consumers of one queue, synchronous calls with APM metrics, broker alarms, long look-back."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.replay.loading import ScenarioError, load_scenario
from tools.replay.scenario import Scenario
from tools.replay.world import World
from tools.toolkit import Sources

TOOLBOX = default_toolbox()

BASE = """
id: case
title: feature
question: what is wrong?
clock: {now: "2026-02-01T10:40:00Z"}
seed: 11
world:
  start: "2026-02-01T10:00:00Z"
  namespace: shop
  broker: {deployment: mq, namespace: infra}
  deployments:
    - {name: mq, namespace: infra, image: "rabbitmq:3.13-management"}
    - {name: api, image: "acme/api:1.0"}
"""


def world_of(tmp_path: Path, extra: str, *edits: tuple[str, str]) -> Sources:
    """BASE plus `extra`, with each (old, new) edit applied to the whole text."""
    text = BASE + extra
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    folder = tmp_path / "case"
    folder.mkdir(exist_ok=True)
    (folder / "scenario.yaml").write_text(text)
    return replay_sources(load_scenario(folder))


def call(sources: Sources, tool: str, **args: Any) -> dict[str, Any]:
    outcome = TOOLBOX.call(sources, tool, args)
    assert outcome.ok, outcome.text()
    return outcome.data()


HUNG = """    - name: worker
      namespace: jobs
      image: "acme/worker:2.0"
      replicas: 2
      hangs: [{at: "2026-02-01T10:20:00Z"}]
  flows:
    - name: submit
      rate_per_min: 30
      steps:
        - {deployment: api, message: "POST /jobs 202 id={id}"}
        - {publish: jobs, vhost: work}
  queues:
    - name: jobs
      vhost: work
      consumer: {deployment: worker, namespace: jobs, prefetch: 5, rate_per_min: 120, message: "done {id}"}
"""


def test_a_hung_consumer_stays_attached_holds_its_prefetch_and_acks_nothing(tmp_path: Path) -> None:
    sources = world_of(tmp_path, HUNG)
    stats = call(sources, "get_queue_stats", queue="jobs")
    assert stats["vhost"] == "work", "found in its vhost without being told"
    assert (stats["consumers"], stats["unacked"], stats["ack_rate"], stats["consumer_utilisation"]) == (2, 10, 0.0, 0)
    assert stats["ready"] > 300 and stats["depth_trend"]["direction"] == "rising"
    assert [(c["namespace"], c["name"], c["consumers"]) for c in stats["consumed_by"]] == [("jobs", "worker", 2)]
    worker = call(sources, "get_deployment", namespace="jobs", name="worker")
    assert (worker["desired"], worker["available"]) == (2, 2) and all(p["ready"] for p in worker["pods"])
    logs = call(sources, "search_logs", query="kube_namespace:jobs service:worker", start="now-15m")
    assert logs["total"] == 0 and logs["previous_window"]["total"] > 0
    unacked = call(sources, "get_metric", query="max:rabbitmq.queue.messages_unacknowledged{rabbitmq_queue:jobs}")
    assert unacked["series"][0]["trend"]["last"] == 10


def test_a_restart_recovers_a_hung_consumer_and_a_scale_up_does_not(tmp_path: Path) -> None:
    restarted = world_of(tmp_path, HUNG)
    world: World = restarted.extras["world"]
    world.rollout_restart("jobs", "worker")
    world.advance_to(world.now + timedelta(minutes=15))
    stats = call(restarted, "get_queue_stats", queue="jobs")
    assert stats["messages"] <= 5 and stats["unacked"] == 0 and stats["consumer_utilisation"] == 1.0

    scaled = world_of(tmp_path, HUNG)
    world = scaled.extras["world"]
    world.scale("jobs", "worker", 4)
    world.advance_to(world.now + timedelta(minutes=15))
    stats = call(scaled, "get_queue_stats", queue="jobs")
    assert stats["unacked"] == 10, "the hung pods still hold their messages: those jobs never finish"
    assert stats["consumer_utilisation"] == 0.5


def test_unready_pods_run_without_serving_and_report_their_probe(tmp_path: Path) -> None:
    sources = world_of(tmp_path, """    - name: pricing
      image: "acme/pricing:3.1"
      replicas:
        - {at: "2026-02-01T10:00:00Z", replicas: 2}
        - {at: "2026-02-01T10:25:00Z", replicas: 2, image: "acme/pricing:3.2", pod_state: unready,
           reason: "HTTP probe failed with statuscode: 503"}
""")
    pricing = call(sources, "get_deployment", namespace="shop", name="pricing")
    assert (pricing["desired"], pricing["available"]) == (2, 0)
    pods = [(p["phase"], p["ready"], p.get("waiting_reason")) for p in pricing["pods"]]
    assert pods == [("Running", False, None)] * 2
    assert "2 pod(s) Running but not ready" in pricing["summary"]
    events = call(sources, "list_events", namespace="shop", involved_object="pricing")
    assert events["by_reason"]["Unhealthy"] == 2
    assert "Readiness probe failed: HTTP probe failed with statuscode: 503" in {e["message"] for e in events["events"]}


def test_a_keda_scaled_batch_consumer_cycles_through_zero_and_drains(tmp_path: Path) -> None:
    sources = world_of(tmp_path, """    - name: exporter
      kind: StatefulSet
      image: "acme/exporter:1.4"
      replicas: 0
      autoscaler: {kind: ScaledObject, min_replicas: 0, max_replicas: 3, queue: exports, messages_per_replica: 10,
                   cooldown_seconds: 120}
  flows:
    - name: nightly
      rate_per_min: 60
      start: "2026-02-01T10:10:00Z"
      end: "2026-02-01T10:12:00Z"
      steps: [{deployment: api, message: "export requested {id}"}, {publish: exports}]
  queues:
    - {name: exports, consumer: {deployment: exporter, rate_per_min: 60, message: "exported {id}"}}
""")
    exporter = call(sources, "get_deployment", namespace="shop", name="exporter")
    assert (exporter["kind"], exporter["desired"]) == ("StatefulSet", 0)
    assert exporter["autoscaler"] == {"kind": "ScaledObject", "name": "exporter", "min_replicas": 0,
                                      "max_replicas": 3, "current_replicas": 0,
                                      "trigger": "rabbitmq queue exports (target 10 messages per replica)"}
    history = call(sources, "list_events", namespace="shop", since="now-1h", involved_object="exporter")
    assert {"KEDAScaleTargetActivated", "KEDAScaleTargetDeactivated"} <= set(history["by_reason"])
    assert call(sources, "get_queue_stats", queue="exports")["messages"] == 0
    replicas = call(sources, "get_metric", query="max:kubernetes_state.statefulset.replicas_desired"
                                                 "{kube_stateful_set:exporter}")["series"][0]["trend"]
    assert (replicas["max"], replicas["last"]) == (3, 0)


def test_callers_of_a_dependency_at_zero_fail_and_apm_shows_it(tmp_path: Path) -> None:
    sources = world_of(tmp_path, """    - name: inventory
      namespace: stock
      image: "acme/inventory:5.0"
      replicas:
        - {at: "2026-02-01T10:00:00Z", replicas: 2}
        - {at: "2026-02-01T10:30:00Z", replicas: 0}
  flows:
    - name: browse
      rate_per_min: 60
      steps:
        - {deployment: api, message: "GET /items 200"}
        - call: inventory
          namespace: stock
          on_call_failure: {deployment: api, status: error,
                            message: "GET /items 503: dial tcp inventory.stock:8080: connect: connection refused"}
        - {deployment: inventory, namespace: stock, message: "served items"}
""")
    errors = call(sources, "search_logs", query="kube_namespace:shop status:error", start="now-5m")
    assert errors["total"] > 200 and "connection refused" in errors["samples"][0]["message"]
    assert call(sources, "search_logs", query="kube_namespace:stock", start="now-5m")["total"] == 0
    hits = call(sources, "get_metric", query="sum:trace.http.request.errors{service:api}", start="now-15m")
    assert hits["series"][0]["trend"]["last"] > 5
    before = call(sources, "get_metric", query="sum:trace.http.request.hits{service:inventory}", start="now-1h")
    assert before["series"][0]["trend"]["max"] > 5 and before["series"][0]["trend"]["last"] == 0
    world: World = sources.extras["world"]
    world.scale("stock", "inventory", 2)
    world.advance_to(world.now + timedelta(minutes=5))
    assert call(sources, "search_logs", query="kube_namespace:shop status:error", start="now-3m")["total"] == 0


def test_a_memory_alarm_blocks_publishers_and_is_reported(tmp_path: Path) -> None:
    sources = world_of(tmp_path, """    - {name: mailer, image: "acme/mailer:1.0"}
  flows:
    - name: signup
      rate_per_min: 20
      steps:
        - {deployment: api, message: "POST /signup 201"}
        - publish: mails
          on_publish_failure: {deployment: api, status: warn, message: "publish to mails blocked: connection.blocked"}
  queues:
    - {name: mails, consumer: {deployment: mailer}}
""", ("broker: {deployment: mq, namespace: infra}",
         'broker: {deployment: mq, namespace: infra, alarms: [{resource: memory, at: "2026-02-01T10:30:00Z"}]}'))
    table = call(sources, "get_queue_stats")
    assert table["alarms"] == ["memory"] and "memory alarm set: publishers are blocked" in table["summary"]
    assert call(sources, "get_queue_stats", queue="mails")["publish_rate"] == 0.0
    assert call(sources, "search_logs", query="connection.blocked", start="now-5m")["total"] > 20


def test_a_scale_down_hours_ago_is_in_the_event_history_not_the_api(tmp_path: Path) -> None:
    sources = world_of(tmp_path, """    - name: reporter
      image: "acme/reporter:1.0"
      replicas:
        - {at: "2026-02-01T04:00:00Z", replicas: 2}
        - {at: "2026-02-01T10:05:00Z", replicas: 0}
""", ('start: "2026-02-01T10:00:00Z"', 'start: "2026-02-01T04:00:00Z"'),
        ('clock: {now: "2026-02-01T10:40:00Z"}', 'clock: {now: "2026-02-01T15:10:00Z"}'))
    recent = call(sources, "list_events", namespace="shop", since="now-1h", involved_object="reporter")
    assert recent["total"] == 0
    history = call(sources, "list_events", namespace="shop", since="now-6h", involved_object="reporter")
    scaling = [e["message"] for e in history["events"] if e["reason"] == "ScalingReplicaSet"]
    assert scaling == ["Scaled down replica set reporter-8snsxl6m5x to 0 from 2"]
    desired = call(sources, "get_metric", query="max:kubernetes_state.deployment.replicas_desired"
                                                "{kube_deployment:reporter}", start="now-6h")["series"][0]["trend"]
    assert (desired["first"], desired["last"]) == (2, 0)


def test_several_consumers_and_cross_namespace_names_are_checked(tmp_path: Path) -> None:
    sources = world_of(tmp_path, """    - {name: worker, namespace: east, image: "acme/w:1"}
    - {name: worker, namespace: west, image: "acme/w:1", replicas: 0}
  queues:
    - name: tasks
      consumers: [{deployment: worker, namespace: east}, {deployment: worker, namespace: west}]
""")
    stats = call(sources, "get_queue_stats", queue="tasks")
    assert [(c["namespace"], c["name"]) for c in stats["consumed_by"]] == [("east", "worker")]
    with pytest.raises(ScenarioError, match="consumer names unknown deployment shop/worker"):
        world_of(tmp_path, "    - {name: worker, namespace: east, image: w}\n  queues:\n"
                           "    - {name: t, consumer: {deployment: worker}}\n")
    with pytest.raises(ScenarioError, match=re.escape("world.deployments.2: 'api' is defined twice (also "
                                                      "world.deployments.1)")):
        world_of(tmp_path, '    - {name: api, image: "acme/api:2.0"}\n')


def test_a_hung_consumer_with_no_pods_is_rejected_naming_the_field(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="deployment 'worker' hangs at 2026-02-01T10:20:00\\+00:00 but has no "
                                            "pods then"):
        world_of(tmp_path, """    - name: worker
      image: "acme/worker:2.0"
      replicas:
        - {at: "2026-02-01T10:00:00Z", replicas: 1}
        - {at: "2026-02-01T10:10:00Z", replicas: 0}
      hangs: [{at: "2026-02-01T10:20:00Z"}]
""")


def _failing_world(mode: str) -> Scenario:
    return Scenario.model_validate({
        "id": "failing", "title": "t", "question": "are jobs processed?",
        "clock": {"now": "2026-01-01T01:00:00Z"},
        "world": {
            "start": "2026-01-01T00:00:00Z", "namespace": "jobs", "broker": {"deployment": "mq"},
            "deployments": [{"name": "api", "image": "api:1"}, {"name": "worker", "image": "worker:2"},
                            {"name": "mq", "image": "rabbitmq:3"}],
            "flows": [{"name": "submit", "rate_per_min": 6, "steps": [
                {"deployment": "api", "message": "POST /jobs 202 job={id}"}, {"publish": "jobs"}]}],
            "queues": [
                {"name": "jobs", "dead_letter": "jobs.dlq", "consumer": {
                    "deployment": "worker", "message": "job={id} done",
                    "fails": {"mode": mode, "message": "job={id} failed: schema mismatch", "start":
                              "2026-01-01T00:30:00Z"}}},
                {"name": "jobs.dlq"}]}})


def test_a_consumer_that_rejects_every_message_fills_the_dead_letter_queue() -> None:
    sources = replay_sources(_failing_world("reject"))
    work = TOOLBOX.call(sources, "get_queue_stats", {"queue": "jobs"}).data()
    dlq = TOOLBOX.call(sources, "get_queue_stats", {"queue": "jobs.dlq"}).data()
    assert work["consumers"] == 1 and work["messages"] == 0 and not work["ack_rate"]
    assert work["dead_letters_to"] == "queue jobs.dlq"
    assert dlq["dead_letters_from"] == ["jobs"] and 150 <= dlq["messages"] <= 210  # about 30 min x 6/min
    assert dlq["depth_trend"]["direction"] == "rising" and "NO CONSUMER" not in dlq["summary"]
    errors = TOOLBOX.call(sources, "search_logs", {"query": "service:worker status:error", "start": "now-5m"})
    assert errors.data()["total"] >= 20


def test_a_consumer_that_requeues_every_message_churns_without_progress() -> None:
    sources = replay_sources(_failing_world("requeue"))
    work = TOOLBOX.call(sources, "get_queue_stats", {"queue": "jobs"}).data()
    assert work["consumers"] == 1 and work["redeliver_rate"] > 0 and not work["ack_rate"]
    assert work["messages"] >= 150 and "none is acked" in work["summary"]
    dlq = TOOLBOX.call(sources, "get_queue_stats", {"queue": "jobs.dlq"}).data()
    assert dlq["messages"] == 0


def test_workloads_of_one_name_in_two_namespaces_have_pods_of_their_own(tmp_path: Path) -> None:
    sources = world_of(tmp_path, """    - {name: api, namespace: shop-au, image: "acme/api:1.0"}
""")
    here = [(p["name"], p["ip"]) for p in call(sources, "get_deployment", namespace="shop", name="api")["pods"]]
    there = [(p["name"], p["ip"]) for p in call(sources, "get_deployment", namespace="shop-au", name="api")["pods"]]
    assert here and there and not {n for n, _ in here} & {n for n, _ in there}
    assert not {ip for _, ip in here} & {ip for _, ip in there}
