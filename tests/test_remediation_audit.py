"""The audit log: append-only JSON Lines that survive a crash mid-write and can be filtered."""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest

from agent.remediation.audit import AuditLog, AuditRecord
from agent.remediation.paths import DATA_ENV

T0 = datetime(2025, 11, 9, 14, 50, tzinfo=UTC)


def write_three(log: AuditLog) -> None:
    log.record("proposed", actor="sre-agent", outcome="proposed scale", approval_id="a1", run_id="r1", ts=T0)
    log.record("approved", actor="oncall-sre", outcome="approved by oncall-sre", approval_id="a1", run_id="r1", ts=T0)
    log.record("proposed", actor="sre-agent", outcome="proposed restart", approval_id="b2", run_id="r2", ts=T0)


def test_records_are_json_lines_and_filterable(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")
    write_three(log)
    lines = (tmp_path / "audit.jsonl").read_text().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["proposed", "approved", "proposed"]
    assert json.loads(lines[1]) == {
        "ts": "2025-11-09T14:50:00Z", "event": "approved", "actor": "oncall-sre", "approval_id": "a1",
        "run_id": "r1", "action": None, "command": None, "outcome": "approved by oncall-sre", "detail": {}}
    assert [r.outcome for r in log.read(approval_id="a1")] == ["proposed scale", "approved by oncall-sre"]
    assert [r.approval_id for r in log.read(run_id="r2")] == ["b2"]
    assert [r.approval_id for r in log.read(event="proposed")] == ["a1", "b2"]
    assert log.read(approval_id="zz") == []


def test_truncated_last_line_is_skipped_and_the_next_append_is_readable(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    write_three(log)
    whole = path.read_bytes()
    with path.open("ab") as handle:  # a crash in the middle of a write
        handle.write(b'{"ts": "2025-11-09T14:51:00Z", "event": "execu')
    with caplog.at_level(logging.WARNING, logger="agent.remediation.audit"):
        records = log.read()
    assert [r.outcome for r in records] == ["proposed scale", "approved by oncall-sre", "proposed restart"]
    assert caplog.messages == [f"{path} line 4: skipped a partially written last line (46 bytes)"]

    log.record("executed", actor="oncall-sre", outcome="scaled", approval_id="a1", run_id="r1", ts=T0)
    assert path.read_bytes().startswith(whole)  # nothing earlier was rewritten
    assert [r.event for r in log.read(approval_id="a1")] == ["proposed", "approved", "executed"]
    assert len(log.read()) == 4


def test_garbage_in_the_middle_is_skipped_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "audit.jsonl"
    log = AuditLog(path)
    log.record("proposed", actor="a", outcome="one", ts=T0)
    with path.open("ab") as handle:
        handle.write(b"not json at all\n")
    log.record("approved", actor="b", outcome="two", ts=T0)
    with caplog.at_level(logging.WARNING, logger="agent.remediation.audit"):
        assert [r.outcome for r in log.read()] == ["one", "two"]
    assert caplog.messages == [f"{path} line 2: skipped an unreadable line (15 bytes)"]


def test_concurrent_appends_lose_nothing(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.jsonl")

    def write(worker: int) -> None:
        for index in range(25):
            log.record("dry_run", actor=f"w{worker}", outcome=f"{worker}-{index}", ts=T0)

    threads = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.outcome for r in log.read()) == sorted(f"{w}-{i}" for w in range(4) for i in range(25))


def test_default_path_is_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    log = AuditLog()
    assert log.path == tmp_path / "data" / "audit.jsonl"
    assert log.read() == []
    record = log.record("refused", actor="x", outcome="no", ts=T0)
    assert log.read() == [record]
    assert isinstance(record, AuditRecord)
