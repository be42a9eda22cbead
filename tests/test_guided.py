"""Guided mode: constrained steps with enumerated arguments, compact results, a compact verdict expanded by code."""

from __future__ import annotations

import json

from agent.llm.base import AssistantTurn
from agent.llm.scripted import ScriptedModel
from agent.run import run_investigation
from evals.scoring import score_run
from tools.replay import replay_sources
from tools.replay.scenario import load_scenario


def step(**choice: object) -> AssistantTurn:
    return AssistantTurn(content=json.dumps(choice), prompt_tokens=100, completion_tokens=12)


def test_a_small_model_guided_through_incident_5_passes_scoring() -> None:
    scenario = load_scenario("incident-5")
    model = ScriptedModel([
        AssistantTurn(content="I think the queue"),
        step(tool="get_queue", queue="shipping-task"),
        step(tool="get_deployment", deployment="sock-shop/queue-master"),
        step(tool="search_logs", deployment="sock-shop/queue-master", window="5m"),
        AssistantTurn(content=json.dumps({
            "status": "incident", "category": "consumer_unavailable", "component": "sock-shop/queue-master",
            "summary": "queue-master is at 0 replicas so shipping-task has no consumer.",
            "evidence": ["call_4"], "remediation": "scale", "replicas": 1, "confidence": 0.85})),
    ], guided=True)
    result = run_investigation(scenario.question, model, replay_sources(scenario))
    model.assert_done()
    verdict = result.verdict
    assert verdict.trace is not None and verdict.trace.validation == []
    assert verdict.trace.stop_reason == "all core playbook signals checked"
    assert verdict.trace.llm_calls == 5
    assert [(c.id, c.name, c.args.get("queue") or c.args.get("name") or c.args.get("query"))
            for c in verdict.trace.tool_calls] == [
        ("call_1", "list_namespaces", None), ("call_2", "get_queue_stats", None),
        ("call_3", "get_deployment", None),
        ("call_4", "get_queue_stats", "shipping-task"), ("call_5", "get_deployment", "queue-master"),
        ("call_6", "search_logs", "kube_namespace:sock-shop service:queue-master")]
    assert verdict.remediation is not None
    assert verdict.remediation.command == "kubectl -n sock-shop scale deployment/queue-master --replicas=1"
    assert {(e.signal, e.tool_call_id) for e in verdict.evidence} == {
        ("queue_consumers", "call_4"), ("queue_depth", "call_4"), ("replicas", "call_5"),
        ("consumer_logs", "call_6"), ("queue_consumers", "call_2"), ("queue_depth", "call_2"), ("events", "call_5")}
    score = score_run(verdict, result.observations, scenario)
    assert score.passed, score.failures()

    first = model.calls[0]
    assert first.tool_names == [] and first.messages[-1]["content"] == (
        "Next step (JSON). Not yet checked: consumer_logs, replicas.")
    offered = {c["properties"]["tool"]["enum"][0]: c["properties"] for c in first.response_schema["anyOf"]}  # type: ignore[index]
    assert "list_namespaces" not in offered and "list_queues" not in offered and "list_deployments" not in offered
    assert "answer" not in offered, "no answer before the flagged deployment's pods were looked at"
    assert offered["get_queue"]["queue"]["enum"] == ["shipping-task"]
    assert "sock-shop/queue-master" in offered["get_deployment"]["deployment"]["enum"]
    assert model.calls[1].messages[-1]["content"].startswith("not a valid step")
    later = {c["properties"]["tool"]["enum"][0]: c["properties"] for c in model.calls[3].response_schema["anyOf"]}  # type: ignore[index]
    assert "get_queue" not in later, "a queue already fetched is not offered again"
    assert "sock-shop/queue-master" not in later["get_deployment"]["deployment"]["enum"]
    tool_reply = next(m for m in model.calls[3].messages if m.get("tool_call_id") == "call_4")
    assert len(tool_reply["content"]) <= 700 and json.loads(tool_reply["content"])["consumers"] == 0
    branches = model.calls[-1].response_schema["anyOf"]  # type: ignore[index]
    assert branches[0]["properties"]["evidence"]["items"]["enum"] == [
        "call_1", "call_2", "call_3", "call_4", "call_5", "call_6"]
    by_component = {b["properties"]["component"]["enum"][0]: b["properties"] for b in branches[1:]}
    scaled_to_zero = by_component["sock-shop/queue-master"]
    assert (scaled_to_zero["category"]["enum"], scaled_to_zero["remediation"]["enum"]) == (
        ["consumer_unavailable"], ["scale", "none"]), "a deployment at 0 can only be unavailable, fixed by scaling"
    assert "sock-shop/shipping" not in by_component, "a healthy deployment with no observed symptom can't be blamed"
    assert scaled_to_zero["replicas"]["minimum"] == 1


def test_a_full_deployment_is_blamed_only_through_an_observed_symptom() -> None:
    from agent.guided import verdict_schema
    from agent.signals import Observation

    table = Observation("c1", "get_deployment", {"namespace": "shop"}, True, {
        "namespace": "shop", "summary": "", "attention": [],
        "deployments": [{"name": "worker", "desired": 1, "available": 1, "images": ["w:1"]}]})
    growing = Observation("c2", "get_queue_stats", {"queue": "jobs"}, True, {
        "queue": "jobs", "consumers": 1, "messages": 90, "summary": "",
        "depth_trend": {"direction": "rising"}, "consumed_by": ["Deployment shop/worker (1 consumer)"]})
    assert len(verdict_schema([table], ["c1"])["anyOf"]) == 1, "healthy/inconclusive only"
    branch = verdict_schema([table, growing], ["c1", "c2"])["anyOf"][1]["properties"]
    assert (branch["component"]["enum"], branch["category"]["enum"], branch["remediation"]["enum"]) == (
        ["shop/worker"], ["consumer_too_slow"], ["scale"])
    assert branch["replicas"]["minimum"] == 2, "scaling a full 1/1 set only helps upward"


def test_consistent_options_follow_the_observed_state() -> None:
    from agent.guided import consistent_options

    crashing = {"desired": 1, "available": 0, "images": ["worker:2"],
                "pods": [{"waiting_reason": "CrashLoopBackOff"}]}
    assert consistent_options(crashing) == (
        ["consumer_crashlooping", "app_errors", "resource_exhaustion", "config_change"],
        ["rollout_restart", "none"])
    after_rollout = {**crashing, "annotations": {"deployment.kubernetes.io/revision": "2"}}
    assert consistent_options(after_rollout)[1] == ["rollback", "none"]
    assert consistent_options({"desired": 0, "available": 0, "images": ["rabbitmq:3.8"], "pods": []}) == (
        ["broker_unavailable"], ["scale", "none"])
    assert consistent_options({"desired": 1, "available": 0, "images": ["w:9"],
                               "pods": [{"waiting_reason": "ImagePullBackOff"}]}) == (["config_change"],
                                                                                     ["rollback", "none"])


def test_guided_verdict_cannot_name_an_undiscovered_component() -> None:
    scenario = load_scenario("incident-5")
    model = ScriptedModel([
        step(tool="answer"),
        AssistantTurn(content=json.dumps({
            "status": "incident", "category": "consumer_unavailable", "component": "sock-shop/made-up",
            "summary": "guess", "evidence": [], "remediation": "scale", "replicas": 1, "confidence": 0.9})),
    ], guided=True)
    verdict = run_investigation(scenario.question, model, replay_sources(scenario)).verdict
    assert verdict.status == "inconclusive" and verdict.remediation is None


def test_inconclusive_is_offered_only_when_evidence_is_missing_and_errors_blame_their_source() -> None:
    from agent.guided import verdict_schema
    from agent.signals import Observation, signals_for

    def obs(call_id: str, tool: str, args: dict, ok: bool, data: dict) -> Observation:
        return Observation(call_id, tool, args, ok, data, signals=signals_for(tool, args, ok, data))

    table = obs("c1", "get_deployment", {"namespace": "shop"}, True, {
        "namespace": "shop", "summary": "", "attention": [],
        "deployments": [{"name": "api", "desired": 1, "available": 1, "images": ["a:1"]},
                        {"name": "web", "desired": 1, "available": 1, "images": ["w:1"]}]})
    queues = obs("c2", "get_queue_stats", {}, True, {"summary": "", "attention": [], "queues": [
        {"queue": "jobs", "vhost": "/", "messages": 0, "consumers": 1, "publish_rate": 0.1, "deliver_rate": 0.1}]})
    calm = verdict_schema([table, queues], ["c1", "c2"])["anyOf"][0]["properties"]["status"]["enum"]
    assert calm == ["healthy"], "every signal answered and nothing is wrong: inconclusive would be a dodge"
    failed = obs("c3", "search_logs", {"query": "x"}, False, {"error": "rate_limited", "message": "429"})
    assert verdict_schema([table, queues, failed], ["c1", "c2"])["anyOf"][0]["properties"]["status"]["enum"] == [
        "healthy", "inconclusive"]
    errors = obs("c4", "search_logs", {"query": "kube_namespace:shop status:(error OR warn)"}, True, {
        "summary": "", "total": 40, "by_status": {"error": 40}, "by_service": {"api": 40}})
    blamed = [b["properties"]["component"]["enum"][0]
              for b in verdict_schema([table, queues, errors], ["c1", "c2", "c4"])["anyOf"][1:]]
    assert blamed == ["shop/api"], "only the deployment whose logs carry the errors can be blamed for them"
