"""What the Slack app posts, in Block Kit (`slack_sdk.models`): the progress line of an investigation, its verdict
with evidence and proposed command, Approve/Reject buttons while the fix waits, and what happened after.

Text that comes from a question or a tool result is escaped for mrkdwn (&, <, >), so a log line can neither
mention @channel nor hide a link. Nothing here talks to Slack.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    SectionBlock,
)
from slack_sdk.models.views import View

from agent.server.records import InvestigationRecord
from agent.verdict import Verdict

APPROVE, REJECT = "approve", "reject"  # the buttons' action ids
REASON_VIEW, REASON_BLOCK, REASON_INPUT = "reject_reason", "reason", "reason"  # the rejection modal
PROGRESS_EVERY = 4  # tool calls between two updates of the progress message
MAX_EVIDENCE = 8
SECTION_LIMIT = 3000  # Slack's limit on a section's text
STATUS = {"incident": (":rotating_light:", "Incident"), "healthy": (":white_check_mark:", "Healthy"),
          "inconclusive": (":grey_question:", "Inconclusive")}
WAITING = ("pending", "awaiting_second")
ACTING = ("approved", "executing")


def escape(text: str) -> str:
    """Text shown as mrkdwn, never read as a mention, a link or a channel broadcast."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def code(text: str) -> str:
    return "`" + escape(text.replace("`", "'")) + "`"


def shown(text: str, limit: int = 300) -> str:
    return escape(clip(" ".join(text.split()), limit))


@dataclass
class Progress:
    """One investigation's progress message: status, tool calls so far, the latest; updated every few calls."""

    investigation: str
    status: str = "queued"
    tools: int = 0
    failed: int = 0
    turns: int = 0
    latest: str | None = None
    told_tools: int = 0

    def add(self, event: dict[str, Any]) -> bool:
        """Take one progress event; True when the message should be updated now."""
        kind = event.get("kind")
        if kind == "status":
            changed = event.get("status") != self.status
            self.status = str(event.get("status"))
            return changed
        if kind == "model":
            self.turns += 1
        elif kind == "tool":
            self.tools += 1
            self.failed += 0 if event.get("ok", True) else 1
            self.latest = f"{code(str(event.get('name')))} {shown(str(event.get('summary') or ''), 200)}"
            if self.tools - self.told_tools >= PROGRESS_EVERY:
                self.told_tools = self.tools
                return True
        return False

    def text(self) -> str:
        calls = f"{self.tools} tool call{'s' * (self.tools != 1)}"
        errors = f", {self.failed} failed" if self.failed else ""
        if self.status == "queued":
            return f":hourglass: Investigation {code(self.investigation)} is queued: it starts when a slot is free"
        line = f":hourglass_flowing_sand: Investigating {code(self.investigation)}: {calls} so far{errors}"
        return line + (f"\nLatest: {self.latest}" if self.latest else "")

    def finished(self, record: InvestigationRecord) -> str:
        calls = f"{self.tools} tool call{'s' * (self.tools != 1)}"
        if record.status == "done":
            return f":mag: Investigated {code(record.id)} with {calls} in {self.turns} model turns"
        return f":x: Investigation {code(record.id)} {record.status}: {shown(record.error or 'no reason recorded')}"


def asked(user: str, question: str, investigation: str) -> str:
    return f"<@{user}> asked: {shown(question, 1000)} ({code(investigation)})"


def alert_notice(record: InvestigationRecord) -> str:
    alert = record.alert
    label = "Alertmanager" if alert and alert.source == "alertmanager" else "Datadog"
    title = shown(alert.title if alert else record.question, 300)
    return f":rotating_light: *{label} alert*: {title}\nInvestigating: {code(record.id)}"


def not_started(problem: str) -> str:
    return f":x: I could not start an investigation: {shown(problem, 1000)}"


def _component(verdict: Verdict) -> str:
    component = verdict.root_cause.component if verdict.root_cause else None
    return component.ref() if component else ""


def _evidence(verdict: Verdict) -> str:
    names = {call.id: call.name for call in (verdict.trace.tool_calls if verdict.trace else [])}
    lines = [f"• {shown(item.claim)} {code(item.tool_call_id)}"
             + (f" _{names[item.tool_call_id]}_" if item.tool_call_id in names else "")
             for item in verdict.evidence[:MAX_EVIDENCE]]
    if len(verdict.evidence) > MAX_EVIDENCE:
        lines.append(f"… and {len(verdict.evidence) - MAX_EVIDENCE} more (see the investigation)")
    return clip("*Evidence*\n" + "\n".join(lines), SECTION_LIMIT)


def _outcome(remediation: dict[str, Any], by: str | None) -> str:
    status = str(remediation.get("status"))
    who = by or f"*{remediation.get('approver')}*"
    reason = shown(str(remediation.get("reason") or ""), 1000)
    execution = remediation.get("execution") or {}
    verification = remediation.get("verification") or {}
    if status in ("recovered", "not_recovered", "executed"):
        lines = [f":white_check_mark: *Executed*, approved by {who}: {shown(str(execution.get('applied', '')))}"]
        if status == "recovered":
            lines.append(f":white_check_mark: *Verified*: {shown(str(verification.get('summary', '')))}")
        elif status == "not_recovered":
            lines.append(f":warning: *Not recovered*: {shown(str(verification.get('summary', '')))}")
            lines += [f"• {shown(str(step))}" for step in verification.get("next_steps") or []]
        undo = verification.get("rollback_command") or execution.get("inverse_command")
        if undo:
            lines.append(f"To undo: {code(str(undo))}")
        return "\n".join(lines)
    if status == "rejected":
        return f":no_entry_sign: *Rejected* by {who}: {reason}"
    if status == "refused":
        return f":no_entry: *Not proposed*: {reason}"
    return f":x: *{status.replace('_', ' ').capitalize()}*: {reason or 'see the investigation'}"


def _approval(remediation: dict[str, Any], command: str) -> list[Block]:
    approval = str(remediation["approval_id"])
    waiting = "Waiting for an approver"
    if remediation.get("status") == "awaiting_second":
        waiting = f"Approved by *{remediation.get('approver')}*; waiting for a second, different approver"
    confirm = ConfirmObject(title="Run this fix?", text=f"{code(command)} runs once, then is verified.",
                            confirm="Approve and run", deny="Cancel")
    return [ContextBlock(elements=[MarkdownTextObject(text=f"{waiting} (approval {code(approval)})")]),
            ActionsBlock(block_id="approval", elements=[
                ButtonElement(text="Approve", action_id=APPROVE, value=approval, style="primary", confirm=confirm),
                ButtonElement(text="Reject", action_id=REJECT, value=approval, style="danger")])]


def verdict_message(record: InvestigationRecord, *, by: str | None = None) -> tuple[str, list[Block]]:
    """The verdict of a finished investigation: (notification text, blocks). While its fix waits for an approver,
    Approve and Reject buttons; while an approved fix runs, who approved it; after, what ran and what it verified.
    `by` names the Slack user who decided (their approver name and mention)."""
    if record.verdict is None:
        return failure_message(record)
    verdict = Verdict.model_validate(record.verdict)
    emoji, label = STATUS.get(verdict.status, (":grey_question:", verdict.status))
    component = _component(verdict)
    blocks: list[Block] = [
        HeaderBlock(text=clip(f"{emoji} {label}" + (f": {component}" if component else ""), 150)),
        SectionBlock(text=clip(escape(verdict.summary), SECTION_LIMIT))]
    if verdict.root_cause:
        cause = verdict.root_cause
        blocks.append(SectionBlock(text=clip(f"*Root cause* ({cause.category.replace('_', ' ')})\n"
                                             + escape(cause.explanation), SECTION_LIMIT)))
    if verdict.evidence:
        blocks.append(SectionBlock(text=_evidence(verdict)))
    if verdict.impact:
        parts = [escape(verdict.impact.broken_flow)]
        parts += [f"backlog {verdict.impact.backlog}"] if verdict.impact.backlog is not None else []
        parts += [f"since {escape(verdict.impact.since)}"] if verdict.impact.since else []
        blocks.append(SectionBlock(text=clip("*Impact*: " + "; ".join(parts), SECTION_LIMIT)))
    fix = verdict.remediation
    command = fix.command if fix else None
    if fix and command:
        rationale = f"\n{shown(fix.rationale, 500)}" if fix.rationale else ""
        blocks.append(SectionBlock(text=f"*Proposed fix* (risk {fix.risk})\n```{escape(command)}```{rationale}"))
    remediation = record.remediation or {}
    status = remediation.get("status")
    if status in WAITING and remediation.get("approval_id") and command:
        blocks += _approval(remediation, command)
    elif status in ACTING:
        who = by or f"*{remediation.get('approver')}*"
        blocks.append(SectionBlock(text=f":hourglass_flowing_sand: *Approved* by {who}: executing, then verifying"))
    elif status and status != "none":
        blocks.append(SectionBlock(text=clip(_outcome(remediation, by), SECTION_LIMIT)))
    calls = len(verdict.trace.tool_calls) if verdict.trace else 0
    blocks.append(ContextBlock(elements=[MarkdownTextObject(
        text=f"{code(record.id)} · model {escape(record.model)} · {calls} tool calls · confidence "
             f"{verdict.confidence:.2f}")]))
    return f"{label}: {shown(verdict.summary)}", blocks


def failure_message(record: InvestigationRecord) -> tuple[str, list[Block]]:
    text = f":x: Investigation {code(record.id)} {record.status}: {shown(record.error or 'no verdict', 1000)}"
    return clip(text, 300), [SectionBlock(text=text)]


def approving(record: InvestigationRecord, by: str) -> tuple[str, list[Block]]:
    """The verdict while the fix `by` approved runs (the buttons gone)."""
    remediation = {**(record.remediation or {}), "status": "approved"}
    return verdict_message(record.model_copy(update={"remediation": remediation}), by=by)


def reason_modal(approval: str, command: str, channel: str, message_ts: str) -> View:
    """The modal asking why a fix is rejected; where its verdict message is rides in private_metadata."""
    metadata = json.dumps({"approval": approval, "channel": channel, "ts": message_ts})
    return View(type="modal", callback_id=REASON_VIEW, private_metadata=metadata, title="Reject the fix",
                submit="Reject", close="Cancel", blocks=[
                    SectionBlock(text=f"Reject {code(command)}? The reason goes to the audit log."),
                    InputBlock(block_id=REASON_BLOCK, label="Why not?", element=PlainTextInputElement(
                        action_id=REASON_INPUT, multiline=True, max_length=2000))])
