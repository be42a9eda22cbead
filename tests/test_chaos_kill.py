"""kill -9 at random moments between approve, execute and the record of it (opt-in: `pytest -m chaos`, about
2 minutes). A worker process approves and executes one approval against a cluster kept in files and is killed at a
random time; the recovery an on-call engineer would run follows. After every round, and at the end:

- no approval was applied twice;
- every change that reached the cluster has an audit record on its approval (executed, or abandoned by a person
  with "whether it took effect is unknown");
- nothing is left pending, approved or executing: every record had a way forward and took it;
- every final status has the audit event that says how it got there.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from agent.verdict import Action
from tests.chaos_worker import FileCluster, recover, remediator

ROOT = Path(__file__).resolve().parents[1]
ROUNDS = int(os.environ.get("SRE_AGENT_CHAOS_ROUNDS", "40"))
FINAL_EVENTS = {"executed": {"executed"}, "failed": {"failed", "abandoned", "tampered"}, "stale": {"stale"},
                "expired": {"expired"}, "rejected": {"rejected"}}

pytestmark = pytest.mark.chaos


def test_kill_9_between_approve_execute_and_record(tmp_path: Path) -> None:
    rng = random.Random(int(os.environ.get("SRE_AGENT_CHAOS_SEED", "5")))
    cluster, desk = FileCluster(tmp_path), remediator(tmp_path)
    left_as: Counter[str] = Counter()
    for round_ in range(ROUNDS):
        target = 2 if cluster.replicas() != 2 else 3
        record = desk.propose(Action(action="scale", namespace="shop", name="api", replicas=target),
                              run_id=f"run-{round_}", evidence_summary="chaos")
        worker = subprocess.Popen([sys.executable, "-m", "tests.chaos_worker", "work", str(tmp_path), record.id],
                                  cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0.45, 1.1))
        if worker.poll() is None:
            os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        left_as[desk.get(record.id).status] += 1
        recover(tmp_path)
    applies = Counter((tmp_path / "applies.log").read_text().split()) if (tmp_path / "applies.log").exists() \
        else Counter()
    records = desk.store.list()
    events = {r.id: {a.event for a in desk.audit.read(approval_id=r.id)} for r in records}
    print(f"\n{ROUNDS} rounds; status when the worker stopped or was killed: {dict(left_as)}; "
          f"changes applied: {sum(applies.values())}; final statuses: {dict(Counter(r.status for r in records))}")
    assert len(records) == ROUNDS
    assert [approval for approval, count in applies.items() if count > 1] == []  # never applied twice
    unaudited = [approval for approval in applies if not events[approval] & {"executed", "abandoned"}]
    assert unaudited == []
    assert [r.id for r in records if r.status in ("pending", "approved", "executing")] == []
    wrong = {r.id: (r.status, sorted(events[r.id])) for r in records if not events[r.id] & FINAL_EVENTS[r.status]}
    assert wrong == {}
    assert left_as["executed"] < ROUNDS, "no kill landed before the end: the test exercised nothing"
