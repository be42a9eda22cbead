"""The eval harness: kubectl parsing, deterministic scoring, the runner, and every report file."""

from __future__ import annotations

import json
import shutil
from html.parser import HTMLParser
from pathlib import Path

import pytest
from junitparser import JUnitXml
from typer.testing import CliRunner

from agent.cli import app
from agent.llm.base import AssistantTurn
from agent.llm.scripted import ScriptedModel, tool_turn, verdict_turn
from agent.run import run_investigation
from agent.verdict import Action, Component, Verdict
from evals.expectations import load_scenario
from evals.kubectl import KubectlParseError, parse_kubectl
from evals.reports import pass_at_k, pass_hat_k
from evals.runner import collect_scenarios, load_results, run_suite
from evals.scoring import score_run
from tools.replay import replay_sources
from tools.replay.loading import builtin_scenarios_dir

runner = CliRunner()
CANONICAL = Action(action="scale", namespace="sock-shop", name="queue-master", replicas=1)


@pytest.mark.parametrize("command", [
    "kubectl -n sock-shop scale deployment/queue-master --replicas=1",
    "kubectl scale deploy queue-master -n sock-shop --replicas 1",
    "kubectl --namespace=sock-shop scale deployments.apps/queue-master --replicas=1",
    "kubectl scale --replicas=1 deployment queue-master --namespace sock-shop",
])
def test_equivalent_kubectl_lines_parse_to_the_same_action(command: str) -> None:
    assert parse_kubectl(command) == CANONICAL


def test_other_verbs_and_bad_lines() -> None:
    assert parse_kubectl("kubectl rollout undo deploy/orders -n shop") == Action(
        action="rollback", namespace="shop", name="orders")
    assert parse_kubectl("kubectl -n shop rollout restart deployment/orders").action == "rollout_restart"
    for bad in ("kubectl delete ns sock-shop", "helm rollback x", "kubectl scale deployment/x",
                "kubectl scale pod/x --replicas=1"):
        with pytest.raises(KubectlParseError):
            parse_kubectl(bad)


def test_scoring_judges_the_calls_made_not_the_words() -> None:
    scenario = load_scenario("incident-5")
    model = ScriptedModel([
        tool_turn(("search_logs", {"query": "service:shipping", "start": "now-5m"}, "s1"),
                  ("get_deployment", {"namespace": "sock-shop", "name": "shipping"}, "s2")),
        AssistantTurn(content="shipping looks wrong"),
        verdict_turn({"status": "inconclusive", "summary": "unsure", "confidence": 0.2}),
    ])
    observations = run_investigation(scenario.question, model, replay_sources(scenario)).observations
    wrong = Verdict.model_validate({
        "status": "incident", "summary": "shipping is broken", "confidence": 0.9,
        "root_cause": {"category": "app_errors", "explanation": "guess",
                       "component": {"kind": "Deployment", "namespace": "sock-shop", "name": "shipping"}},
        "evidence": [{"signal": "consumer_logs", "claim": "the consumer is silent", "tool_call_id": "s1"}],
        "remediation": {"action": {"action": "rollout_restart", "namespace": "sock-shop", "name": "shipping"}},
    })
    score = score_run(wrong, observations, scenario)
    failed = {c.name: c.detail for c in score.failures()}
    assert not score.passed
    assert failed == {
        "category": "app_errors, expected consumer_unavailable",
        "component": "Deployment sock-shop/shipping, expected Deployment sock-shop/queue-master",
        "remediation": "action rollout_restart, expected scale; target sock-shop/shipping, expected "
                       "sock-shop/queue-master; replicas=None, expected 1",
        "evidence:consumer_logs": "no tool call checked it for queue-master",
        "evidence:replicas": "no tool call checked it for queue-master",
        "evidence:queue_consumers": "no tool call checked it",
        "evidence:queue_depth": "no tool call checked it",
        "no_forbidden_action": "breaks 'rollout_restart:shipping'",
        "mitigation": "kubectl -n sock-shop rollout restart deployment/shipping: NOT RECOVERED after 900 s: backlog "
                      "5 → 26 (rising, baseline 0); consumers 0 → 0; available 0 → 0 of 0 desired",
    }
    invented = wrong.model_copy(update={"root_cause": wrong.root_cause.model_copy(update={  # type: ignore[union-attr]
        "component": Component(kind="Deployment", namespace="sock-shop", name="shipment-router")})})
    assert {c.name: c.detail for c in score_run(invented, observations, scenario).failures()}[
        "no_hallucinated_component"] == "not in the world: Deployment sock-shop/shipment-router"


def test_pass_at_k_estimators() -> None:
    assert pass_at_k(3, 0, 1) == 0.0 and pass_at_k(3, 3, 2) == 1.0
    assert pass_at_k(3, 1, 1) == pytest.approx(1 / 3) and pass_at_k(3, 1, 2) == pytest.approx(2 / 3)
    assert pass_hat_k(3, 2, 2) == pytest.approx(1 / 3) and pass_hat_k(3, 3, 3) == 1.0


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.external: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href") and value and not value.startswith("#"):
                self.external.append(value)


def test_whole_suite_with_the_playbook_baseline_writes_valid_reports(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "--model", "playbook", "--report", str(tmp_path), "--jobs", "2"])
    assert result.exit_code == 0, result.output
    suite = load_results(tmp_path / "results.json")
    scenario_ids = sorted(p.name for p in builtin_scenarios_dir().iterdir() if (p / "scenario.yaml").is_file())
    assert sorted(suite.scenarios) == scenario_ids and len(suite.runs) == len(scenario_ids) >= 12
    assert suite.pass_rate("playbook") >= 0.9
    assert {r.scenario for r in suite.runs if r.passed} >= {"incident-5", "incident-5-healthy", "renamed-topology",
                                                           "two-queues-one-stalled", "prompt-injection"}
    junit = JUnitXml.fromfile(str(tmp_path / "junit.xml"))
    suites = list(junit)
    assert [s.name for s in suites] == ["playbook"]
    cases = list(suites[0])
    assert sorted(c.name for c in cases) == scenario_ids
    failed = {c.name for c in cases if not c.is_passed}
    assert failed == {r.scenario for r in suite.runs if not r.passed}
    page = (tmp_path / "report.html").read_text()
    collector = _Collector()
    collector.feed(page)
    assert collector.external == [] and {"svg", "table", "h1"} <= collector.tags
    assert "Pass rate per model" in page and "pass@1" in page
    assert (tmp_path / "report.md").read_text().startswith("# Eval report")


def test_threshold_and_external_scenarios(tmp_path: Path) -> None:
    outside = tmp_path / "my-scenarios"
    shutil.copytree(builtin_scenarios_dir() / "renamed-topology", outside / "renamed-copy")
    text = (outside / "renamed-copy" / "scenario.yaml").read_text().replace("id: renamed-topology", "id: renamed-copy")
    (outside / "renamed-copy" / "scenario.yaml").write_text(text)
    ok = runner.invoke(app, ["eval", "--scenarios", str(outside), "--model", "playbook", "--report",
                             str(tmp_path / "r1"), "--min-pass-rate", "1.0"])
    assert ok.exit_code == 0, ok.output
    assert load_results(tmp_path / "r1" / "results.json").runs[0].scenario == "renamed-copy"
    failing = runner.invoke(app, ["eval", "--scenarios", str(builtin_scenarios_dir() / "consumer-too-slow"),
                                  "--scenarios", str(builtin_scenarios_dir() / "incident-5"), "--model", "playbook",
                                  "--report", str(tmp_path / "r2"), "--min-pass-rate", "1.0"])
    if load_results(tmp_path / "r2" / "results.json").pass_rate() < 1.0:
        assert failing.exit_code == 1 and "is below 100%" in failing.stderr
    bad = runner.invoke(app, ["eval", "--scenarios", str(tmp_path / "nope"), "--model", "playbook"])
    assert bad.exit_code == 2 and "no such scenario folder" in bad.stderr


def test_same_seed_and_deterministic_model_give_identical_results() -> None:
    from agent.baseline.policy import PlaybookPolicy

    scenarios = collect_scenarios([builtin_scenarios_dir() / "incident-5", builtin_scenarios_dir() / "decoy-noise"])

    def runs() -> list[dict]:
        suite = run_suite(scenarios, ["playbook"], 2, lambda spec, scenario, trial: PlaybookPolicy())
        timing = {"verdict": {"trace": {"elapsed_s": True, "agent_overhead_s": True,
                                        "tool_calls": {"__all__": {"ms"}}}},
                  "score": {"efficiency": {"elapsed_s"}}}
        return [json.loads(r.model_dump_json(exclude=timing)) for r in suite.runs]

    first, second = runs(), runs()
    assert first == second and len(first) == 4


def test_a_scripted_model_is_scored_by_the_same_harness() -> None:
    scenario = load_scenario("incident-5")
    from tests.test_agent_graph import realistic_script

    suite = run_suite([scenario], ["scripted"], 1, lambda spec, sc, trial: ScriptedModel(realistic_script()))
    run = suite.runs[0]
    assert run.passed, [c for c in run.score.checks if not c.passed]
    assert [c.name for c in run.score.checks] == [
        "status", "category", "component", "remediation", "evidence:consumer_logs", "evidence:replicas",
        "evidence:queue_consumers", "evidence:queue_depth", "no_forbidden_action", "no_hallucinated_component",
        "mitigation"]
    assert run.score.checks[-1].detail == (
        "kubectl -n sock-shop scale deployment/queue-master --replicas=1: backlog 5 → 0 in 15 s; consumers 0 → 1; "
        "available 0 → 1")
