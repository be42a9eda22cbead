"""Bad input, as a careless or hostile user gives it, across the CLI: arguments, environment, policy files,
kubeconfig, data folders. Every case ends in one clear error (exit 2, `error: …` naming what was wrong) and never
a traceback. `python -m pytest tests/test_bad_inputs.py -s` prints the tally."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app

runner = CliRunner()
SOURCE_VARIABLES = ("DD_API_KEY", "DD_APP_KEY", "DD_SITE", "DD_HOST", "KUBECONFIG", "KUBE_CONTEXT", "KUBE_IN_CLUSTER",
                    "RABBITMQ_URL", "RABBITMQ_USER", "RABBITMQ_PASSWORD", "KUBERNETES_SERVICE_HOST")
ASK = ["ask", "is anything stuck?", "--model", "playbook"]
LIVE = [*ASK, "--live"]
RABBIT = {"RABBITMQ_URL": "http://u:p@127.0.0.1:9/"}  # a closed port: configured, unreachable


@dataclass
class Case:
    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes | str] = field(default_factory=dict)  # name → content, in the case's tmp folder
    says: str = ""  # a phrase the error must contain
    exit_code: int = 2


NESTED = "a:\n" + "".join("  " * depth + "- \n" for depth in range(1, 400))
POLICY = ("version: 1\nrules:\n  - name: all\n    namespaces: ['*']\n"
          "    allow: {scale: {min_replicas: 1, max_replicas: 3}}\n")
KUBECONFIG = ("apiVersion: v1\nkind: Config\ncurrent-context: a\nclusters: [{name: a, cluster: {server: "
              "'https://127.0.0.1:9'}}]\nusers: [{name: a, user: {token: t}}]\ncontexts: [{name: a, context: "
              "{cluster: a, user: a}}]\n")

CASES = [
    # arguments
    Case("ask without a source", ASK, says="choose exactly one"),
    Case("ask with both sources", [*ASK, "--scenario", "incident-5", "--live"], says="choose exactly one"),
    Case("ask on an unknown scenario", [*ASK, "--scenario", "no-such-world"], says="no-such-world"),
    Case("ask with an unknown model", ["ask", "q", "--scenario", "incident-5", "--model", "gpt-banana"],
         says="gpt-banana"),
    Case("ask with a zero model budget", [*ASK, "--scenario", "incident-5", "--max-llm-calls", "0"],
         says="Invalid value"),
    Case("ask with a negative timeout", [*ASK, "--scenario", "incident-5", "--timeout", "-1"], says="Invalid value"),
    Case("ask --context without --live", [*ASK, "--scenario", "incident-5", "--context", "prod"],
         says="--context"),
    Case("tools call of an unknown tool", ["tools", "call", "drop_table", "--scenario", "incident-5"],
         says="drop_table"),
    Case("tools call with broken JSON", ["tools", "call", "get_queue_stats", "--scenario", "incident-5", "--args",
                                        "{bad"], says="--args"),
    Case("tools call with a JSON list", ["tools", "call", "get_queue_stats", "--scenario", "incident-5", "--args",
                                        "[]"], says="--args"),
    Case("tools call with a wrong type", ["tools", "call", "get_deployment", "--scenario", "incident-5", "--args",
                                         '{"namespace": {"a": 1}}'], says="namespace"),
    Case("tools call with a bad time", ["tools", "call", "search_logs", "--scenario", "incident-5", "--args",
                                       '{"query": "x", "start": "yesterday-ish"}'], says="yesterday-ish"),
    Case("tools call without a source", ["tools", "call", "get_queue_stats"], says="--scenario"),
    Case("approvals show of an unknown id", ["approvals", "show", "deadbeef"], says="deadbeef"),
    Case("approvals approve of an unknown id", ["approvals", "approve", "deadbeef", "--as", "bob"], says="deadbeef"),
    Case("approvals approve as nobody", ["approvals", "approve", "deadbeef", "--as", ""], says="--as"),
    Case("approvals approve as a shell string", ["approvals", "approve", "deadbeef", "--as", "bob; rm -rf /"],
         says="--as"),
    Case("approvals reject without a reason", ["approvals", "reject", "deadbeef", "--as", "bob", "--reason", " "],
         says="--reason"),
    Case("approvals abandon without a reason", ["approvals", "abandon", "deadbeef", "--as", "bob", "--reason", ""],
         says="--reason"),
    Case("approvals verify of an unknown id", ["approvals", "verify", "deadbeef", "--as", "bob"], says="deadbeef"),
    Case("audit of a path-like run id", ["audit", "--run", "../../etc/passwd"], says="run"),
    Case("eval on a missing folder", ["eval", "--model", "playbook", "--scenarios", "/no/such/folder"],
         says="/no/such/folder"),
    Case("eval with an unknown model", ["eval", "--model", "gpt-banana", "--scenarios", "evals/scenarios/incident-5"],
         says="gpt-banana"),
    Case("eval with zero trials", ["eval", "--model", "playbook", "--trials", "0"], says="Invalid value"),
    Case("eval --merge of a missing folder", ["eval", "--merge", "/no/such/run"], says="/no/such/run"),
    Case("scenarios validate of a missing path", ["scenarios", "validate", "/no/such/world"], says="/no/such/world"),
    Case("schema of an unknown kind", ["schema", "banana"], says="banana"),
    Case("ask an empty question", ["ask", "", "--scenario", "incident-5"], says="the question is empty"),
    Case("ask a blank question", ["ask", "  \n ", "--scenario", "incident-5"], says="the question is empty"),
    Case("ask a question with a NUL", ["ask", "why\x00 stuck", "--scenario", "incident-5"], says="U+0000"),
    Case("ask a question with an escape sequence", ["ask", "why \x1b[2J stuck", "--scenario", "incident-5"],
         says="U+001B"),
    Case("ask an 80,000-character question", ["ask", "why " * 20_000, "--scenario", "incident-5"],
         says="above the limit of 2,000"),
    Case("ask a scenario with a NUL", [*ASK, "--scenario", "inc\x00ident"], says="no scenario"),
    Case("ask a scenario name too long for a path", [*ASK, "--scenario", "a" * 5000], says="no scenario"),
    Case("ask --remediate with a shell string approver", [*ASK, "--scenario", "incident-5", "--remediate",
                                                          "--approver", "x; rm -rf /"], says="--approver"),
    Case("ask with an empty openai model", ["ask", "q", "--scenario", "incident-5", "--model", "openai:"],
         says="openai:"),
    Case("tools call with JSON nested 100,000 deep", ["tools", "call", "get_queue_stats", "--scenario", "incident-5",
                                                       "--args", "[" * 100_000], says="nested too deeply"),
    Case("tools call with a 2 MB query", ["tools", "call", "search_logs", "--scenario", "incident-5", "--args",
                                         '{"query": "' + "x" * 2_000_000 + '"}'], says="at most 2000 characters"),
    Case("tools call with an unknown argument", ["tools", "call", "get_queue_stats", "--scenario", "incident-5",
                                                 "--args", '{"drop": 1}'], says="Extra inputs are not permitted"),
    Case("tools call with a negative limit", ["tools", "call", "search_logs", "--scenario", "incident-5", "--args",
                                              '{"query": "x", "limit": -5}'], says="limit"),
    Case("tools call with start after end", ["tools", "call", "search_logs", "--scenario", "incident-5", "--args",
                                             '{"query": "x", "start": "now-1h", "end": "now-2h"}'],
         says="time range is empty"),
    Case("tools call with NaN", ["tools", "call", "search_logs", "--scenario", "incident-5", "--args",
                                 '{"query": "x", "limit": NaN}'], says="finite number"),
    Case("watch without a source", ["watch"], says="choose exactly one"),
    Case("watch with both sources", ["watch", "--scenario", "incident-5", "--live"], says="choose exactly one"),
    Case("watch every 0 s", ["watch", "--scenario", "incident-5", "--interval", "0"], says="Invalid value"),
    Case("watch from an unreadable time", ["watch", "--scenario", "incident-5", "--from", "tuesday"],
         says="tuesday"),
    Case("watch until before from", ["watch", "--scenario", "incident-5", "--from", "now-1h", "--until", "now-2h"],
         says="is before --from"),
    Case("watch with a negative cooldown", ["watch", "--scenario", "incident-5", "--cooldown", "-5"],
         says="Invalid value"),
    Case("serve on port 0", ["serve", "--port", "0", "--scenario", "incident-5"], says="Invalid value"),
    Case("serve on port 70000", ["serve", "--port", "70000", "--scenario", "incident-5"], says="Invalid value"),
    Case("chat on an unknown scenario", ["chat", "--scenario", "nope", "--model", "playbook"], says="nope"),
    Case("eval --merge of JSON nested 5,000 deep", ["eval", "--merge", "{tmp}/deep.json"],
         files={"deep.json": '{"a":' * 5000 + "1" + "}" * 5000}, says="nested too deeply"),
    Case("eval --merge of a file that is not JSON", ["eval", "--merge", "{tmp}/results.json"],
         files={"results.json": "<html>502 Bad Gateway</html>"}, says="not valid JSON"),
    Case("eval --report onto a file", ["eval", "--model", "playbook", "--scenarios", "evals/scenarios/incident-5",
                                      "--report", "{tmp}/taken"], files={"taken": "a file"}, says="is a file"),
    Case("eval with zero jobs", ["eval", "--model", "playbook", "--jobs", "0"], says="Invalid value"),
    Case("eval with a pass rate above 1", ["eval", "--model", "playbook", "--min-pass-rate", "2"],
         says="Invalid value"),
    Case("approvals list with an option it does not have", ["approvals", "list", "--status", "banana"],
         says="No such option"),
    Case("audit of an unknown run", ["audit", "--run", "nope"], says="no audit records for run nope"),
    Case("scenarios validate of JSON nested 5,000 deep", ["scenarios", "validate", "{tmp}/deep.yaml"],
         files={"deep.yaml": '{"a":' * 5000 + "1" + "}" * 5000}, says="nested deeper than the limit"),
    # environment
    Case("a Datadog site that is not a host name", LIVE, env={**RABBIT, "DD_API_KEY": "a", "DD_APP_KEY": "b",
                                                              "DD_SITE": "not a site/../"}, says="DD_SITE"),
    Case("a timeout past a float", LIVE, env={**RABBIT, "SRE_AGENT_TIMEOUT_SECONDS": "1e309"},
         says="SRE_AGENT_TIMEOUT_SECONDS"),
    Case("a call deadline of a day", LIVE, env={**RABBIT, "SRE_AGENT_CALL_DEADLINE_SECONDS": "86400"},
         says="SRE_AGENT_CALL_DEADLINE_SECONDS"),
    Case("in-cluster credentials outside a cluster", LIVE, env={"KUBE_IN_CLUSTER": "1"}, says="in-cluster"),
    Case("a data folder that cannot be created", ["approvals", "list"], env={"SRE_AGENT_DATA": "/proc/nope"},
         says="SRE_AGENT_DATA"),
    Case("a database URL that is not a URL", ["approvals", "list"], env={"SRE_AGENT_DATABASE_URL": "notaurl"},
         says="SRE_AGENT_DATABASE_URL"),
    Case("a database URL of an engine not installed", ["approvals", "list"],
         env={"SRE_AGENT_DATABASE_URL": "mysql://u:secret-pw@h/x"}, says="SRE_AGENT_DATABASE_URL"),
    Case("an interactive switch that is neither 1 nor 0", [*ASK, "--scenario", "incident-5", "--remediate",
                                                           "--approver", "bob"],
         env={"SRE_AGENT_INTERACTIVE": "maybe"}, says="SRE_AGENT_INTERACTIVE"),
    Case("policy allowing an unknown action", [*ASK, "--scenario", "incident-5", "--remediate",
                                                          "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"},
         files={"policy.yaml": POLICY.replace("scale:", "delete_namespace:")}, says="delete_namespace"),
    Case("policy file with a key given twice", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"}, files={"policy.yaml": POLICY + "rules: []\n"},
         says="found the key 'rules' twice"),
    Case("policy with an absurd duration", [*ASK, "--scenario", "incident-5",
                                                                          "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"},
         files={"policy.yaml": POLICY + "approval: {expires_after: 99999999999999999999h}\n"},
         says="out of range"),
    Case("an empty policy file",
         [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"}, files={"policy.yaml": ""}, says="policy.yaml"),
    Case("policy file missing", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "/no/such/policy.yaml"}, says="/no/such/policy.yaml"),
    Case("policy file binary", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"}, files={"policy.yaml": b"\xff\xfe\x00\x81binary"},
         says="policy.yaml"),
    Case("policy file not YAML", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"}, files={"policy.yaml": "rules: [unclosed"},
         says="not valid YAML"),
    Case("policy with an unknown field", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"}, files={"policy.yaml": POLICY + "allow_everything: true\n"},
         says="allow_everything"),
    Case("policy with min above max", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"}, files={"policy.yaml": POLICY.replace("max_replicas: 3",
                                                                                             "max_replicas: 0")},
         says="policy.yaml"),
    Case("policy nested beyond reason", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}/policy.yaml"}, files={"policy.yaml": NESTED}, says="policy.yaml"),
    Case("policy that is a folder", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_POLICY": "{tmp}"}, says="folder"),
    Case("a timeout that is not a number", LIVE, env={**RABBIT, "SRE_AGENT_TIMEOUT_SECONDS": "abc"},
         says="SRE_AGENT_TIMEOUT_SECONDS"),
    Case("zero attempts", LIVE, env={**RABBIT, "SRE_AGENT_MAX_ATTEMPTS": "0"}, says="SRE_AGENT_MAX_ATTEMPTS"),
    Case("a RabbitMQ URL of another scheme", LIVE, env={"RABBITMQ_URL": "ftp://u:p@host/"}, says="RABBITMQ_URL"),
    Case("a RabbitMQ URL with a bad port", LIVE, env={"RABBITMQ_URL": "http://u:p@host:notaport/"},
         says="RABBITMQ_URL"),
    Case("a RabbitMQ URL without credentials", LIVE, env={"RABBITMQ_URL": "http://127.0.0.1:9/"},
         says="RABBITMQ"),
    Case("a kubeconfig that does not exist", LIVE, env={"KUBECONFIG": "/no/such/kubeconfig"}, says="KUBECONFIG"),
    Case("a kubeconfig that is garbage", LIVE, env={"KUBECONFIG": "{tmp}/kubeconfig"},
         files={"kubeconfig": b"\x00\x01 not yaml: ["}, says="Kubernetes"),
    Case("a kubeconfig context that does not exist", LIVE, env={"KUBECONFIG": "{tmp}/kubeconfig",
                                                                "KUBE_CONTEXT": "prod"},
         files={"kubeconfig": KUBECONFIG}, says="prod"),
    Case("one Datadog key of two", LIVE, env={"DD_API_KEY": "abcd1234"}, says="DD_APP_KEY"),
    Case("nothing configured", LIVE, says="RABBITMQ_URL"),
    Case("a data folder that is a file", ["approvals", "list"], env={"SRE_AGENT_DATA": "{tmp}/data"},
         files={"data": "not a folder"}, says="data"),
    Case("an approvals database that is garbage", ["approvals", "list"], env={"SRE_AGENT_DATA": "{tmp}"},
         files={"approvals.sqlite": b"garbage, not sqlite" * 100}, says="approvals"),
    Case("a checkpointer of an unknown kind", [*ASK, "--scenario", "incident-5", "--remediate", "--approver", "bob"],
         env={"SRE_AGENT_CHECKPOINTER": "mysql://u:secret-pw@db/x"}, says="checkpointer URL scheme 'mysql'"),
]


@pytest.fixture
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    for variable in (*SOURCE_VARIABLES, "SRE_AGENT_POLICY", "SRE_AGENT_CHECKPOINTER"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SRE_AGENT_DATA", str(tmp_path / "state"))
    monkeypatch.setenv("SRE_AGENT_INTERACTIVE", "0")
    monkeypatch.setenv("SRE_AGENT_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("SRE_AGENT_TIMEOUT_SECONDS", "1")
    yield tmp_path


TALLY: dict[str, list[str]] = {"clear": [], "traceback": [], "other": []}


def run(case: Case, tmp: Path) -> tuple[int, str, BaseException | None]:
    for name, content in case.files.items():
        target = tmp / name
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_text(content)
    env = {key: value.replace("{tmp}", str(tmp)) for key, value in case.env.items()}
    args = [arg.replace("{tmp}", str(tmp)) for arg in case.args]
    result = runner.invoke(app, args, env=env)
    exception = None if isinstance(result.exception, SystemExit) else result.exception
    return result.exit_code, result.output, exception


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_bad_input_is_one_clear_error(case: Case, clean: Path) -> None:
    code, output, exception = run(case, clean)
    outcome = "traceback" if exception is not None or "Traceback" in output else (
        "clear" if code == case.exit_code and case.says in output else "other")
    TALLY[outcome].append(case.name)
    assert exception is None, f"{case.name}: {exception!r}"
    assert "Traceback" not in output
    assert code == case.exit_code, f"{case.name}: exit {code}: {output}"
    assert case.says in output, f"{case.name}: {output}"
    assert "secret-pw" not in output


@pytest.fixture(scope="module", autouse=True)
def _tally() -> Iterator[None]:
    yield
    total = sum(len(names) for names in TALLY.values())
    if total:
        print(f"\nbad inputs: {total} tried, {len(TALLY['clear'])} clear errors, {len(TALLY['traceback'])} "
              f"tracebacks, {len(TALLY['other'])} other (wrong exit code or message)")

