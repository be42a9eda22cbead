"""Human-readable rendering of progress and verdicts (rich), on the right streams."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from agent.remediation.audit import AuditRecord
from agent.verdict import Verdict

_STATUS_STYLE = {"incident": "bold red", "healthy": "bold green", "inconclusive": "bold yellow"}


def progress_printer(console: Console, model_label: str) -> Any:
    def on_event(kind: str, payload: dict[str, Any]) -> None:
        if kind == "tool":
            args = json.dumps(payload["args"], separators=(",", ":"))
            mark = "[green]✓[/]" if payload["ok"] else "[red]✗[/]"
            console.print(f"  {mark} {payload['id']} {payload['name']}({args}) {payload['ms']:.0f} ms",
                          markup=True, highlight=False)
            console.print(f"      {payload['summary'][:160]}", markup=False, style="dim")
        elif kind == "model":
            calls = "verdict" if payload.get("verdict") else ", ".join(payload["tool_calls"]) or "answer"
            console.print(f"[dim]{model_label} turn {payload['turn']} ({payload['seconds']:.1f} s): {calls}[/]",
                          markup=True)
    return on_event


def render_verdict(verdict: Verdict, baseline: bool) -> Panel:
    parts: list[Any] = []
    header = Text(verdict.status.upper(), style=_STATUS_STYLE[verdict.status])
    header.append(f"  confidence {verdict.confidence:.2f}", style="dim")
    parts += [header, Text(verdict.summary)]
    if verdict.root_cause:
        cause = verdict.root_cause
        where = f" — {cause.component.ref()}" if cause.component else ""
        parts.append(Text(f"\nRoot cause: {cause.category}{where}", style="bold"))
        parts.append(Text(cause.explanation))
    if verdict.evidence:
        table = Table("signal", "claim", "call", "observed", box=None, pad_edge=False)
        for item in verdict.evidence:
            table.add_row(item.signal, item.claim, item.tool_call_id, json.dumps(item.observed))
        parts += [Text("\nEvidence", style="bold"), table]
    if verdict.impact:
        impact = verdict.impact
        line = impact.broken_flow + (f"; backlog {impact.backlog}" if impact.backlog is not None else "")
        parts.append(Text(f"\nImpact: {line}" + (f"; since {impact.since}" if impact.since else "")))
    if verdict.ruled_out:
        parts.append(Text("Ruled out: " + "; ".join(verdict.ruled_out), style="dim"))
    if verdict.remediation:
        fix = verdict.remediation
        parts.append(Text(f"\nRemediation ({fix.risk} risk, needs human approval):", style="bold"))
        parts.append(Text(f"  {fix.command}", style="bold cyan"))
        for step in fix.verification:
            parts.append(Text(f"  verify: {step}", style="dim"))
    for note in verdict.limitations:
        parts.append(Text(f"not checked: {note}", style="red"))
    for note in verdict.also_noticed:
        parts.append(Text(f"also noticed: {note}", style="yellow"))
    for note in verdict.security_notes:
        parts.append(Text(f"security: {note}", style="magenta"))
    if verdict.trace:
        trace = verdict.trace
        label = f"{trace.model} (deterministic baseline, no LLM)" if baseline else trace.model
        parts.append(Text(
            f"\n{label}: {trace.llm_calls} model calls, {len(trace.tool_calls)} tool calls, "
            f"{trace.prompt_tokens + trace.completion_tokens} tokens, {trace.elapsed_s:.1f} s", style="dim"))
        for note in trace.validation:
            parts.append(Text(f"validator: {note}", style="yellow"))
    return Panel(Group(*parts), title="verdict", expand=False)


# ---- remediation ----------------------------------------------------------------------------------------------

def _clock(text: str | None) -> str:
    """An ISO timestamp as 2026-01-05 09:00:00Z."""
    if not text:
        return "-"
    return text.replace("T", " ").split(".")[0].split("+")[0].removesuffix("Z") + "Z"


def render_approval_request(request: dict[str, Any]) -> Panel:
    """What a human decides on: the exact command, the evidence, the server-side dry run, the expected effect."""
    evidence = [part.strip() for part in str(request.get("evidence_summary") or "").split(" | ") if part.strip()]
    parts: list[Any] = [
        Text(f"approval {request['approval_id']} · run {request['run_id']} · expires "
             f"{_clock(request.get('expires_at'))}", style="dim"),
        Text("\nCommand", style="bold"), Text(f"  {request['command']}", style="bold cyan"),
        Text("\nEvidence", style="bold"), *[Text(f"  {line}") for line in evidence[:1]],
        *[Text(f"  - {line}") for line in evidence[1:]],
        Text("\nServer-side dry run", style="bold"), Text(f"  {request.get('dry_run') or 'none'}"),
        Text("\nExpected effect", style="bold"), Text(f"  {request.get('expected_effect')}"),
    ]
    return Panel(Group(*parts), title="approval needed", expand=False)


def render_remediation(desk: dict[str, Any]) -> Group:
    """The end of a remediation run in words: nothing to do, refused, rejected, or executed and verified."""
    status = str(desk.get("status") or "none")
    reason = desk.get("reason") or ""
    approval = f"approval {desk['approval_id']}" if desk.get("approval_id") else "no approval"
    lines: list[Text] = []
    if status == "none":
        lines.append(Text(f"remediation: nothing to do ({reason})", style="dim"))
    elif status == "refused":
        lines.append(Text(f"remediation refused, nothing was changed: {reason}", style="bold red"))
    elif status == "pending":
        lines.append(Text(f"{approval} is pending; nothing was changed", style="bold yellow"))
    elif status in ("rejected", "expired"):
        who = f" by {desk['approver']}" if desk.get("approver") and status == "rejected" else ""
        lines.append(Text(f"{approval} {status}{who}: {reason}; nothing was changed", style="bold yellow"))
    elif status in ("stale", "failed", "executing", "lost_race"):
        lines.append(Text(f"{approval} not executed here ({status}): {reason}", style="bold red"))
    else:
        execution = desk.get("execution") or {}
        if execution:
            lines.append(Text(f"executed: {execution.get('applied')} ({approval}, approved by "
                              f"{execution.get('approver')})", style="bold"))
        report = desk.get("verification") or {}
        if status == "recovered":
            lines.append(Text(f"verified: recovered — {report.get('summary')}", style="bold green"))
        elif status == "not_recovered":
            lines.append(Text(f"verification: {report.get('summary')}", style="bold red"))
            lines += [Text(f"  finding: {item}", style="red") for item in report.get("findings", [])]
            lines += [Text(f"  next: {step}", style="yellow") for step in report.get("next_steps", [])]
        if execution.get("inverse_command") and status != "not_recovered":
            lines.append(Text(f"to undo (needs a fresh approval): {execution['inverse_command']}", style="dim"))
    return Group(*lines)


def render_audit(records: list[AuditRecord]) -> list[Text]:
    """The audit chain, grouped by run and approval, oldest first: who did what, when, and what came of it."""
    groups: dict[tuple[str | None, str | None], list[AuditRecord]] = {}
    for record in records:
        groups.setdefault((record.run_id, record.approval_id), []).append(record)
    lines: list[Text] = []
    for (run_id, approval_id), chain in groups.items():
        command = next((r.command for r in chain if r.command), None)
        head = [f"run {run_id or '-'}", f"approval {approval_id}" if approval_id else "no approval",
                command or "", chain[0].ts.strftime("%Y-%m-%d")]
        lines.append(Text(" · ".join(part for part in head if part), style="bold"))
        for record in chain:
            lines.append(Text(f"  {record.ts.strftime('%H:%M:%SZ')}  {record.event:<9} {record.actor:<12} "
                              f"{record.outcome}"))
            lines += [Text(f"{'':24}{extra}", style="dim") for extra in _audit_details(record)]
    return lines


def _audit_details(record: AuditRecord) -> list[str]:
    detail = record.detail
    if record.event == "proposed":
        dry = (detail.get("dry_run") or {}).get("summary")
        return [f"dry run: {dry or 'none'}", f"effect: {detail.get('expected_effect')}"]
    if record.event == "refused" and detail.get("rule"):
        return [f"rule: {detail['rule']}"]
    if record.event == "executed" and detail.get("inverse_command"):
        return [f"undo: {detail['inverse_command']}"]
    if record.event == "verified":
        return [f"finding: {f}" for f in detail.get("findings", [])] + [
            f"next: {step}" for step in detail.get("next_steps", [])]
    return []
