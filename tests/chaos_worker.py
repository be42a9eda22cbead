"""A process the chaos test kills with SIGKILL at a random moment: it approves and executes one approval against a
"cluster" kept in files (so what it changed survives it). Also the recovery pass and the durable actuator."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from agent.remediation.approvals import ExecutionClaim
from agent.remediation.errors import RemediationError
from agent.remediation.models import ActuatorResult, TargetState
from agent.remediation.policy import DEFAULT_POLICY, load_policy
from agent.remediation.service import Remediator
from agent.verdict import Action


class FileCluster:
    """One deployment whose replica count lives in `replicas.json`; every change is appended to `applies.log`
    (fsync'ed) before it is made, so a change made by a killed process is never lost from the count."""

    label = "file-cluster:test"

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.state = folder / "replicas.json"

    def replicas(self) -> int:
        return int(json.loads(self.state.read_text())["replicas"]) if self.state.exists() else 1

    def current_state(self, action: Action) -> TargetState:
        return TargetState(exists=True, replicas=self.replicas(), revision="1", uid="uid-1")

    def dry_run(self, action: Action) -> ActuatorResult:
        return ActuatorResult(ok=True, dry_run=True, summary=f"would scale to {action.replicas}")

    def apply(self, claim: ExecutionClaim) -> ActuatorResult:
        with (self.folder / "applies.log").open("a") as log:
            log.write(claim.record.id + "\n")
            log.flush()
            os.fsync(log.fileno())
        tmp = self.state.with_suffix(".tmp")
        tmp.write_text(json.dumps({"replicas": claim.action.replicas}))
        os.replace(tmp, self.state)
        return ActuatorResult(ok=True, dry_run=False, summary=f"scaled to {claim.action.replicas}")


def remediator(folder: Path) -> Remediator:
    return Remediator(FileCluster(folder), policy=load_policy(DEFAULT_POLICY), data=folder)


def work(folder: Path, approval_id: str) -> None:
    desk = remediator(folder)
    desk.approve(approval_id, "oncall-sre")
    desk.execute(approval_id)


def recover(folder: Path) -> None:
    """What an on-call engineer does after a crash: finish or close whatever was left open."""
    desk = remediator(folder)
    for record in desk.store.list():
        try:
            if record.status == "pending":
                desk.approve(record.id, "oncall-sre")
                desk.execute(record.id)
            elif record.status == "approved":
                desk.execute(record.id)
            elif record.status == "executing":
                desk.store.abandon(record.id, "oncall-sre", "its process was killed", force=True)
        except RemediationError as exc:
            print(f"{record.id}: {exc.message}")


if __name__ == "__main__":
    command, where = sys.argv[1], Path(sys.argv[2])
    if command == "work":
        work(where, sys.argv[3])
    else:
        recover(where)
