"""`sre-agent approvals list|show|approve|reject`: decide on paused remediation runs from any shell, any time later.

Approving or rejecting resumes the paused run in this process: the graph is rebuilt from the data dir
($SRE_AGENT_DATA) and the durable checkpointer ($SRE_AGENT_CHECKPOINTER), then executed and verified.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer

from agent.cli.common import UsageProblem, err, friendly_errors, out
from agent.cli.render import render_approval_request, render_audit, render_remediation
from agent.remediation.approvals import ApprovalStore
from agent.remediation.errors import RemediationError
from agent.remediation.paths import data_dir
from agent.remediation.policy import valid_person

if TYPE_CHECKING:
    from agent.remediation.runs import RunRecord
    from agent.run import RemediationRun

approvals_app = typer.Typer(no_args_is_help=True,
                            help="Remediation approvals: list, show, approve, reject, abandon, verify.")

IdArg = Annotated[str, typer.Argument(help="approval id (or a unique prefix of 4+ characters)")]
AsOpt = Annotated[str, typer.Option("--as", help="your name or handle; recorded in the audit log")]
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]


def open_store() -> ApprovalStore:
    store = ApprovalStore(data_dir() / "approvals.sqlite")
    store.expire_overdue()
    return store


def person(name: str) -> str:
    try:
        return valid_person(name)
    except ValueError as exc:
        raise UsageProblem(f"--as: {exc}") from None


def short(moment: object) -> str:
    return str(moment)[:19].replace("T", " ") + "Z"


@approvals_app.command("list")
def list_command(
    every: Annotated[bool, typer.Option("--all", help="every approval, not only pending ones")] = False,
    as_json: JsonOpt = False,
) -> None:
    """List pending approvals (overdue ones are marked expired first)."""
    with friendly_errors():
        store = open_store()
        records = store.list() if every else store.list(status="pending")
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
        return
    if not records:
        err.print("no approvals" if every else "no pending approvals", markup=False)
        return
    rows = [("ID", "STATUS", "EXPIRES", "RUN", "DECIDED BY", "COMMAND")] + [
        (r.id, r.status, short(r.expires_at), r.run_id, r.approver or "-", r.command) for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    for row in rows:
        out.print("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[5]]),
                  markup=False, soft_wrap=True)


@approvals_app.command("show")
def show_command(approval_id: IdArg, as_json: JsonOpt = False) -> None:
    """Show one approval: the command, evidence, dry run, expected effect, its run, and its audit chain."""
    with friendly_errors():
        store = open_store()
        record = store.get(approval_id)
        try:
            from agent.remediation.runs import RunRegistry

            run: RunRecord | None = RunRegistry.in_data(data_dir()).get(record.run_id)
        except RemediationError:
            run = None
        history = store.audit.read(approval_id=record.id)
    if as_json:
        print(json.dumps({"approval": record.model_dump(mode="json"),
                          "run": run.model_dump(mode="json") if run else None,
                          "audit": [r.model_dump(mode="json") for r in history]}, indent=2))
        return
    from agent.remediation.service import approval_request

    out.print(render_approval_request(approval_request(record)))
    decided = f" (decided by {record.approver} at {short(record.decided_at)})" if record.approver else ""
    out.print(f"status: {record.status}{decided}" + (f": {record.reason}" if record.reason else ""),
              markup=False, soft_wrap=True)
    if record.status == "executing":
        out.print(f"if the process that claimed it at {short(record.executed_at)} is gone: sre-agent approvals "
                  f"abandon {record.id} --as NAME --reason '...'", markup=False, soft_wrap=True)
    if run:
        out.print(f"run: {run.run_id} · {run.sources} · model {run.model} · question {run.question!r}",
                  markup=False, soft_wrap=True)
    for line in render_audit(history):
        out.print(line, soft_wrap=True)


def finish(result: RemediationRun, wanted: str) -> None:
    out.print(render_remediation(result.remediation), soft_wrap=True)
    if result.status not in wanted.split("|"):
        raise typer.Exit(1)


@approvals_app.command("approve")
def approve_command(approval_id: IdArg, approver: AsOpt) -> None:
    """Approve, then resume the paused run: execute the action (once) and verify recovery."""
    with friendly_errors():
        name = person(approver)
        record = open_store().get(approval_id)
        err.print(f"approving {record.id} as {name}: {record.command}", markup=False, highlight=False)
        from agent.run import resume_approval

        result = resume_approval(record.id, {"decision": "approve", "approver": name})
    finish(result, "recovered|executed")


@approvals_app.command("reject")
def reject_command(
    approval_id: IdArg, approver: AsOpt,
    reason: Annotated[str, typer.Option(help="why; recorded in the audit log")],
) -> None:
    """Reject, ending the paused run: nothing is changed; the reason goes into the audit log."""
    with friendly_errors():
        name = person(approver)
        if not reason.strip():
            raise UsageProblem("--reason must say why")
        record = open_store().get(approval_id)
        from agent.run import resume_approval

        result = resume_approval(record.id, {"decision": "reject", "approver": name, "reason": reason})
    finish(result, "rejected")


@approvals_app.command("abandon")
def abandon_command(
    approval_id: IdArg, approver: AsOpt,
    reason: Annotated[str, typer.Option(help="what happened to the process; recorded in the audit log")],
    force: Annotated[bool, typer.Option("--force", help="even if the claim is recent (the process is known dead)")]
    = False,
) -> None:
    """Close an execution left `executing` by a process that died, as failed. Whether the change reached the
    target is unknown: check it (e.g. `sre-agent approvals show ID`, the deployment) before proposing again."""
    with friendly_errors():
        name = person(approver)
        if not reason.strip():
            raise UsageProblem("--reason must say what happened")
        record = open_store().abandon(approval_id, name, reason.strip(), force=force)
    out.print(f"approval {record.id}: failed — {record.reason}", markup=False, soft_wrap=True)
    out.print(f"check the target before proposing {record.command} again", markup=False, soft_wrap=True)


@approvals_app.command("verify")
def verify_command(
    approval_id: IdArg, approver: AsOpt,
    timeout: Annotated[float, typer.Option(min=0, help="how long to watch for recovery, seconds")] = 60,
    interval: Annotated[float, typer.Option(min=0.1, help="seconds between looks")] = 5,
) -> None:
    """Look at an executed or abandoned approval's target again (any time later) and record what it shows."""
    from agent.run import verify_approval

    with friendly_errors():
        name = person(approver)
        report = verify_approval(approval_id, actor=name, timeout_s=timeout, interval_s=interval)
    out.print(f"approval {approval_id}: {'recovered' if report.recovered else 'NOT recovered'} — {report.summary}",
              markup=False, soft_wrap=True)
    for step in report.next_steps:
        out.print(f"  next: {step}", markup=False, soft_wrap=True)
    if not report.recovered:
        raise typer.Exit(1)
