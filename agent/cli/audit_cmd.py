"""`sre-agent audit`: the append-only remediation audit log, readable (or as JSON)."""

from __future__ import annotations

import contextlib
import json
from typing import Annotated

import typer

from agent.cli.common import err, friendly_errors, out
from agent.cli.render import render_audit
from agent.remediation.approvals import ApprovalStore
from agent.remediation.audit import open_audit
from agent.remediation.database import store_url
from agent.remediation.errors import ApprovalNotFound
from agent.remediation.paths import data_dir


def audit(
    run: Annotated[str | None, typer.Option("--run", help="only this run id")] = None,
    approval: Annotated[str | None, typer.Option("--approval", help="only this approval id (or unique prefix)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the records as a JSON array")] = False,
) -> None:
    """Show the chain of proposals, approvals, rejections, executions (with dry runs) and verifications."""
    with friendly_errors():
        folder = data_dir()
        log = open_audit(folder)
        local = folder / "approvals.sqlite"
        if approval and (local.exists() or not store_url(local).startswith("sqlite")):
            with contextlib.suppress(ApprovalNotFound):  # refusals can name ids the store never issued
                approval = ApprovalStore(local, audit=log).get(approval).id
        records = log.read(approval_id=approval, run_id=run)
    if as_json:
        print(json.dumps([r.model_dump(mode="json") for r in records], indent=2))
    elif not records:
        wanted = " and ".join(f"{k} {v}" for k, v in (("run", run), ("approval", approval)) if v)
        err.print(f"no audit records{' for ' + wanted if wanted else ''} in {log.where}", markup=False,
                  highlight=False)
    else:
        for line in render_audit(records):
            out.print(line, soft_wrap=True)
    if not records and (run or approval):
        raise typer.Exit(2)
