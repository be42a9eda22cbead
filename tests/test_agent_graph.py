"""The investigation graph driven by a scripted model through the real tools on the Incident-5 replay."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agent.llm.base import AssistantTurn, ToolCall
from agent.llm.scripted import ScriptedModel, ScriptExhausted, tool_turn, verdict_turn
from agent.run import investigate
from agent.state import Budgets
from tools.toolkit import Sources

NS = "sock-shop"
QUESTION = "why are shipments not going out?"


def good_verdict(**overrides: Any) -> dict[str, Any]:
    verdict = {
        "status": "incident",
        "summary": "queue-master is scaled to 0; shipping-task has no consumer and is growing.",
        "root_cause": {"category": "consumer_unavailable",
                       "component": {"kind": "Deployment", "namespace": NS, "name": "queue-master"},
                       "explanation": "The only consumer of shipping-task was scaled to 0 at 14:43."},
        "evidence": [
            {"signal": "consumer_logs", "claim": "queue-master silent since 14:43", "tool_call_id": "c3",
             "observed": {"total": 0}},
            {"signal": "replicas", "claim": "desired 0, available 0", "tool_call_id": "c4",
             "observed": {"desired": 0, "available": 0}},
            {"signal": "queue_consumers", "claim": "0 consumers", "tool_call_id": "c5", "observed": {"consumers": 0}},
            {"signal": "queue_depth", "claim": "5 messages waiting", "tool_call_id": "c5",
             "observed": {"messages": 5}},
        ],
        "ruled_out": ["broker down: the queue API answers"],
        "impact": {"broken_flow": "shipments", "backlog": 5, "since": "2025-11-09T14:43:00Z"},
        "confidence": 0.9,
        "remediation": {"action": "scale", "namespace": NS, "name": "queue-master", "replicas": 1, "risk": "low",
                        "rationale": "restore the consumer", "verification": ["consumers >= 1"]},
        "security_notes": [], "answer": None, "also_noticed": [],
    }
    verdict.update(overrides)
    return verdict


def realistic_script() -> list[Any]:
    """What a capable model does: discover, make a mistake, correct it, fan out in parallel, conclude."""
    return [
        tool_turn(("list_namespaces", {}, "c1"), ("get_queue_stats", {}, "c2")),
        tool_turn(("search_logs", {"query": f"kube_namespace:{NS} service:queue-master",
                                   "start": "2025-11-09T14:43:00Z"}, "c3"),
                  ("get_deployment", {"namespace": NS, "name": "queue-master"}, "c4"),
                  ("get_queue_stats", {"queue": "shipping-task"}, "c5"),
                  ("get_metric", {"query": "avg:rabbitmq.queue.mesages{rabbitmq_queue:shipping-task}"}, "c6")),
        tool_turn(("get_metric", {"query": "avg:rabbitmq.queue.messages{rabbitmq_queue:shipping-task}",
                                  "start": "now-15m"}, "c7")),
        AssistantTurn(content="The consumer is gone; ready to conclude."),
        verdict_turn(good_verdict()),
    ]


def test_realistic_investigation_end_to_end(incident5: Sources) -> None:
    model = ScriptedModel(realistic_script())
    verdict = investigate(QUESTION, model, incident5)
    model.assert_done()
    assert verdict.trace is not None
    trace = verdict.trace
    assert [(c.id, c.name, c.ok) for c in trace.tool_calls] == [
        ("c1", "list_namespaces", True), ("c2", "get_queue_stats", True), ("c3", "search_logs", True),
        ("c4", "get_deployment", True), ("c5", "get_queue_stats", True), ("c6", "get_metric", False),
        ("c7", "get_metric", True)]
    assert trace.validation == []
    assert trace.llm_calls == 5 and trace.stop_reason == "verdict"
    assert verdict.model_dump(exclude={"trace"}) == {
        **good_verdict(),
        "remediation": {
            "action": {"action": "scale", "kind": "Deployment", "namespace": NS, "name": "queue-master",
                       "replicas": 1},
            "command": "kubectl -n sock-shop scale deployment/queue-master --replicas=1",
            "risk": "low", "rationale": "restore the consumer", "verification": ["consumers >= 1"]},
        "impact": {"broken_flow": "shipments", "backlog": 5, "since": "2025-11-09T14:43:00Z"},
        "limitations": [],  # an unknown metric is a bad query: Datadog answered
    }
    # The unknown metric came back as a typed error the model could act on, with close names.
    tool_messages = {m["tool_call_id"]: json.loads(m["content"]) for m in model.calls[2].messages
                     if m["role"] == "tool"}
    assert tool_messages["c6"]["error"] == "unknown_metric"
    assert "rabbitmq.queue.messages" in tool_messages["c6"]["hints"][0]
    # The playbook tracker reminded the model what was left after the first batch.
    reminder = model.calls[1].messages[-1]["content"]
    assert reminder.startswith("[runtime] Playbook signals checked: queue_consumers (c2), queue_depth (c2).")
    assert "Not yet checked: consumer_logs, replicas." in reminder


def test_invalid_arguments_and_hallucinated_tools_become_error_results(incident5: Sources) -> None:
    model = ScriptedModel([
        AssistantTurn(tool_calls=[
            ToolCall(id="a", name="get_deployment", arguments={"namespace": 7, "nme": "x"}),
            ToolCall(id="b", name="restart_everything", arguments={}),
            ToolCall(id="c", name="search_logs", arguments="{not json"),
            ToolCall(id="d", name="search_logs", arguments={"query": "service:(broken"}),
        ]),
        AssistantTurn(content="nothing usable"),
        verdict_turn({"status": "inconclusive", "summary": "could not query", "confidence": 0.1}),
    ])
    verdict = investigate(QUESTION, model, incident5)
    results = {m["tool_call_id"]: json.loads(m["content"]) for m in model.calls[1].messages if m["role"] == "tool"}
    assert results["a"]["error"] == "bad_argument"
    assert "namespace: Input should be a valid string" in results["a"]["message"]
    assert "nme: Extra inputs are not permitted" in results["a"]["message"]
    assert results["b"] == {"error": "bad_argument", "message": "there is no tool named 'restart_everything'",
                            "hints": ["available tools: list_namespaces, get_deployment, list_events, search_logs, "
                                      "get_metric, get_queue_stats"]}
    assert results["c"]["error"] == "bad_argument" and "not valid JSON" in results["c"]["message"]
    assert results["d"]["error"] == "bad_query"
    assert verdict.status == "inconclusive"
    assert [c.ok for c in verdict.trace.tool_calls] == [False, False, False, False]  # type: ignore[union-attr]


def test_repeated_call_is_answered_from_the_first_result(incident5: Sources) -> None:
    model = ScriptedModel([
        tool_turn(("get_queue_stats", {"vhost": "/", "queue": "shipping-task"}, "q1")),
        tool_turn(("get_queue_stats", {"queue": "shipping-task", "vhost": "/"}, "q2")),
        AssistantTurn(content="done"),
        verdict_turn({"status": "inconclusive", "summary": "only looked at the queue", "confidence": 0.2}),
    ])
    verdict = investigate(QUESTION, model, incident5)
    repeat = next(json.loads(m["content"]) for m in model.calls[2].messages if m.get("tool_call_id") == "q2")
    assert repeat["note"] == "repeated call: same result as q1"
    assert repeat["consumers"] == 0
    assert [c.ms for c in verdict.trace.tool_calls][1] == 0.0  # type: ignore[union-attr]


def test_budget_exhaustion_still_returns_a_verdict(incident5: Sources) -> None:
    looping = [tool_turn(("get_queue_stats", {"queue": "shipping-task"}, f"l{i}")) for i in range(2)]
    model = ScriptedModel([*looping, verdict_turn({"status": "inconclusive", "summary": "ran out",
                                                   "confidence": 0.3})])
    verdict = investigate(QUESTION, model, incident5, budgets=Budgets(max_llm_calls=2))
    model.assert_done()
    assert verdict.status == "inconclusive"
    assert verdict.trace is not None and verdict.trace.stop_reason == "model-call budget (2)"


def test_tool_budget_and_invalid_verdicts_fall_back_to_inconclusive(incident5: Sources) -> None:
    model = ScriptedModel([
        tool_turn(("list_namespaces", {}, "t1"), ("get_queue_stats", {}, "t2"),
                  ("list_events", {"namespace": NS}, "t3")),
        AssistantTurn(content="not json at all"),
        AssistantTurn(content='{"status": "incident"}'),
    ])
    verdict = investigate(QUESTION, model, incident5, budgets=Budgets(max_tool_calls=2))
    model.assert_done()
    assert verdict.status == "inconclusive" and verdict.remediation is None and verdict.confidence == 0.0
    assert verdict.trace is not None
    assert verdict.trace.stop_reason == "invalid verdict"
    assert [c.id for c in verdict.trace.tool_calls] == ["t1", "t2"]
    assert verdict.summary.startswith("Inconclusive: the model produced no valid verdict")
    repair = model.calls[-1].messages[-1]["content"]
    assert repair.startswith("That verdict is invalid:")


def test_validator_catches_nonexistent_calls_wrong_numbers_and_unknown_components(incident5: Sources) -> None:
    forged = good_verdict(evidence=[
        {"signal": "replicas", "claim": "desired 0", "tool_call_id": "c99", "observed": {"desired": 0}},
        {"signal": "queue_depth", "claim": "57 messages", "tool_call_id": "c5", "observed": {"messages": 57}},
        {"signal": "queue_consumers", "claim": "0 consumers", "tool_call_id": "c3", "observed": {"consumers": 0}},
        {"signal": "queue_consumers", "claim": "0 consumers", "tool_call_id": "c5", "observed": {"consumers": 0}},
    ])
    script = realistic_script()
    script[-1] = verdict_turn(forged)
    verdict = investigate(QUESTION, ScriptedModel(script), incident5)
    assert verdict.trace is not None
    assert verdict.trace.validation == [
        "dropped evidence (replicas): cites tool call 'c99', which was never made",
        "dropped evidence (queue_depth): observed messages=57 but c5 returned [5]",
        "dropped evidence (queue_consumers): signal queue_consumers cannot come from search_logs (c3)",
        "confidence capped 0.90 → 0.50: evidence covers a single signal",
    ]
    assert [e.tool_call_id for e in verdict.evidence] == ["c5"]
    assert verdict.status == "incident" and verdict.confidence == 0.5

    invented = good_verdict(root_cause={"category": "consumer_unavailable", "explanation": "made up",
                                        "component": {"kind": "Deployment", "namespace": NS, "name": "order-router"}})
    script = realistic_script()
    script[-1] = verdict_turn(invented)
    verdict = investigate(QUESTION, ScriptedModel(script), incident5)
    assert verdict.status == "inconclusive" and verdict.root_cause is None and verdict.remediation is None
    assert verdict.trace is not None
    assert verdict.trace.validation[0] == (
        "component Deployment sock-shop/order-router was never returned by a tool: rejected")


def test_validator_removes_scale_to_zero_and_unseen_targets(incident5: Sources) -> None:
    script = realistic_script()
    script[-1] = verdict_turn(good_verdict(remediation={"action": "scale", "namespace": NS, "name": "queue-master",
                                                        "replicas": 0}))
    verdict = investigate(QUESTION, ScriptedModel(script), incident5)
    assert verdict.remediation is None
    assert verdict.trace is not None and "never proposes taking capacity away" in verdict.trace.validation[0]
    script = realistic_script()
    script[-1] = verdict_turn(good_verdict(remediation={"action": "rollout_restart", "namespace": NS,
                                                        "name": "shipping"}))
    verdict = investigate(QUESTION, ScriptedModel(script), incident5)
    assert verdict.remediation is None
    assert verdict.trace is not None
    assert verdict.trace.validation == [
        "remediation target Deployment sock-shop/shipping was not seen by get_deployment: removed"]


def test_scripted_model_fails_on_unexpected_and_leftover_turns(incident5: Sources) -> None:
    with pytest.raises(ScriptExhausted):
        investigate(QUESTION, ScriptedModel([tool_turn(("list_namespaces", {}))]), incident5)
    model = ScriptedModel([AssistantTurn(content="x"), verdict_turn(good_verdict()), AssistantTurn(content="y")])
    investigate(QUESTION, model, incident5)
    with pytest.raises(AssertionError, match="1 scripted turn"):
        model.assert_done()
