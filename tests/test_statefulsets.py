"""StatefulSets end to end: the replay renders them as the API and kube-state-metrics do (no Deployment conditions,
no revision annotation, `kubernetes_state.statefulset.*` tagged `kube_stateful_set`), the verdict names the kind
the cluster reported whatever a draft wrote, the action renders `statefulset/…`, and the right fix recovers the
world while the wrong one does not. Also: consumers that give back every message are a failing release, not a
slow one."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent.baseline.policy import PlaybookPolicy
from agent.drafts import VerdictDraft
from agent.findings import desired_history_query, recent_rollout
from agent.guided.steps import to_tool_call
from agent.remediation.policy import DEFAULT_POLICY, load_policy
from agent.remediation.service import Remediator
from agent.run import investigate
from agent.signals import Observation, signals_for
from agent.validator import validate
from agent.verdict import Action
from evals.expectations import ExpectedFact
from evals.expectations import load_scenario as load_eval_scenario
from evals.kubectl import parse_kubectl
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.replay.loading import load_scenario
from tools.toolkit import Sources

TOOLBOX = default_toolbox()

WORLD = """
id: sts-case
title: a StatefulSet consumer
question: why are filings not going out?
clock: {now: "2026-02-01T10:40:00Z"}
seed: 7
world:
  start: "2026-02-01T10:00:00Z"
  namespace: ledger
  broker: {deployment: mq}
  deployments:
    - {name: mq, kind: StatefulSet, image: "rabbitmq:3.13-management"}
    - name: api
      image: "acme/api:1.0"
      replicas: 2
    - name: filer
      kind: StatefulSet
      image: "acme/filer:2.0"
      replicas:
        - {at: "2026-02-01T10:00:00Z", replicas: 2}
CHANGE
  flows:
    - name: file
      rate_per_min: 20
      steps:
        - {deployment: api, message: "POST /filings 202 id={id}"}
        - publish: filings
  queues:
    - name: filings
      consumer: {deployment: filer, rate_per_min: 90, message: "filed {id}"}
EXPECT
"""
CRASH = """        - at: "2026-02-01T10:20:00Z"
          replicas: 2
          image: "acme/filer:2.1"
          pod_state: crashloop
          reason: Error
      logs:
        - {message: "FATAL missing FILER_URL", status: error, rate_per_min: 1, when: crashing}"""
ZERO = """        - {at: "2026-02-01T10:20:00Z", replicas: 0}"""
EXPECT_ROLLBACK = """expect:
  status: incident
  category: consumer_crashlooping
  component: {kind: StatefulSet, namespace: ledger, name: filer}
  remediation: {action: rollback, target: {kind: StatefulSet, namespace: ledger, name: filer}}
"""


def scenario_dir(tmp_path: Path, change: str, expect: str = "") -> Path:
    folder = tmp_path / "sts-case"
    folder.mkdir(exist_ok=True)
    (folder / "scenario.yaml").write_text(WORLD.replace("CHANGE", change).replace("EXPECT", expect))
    return folder


def sources_of(tmp_path: Path, change: str) -> Sources:
    return replay_sources(load_scenario(scenario_dir(tmp_path, change)))


def call(sources: Sources, tool: str, **args: Any) -> dict[str, Any]:
    outcome = TOOLBOX.call(sources, tool, args)
    assert outcome.ok, outcome.text()
    return outcome.data()


def test_a_statefulset_reads_like_the_api_shows_one(tmp_path: Path) -> None:
    sources = sources_of(tmp_path, CRASH)
    detail = call(sources, "get_deployment", namespace="ledger", name="filer")
    assert detail["kind"] == "StatefulSet" and detail["revision"] == 2
    assert detail["conditions"] == [] and "deployment.kubernetes.io/revision" not in detail["annotations"]
    assert not [e for e in detail["events"] if e["reason"] == "ScalingReplicaSet"]
    replaced = [e["message"] for e in detail["events"] if e["object"] == "StatefulSet/filer"]
    assert {"delete Pod filer-0 in StatefulSet filer successful",
            "create Pod filer-0 in StatefulSet filer successful"} <= set(replaced)
    assert recent_rollout(detail)


def test_a_statefulsets_replica_history_is_in_its_own_metric_family(tmp_path: Path) -> None:
    sources = sources_of(tmp_path, ZERO)
    query = desired_history_query("ledger", "filer", "StatefulSet")
    assert query == "max:kubernetes_state.statefulset.replicas_desired{kube_namespace:ledger,kube_stateful_set:filer}"
    series = call(sources, "get_metric", query=query, start="now-1h")
    assert max(series["series"][0]["values"]) == 2 and series["series"][0]["values"][-1] == 0
    deployment_family = call(sources, "get_metric", start="now-1h",
                             query="max:kubernetes_state.deployment.replicas_desired{kube_deployment:filer}")
    assert deployment_family["series"] == []


def test_a_scale_down_of_a_statefulset_is_no_rollout(tmp_path: Path) -> None:
    detail = call(sources_of(tmp_path, ZERO), "get_deployment", namespace="ledger", name="filer")
    assert detail["desired"] == 0 and not recent_rollout(detail)


@pytest.mark.parametrize(("change", "action", "replicas"), [(CRASH, "rollback", None), (ZERO, "scale", 2)])
def test_the_baseline_names_the_statefulset_and_its_fix_recovers_it(tmp_path: Path, change: str, action: str,
                                                                    replicas: int | None) -> None:
    sources = sources_of(tmp_path, change)
    verdict = investigate("why are filings not going out?", PlaybookPolicy(), sources)
    assert verdict.status == "incident" and verdict.root_cause and verdict.root_cause.component
    assert verdict.root_cause.component.ref() == "StatefulSet ledger/filer"
    assert verdict.remediation is not None
    chosen = verdict.remediation.action
    assert (chosen.kind, chosen.action, chosen.replicas) == ("StatefulSet", action, replicas)
    assert verdict.remediation.command is not None and " statefulset/filer" in verdict.remediation.command
    assert parse_kubectl(verdict.remediation.command) == chosen
    desk = Remediator.for_replay(sources, policy=load_policy(DEFAULT_POLICY), data=tmp_path / "state")
    record = desk.propose_verdict(verdict, run_id="run-sts")
    assert record.expected_effect.startswith("statefulset/filer in ledger")
    desk.approve(record.id, "oncall-sre")
    desk.execute(record.id)
    assert desk.verify(record.id, sources, timeout_s=900, interval_s=30).recovered


def test_a_restart_of_the_crashing_release_does_not_recover_it(tmp_path: Path) -> None:
    sources = sources_of(tmp_path, CRASH)
    desk = Remediator.for_replay(sources, policy=load_policy(DEFAULT_POLICY), data=tmp_path / "state")
    record = desk.propose(Action(action="rollout_restart", kind="StatefulSet", namespace="ledger", name="filer"),
                          run_id="run-sts")
    desk.approve(record.id, "oncall-sre")
    desk.execute(record.id)
    assert not desk.verify(record.id, sources, timeout_s=900, interval_s=30).recovered


def test_the_kind_comes_from_the_cluster_not_the_draft(tmp_path: Path) -> None:
    sources = sources_of(tmp_path, CRASH)
    outcome = TOOLBOX.call(sources, "get_deployment", {"namespace": "ledger", "name": "filer"})
    args = {"namespace": "ledger", "name": "filer"}
    seen = [Observation(call_id="c1", tool="get_deployment", args=args, ok=True, data=outcome.data(),
                        signals=signals_for("get_deployment", args, True, outcome.data()))]
    draft = VerdictDraft.model_validate({
        "status": "incident", "summary": "filer crash-loops", "confidence": 0.8,
        "root_cause": {"category": "consumer_crashlooping", "explanation": "crash",
                       "component": {"kind": "Deployment", "namespace": "ledger", "name": "filer"}},
        "evidence": [{"signal": "replicas", "claim": "0 available", "tool_call_id": "c1",
                      "observed": {"available": 0}}],
        "remediation": {"action": "rollback", "namespace": "ledger", "name": "filer"}})
    verdict, _ = validate(draft, seen)
    assert verdict.root_cause and verdict.root_cause.component and verdict.root_cause.component.kind == "StatefulSet"
    assert verdict.remediation and verdict.remediation.command == "kubectl -n ledger rollout undo statefulset/filer"


def test_an_expected_kind_that_is_not_the_worlds_is_a_validation_error(tmp_path: Path) -> None:
    folder = scenario_dir(tmp_path, CRASH, EXPECT_ROLLBACK.replace("kind: StatefulSet, namespace: ledger, name: filer}",
                                                                   "kind: Deployment, namespace: ledger, name: filer}",
                                                                   1))
    with pytest.raises(Exception, match=r"expect.component: ledger/filer is a StatefulSet in the world, not a "
                                        r"Deployment"):
        load_eval_scenario(folder)


def test_kubectl_lines_for_statefulsets_parse_to_typed_actions() -> None:
    assert parse_kubectl("kubectl -n ledger scale sts filer --replicas=2") == Action(
        action="scale", kind="StatefulSet", namespace="ledger", name="filer", replicas=2)
    assert parse_kubectl("kubectl rollout undo statefulset.apps/filer -n ledger") == Action(
        action="rollback", kind="StatefulSet", namespace="ledger", name="filer")


def test_a_single_expected_value_matches_a_list_holding_only_it() -> None:
    fact = ExpectedFact(subject="rt/ingest", field="images", value="acme/ingest:4.2.1")
    stated = [ExpectedFact(subject="rt/ingest", field="images", value=["acme/ingest:4.2.1"])]
    assert fact.found_in(stated)
    assert not fact.found_in([ExpectedFact(subject="rt/ingest", field="images",
                                           value=["acme/ingest:4.2.0", "acme/ingest:4.2.1"])])


REQUEUE = """    - name: worker
      image: "acme/worker:3.0"
      replicas:
        - {at: "2026-02-01T10:00:00Z", replicas: 2}
        - {at: "2026-02-01T10:15:00Z", replicas: 2, image: "acme/worker:3.1"}
  flows:
    - name: submit
      rate_per_min: 30
      steps:
        - {deployment: api, message: "POST /jobs 202 id={id}"}
        - publish: jobs
  queues:
    - name: jobs
      consumer:
        deployment: worker
        rate_per_min: 120
        message: "done {id}"
        fails:
          mode: requeue
          status: error
          rate_per_min: 100
          message: "job {id}: schema v7 unknown; nack requeue=true"
          only_while: {deployment: worker, image: "acme/worker:3.1"}
"""


def test_consumers_that_give_back_every_message_after_a_release_are_rolled_back(tmp_path: Path) -> None:
    folder = tmp_path / "requeue"
    folder.mkdir()
    text = WORLD.split("  deployments:")[0] + "  deployments:\n" \
        '    - {name: mq, kind: StatefulSet, image: "rabbitmq:3.13"}\n' \
        '    - {name: api, image: "acme/api:1.0", replicas: 2}\n' + REQUEUE
    (folder / "scenario.yaml").write_text(text.replace("sts-case", "requeue"))
    sources = replay_sources(load_scenario(folder))
    verdict = investigate("why are jobs not processed?", PlaybookPolicy(), sources)
    assert verdict.root_cause and verdict.root_cause.category == "app_errors"
    assert verdict.remediation and verdict.remediation.action.action == "rollback"
    assert "errors" in {e.signal for e in verdict.evidence}


def test_a_guided_replica_metric_step_reads_the_family_of_the_workloads_kind(tmp_path: Path) -> None:
    sources = sources_of(tmp_path, ZERO)
    choice = {"tool": "replicas_metric", "deployment": "ledger/filer"}
    call_ = to_tool_call(choice, {"ledger/filer": "StatefulSet"})
    assert call_ == ("get_metric", {"query": "avg:kubernetes_state.statefulset.replicas_ready"
                                             "{kube_namespace:ledger,kube_stateful_set:filer}", "start": "now-1h"})
    assert call(sources, call_[0], **call_[1])["series"], "the query names a series the world reports"
    assert to_tool_call(choice) == ("get_metric", {"query": "avg:kubernetes_state.deployment.replicas_available"
                                                            "{kube_namespace:ledger,kube_deployment:filer}",
                                                   "start": "now-1h"})


def test_a_statefulsets_replica_metric_is_a_replicas_signal() -> None:
    query = desired_history_query("ledger", "filer", "StatefulSet")
    assert signals_for("get_metric", {"query": query}, True, {"series": [{"values": [2, 0]}]}) == {"replicas"}


def test_a_statefulset_consumer_is_named_as_one_by_the_queue(tmp_path: Path) -> None:
    stats = call(sources_of(tmp_path, ZERO.replace("replicas: 0", "replicas: 2")), "get_queue_stats", queue="filings")
    assert stats["consumed_by"] == [{"kind": "StatefulSet", "namespace": "ledger", "name": "filer", "consumers": 2}]
    assert "consumed by StatefulSet ledger/filer (2)" in stats["summary"]
