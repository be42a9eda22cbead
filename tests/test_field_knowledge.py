"""What an on-call engineer knows before reading any result: where users' complaints live, which zero is missing
from a queue, what counts as a scaling, and which logs are worth reading."""

from __future__ import annotations

from datetime import UTC, datetime

from agent.findings import missing_consumer
from agent.guided.inventory import PRODUCER_QUERY, lead_calls
from agent.scope import EVERYTHING, investigation_order, pre_production
from agent.signals import Observation
from tools.kubernetes.protocol import KubeEvent
from tools.kubernetes.tools import _scaling

AT = datetime(2026, 1, 16, 18, 1, tzinfo=UTC)


def event(reason: str, message: str, kind: str = "StatefulSet", name: str = "store") -> KubeEvent:
    return KubeEvent(namespace="data", reason=reason, message=message, kind=kind, name=name, first_seen=AT,
                     last_seen=AT)


def test_any_tool_that_scales_the_workload_itself_is_a_scaling() -> None:
    assert _scaling(event("ScaleDown", "Scaling down StatefulSet data/store from 3 to 0 replicas"),
                    "StatefulSet", "store")
    assert _scaling(event("ScalingReplicaSet", "Scaled up replica set store-7d to 2", kind="Deployment"),
                    "StatefulSet", "store"), "the controllers' reasons count whoever the object is"
    assert not _scaling(event("Killing", "Stopping container store", kind="Pod", name="store-2"),
                        "StatefulSet", "store")
    assert not _scaling(event("ConfigReloaded", "reloaded config from 3 files"), "StatefulSet", "store")
    assert not _scaling(event("ScaleDown", "Scaling down from 3 to 0", name="other"), "StatefulSet", "store")


def test_a_copy_of_an_attached_consumer_in_another_namespace_is_not_the_missing_one() -> None:
    attached = [("seq-pipeline", "bwa-aligner")]
    assert missing_consumer("seq/align/requests", attached, [("seq-pipeline-dev", "bwa-aligner")]) is None
    assert missing_consumer("transcode.jobs", [("media", "transcoder-spot")], [("media", "transcoder")]) == (
        "media", "transcoder")


def test_production_is_looked_at_before_the_environments_people_test_in() -> None:
    rows = [{"namespace": "rider-eu-staging", "attention": ["session-store (0/0)"], "deployments": 2},
            {"namespace": "rider-eu", "attention": [], "deployments": 3},
            {"namespace": "platform-data", "attention": ["session-store (0/0)"], "deployments": 1}]
    assert investigation_order(rows, EVERYTHING) == ["platform-data", "rider-eu", "rider-eu-staging"]
    assert pre_production("payments-uat") and pre_production("team-x--dev")
    assert not pre_production("payments-live") and not pre_production("eu1-core")


def inventory(queues: dict[str, object]) -> list[Observation]:
    namespaces = {"namespaces": [{"namespace": "rides", "attention": [], "deployments": 2}]}
    table = {"namespace": "rides", "deployments": [], "attention": []}
    return [Observation("call_1", "list_namespaces", {}, True, namespaces),
            Observation("call_2", "get_queue_stats", {}, queues.get("ok", True) is True, queues),
            Observation("call_3", "get_deployment", {"namespace": "rides"}, True, table)]


def test_publishing_logs_are_read_only_where_a_broker_holds_queues() -> None:
    producer_search = {"query": PRODUCER_QUERY.format(namespace="rides"), "start": "now-15m"}
    assert ("search_logs", producer_search) not in lead_calls(inventory({"queues": []}))
    with_queue = {"queues": [{"queue": "rides.events", "vhost": "/", "messages": 0, "consumers": 1}]}
    assert ("search_logs", producer_search) in lead_calls(inventory(with_queue))
    broker_down = {"ok": False, "error": "unavailable", "message": "connection refused"}
    assert ("search_logs", producer_search) in lead_calls(inventory(broker_down)), \
        "a broker that cannot be read may still be what the producers log about"


def test_pods_no_node_can_take_are_a_release_to_undo_or_a_cluster_out_of_room() -> None:
    from agent.findings import serving_failure

    pending = {"desired": 3, "available": 0, "pods": [{"name": "w-1", "phase": "Pending", "ready": False}],
               "events": [{"reason": "FailedScheduling", "type": "Warning",
                           "message": "0/4 nodes are available: 4 Insufficient memory."}]}
    after_release = serving_failure({**pending, "revision": 2})
    assert after_release is not None and (after_release.category, after_release.action) == ("config_change",
                                                                                              "rollback")
    assert "Insufficient memory" in after_release.why
    no_release = serving_failure({**pending, "revision": 1})
    assert no_release is not None and (no_release.category, no_release.action) == ("resource_exhaustion", "none")
    starting = {**pending, "events": []}  # every rollout starts with Pending pods: that alone says nothing
    assert serving_failure({**starting, "revision": 2}) is not None
    assert serving_failure({**starting, "revision": 2}).category != "resource_exhaustion"  # type: ignore[union-attr]


def test_a_growing_queue_whose_consumer_serves_no_replica_rules_out_healthy() -> None:
    from agent.guided.trouble import standing_trouble
    from agent.scope import Scope

    queue = {"queue": "vehicle.positions", "messages": 1161, "consumers": 0, "publish_rate": 0.88,
             "depth_trend": {"direction": "rising"}}
    writer = {"namespace": "fleet-live", "name": "position-writer", "desired": 3, "available": 0, "pods": []}
    seen = [Observation("call_1", "get_queue_stats", {"queue": "vehicle.positions"}, True, queue),
            Observation("call_2", "get_deployment", {"namespace": "fleet-live", "name": "position-writer"}, True,
                        writer)]
    about_the_gateway = Scope(namespaces=frozenset({"fleet-live"}), everything=False)
    assert standing_trouble(seen, about_the_gateway) == ["vehicle.positions: no consumer"]
    flat = {**queue, "depth_trend": {"direction": "flat"}}
    assert standing_trouble([Observation("call_1", "get_queue_stats", {}, True, flat), seen[1]],
                            about_the_gateway) == []


def test_a_proposed_scale_fits_the_policy_and_says_what_the_evidence_asked_for() -> None:
    from agent.remediation.policy import DEFAULT_POLICY, load_policy
    from agent.sizing import within_bounds
    from agent.verdict import Verdict

    def proposal(replicas: int) -> Verdict:
        return Verdict.model_validate({
            "status": "incident", "summary": "falling behind", "confidence": 0.8,
            "remediation": {"action": {"action": "scale", "namespace": "team-mm--prod", "name": "mm-solver",
                                       "replicas": replicas}, "rationale": "1 replica delivers 0.7/s"}})

    bounds = load_policy(DEFAULT_POLICY).scale_bounds
    wide = proposal(6)
    assert within_bounds(wide, bounds) == ["scale sized 6 → 5: the policy's bounds for team-mm--prod/mm-solver"]
    assert wide.remediation is not None and wide.remediation.action.replicas == 5
    assert wide.remediation.command is not None and "--replicas=5" in wide.remediation.command
    assert "asks for 6 replicas" in wide.remediation.rationale
    fits = proposal(3)
    assert within_bounds(fits, bounds) == [] and fits.remediation is not None
    assert fits.remediation.action.replicas == 3
    assert bounds("kube-system", "coredns") is None, "a rule that allows no scaling bounds nothing"


def test_a_callers_errors_lead_through_a_working_middle_hop_to_what_is_down() -> None:
    from agent.findings import failing_upstream

    bff, legality, store = ("crew", "roster-bff"), ("crew", "legality-svc"), ("crew", "pairing-cache")
    crashing = {"desired": 3, "available": 0, "revision": 2,
                "pods": [{"name": "pairing-cache-1", "phase": "Running", "ready": False,
                          "waiting_reason": "CrashLoopBackOff"}]}
    states = {bff: {"desired": 3, "available": 3, "pods": []}, legality: {"desired": 2, "available": 2, "pods": []},
              store: crashing}
    aliases = {("crew", "roster-web"): "roster-bff", ("crew", "ftl-legality"): "legality-svc",
               ("crew", "pairing-store"): "pairing-cache"}
    namespace_errors = {"samples": [{"service": "roster-web", "status": "error",
                                     "message": "publish 502: legality-svc.crew.svc:8080 returned 500"}]}
    own_errors = {"samples": [{"service": "ftl-legality", "status": "error",
                               "message": "check failed: dial tcp pairing-store.crew.svc:6379: connection refused"}]}
    assert failing_upstream(legality, [namespace_errors], states, aliases=aliases) is None, \
        "the namespace's newest errors say nothing of what failed the middle hop"
    assert failing_upstream(legality, [namespace_errors, own_errors], states, aliases=aliases) == store


def test_the_small_model_is_offered_what_unschedulable_pods_can_mean() -> None:
    from agent.guided.verdicts import consistent_options

    pending = {"namespace": "fleet", "name": "writer", "desired": 3, "available": 0, "images": ["w:2"],
               "pods": [{"name": "writer-1", "phase": "Pending", "ready": False}],
               "events": [{"reason": "FailedScheduling", "message": "0/4 nodes are available: 4 Insufficient memory."}],
               "conditions": [{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}]}
    assert consistent_options({**pending, "revision": 2}, set()) == (["config_change", "resource_exhaustion"],
                                                                     ["rollback", "none"])
    assert consistent_options({**pending, "revision": 1}, set()) == (["resource_exhaustion"], ["none"])


def test_a_workloads_events_are_its_own_and_its_generated_objects_not_a_siblings_with_a_longer_name() -> None:
    from tools.kubernetes.tools import _owned

    assert _owned(event("ScalingReplicaSet", "Scaled down", kind="Deployment", name="docket"), "docket")
    assert _owned(event("SuccessfulCreate", "Created pod", kind="ReplicaSet", name="docket-7d9f8c6b5"), "docket")
    assert _owned(event("Killing", "Stopping", kind="Pod", name="docket-7d9f8c6b5-x2x9z"), "docket")
    assert _owned(event("Killing", "Stopping", kind="Pod", name="docket-2"), "docket")
    sibling = "docket-v2"
    assert not _owned(event("ScalingReplicaSet", "Scaled down", kind="Deployment", name=sibling), "docket")
    assert not _owned(event("SuccessfulCreate", "Created", kind="ReplicaSet", name=f"{sibling}-7d9f8c6b5"), "docket")
    assert not _owned(event("Killing", "Stopping", kind="Pod", name=f"{sibling}-7d9f8c6b5-x2x9z"), "docket")
    assert not _owned(event("Killing", "Stopping", kind="Pod", name=f"{sibling}-0"), "docket")


def test_a_pod_no_node_can_take_is_not_reported_as_assigned_to_one(tmp_path) -> None:  # type: ignore[no-untyped-def]
    from tools.kubernetes.tools import get_deployment
    from tools.replay import replay_sources
    from tools.replay.loading import load_scenario

    path = tmp_path / "pending-writer" / "scenario.yaml"
    path.parent.mkdir()
    path.write_text("""
id: pending-writer
title: pods that no node can take
question: "why is the writer not running?"
clock: {now: "2026-03-01T10:30:00Z"}
world:
  start: "2026-03-01T10:00:00Z"
  namespace: fleet
  deployments:
    - name: writer
      image: registry.example/writer:2
      replicas:
        - {at: "2026-03-01T10:00:00Z", replicas: 2}
        - at: "2026-03-01T10:10:00Z"
          replicas: 2
          image: registry.example/writer:3
          pod_state: pending
          reason: "0/4 nodes are available: 4 Insufficient memory."
""")
    detail = get_deployment(replay_sources(load_scenario(path)), "fleet", "writer")
    pending = [p for p in detail.pods if p.phase == "Pending"]  # type: ignore[union-attr]
    assert pending and all(p.node is None and p.ip is None for p in pending)
    assert all(p.node for p in detail.pods if p.phase == "Running")  # type: ignore[union-attr]
    names = {p.name for p in pending}
    assigned = [e for e in detail.events if e.reason == "Scheduled" and e.name in names]  # type: ignore[union-attr]
    assert assigned == [] and any(e.reason == "FailedScheduling" for e in detail.events)  # type: ignore[union-attr]


def test_pods_whose_spec_names_something_missing_are_a_release_to_undo_not_replicas_to_add() -> None:
    from agent.findings import serving_failure, spec_blocked

    config = {"desired": 2, "available": 0, "revision": 2,
              "pods": [{"name": "w-1", "phase": "Pending", "waiting_reason": "CreateContainerConfigError"}],
              "events": [{"reason": "Failed", "type": "Warning",
                          "message": "Error: couldn't find key AMQP_URI in Secret pay/worker-env"}]}
    failure = serving_failure(config)
    assert failure is not None and (failure.category, failure.action) == ("config_change", "rollback")
    assert "AMQP_URI" in failure.why
    mounting = {"desired": 1, "available": 0, "revision": 1,
                "pods": [{"name": "w-1", "phase": "Pending", "waiting_reason": "ContainerCreating"}],
                "events": [{"reason": "FailedMount", "type": "Warning",
                            "message": 'MountVolume.SetUp failed for volume "mtls" : secret "m" not found'}]}
    unrolled = serving_failure(mounting)
    assert unrolled is not None and (unrolled.category, unrolled.action) == ("config_change", "none")
    assert spec_blocked({**mounting, "events": []}) is None, "every pod is ContainerCreating for a moment"
