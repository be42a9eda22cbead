"""The playbook baseline through the CLI (the issue's done-when), chat follow-ups, and the verdict schema."""

from __future__ import annotations

import json
import re
from pathlib import Path

from typer.testing import CliRunner

from agent.baseline.policy import PlaybookPolicy
from agent.cli import app
from agent.drafts import VerdictDraft
from agent.run import ChatSession
from agent.verdict import Verdict
from tools.replay import replay_sources

runner = CliRunner()
QUESTION = "why are shipments not going out?"
SNAPSHOT = Path(__file__).parent / "snapshots" / "verdict.schema.json"


def ask_json(scenario: str) -> dict:
    result = runner.invoke(app, ["ask", QUESTION, "--scenario", scenario, "--model", "playbook", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_playbook_finds_incident_5() -> None:
    verdict = ask_json("incident-5")
    assert verdict["status"] == "incident"
    assert verdict["root_cause"]["category"] == "consumer_unavailable"
    assert verdict["root_cause"]["component"] == {"kind": "Deployment", "namespace": "sock-shop",
                                                  "name": "queue-master"}
    assert verdict["remediation"]["action"] == {"action": "scale", "kind": "Deployment", "namespace": "sock-shop",
                                                "name": "queue-master", "replicas": 1}
    assert verdict["remediation"]["command"] == "kubectl -n sock-shop scale deployment/queue-master --replicas=1"
    cited = {e["tool_call_id"] for e in verdict["evidence"]}
    assert len(cited) >= 4
    assert {e["signal"] for e in verdict["evidence"]} >= {"consumer_logs", "replicas", "queue_consumers",
                                                         "queue_depth"}
    assert verdict["trace"]["model"] == "playbook" and verdict["trace"]["validation"] == []


def test_playbook_calls_the_healthy_twin_healthy() -> None:
    verdict = ask_json("incident-5-healthy")
    assert (verdict["status"], verdict["remediation"], verdict["root_cause"]) == ("healthy", None, None)


def test_progress_goes_to_stderr_and_readable_verdict_to_stdout() -> None:
    result = runner.invoke(app, ["ask", QUESTION, "--scenario", "incident-5", "--model", "playbook"])
    assert result.exit_code == 0
    assert "investigating with playbook [baseline] on replay:incident-5" in result.stderr
    assert "✓ pb_1 list_namespaces({}) " in result.stderr
    assert "INCIDENT" in result.stdout and "kubectl -n sock-shop scale deployment/queue-master --replicas=1" in (
        result.stdout.replace("\n", " "))
    assert "(deterministic baseline, no LLM)" in result.stdout


def test_cli_input_errors_are_clear() -> None:
    both = runner.invoke(app, ["ask", QUESTION, "--scenario", "incident-5", "--live", "--model", "playbook"])
    assert both.exit_code == 2
    assert both.stderr.strip() == (
        "error: choose exactly one of --scenario ID_OR_PATH (recorded replay) or --live")
    unknown = runner.invoke(app, ["ask", QUESTION, "--scenario", "incident-5", "--model", "gpt5"])
    assert unknown.exit_code == 2 and unknown.stderr.startswith("error: unknown model 'gpt5'; use playbook")
    missing = runner.invoke(app, ["ask", QUESTION, "--scenario", "nowhere", "--model", "playbook"])
    assert missing.exit_code == 2 and "error: no scenario 'nowhere'" in missing.stderr
    assert "Traceback" not in both.output + unknown.output + missing.output


def test_chat_keeps_the_conversation() -> None:
    session = ChatSession(PlaybookPolicy(), replay_sources("incident-5"))
    first = session.ask(QUESTION)
    assert first.verdict is not None and first.verdict.status == "incident"
    again = session.ask("show me the queue again")
    assert again.answer is not None
    assert re.match(r"pb_\d+: shipping-task: 5 messages \(5 ready, 0 unacked\), 0 consumers", again.answer)
    what_if = session.ask("what if I restart shipping instead?")
    assert what_if.answer is not None
    assert what_if.answer.startswith("shipping is at 1/1 available and is not the cause; changing it would not help.")


def test_chat_cli_transcript() -> None:
    result = runner.invoke(app, ["chat", "--scenario", "incident-5", "--model", "playbook"],
                           input=f"{QUESTION}\nwhat if I restart shipping instead?\nexit\n")
    assert result.exit_code == 0, result.output
    assert "INCIDENT" in result.stdout
    assert "agent> shipping is at 1/1 available and is not the cause" in result.stdout


def test_verdict_schema_snapshot() -> None:
    result = runner.invoke(app, ["schema", "verdict"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == Verdict.model_json_schema()
    assert json.loads(result.stdout) == json.loads(SNAPSHOT.read_text()), (
        "the Verdict schema changed: review it, then refresh tests/snapshots/verdict.schema.json")
    assert set(VerdictDraft.model_json_schema()["properties"]) == set(Verdict.model_json_schema()["properties"]) - {
        "trace", "answer", "limitations"}, "everything but what code builds (trace, answer, limitations) is drafted"


def test_the_cli_starts_without_loading_the_graph_or_any_client() -> None:
    import subprocess
    import sys

    heavy = ["langgraph", "openai", "kubernetes", "datadog_api_client", "evals.runner", "agent.run"]
    code = f"import sys, agent.cli; print([m for m in {heavy!r} if m in sys.modules])"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]", f"`sre-agent --help` would wait for {loaded}"
