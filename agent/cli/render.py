"""Human-readable rendering of progress and verdicts (rich), on the right streams."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

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
            calls = ", ".join(payload["tool_calls"]) or "answer"
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
