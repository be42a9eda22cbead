"""The shared store on a real PostgreSQL server: two replicas (separate data folders, separate engines) see the
same approvals and write one audit trail; races between them have exactly one winner; processes starting together
migrate the schema once; a bad database URL is one clear error."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.remediation import database
from agent.remediation.approvals import ApprovalStore
from agent.remediation.errors import ApprovalStateError, StoreError
from agent.remediation.policy import DEFAULT_POLICY, load_policy
from agent.remediation.replay_actuator import ReplayActuator, WorldWaiter
from agent.remediation.service import Remediator
from tests.postgres_server import postgres_url  # noqa: F401  (fixture)
from tests.test_remediation_approvals import SCALE_UP, CountingActuator, ManualClock, small_world
from tools.replay import replay_sources

pytestmark = pytest.mark.postgres


@pytest.fixture
def database_url(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    """A fresh database on the session's server, set as SRE_AGENT_DATABASE_URL."""
    name = "store_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    monkeypatch.setenv(database.DATABASE_ENV, url)
    yield url


def _replica(data: Path, world: object, clock: ManualClock, actuator: CountingActuator) -> Remediator:
    return Remediator(actuator, policy=load_policy(DEFAULT_POLICY), data=data, clock=clock,
                      waiter=WorldWaiter(world))  # type: ignore[arg-type]


def test_two_replicas_share_approvals_and_one_audit_trail(database_url: str, tmp_path: Path) -> None:
    sources = replay_sources(small_world())
    world, clock = sources.extras["world"], ManualClock()
    actuator = CountingActuator(ReplayActuator(world))
    first = _replica(tmp_path / "replica-a", world, clock, actuator)
    second = _replica(tmp_path / "replica-b", world, clock, actuator)
    proposed = first.propose(SCALE_UP, run_id="run-1", evidence_summary="consumer has 0 replicas")
    assert [r.id for r in second.store.list(status="pending")] == [proposed.id]
    second.approve(proposed.id, "oncall-sre")
    outcome = first.execute(proposed.id)
    assert outcome.approval.status == "executed" and actuator.applied == [proposed.id]
    events = [r.event for r in second.audit.read(approval_id=proposed.id)]
    assert events[:3] == ["proposed", "approved", "dry_run"] and "executed" in events
    assert events == [r.event for r in first.audit.read(approval_id=proposed.id)]
    assert not (tmp_path / "replica-a" / "audit.jsonl").exists()  # the shared store, not a local file
    assert not (tmp_path / "replica-a" / "approvals.sqlite").exists()


def test_racing_replicas_claim_an_approval_exactly_once(database_url: str, tmp_path: Path) -> None:
    sources = replay_sources(small_world())
    world, clock = sources.extras["world"], ManualClock()
    actuator = CountingActuator(ReplayActuator(world))
    proposed = _replica(tmp_path / "a", world, clock, actuator).propose(SCALE_UP, run_id="run-1")
    _replica(tmp_path / "b", world, clock, actuator).approve(proposed.id, "oncall-sre")
    stores = [ApprovalStore(tmp_path / f"r{i}" / "approvals.sqlite", clock=clock) for i in range(8)]
    won, lost = [], []
    start = threading.Barrier(len(stores))

    def race(store: ApprovalStore) -> None:
        start.wait()
        try:
            won.append(store.claim(proposed.id))
        except ApprovalStateError as exc:
            lost.append(exc.message)

    threads = [threading.Thread(target=race, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(won) == 1 and len(lost) == 7
    assert all("is being executed" in message for message in lost)
    assert stores[0].get(proposed.id).status == "executing"


def test_processes_starting_together_migrate_the_schema_once(database_url: str, tmp_path: Path) -> None:
    script = ("import sys; from agent.remediation.approvals import ApprovalStore; "
              "ApprovalStore(sys.argv[1]); print('ok')")
    processes = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / f"p{i}" / "approvals.sqlite")],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(4)]
    results = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], results
    with psycopg.connect(database_url) as conn:
        assert conn.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
        tables = {row[0] for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}
    assert {"approvals", "audit", "alembic_version"} <= tables


def test_the_cli_lists_what_another_replica_proposed(database_url: str, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    sources = replay_sources(small_world())
    world, clock = sources.extras["world"], ManualClock()
    clock.now = datetime.now(UTC)  # the CLI expires what is overdue by the wall clock
    proposed = _replica(tmp_path / "server", world, clock, CountingActuator(ReplayActuator(world))).propose(
        SCALE_UP, run_id="run-7")
    monkeypatch.setenv("SRE_AGENT_DATA", str(tmp_path / "laptop"))
    listed = CliRunner().invoke(app, ["approvals", "list"])
    audited = CliRunner().invoke(app, ["audit", "--approval", proposed.id])
    assert listed.exit_code == 0 and proposed.id in listed.output, listed.output
    assert audited.exit_code == 0 and "proposed" in audited.output, audited.output


@pytest.mark.parametrize(("url", "message"), [
    ("mysql://root:hunter2@db/x", "cannot use mysql://"),
    ("postgresql://admin:hunter2@127.0.0.1:1/nothing", "approvals database postgresql://"),
])
def test_an_unusable_database_url_is_one_clear_error_without_its_password(
        url: str, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(database.DATABASE_ENV, url)
    with pytest.raises(StoreError) as raised:
        ApprovalStore(tmp_path / "approvals.sqlite")
    assert message in raised.value.message and "hunter2" not in raised.value.message
    monkeypatch.setenv("SRE_AGENT_DATA", str(tmp_path))
    result = CliRunner().invoke(app, ["approvals", "list"])
    assert result.exit_code == 2 and "hunter2" not in result.output and "Traceback" not in result.output
