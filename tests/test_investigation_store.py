"""The server's investigation records in the store's database, on SQLite and on a real PostgreSQL: what is saved
reads back whole; replicas see each other's records; concurrent updates lose nothing; an alert has one open
investigation however many replicas race to start one; a restart recovers only the work of a server that is gone;
and the JSON files from before the database are imported once, an unreadable one named and kept."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from agent.remediation import database
from agent.remediation.tables import investigations
from agent.server.records import AlertRef, AlreadyOpen, InvestigationRecord, InvestigationStore, RecordError
from tests.postgres_server import postgres_url  # noqa: F401  (fixture)
from tests.serving import Gate, app_for, finished, isolate_server, wait_for

T0 = datetime(2025, 11, 9, 14, 45, tzinfo=UTC)
INTERRUPTED = "the server stopped while this investigation was running; start it again"


@pytest.fixture
def database_url(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:  # noqa: F811
    """A fresh database on the session's server, set as SRE_AGENT_DATABASE_URL; its engine disposed after."""
    name = "records_" + uuid.uuid4().hex[:10]
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    url = postgres_url.rsplit("/", 1)[0] + "/" + name
    monkeypatch.setenv(database.DATABASE_ENV, url)
    yield url
    engine = database._engines.pop(url, None)
    if engine is not None:
        engine.dispose()


class Replicas:
    """Stores as servers open them: on SQLite every one on the same data folder (one host), on PostgreSQL each on
    its own data folder and all on the one database."""

    def __init__(self, backend: str, root: Path) -> None:
        self.backend, self.root = backend, root
        self.opened: list[InvestigationStore] = []

    def folder(self, name: str) -> Path:
        return self.root / ("data" if self.backend == "sqlite" else name)

    def open(self, name: str = "a") -> InvestigationStore:
        store = InvestigationStore(self.folder(name) / "approvals.sqlite")
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def replicas(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Replicas]:
    monkeypatch.delenv(database.DATABASE_ENV, raising=False)
    if request.param == "postgresql":
        request.getfixturevalue("database_url")
    opened = Replicas(request.param, tmp_path)
    yield opened
    for store in opened.opened:
        store.close()


def record(number: int, status: str = "queued", *, keys: list[str] | None = None,
           **fields: Any) -> InvestigationRecord:
    alert = AlertRef(source="alertmanager", title=f"alert {number}", keys=keys, last_received_at=T0) if keys else None
    return InvestigationRecord.model_validate({
        "id": f"inv-{number:012x}", "question": f"why is queue {number} stalled?", "sources": "incident-5",
        "model": "playbook", "status": status, "created_at": T0 + timedelta(minutes=number), "alert": alert,
        **fields})


def ids(records: list[InvestigationRecord]) -> list[str]:
    return [r.id for r in records]


def id_of(found: InvestigationRecord | None) -> str | None:
    return found.id if found is not None else None


def in_threads(count: int, work: Callable[[int], Any]) -> list[Any]:
    """`work(i)` for i in range(count), all started together; their results (or exceptions) in order."""
    results: list[Any] = [None] * count
    start = threading.Barrier(count)

    def run(i: int) -> None:
        start.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # the test looks at what each one got
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_what_is_saved_reads_back_whole_listed_in_order_and_by_run(replicas: Replicas) -> None:
    store = replicas.open()
    late, early = record(2, "done", verdict={"status": "incident"}, trace=[{"kind": "status"}]), record(1)
    store.save(late)
    store.save(early)
    running = store.update(early.id, status="running", started_at=T0, run_id="run-000000000001")
    assert running == early.model_copy(update={"status": "running", "started_at": T0, "run_id": "run-000000000001"})
    assert store.get(early.id) == running and store.get(late.id) == late
    assert (ids(store.list()), ids(store.list("running")), ids(store.list("failed"))) == (
        [early.id, late.id], [early.id], [])
    assert (store.by_run("run-000000000001"), store.by_run("run-nothing")) == (running, None)
    assert (store.get("inv-000000000404"), store.get("../etc/passwd")) == (None, None)
    with pytest.raises(RecordError, match="no investigation inv-000000000404"):
        store.update("inv-000000000404", status="done")
    assert not (replicas.folder("a") / "investigations").exists()


def test_replicas_see_each_others_records(replicas: Replicas) -> None:
    first, second = replicas.open("a"), replicas.open("b")
    first.save(record(1))
    second.update(record(1).id, status="running", started_at=T0)
    assert first.get(record(1).id) == record(1).model_copy(update={"status": "running", "started_at": T0})
    assert ids(second.list()) == ids(first.list()) == [record(1).id]


def test_open_for_finds_the_newest_open_investigation_by_any_of_its_keys(replicas: Replicas) -> None:
    store = replicas.open()
    store.save(record(1, "running", keys=["am:group:a", "am:fp:1"]))
    store.import_record(record(2, "queued", keys=["am:group:a"]))  # two open on one key: only JSON records from before
    store.save(record(3, "done", keys=["am:group:b"]))
    store.save(record(4, "done", keys=["am:group:c"], remediation={"status": "pending", "approval_id": "ab12cd34"}))
    assert store.open_for(["am:fp:1"]) == record(1, "running", keys=["am:group:a", "am:fp:1"])
    assert id_of(store.open_for(["am:group:a", "am:fp:1"])) == record(2).id  # the newer of two
    assert id_of(store.open_for(["am:group:c"])) == record(4).id  # done, but its fix awaits approval
    assert (store.open_for(["am:group:b"]), store.open_for(["nothing"]), store.open_for([])) == (None, None, None)
    store.update(record(2).id, status="done")
    store.update(record(4).id, remediation={"status": "executed"})
    alert = AlertRef(source="alertmanager", title="alert 1", keys=["am:fp:2"], last_received_at=T0)
    store.update(record(1).id, alert=alert)  # its keys are now the new ones only
    assert (store.open_for(["am:group:a"]), store.open_for(["am:group:c"])) == (None, None)
    assert id_of(store.open_for(["am:fp:2"])) == record(1).id


def test_concurrent_updates_from_two_stores_lose_nothing(replicas: Replicas) -> None:
    stores = [replicas.open("a"), replicas.open("b")]
    stores[0].save(record(1, "running"))
    rounds = 40

    def write(i: int) -> list[InvestigationRecord]:
        if i == 0:
            return [stores[0].update(record(1).id, remediation={"step": n}) for n in range(rounds)]
        return [stores[1].update(record(1).id, error=str(n)) for n in range(rounds)]

    by_first, by_second = in_threads(2, write)
    final = stores[1].get(record(1).id)
    assert final is not None and (final.remediation, final.error) == ({"step": rounds - 1}, str(rounds - 1))
    seen_by_first = [int(r.error) for r in by_first if r.error is not None]  # the other writer's field, as it was
    seen_by_second = [r.remediation["step"] for r in by_second if r.remediation is not None]
    assert seen_by_first == sorted(seen_by_first) and seen_by_second == sorted(seen_by_second)
    with stores[0].engine.connect() as conn:
        version = conn.execute(select(investigations.c.version)).scalar_one()
    assert version == 1 + 2 * rounds  # every write applied on top of the one before


def test_racing_replicas_open_one_investigation_for_an_alert(replicas: Replicas) -> None:
    stores = [replicas.open(name) for name in ("a", "b")] * 3
    outcomes = in_threads(len(stores), lambda i: stores[i].save(record(10 + i, keys=["am:group:a", f"am:fp:{i}"])))
    saved = [o for o in outcomes if isinstance(o, InvestigationRecord)]
    refused = [o for o in outcomes if isinstance(o, AlreadyOpen)]
    assert (len(saved), len(refused)) == (1, len(stores) - 1), outcomes
    assert {o.existing.id for o in refused} == {saved[0].id}
    assert ids(stores[1].list()) == [saved[0].id]
    stores[0].save(record(30, keys=["am:group:z"]))  # another alert starts its own
    stores[0].save(record(31, "done", keys=["am:group:a"]))  # a closed record is history, not a rival
    assert len(stores[0].list()) == 3


def test_racing_deliveries_of_a_repeat_each_count_once(replicas: Replicas) -> None:
    stores = [replicas.open(name) for name in ("a", "b")] * 4
    stores[0].save(record(1, "running", keys=["am:group:a"]))
    repeat = AlertRef(source="alertmanager", title="alert 1", keys=["am:group:a", "am:fp:9"])
    joined = in_threads(len(stores), lambda i: stores[i].join(repeat))
    assert ids(joined) == [record(1).id] * len(stores), joined
    final = stores[1].get(record(1).id)
    assert final is not None and final.alert is not None
    assert (final.alert.deliveries, final.alert.keys) == (1 + len(stores), ["am:group:a", "am:fp:9"])
    assert id_of(stores[1].open_for(["am:fp:9"])) == record(1).id
    stores[0].update(record(1).id, status="done")
    assert stores[1].join(repeat) is None


def test_a_restart_recovers_only_what_a_gone_server_left(replicas: Replicas) -> None:
    first = replicas.open("a")
    for saved in (record(1, "running"), record(2, "queued"), record(3, "done")):
        first.save(saved)
    if replicas.backend == "postgresql":  # a second replica starting while the first one runs takes nothing
        assert replicas.open("b").recover() == ([], [])
    first.close()  # the first server is gone
    interrupted, queued = replicas.open("c").recover()
    assert [(r.id, r.status, r.error) for r in interrupted] == [(record(1).id, "interrupted", INTERRUPTED)]
    assert interrupted[0].finished_at is not None and ids(queued) == [record(2).id]
    assert replicas.open("d").get(record(1).id) == interrupted[0]
    if replicas.backend == "postgresql":  # the queued one is the recovering server's now, and it is alive
        assert replicas.open("e").recover() == ([], [])


@pytest.mark.postgres
def test_a_server_process_that_died_is_recovered_from_once(database_url: str, tmp_path: Path) -> None:
    script = ("import sys; from agent.server.records import InvestigationRecord, InvestigationStore; "
              "store = InvestigationStore(sys.argv[1]); "
              "[store.save(InvestigationRecord(id=f'inv-00000000000{n}', question='q', sources='incident-5', "
              "model='playbook', status=s)) for n, s in ((1, 'running'), (2, 'queued'))]")
    died = subprocess.run([sys.executable, "-c", script, str(tmp_path / "gone" / "approvals.sqlite")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert died.returncode == 0, died.stderr  # it exits without closing its store: its session simply ends
    stores = [InvestigationStore(tmp_path / f"r{i}" / "approvals.sqlite") for i in range(4)]
    try:
        recovered = in_threads(len(stores), lambda i: stores[i].recover())
    finally:
        for store in stores:
            store.close()
    assert sorted(r.id for interrupted, _ in recovered for r in interrupted) == ["inv-000000000001"], recovered
    assert sorted(r.id for _, queued in recovered for r in queued) == ["inv-000000000002"]


def legacy(folder: Path, *saved: InvestigationRecord) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for one in saved:
        (folder / f"{one.id}.json").write_text(one.model_dump_json(indent=1), encoding="utf-8")


def test_json_records_from_before_are_imported_once_and_an_unreadable_one_is_kept(
        replicas: Replicas, caplog: pytest.LogCaptureFixture) -> None:
    folder = replicas.folder("a") / "investigations"
    old = [record(1, "done", verdict={"status": "incident"}, keys=["am:group:a"]), record(2, "running"),
           record(3, "done", remediation={"status": "pending", "approval_id": "ab12cd34"}, keys=["dd:1"])]
    legacy(folder, *old)
    (folder / "inv-00000000000e.json").write_text('{"id": "inv-00000000000e", "question": ', encoding="utf-8")
    (folder / "inv-00000000000f.json").write_text(json.dumps({"id": "inv-00000000000f"}), encoding="utf-8")
    (folder / ".inv-000000000001.tmp123").write_text("a write cut short", encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="agent.server.record_import"):
        store = replicas.open("a")
    assert store.list() == old
    assert sorted(p.name for p in (folder / "migrated").iterdir()) == [f"{r.id}.json" for r in old]
    assert sorted(p.name for p in folder.iterdir()) == [
        ".inv-000000000001.tmp123", "inv-00000000000e.json", "inv-00000000000f.json", "migrated"]
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m.split(": ", 1)[0] for m in warned] == [  # each names the file, then why
        f"investigation record {folder / name} cannot be read, so it was not imported into {store.where}; it is "
        "left where it is (fix it, or move it away to silence this)"
        for name in ("inv-00000000000e.json", "inv-00000000000f.json")]
    assert id_of(store.open_for(["dd:1"])) == record(3).id

    store.update(record(1).id, error="changed since the import")
    legacy(folder, record(1, "done"))  # an import cut short before it moved this file: the database keeps its own
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agent.server.record_import"):
        again = replicas.open("a")
    assert [r.error for r in again.list()] == ["changed since the import", None, None]
    assert len(again.list()) == 3 and not (folder / f"{record(1).id}.json").exists()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2  # still named, still kept
    interrupted, _ = again.recover()  # a legacy record has no owner: the first server to recover takes it
    assert ids(interrupted) == [record(2).id]


@pytest.mark.postgres
def test_two_servers_on_one_database_share_records_and_an_alert(database_url: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_alert_intake import ALERTMANAGER

    isolate_server(tmp_path, monkeypatch)
    gate = Gate()
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with TestClient(app_for(tmp_path / "a", resolve=gate.resolve)) as first, \
            TestClient(app_for(tmp_path / "b", resolve=gate.resolve)) as second:
        started = first.post("/alerts/alertmanager", json=ALERTMANAGER).json()
        repeat = second.post("/alerts/alertmanager", json=ALERTMANAGER).json()
        listed = second.get("/investigations").json()
        gate.opened.set()
        done = wait_for(second, f"/investigations/{started['investigation_id']}", finished)
    assert (started["result"], repeat["result"]) == ("started", "joined")
    assert repeat["investigation_id"] == started["investigation_id"]
    assert [r["id"] for r in listed] == [started["investigation_id"]]
    assert (done["status"], done["alert"]["deliveries"]) == ("done", 2)
