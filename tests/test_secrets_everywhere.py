"""No secret is ever printed or written (issue 16): every command a person runs (`ask`, `chat`, `eval`, `tools call`,
`approvals list/show/approve/verify`, `audit`) runs as a real process with a distinct secret in every credential
variable the product reads and in the kubeconfig, against a replayed world (with the local state it writes) and
against live endpoints that do not answer (closed loopback ports: RabbitMQ, Datadog, the Kubernetes API, the shared
PostgreSQL database and checkpointer). None of the secrets, raw, percent-encoded or base64-encoded, may appear in
stdout, stderr or any file the commands wrote (the data dir, the eval report, HOME)."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "why are shipments not going out?"
PLAYBOOK = ("--model", "playbook")
INCIDENT5 = ROOT / "evals" / "scenarios" / "incident-5"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


PORT = closed_port()

# name → secret; every value distinct, none a substring of another or of ordinary output.
SECRETS = {
    "DD_API_KEY": "ddapi-Q7w2Kx9r",
    "DD_APP_KEY": "ddapp-M3n8Vb1z",
    "RABBITMQ_PASSWORD": "mqpass-H5j2Lp0s",
    "RABBITMQ_URL password": "mqurl/pw-T9c4Fd6e",  # '/' is percent-encoded in the URL
    "OPENAI_API_KEY": "sk-oai-R2t7Yu5i",
    "OPENAI_BASE_URL password": "oaiurl-P1o9Iu3y",
    "SRE_AGENT_APPROVAL_KEY": "approvalkey-G6h1Jk8l",
    "SRE_AGENT_DATABASE_URL password": "dbpass-Z4x6Cv2b",
    "SRE_AGENT_CHECKPOINTER password": "cppass-N8m5Bq3w",
    "SRE_AGENT_SERVE_WEBHOOK_SECRET": "webhook-E3r6Ty9u",
    "SRE_AGENT_SERVE_SLACK_SIGNING_SECRET": "slacksign-A1s4Df7g",
    "SRE_AGENT_SERVE_SLACK_BOT_TOKEN": "xoxb-slackbot-W2e5Rt8y",
    "SRE_AGENT_PAGERDUTY_ROUTING_KEY": "pdroute-K7l0Zx3c",
    "SRE_AGENT_WATCH_NOTIFY_URL password": "notify-U4i7Op0a",
    "kubeconfig token": "kubetoken-V5b8Nm1q",
    "kubeconfig password": "kubepass-C9v2Bn5m",
    "kubeconfig client-key-data": "kubekey-F6g9Hj2k",
}
CLIENT_KEY = (f"-----BEGIN PRIVATE KEY-----\n{SECRETS['kubeconfig client-key-data']}\n"
              "-----END PRIVATE KEY-----\n").encode()


def forms(secret: str) -> set[str]:
    """The secret as text may carry it: raw, percent-encoded, base64 (a kubeconfig's *-data, a Basic header)."""
    return {secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()}


NEEDLES = {form: name for name, secret in SECRETS.items() for form in forms(secret)}
NEEDLES[base64.b64encode(CLIENT_KEY).decode()] = "kubeconfig client-key-data"


def kubeconfig(server: str) -> str:
    key = base64.b64encode(CLIENT_KEY).decode()
    cert = base64.b64encode(b"-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n").decode()
    return json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "token",
        "clusters": [{"name": "closed", "cluster": {"server": server, "insecure-skip-tls-verify": True}}],
        "users": [{"name": "token", "user": {"token": SECRETS["kubeconfig token"]}},
                  {"name": "password", "user": {"username": "admin", "password": SECRETS["kubeconfig password"]}},
                  {"name": "cert", "user": {"client-certificate-data": cert, "client-key-data": key}}],
        "contexts": [{"name": user, "context": {"cluster": "closed", "user": user}}
                     for user in ("token", "password", "cert")],
    })


def environment(tmp: Path, *, shared_store: bool) -> dict[str, str]:
    """Every credential variable set to its secret; the live endpoints closed ports; state and HOME under `tmp`."""
    inputs = tmp / "inputs"  # what the test hands in (the kubeconfig holds secrets by design): not scanned
    inputs.mkdir()
    (inputs / "kubeconfig").write_text(kubeconfig(f"https://127.0.0.1:{PORT}"), encoding="utf-8")
    closed = f"127.0.0.1:{PORT}"
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "COLUMNS": "100",
        "HOME": str(tmp / "home"), "XDG_DATA_HOME": str(tmp / "home" / "data"),
        "XDG_CACHE_HOME": str(tmp / "home" / "cache"), "SRE_AGENT_DATA": str(tmp / "data"),
        "SRE_AGENT_INTERACTIVE": "0", "SRE_AGENT_MAX_ATTEMPTS": "1", "SRE_AGENT_TIMEOUT_SECONDS": "1",
        "SRE_AGENT_CALL_DEADLINE_SECONDS": "3",
        "DD_API_KEY": SECRETS["DD_API_KEY"], "DD_APP_KEY": SECRETS["DD_APP_KEY"], "DD_HOST": f"http://{closed}",
        "RABBITMQ_URL": f"http://mq-url-user:{quote(SECRETS['RABBITMQ_URL password'], safe='')}@{closed}/",
        "RABBITMQ_USER": "mq-user", "RABBITMQ_PASSWORD": SECRETS["RABBITMQ_PASSWORD"],
        "OPENAI_API_KEY": SECRETS["OPENAI_API_KEY"],
        "OPENAI_BASE_URL": f"http://oai:{SECRETS['OPENAI_BASE_URL password']}@{closed}/v1",
        "SRE_AGENT_APPROVAL_KEY": SECRETS["SRE_AGENT_APPROVAL_KEY"],
        "SRE_AGENT_SERVE_WEBHOOK_SECRET": SECRETS["SRE_AGENT_SERVE_WEBHOOK_SECRET"],
        "SRE_AGENT_SERVE_SLACK_SIGNING_SECRET": SECRETS["SRE_AGENT_SERVE_SLACK_SIGNING_SECRET"],
        "SRE_AGENT_SERVE_SLACK_BOT_TOKEN": SECRETS["SRE_AGENT_SERVE_SLACK_BOT_TOKEN"],
        "SRE_AGENT_PAGERDUTY_ROUTING_KEY": SECRETS["SRE_AGENT_PAGERDUTY_ROUTING_KEY"],
        "SRE_AGENT_WATCH_NOTIFY_URL": f"http://hook:{SECRETS['SRE_AGENT_WATCH_NOTIFY_URL password']}@{closed}/",
        "KUBECONFIG": str(inputs / "kubeconfig"),
    }
    if shared_store:  # the team's database and checkpointer, unreachable
        env["SRE_AGENT_DATABASE_URL"] = (f"postgresql://agent:{SECRETS['SRE_AGENT_DATABASE_URL password']}"
                                         f"@{closed}/agent")
        env["SRE_AGENT_CHECKPOINTER"] = (f"postgresql://agent:{SECRETS['SRE_AGENT_CHECKPOINTER password']}"
                                         f"@{closed}/agent")
    return env


@dataclass
class Ran:
    command: str
    code: int
    stdout: str
    stderr: str


class Session:
    """Runs `sre-agent` commands in one environment (see `environment`) under `tmp` and keeps what each printed."""

    def __init__(self, tmp: Path, *, shared_store: bool) -> None:
        tmp.mkdir(parents=True, exist_ok=True)
        self.tmp, self.env, self.runs = tmp, environment(tmp, shared_store=shared_store), list[Ran]()
        self.seconds = 0.0

    def __call__(self, *args: str, stdin: str | None = None) -> Ran:
        started = time.monotonic()
        result = subprocess.run([sys.executable, "-c", "from agent.cli import main; main()", *args], cwd=ROOT,
                                env=self.env, input=stdin, capture_output=True, text=True, timeout=60, check=False)
        ran = Ran(" ".join(args), result.returncode, result.stdout, result.stderr)
        self.runs.append(ran)
        self.seconds += time.monotonic() - started
        return ran

    def leaks(self) -> dict[str, list[str]]:
        """Where each secret was found: `command: stdout|stderr` and every file written under tmp (not inputs/)."""
        found: dict[str, list[str]] = {}
        texts = [(f"{ran.command}: {stream}", text) for ran in self.runs
                 for stream, text in (("stdout", ran.stdout), ("stderr", ran.stderr))]
        texts += [(name, (self.tmp / name).read_bytes().decode("latin-1")) for name in self.files()]
        for where, text in texts:
            for needle, name in NEEDLES.items():
                if needle in text:
                    found.setdefault(name, []).append(where)
        return found

    def files(self) -> list[str]:
        """Every file the commands wrote (all of tmp but the inputs the test handed in)."""
        return sorted(str(path.relative_to(self.tmp)) for path in self.tmp.rglob("*")
                      if path.is_file() and path.relative_to(self.tmp).parts[0] != "inputs")

    def tracebacks(self) -> list[str]:
        return [ran.command for ran in self.runs if "Traceback" in ran.stdout + ran.stderr]


@pytest.fixture
def timed(capsys: pytest.CaptureFixture[str]) -> Iterator[list[Session]]:
    """The sessions a test ran, each summed up on the terminal."""
    sessions: list[Session] = []
    yield sessions
    with capsys.disabled():
        for session in sessions:
            print(f"\n{session.tmp.name}: {len(session.runs)} commands, {len(session.files())} files written, "
                  f"{len(NEEDLES)} secret forms searched in both streams and every file, "
                  f"{sum(len(places) for places in session.leaks().values())} found, {session.seconds:.1f} s")


def test_the_search_finds_every_secret_it_was_handed(tmp_path: Path) -> None:
    """The search itself: the kubeconfig and environment it hands in carry each secret in a form it recognises."""
    env = environment(tmp_path, shared_store=True)
    text = (tmp_path / "inputs" / "kubeconfig").read_text(encoding="utf-8") + json.dumps(env)
    assert {name for needle, name in NEEDLES.items() if needle in text} == set(SECRETS)


def test_no_secret_against_replay_and_its_state(tmp_path: Path, timed: list[Session]) -> None:
    run = Session(tmp_path, shared_store=False)
    timed.append(run)
    scenario = ("--scenario", "incident-5")
    assert run("ask", QUESTION, *scenario, *PLAYBOOK).code == 0
    proposed = run("ask", QUESTION, *scenario, *PLAYBOOK, "--remediate", "--approver", "alice", "--json")
    approval = json.loads(proposed.stdout)["approval_request"]["approval_id"]
    run("chat", *scenario, *PLAYBOOK, stdin=f"{QUESTION}\nshow me the queue again\nexit\n")
    run("eval", *PLAYBOOK, "--scenarios", str(INCIDENT5), "--jobs", "1", "--report", str(tmp_path / "report"))
    run("tools", "call", "get_queue_stats", *scenario)
    run("watch", *scenario, *PLAYBOOK)  # its notice is POSTed to SRE_AGENT_WATCH_NOTIFY_URL, a closed port
    run("approvals", "list")
    run("approvals", "show", approval)
    run("approvals", "approve", approval, "--as", "alice")
    run("approvals", "verify", approval, "--as", "alice", "--timeout", "5", "--interval", "1")
    run("audit")
    run("audit", "--json", "--approval", approval)

    assert {ran.command: ran.code for ran in run.runs} == {
        f"ask {QUESTION} --scenario incident-5 --model playbook": 0,
        f"ask {QUESTION} --scenario incident-5 --model playbook --remediate --approver alice --json": 0,
        "chat --scenario incident-5 --model playbook": 0,
        f"eval --model playbook --scenarios {ROOT}/evals/scenarios/incident-5 --jobs 1 --report {tmp_path}/report": 0,
        "tools call get_queue_stats --scenario incident-5": 0,
        "watch --scenario incident-5 --model playbook": 0,
        "approvals list": 0,
        f"approvals show {approval}": 0,
        f"approvals approve {approval} --as alice": 0,
        # a fresh process rebuilds the replayed world, where the executed change never landed: not recovered
        f"approvals verify {approval} --as alice --timeout 5 --interval 1": 1,
        "audit": 0,
        f"audit --json --approval {approval}": 0,
    }, [(ran.command, ran.stderr[-500:]) for ran in run.runs if ran.code]
    assert run.tracebacks() == []
    assert {"data/approvals.sqlite", "data/audit.jsonl", "data/checkpoints.sqlite", "report/results.json"} <= set(
        run.files())
    assert run.leaks() == {}


def test_no_secret_against_unreachable_live_endpoints(tmp_path: Path, timed: list[Session]) -> None:
    run = Session(tmp_path / "local", shared_store=False)
    timed.append(run)
    for context in ("token", "password", "cert"):
        run("ask", QUESTION, "--live", "--context", context, *PLAYBOOK)
    run("ask", QUESTION, "--live", *PLAYBOOK, "--json")
    run("ask", QUESTION, "--live", *PLAYBOOK, "--remediate", "--approver", "alice")
    run("chat", "--live", *PLAYBOOK, stdin=f"{QUESTION}\nexit\n")
    run("eval", *PLAYBOOK, "--scenarios", str(INCIDENT5), "--jobs", "1", "--report", str(run.tmp / "report"))
    shared = Session(tmp_path / "shared", shared_store=True)
    timed.append(shared)
    shared("ask", QUESTION, "--scenario", "incident-5", *PLAYBOOK, "--remediate", "--approver", "alice")
    shared("approvals", "list")
    shared("approvals", "show", "deadbeef")
    shared("approvals", "approve", "deadbeef", "--as", "alice")
    shared("audit")

    # nothing could be read: each investigation ends inconclusive (exit 0), naming what it could not check
    assert {ran.command: ran.code for ran in run.runs} == {ran.command: 0 for ran in run.runs}
    assert all("INCONCLUSIVE" in ran.stdout for ran in run.runs if ran.command.startswith(("ask", "chat"))
               and "--json" not in ran.command)
    # the shared database does not answer: one clear error each (exit 2)
    assert {ran.command: ran.code for ran in shared.runs} == {ran.command: 2 for ran in shared.runs}
    assert all(ran.stderr.startswith("error: approvals database postgresql://agent:***@127.0.0.1:") for ran in
               shared.runs[1:])
    assert run.tracebacks() == shared.tracebacks() == []
    assert run.leaks() == {}
    assert shared.leaks() == {}


def test_eval_keeps_to_its_scratch_store_beside_a_shared_database(tmp_path: Path) -> None:
    run = Session(tmp_path, shared_store=True)
    ran = run("eval", *PLAYBOOK, "--scenarios", str(INCIDENT5), "--jobs", "1", "--report", str(tmp_path / "report"))
    assert (ran.code, run.tracebacks(), run.leaks()) == (0, [], {})


def test_no_secret_in_what_the_live_tools_return_or_log(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    """Every tool over the live sources at closed ports (Datadog's logs, metrics and events too, which no playbook
    command reaches while Kubernetes is down), in this process: the results, their errors and the log lines."""
    from tools.live import live_sources
    from tools.registry import default_toolbox

    for name, value in environment(tmp_path, shared_store=True).items():
        monkeypatch.setenv(name, value)
    toolbox = default_toolbox()
    calls = {"list_namespaces": {}, "get_queue_stats": {}, "list_events": {"namespace": "sock-shop"},
             "search_logs": {"query": "service:shipping status:error"},
             "get_metric": {"query": "avg:rabbitmq.queue.messages{queue:shipping-task}"},
             "get_deployment": {"namespace": "sock-shop", "name": "queue-master"}}
    assert set(calls) <= set(toolbox.tools)
    texts: dict[str, str] = {}
    kinds: dict[str, str] = {}
    with caplog.at_level("DEBUG"):
        for context in ("token", "password", "cert"):
            monkeypatch.setenv("KUBE_CONTEXT", context)
            sources = live_sources()
            for tool, args in calls.items():
                outcome = toolbox.call(sources, tool, args)
                texts[f"{context}: {tool}"] = repr(outcome)
                kinds[f"{context}: {tool}"] = getattr(outcome.result, "error", "ok")
    texts["log"] = "\n".join(record.getMessage() for record in caplog.records)
    # every call failed, and said why: a refused connection, never "did not answer within 1 s" (issue 16)
    assert kinds == {where: "unavailable" for where in kinds} and len(kinds) == 3 * len(calls), texts
    assert {name: where for where, text in texts.items() for needle, name in NEEDLES.items() if needle in text} == {}
