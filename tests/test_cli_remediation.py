"""Issue 6's done-when through the CLI, on the Incident-5 replay: `ask --remediate` approved at the prompt, left
pending and approved by a second process, rejected; `approvals` and `audit`; nothing changes without an approval.

Every invocation rebuilds the replayed world from the scenario file, so "nothing changed" is read from the
approvals store and the audit log (no execution record), and "changed" from the verification report."""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from agent.cli import app
from agent.cli.ask_cmd import INTERACTIVE_ENV
from agent.remediation.flow import CHECKPOINTER_ENV
from agent.remediation.paths import DATA_ENV
from agent.remediation.policy import POLICY_ENV

runner = CliRunner()
QUESTION = "why are shipments not going out?"
ASK = ["ask", QUESTION, "--scenario", "incident-5", "--model", "playbook", "--remediate", "--approver", "oncall-sre"]
ROOT = Path(__file__).resolve().parent.parent

# Masking shortens the panel's first line (its padding is kept as printed); every other line is exact.
APPROVAL_PANEL = """\
╭────────────────────────────── approval needed ───────────────────────────────╮
│ approval ID · run RUN · expires NOW      │
│                                                                              │
│ Command                                                                      │
│   kubectl -n sock-shop scale deployment/queue-master --replicas=1            │
│                                                                              │
│ Evidence                                                                     │
│   queue-master is scaled to 0, so shipping-task has no consumer: 5 messages  │
│ are waiting and growing while producers keep publishing. Nothing errors; the │
│ work silently stops.                                                         │
│   - [consumer_logs] queue-master: 1 lines in 14:42:30Z–14:47:30Z (5 min); 4  │
│ in the previous 5 min; last line at 14:42:45Z (4.7 min before window end).   │
│ Silent since 14:43:30Z (4.0 min)                                             │
│   - [replicas] queue-master: desired 0, available 0                          │
│   - [events] Pod/queue-master-b4xtjm6jbj-d7h5x: Killing: Stopping container  │
│ queue-master                                                                 │
│   - [queue_consumers] queue shipping-task has 0 consumers                    │
│   - [queue_depth] queue shipping-task holds 5 messages                       │
│   - [queue_depth] depth went 0.0 → 5.0                                       │
│                                                                              │
│ Server-side dry run                                                          │
│   would scale deployment/queue-master in sock-shop from 0 to 1 replicas      │
│                                                                              │
│ Expected effect                                                              │
│   deployment/queue-master in sock-shop: desired replicas 0 → 1; expect 1     │
│ available; queue shipping-task: at least 1 consumer and the backlog draining │
│ to ≤ 0; check: queue-master available replicas ≥ 1; queue consumers ≥ 1;     │
│ queue depth falls back to its baseline                                       │
╰──────────────────────────────────────────────────────────────────────────────╯
"""
EXECUTED = """\
executed: scaled deployment/queue-master in sock-shop from 0 to 1 replicas at 2025-11-09T14:47:30+00:00 \
(approval ID, approved by oncall-sre)
verified: recovered — backlog 5 → 0 in 10 s; consumers 0 → 1; available 0 → 1
to undo (needs a fresh approval): kubectl -n sock-shop scale deployment/queue-master --replicas=0
"""
CHAIN = """\
run RUN · approval ID · kubectl -n sock-shop scale deployment/queue-master --replicas=1 · DATE
  HH:MM:SSZ  proposed  sre-agent    proposed kubectl -n sock-shop scale deployment/queue-master --replicas=1; \
awaiting approval until NOW
                        dry run: would scale deployment/queue-master in sock-shop from 0 to 1 replicas
                        effect: deployment/queue-master in sock-shop: desired replicas 0 → 1; expect 1 available; \
queue shipping-task: at least 1 consumer and the backlog draining to ≤ 0; check: queue-master available replicas ≥ 1; \
queue consumers ≥ 1; queue depth falls back to its baseline
  HH:MM:SSZ  approved  oncall-sre   approved by oncall-sre
  HH:MM:SSZ  dry_run   oncall-sre   would scale deployment/queue-master in sock-shop from 0 to 1 replicas
  HH:MM:SSZ  executed  oncall-sre   scaled deployment/queue-master in sock-shop from 0 to 1 replicas at \
2025-11-09T14:47:30+00:00
                        undo: kubectl -n sock-shop scale deployment/queue-master --replicas=0
  HH:MM:SSZ  verified  verifier     recovered: backlog 5 → 0 in 10 s; consumers 0 → 1; available 0 → 1
"""


@pytest.fixture(autouse=True)
def data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    monkeypatch.setenv("USER", "oncall-sre")
    for variable in (CHECKPOINTER_ENV, POLICY_ENV, INTERACTIVE_ENV):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def normal(text: str) -> str:
    """Run ids, approval ids and wall-clock times masked; the replay's own clock (2025-11-09) is kept."""
    text = re.sub(r"run-[0-9a-f]{12}", "RUN", text)
    text = re.sub(r"\b[0-9a-f]{8}\b", "ID", text)
    text = re.sub(r"(?!2025-11-09)\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)?", "NOW", text)
    text = re.sub(r"^  \d\d:\d\d:\d\dZ", "  HH:MM:SSZ", text, flags=re.MULTILINE)
    return re.sub(r" · \d{4}-\d\d-\d\d$", " · DATE", text, flags=re.MULTILINE)


def ask(interactive: bool, answer: str | None = None, args: list[str] | None = None) -> Result:
    return runner.invoke(app, args or ASK, input=answer, env={INTERACTIVE_ENV: "1" if interactive else "0"})


def after_verdict(stdout: str) -> str:
    """Everything after the verdict panel: from the first line of the approval panel on."""
    return stdout[stdout.rindex("\n", 0, stdout.index(" approval needed ")) + 1:]


def events(*args: str) -> list[tuple[str, str]]:
    result = runner.invoke(app, ["audit", "--json", *args])
    assert result.exit_code == 0, result.output
    return [(r["event"], r["actor"]) for r in json.loads(result.stdout)]


def pending_id() -> str:
    result = runner.invoke(app, ["approvals", "list", "--json"])
    [record] = json.loads(result.stdout)
    assert record["status"] == "pending"
    return str(record["id"])


def test_approved_at_the_prompt_scales_up_verifies_and_audits_the_chain() -> None:
    result = ask(True, "y\n")
    assert result.exit_code == 0, result.output
    assert normal(after_verdict(result.stdout)) == APPROVAL_PANEL + EXECUTED
    assert result.stderr.endswith("deciding as oncall-sre (--approver)\nApprove? [y/N] y\n")
    assert "Traceback" not in result.output
    assert events() == [("proposed", "sre-agent"), ("approved", "oncall-sre"), ("dry_run", "oncall-sre"),
                        ("executed", "oncall-sre"), ("verified", "verifier")]
    audit = runner.invoke(app, ["audit"])
    assert audit.exit_code == 0 and normal(audit.stdout) == CHAIN


def test_left_pending_without_a_terminal_then_approved_by_a_second_process(data: Path) -> None:
    result = ask(False, "y\n")  # piped "y" is not an approval: without a terminal nothing is approved
    assert result.exit_code == 0, result.output
    approval = pending_id()
    assert normal(after_verdict(result.stdout)) == APPROVAL_PANEL + "approval ID is pending; nothing was changed\n"
    assert result.stderr.endswith(
        f"not approved: stdin is not a terminal, so approval {approval} stays pending (until it expires). From any "
        f"shell:\n  sre-agent approvals approve {approval} --as oncall-sre\n"
        f"  sre-agent approvals reject {approval} --as oncall-sre --reason TEXT\n")
    assert events() == [("proposed", "sre-agent")]
    listed = runner.invoke(app, ["approvals", "list"])
    assert normal(listed.stdout) == (
        "ID        STATUS   EXPIRES               RUN               DECIDED BY  COMMAND\n"
        "ID  pending  NOW  RUN  -           kubectl -n sock-shop scale deployment/queue-master --replicas=1\n")

    second = subprocess.run(  # another process: everything rebuilt from the data dir and the checkpoints
        [sys.executable, "-c", "from agent.cli import main; main()", "approvals", "approve", approval, "--as",
         "oncall-sre"], capture_output=True, text=True, cwd=ROOT, timeout=120,
        env={**os.environ, DATA_ENV: str(data), "COLUMNS": "80"})
    assert second.returncode == 0, second.stderr
    assert second.stderr == (f"approving {approval} as oncall-sre: kubectl -n sock-shop scale deployment/queue-master "
                             "--replicas=1\n")
    assert normal(second.stdout) == EXECUTED
    again = runner.invoke(app, ["approvals", "approve", approval, "--as", "oncall-sre"])
    assert again.exit_code == 2
    assert normal(again.stderr) == (
        "approving ID as oncall-sre: kubectl -n sock-shop scale deployment/queue-master --replicas=1\n"
        "error: cannot approve approval ID (kubectl -n sock-shop scale deployment/queue-master --replicas=1, run "
        "RUN): it was already executed at NOW\n")
    assert events("--approval", approval) == [
        ("proposed", "sre-agent"), ("approved", "oncall-sre"), ("dry_run", "oncall-sre"), ("executed", "oncall-sre"),
        ("verified", "verifier"), ("refused", "oncall-sre")]
    shown = runner.invoke(app, ["approvals", "show", approval[:4]])
    assert shown.exit_code == 0
    assert "status: executed (decided by oncall-sre at NOW)\n" in normal(shown.stdout)
    assert f"run: RUN · incident-5 · model playbook · question '{QUESTION}'\n" in normal(shown.stdout)


@pytest.mark.parametrize("answer", ["n\n", "\n", "yes please\n", ""])
def test_declined_at_the_prompt_changes_nothing(answer: str) -> None:
    result = ask(True, answer)
    assert result.exit_code == 0, result.output
    assert normal(after_verdict(result.stdout)) == APPROVAL_PANEL + (
        "approval ID rejected by oncall-sre: declined at prompt; nothing was changed\n")
    assert events() == [("proposed", "sre-agent"), ("rejected", "oncall-sre")]
    [record] = json.loads(runner.invoke(app, ["audit", "--json"]).stdout)[1:]
    assert (record["outcome"], record["detail"]) == ("rejected by oncall-sre: declined at prompt",
                                                     {"reason": "declined at prompt"})


def test_rejected_with_approvals_reject_then_approving_is_refused() -> None:
    assert ask(False).exit_code == 0
    approval = pending_id()
    rejected = runner.invoke(app, ["approvals", "reject", approval, "--as", "oncall-sre", "--reason", "change freeze"])
    assert rejected.exit_code == 0, rejected.output
    assert normal(rejected.stdout) == "approval ID rejected by oncall-sre: change freeze; nothing was changed\n"
    late = runner.invoke(app, ["approvals", "approve", approval, "--as", "someone-else"])
    assert late.exit_code == 2 and re.search(r"error: cannot approve approval .*: it was rejected by oncall-sre at "
                                             r".*: change freeze\n$", late.stderr)
    assert events() == [("proposed", "sre-agent"), ("rejected", "oncall-sre"), ("refused", "someone-else")]
    audit = normal(runner.invoke(app, ["audit", "--approval", approval]).stdout)
    assert "  HH:MM:SSZ  rejected  oncall-sre   rejected by oncall-sre: change freeze\n" in audit


def test_an_expired_approval_is_refused(data: Path) -> None:
    assert ask(False).exit_code == 0
    approval = pending_id()
    with sqlite3.connect(data / "approvals.sqlite") as conn:  # time passes: 16 minutes later
        conn.execute("UPDATE approvals SET expires_at = '2000-01-01T00:00:00.000000+00:00'")
    result = runner.invoke(app, ["approvals", "approve", approval, "--as", "oncall-sre"])
    assert result.exit_code == 2
    assert normal(result.stderr).endswith(
        "error: cannot approve approval ID (kubectl -n sock-shop scale deployment/queue-master --replicas=1, run "
        "RUN): it expired at NOW; propose the action again for a fresh approval\n")
    assert events() == [("proposed", "sre-agent"), ("expired", "policy"), ("refused", "oncall-sre")]
    assert runner.invoke(app, ["approvals", "list"]).stderr == "no pending approvals\n"


def test_an_approver_the_policy_does_not_list_is_refused_and_the_run_stays_paused(data: Path,
                                                                                  monkeypatch: Any) -> None:
    policy = data / "policy.yaml"
    policy.write_text("version: 1\napproval: {approvers: [alice]}\nrules:\n"
                      "  - {name: shop, namespaces: ['*'], allow: {scale: {max_replicas: 3}}}\n")
    monkeypatch.setenv(POLICY_ENV, str(policy))
    result = ask(True, "y\n")
    assert result.exit_code == 2
    assert re.search(r"error: 'oncall-sre' may not approve approval .*: oncall-sre is not a listed approver "
                     r"\(alice\)\n$", result.stderr)
    approval = pending_id()
    approved = runner.invoke(app, ["approvals", "approve", approval, "--as", "alice"])
    assert approved.exit_code == 0, approved.output
    assert "verified: recovered — backlog 5 → 0 in 10 s" in approved.stdout
    assert events() == [("proposed", "sre-agent"), ("refused", "oncall-sre"), ("approved", "alice"),
                        ("dry_run", "alice"), ("executed", "alice"), ("verified", "verifier")]


def test_no_entry_point_mutates_without_an_approval_record(data: Path) -> None:
    plain = runner.invoke(app, ["ask", QUESTION, "--scenario", "incident-5", "--model", "playbook"])
    assert plain.exit_code == 0 and "approval needed" not in plain.stdout
    assert not (data / "approvals.sqlite").exists() and not (data / "checkpoints.sqlite").exists()
    healthy = ask(True, "y\n", [*ASK[:3], "incident-5-healthy", *ASK[4:]])
    assert healthy.exit_code == 0 and "Approve?" not in healthy.stderr
    assert healthy.stdout.endswith("remediation: nothing to do (the verdict is healthy: nothing to remediate)\n")
    for command in (["approvals", "approve", "deadbeef", "--as", "oncall-sre"],
                    ["approvals", "reject", "deadbeef", "--as", "oncall-sre", "--reason", "no"],
                    ["approvals", "show", "deadbeef"]):
        result = runner.invoke(app, command)
        assert (result.exit_code, result.stderr) == (
            2, "error: no approval with id 'deadbeef'\n  hint: there are no pending approvals\n"), command
    assert runner.invoke(app, ["approvals", "list", "--all", "--json"]).stdout == "[]\n"
    assert events() == []
    nothing = runner.invoke(app, ["audit", "--run", "run-000000000000"])
    assert (nothing.exit_code, nothing.stderr) == (
        2, f"no audit records for run run-000000000000 in {data / 'audit.jsonl'}\n")


def test_injected_log_text_cannot_change_the_proposed_action() -> None:
    result = ask(False, None, [*ASK[:3], "prompt-injection", *ASK[4:], "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert body["verdict"]["security_notes"]
    assert body["remediation"]["status"] == "pending"
    assert (body["approval_request"]["command"], body["approval_request"]["action"]) == (
        "kubectl -n sock-shop scale deployment/queue-master --replicas=1",
        {"action": "scale", "kind": "Deployment", "namespace": "sock-shop", "name": "queue-master", "replicas": 1})
    assert events() == [("proposed", "sre-agent")]


def test_bad_input_is_a_clear_message_never_a_traceback() -> None:
    cases = {
        ("--approver", "bad name!"): "error: --approver: 'bad name!' is not a usable name: use a handle or email "
                                     "(letters, digits, . _ @ + -)\n",
    }
    for extra, message in cases.items():
        result = runner.invoke(app, [*ASK[:-2], *extra])
        assert (result.exit_code, result.stderr) == (2, message)
    assert ask(False).exit_code == 0
    approval = pending_id()
    for command, message in (
            (["approvals", "approve", approval, "--as", "a b"], "error: --as: 'a b' is not a usable name"),
            (["approvals", "reject", approval, "--as", "oncall-sre", "--reason", "  "],
             "error: --reason must say why"),
            (["approvals", "approve", approval, "--as", "sre-agent"], "error: sre-agent proposed approval"),
            (["approvals", "reject", approval, "--as", "oncall-sre"], "Missing option '--reason'")):
        result = runner.invoke(app, command)
        assert result.exit_code == 2 and message in result.stderr, (command, result.output)
        assert "Traceback" not in result.output
    assert runner.invoke(app, ["approvals", "list", "--json"]).stdout.count('"pending"') == 1
    assert [event for event, _ in events()] == ["proposed", "refused"]  # the proposer tried to approve itself


def test_an_execution_whose_process_died_is_abandoned_through_the_cli(data: Path) -> None:
    assert ask(False).exit_code == 0
    approval = pending_id()
    with sqlite3.connect(data / "approvals.sqlite") as conn:  # approved, claimed, then the process died
        conn.execute("UPDATE approvals SET status = 'executing', approver = 'oncall-sre', "
                     "executed_at = '2000-01-01T00:00:00.000000+00:00'")
    shown = runner.invoke(app, ["approvals", "show", approval])
    assert f"is gone: sre-agent approvals abandon {approval} --as NAME --reason '...'" in shown.stdout
    unnamed = runner.invoke(app, ["approvals", "abandon", approval, "--as", "", "--reason", "node lost"])
    assert unnamed.exit_code == 2 and "--as" in unnamed.stderr
    result = runner.invoke(app, ["approvals", "abandon", approval, "--as", "oncall-lead", "--reason", "node lost"])
    assert result.exit_code == 0, result.output
    assert normal(result.stdout) == (
        "approval ID: failed — abandoned by oncall-lead: node lost; whether kubectl -n sock-shop scale "
        "deployment/queue-master --replicas=1 took effect is unknown\n"
        "check the target before proposing kubectl -n sock-shop scale deployment/queue-master --replicas=1 again\n")
    assert events()[-1] == ("abandoned", "oncall-lead")
    again = runner.invoke(app, ["approvals", "abandon", approval, "--as", "oncall-lead", "--reason", "x"])
    assert again.exit_code == 2 and "only an execution left running can be abandoned, and it is failed" in (
        again.stderr.replace("\n", " "))


def test_an_abandoned_execution_is_verified_later_by_looking_again(data: Path) -> None:
    assert ask(False).exit_code == 0
    approval = pending_id()
    pending = runner.invoke(app, ["approvals", "verify", approval, "--as", "oncall-lead"])
    assert pending.exit_code == 2 and "only an executed or abandoned execution" in pending.stderr.replace("\n", " ")
    with sqlite3.connect(data / "approvals.sqlite") as conn:  # approved, claimed, then the process died
        conn.execute("UPDATE approvals SET status = 'executing', approver = 'oncall-sre', "
                     "executed_at = '2000-01-01T00:00:00.000000+00:00'")
    assert runner.invoke(app, ["approvals", "abandon", approval, "--as", "oncall-lead", "--reason", "node lost",
                               "--force"]).exit_code == 0
    # A fresh process rebuilds the replayed world, where the interrupted change never landed: not recovered.
    result = runner.invoke(app, ["approvals", "verify", approval, "--as", "oncall-lead", "--timeout", "0"])
    assert result.exit_code == 1, result.output
    assert result.stdout.startswith(f"approval {approval}: NOT recovered — ")
    assert events()[-2:] == [("abandoned", "oncall-lead"), ("verified", "verifier (for oncall-lead)")]
