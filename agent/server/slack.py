"""The Slack app (slack-bolt) at POST /slack/events, served when SRE_AGENT_SERVE_SLACK_SIGNING_SECRET and
SRE_AGENT_SERVE_SLACK_BOT_TOKEN are set. docs/slack.md has the app manifest.

- `/sre-agent <question>` and an @mention start an investigation through the same `start()` as
  POST /investigations (records, metrics and approvals are shared) and answer in a thread: one progress message,
  updated every few tool calls, then the verdict in Block Kit.
- Approve and Reject act as the clicking Slack user, mapped to an approver name by SRE_AGENT_SERVE_SLACK_APPROVERS:
  the answer goes through `Runner.decide` as POST /approvals/{id}/approve's does (an authenticated identity, via
  Slack), so the proposal's policy decides who may. Anyone else gets an ephemeral refusal and nothing changes.
- An investigation an alert started posts its verdict to SRE_AGENT_SERVE_SLACK_CHANNEL.

Bolt checks every request's signature (401 otherwise) and acknowledges within Slack's 3 s; the work runs after, as
tasks on the server's event loop that call the Web API in worker threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Coroutine
from concurrent.futures import Future
from functools import partial
from pathlib import Path
from typing import Any
from urllib.error import URLError

import anyio
from fastapi import APIRouter, HTTPException, Request, Response
from slack_bolt import Ack, App, BoltContext, Respond
from slack_bolt.adapter.fastapi import SlackRequestHandler
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.web import SlackResponse

from agent.remediation.approvals import ApprovalRecord
from agent.remediation.errors import ApprovalNotFound, RemediationError
from agent.remediation.policy import valid_person
from agent.server import slack_blocks as blocks
from agent.server.api_investigations import start
from agent.server.auth import Identity
from agent.server.context import Server
from agent.server.mapping_file import MappingFile
from agent.server.records import InvestigationRecord
from agent.server.runner import describe, terminal_event
from agent.server.settings import ENV_PREFIX, ServerConfigError

log = logging.getLogger(__name__)

COMMAND = "/sre-agent"
USAGE = f"Ask a question: `{COMMAND} why are shipments not going out?`"
POLL_S = 0.05
_USER = re.compile(r"^[UW][A-Z0-9]{2,}$")
SEEN_EVENTS = 1000


class SlackApprovers:
    """The Slack approvers file, read again when it changes:

        # Slack user id → approver name as the policy lists it
        U024BE7LH: oncall-sre
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file = MappingFile(path, f"{ENV_PREFIX}SLACK_APPROVERS: {path}", "Slack user id → approver name",
                                 _approver_names)

    def name(self, user: str) -> str | None:
        """The approver name of Slack user `user`, or None."""
        return self._file.entries().get(user)


def _approver_names(raw: dict[Any, Any], where: str) -> dict[str, str]:
    names: dict[str, str] = {}
    for user, name in raw.items():
        if not _USER.match(str(user)):
            raise ServerConfigError(f"{where}: {str(user)!r} is not a Slack user id (U… or W…: the member id "
                                    "in the person's Slack profile)")
        if not isinstance(name, str):
            raise ServerConfigError(f"{where}: {user}: expected the approver name as the policy lists it")
        try:
            names[str(user)] = valid_person(str(name))
        except ValueError as exc:
            raise ServerConfigError(f"{where}: {user}: {exc}") from None
    return names


def question_of(text: str, bot: str | None = None) -> str:
    """The question in a command's text or a mention (the bot's own mention taken out), as the person typed it:
    Slack sends &, < and > as entities."""
    if bot:
        text = re.sub(rf"<@{re.escape(bot)}(?:\|[^>]*)?>", " ", text)
    return " ".join(text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&").split())


class SlackApp:
    """The bolt App over one server: its listeners, and the tasks that follow investigations into Slack."""

    def __init__(self, here: Server) -> None:
        settings = here.settings
        assert settings.slack_bot_token is not None and settings.slack_signing_secret is not None
        self.here = here
        self.channel = settings.slack_channel
        self.approvers = SlackApprovers(settings.slack_approvers)
        self.client = WebClient(token=settings.slack_bot_token.get_secret_value(), base_url=settings.slack_api_url)
        self.client.retry_handlers.append(RateLimitErrorRetryHandler(max_retry_count=2))  # chat.update is tier 3
        try:  # a token Slack refuses stops the server now, not at the first request
            checked = self.client.auth_test()
        except SlackApiError as exc:
            raise ServerConfigError(f"Slack does not accept {ENV_PREFIX}SLACK_BOT_TOKEN (auth.test says "
                                    f"{exc.response.get('error')})") from None
        except (URLError, OSError) as exc:
            raise ServerConfigError(f"{ENV_PREFIX}SLACK_API_URL: cannot reach {settings.slack_api_url}: "
                                    f"{getattr(exc, 'reason', exc)}") from None
        identity = AuthorizeResult.from_auth_test_response(auth_test_response=checked, bot_token=self.client.token)
        self.bolt = App(name="sre-agent", signing_secret=settings.slack_signing_secret.get_secret_value(),
                        client=WebClient(base_url=settings.slack_api_url), authorize=lambda: identity)
        self.handler = SlackRequestHandler(self.bolt)
        self.bolt.command(COMMAND)(self._on_command)
        self.bolt.event("app_mention")(self._on_mention)
        self.bolt.action(blocks.APPROVE)(self._on_approve)
        self.bolt.action(blocks.REJECT)(self._on_reject)
        self.bolt.view(blocks.REASON_VIEW)(self._on_reason)
        here.runner.submitted.append(self._on_submitted)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._jobs: set[Future[None]] = set()
        self._jobs_lock = threading.Lock()
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._seen_lock = threading.Lock()

    def router(self) -> APIRouter:
        router = APIRouter(tags=["slack"])

        @router.post("/slack/events", summary="Slack: slash command, events and interactivity (signed by Slack)")
        async def slack_events(request: Request) -> Response:
            return await self.handler.handle(request)

        return router

    # ---- lifetime ---------------------------------------------------------------------------------------

    async def open(self) -> None:
        """Take the server's event loop: the tasks that talk to Slack run on it."""
        self._loop = asyncio.get_running_loop()

    async def close(self, grace_s: float = 5.0) -> None:
        """Let the tasks still posting finish (the investigations have finished), then cancel what is left."""
        with self._jobs_lock:
            jobs = [asyncio.wrap_future(job) for job in self._jobs]
        if jobs:
            _, late = await asyncio.wait(jobs, timeout=grace_s)
            for job in late:
                job.cancel()
        self._loop = None

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        if self._loop is None:
            work.close()
            log.warning("Slack: the server is not running; dropped a Slack task")
            return
        job = asyncio.run_coroutine_threadsafe(self._guarded(work), self._loop)
        with self._jobs_lock:
            self._jobs.add(job)
        job.add_done_callback(self._done)

    def _done(self, job: Future[None]) -> None:
        with self._jobs_lock:
            self._jobs.discard(job)

    @staticmethod
    async def _guarded(work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except SlackApiError as exc:
            log.warning("Slack refused a call: %s", exc.response.get("error"))
        except Exception as exc:  # a Slack task's failure is logged; the server and the investigation go on
            log.error("Slack task failed: %s", describe(exc), exc_info=True)

    async def _web(self, call: Callable[..., SlackResponse], **arguments: Any) -> SlackResponse:
        return await anyio.to_thread.run_sync(partial(call, **arguments))

    # ---- listeners (bolt's threads: acknowledge, then hand the work to the event loop) --------------------

    def _on_command(self, ack: Ack, command: dict[str, Any], respond: Respond) -> None:
        question = question_of(str(command.get("text", "")))
        if len(question) < 3:
            ack(text=USAGE)
            return
        ack()
        self._spawn(self._asked(question, str(command["user_id"]), str(command["channel_id"]), None, respond))

    def _on_mention(self, event: dict[str, Any], body: dict[str, Any], context: BoltContext) -> None:
        if not self._first_delivery(str(body.get("event_id", ""))):
            return
        thread = str(event.get("thread_ts") or event["ts"])
        self._spawn(self._asked(question_of(str(event.get("text", "")), context.bot_user_id),
                                str(event.get("user", "")), str(event["channel"]), thread, None))

    def _on_approve(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        container = body.get("container") or {}
        self._spawn(self._decide(str(body["user"]["id"]), str(action["value"]), str(container.get("channel_id")),
                                 str(container.get("message_ts")), {"decision": "approve"}))

    def _on_reject(self, ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user, container = str(body["user"]["id"]), body.get("container") or {}
        channel, ts = str(container.get("channel_id")), str(container.get("message_ts"))
        if self.approvers.name(user) is None:
            self._spawn(self._ephemeral(channel, user, self._unmapped(user)))
            return
        try:
            record = self.here.approvals.get(str(action["value"]))
            self.client.views_open(trigger_id=body["trigger_id"],  # its trigger lasts 3 s: open the modal now
                                   view=blocks.reason_modal(record.id, record.command, channel, ts))
        except ApprovalNotFound as exc:
            self._spawn(self._ephemeral(channel, user, exc.message))
        except SlackApiError as exc:
            log.warning("Slack refused to open the rejection form: %s", exc.response.get("error"))

    def _on_reason(self, ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        values = ((view.get("state") or {}).get("values") or {}).get(blocks.REASON_BLOCK) or {}
        reason = " ".join(str((values.get(blocks.REASON_INPUT) or {}).get("value") or "").split())
        if not reason:
            ack(response_action="errors", errors={blocks.REASON_BLOCK: "Say why: it goes to the audit log"})
            return
        ack()
        where = json.loads(view.get("private_metadata") or "{}")
        self._spawn(self._decide(str(body["user"]["id"]), str(where["approval"]), str(where["channel"]),
                                 str(where["ts"]), {"decision": "reject", "reason": reason}))

    def _on_submitted(self, record: InvestigationRecord) -> None:
        if record.alert is not None and self.channel:
            self._spawn(self._announce(record, self.channel))

    def _first_delivery(self, event_id: str) -> bool:
        """False for an Events API retry of an event already taken."""
        with self._seen_lock:
            if event_id in self._seen:
                return False
            self._seen[event_id] = None
            while len(self._seen) > SEEN_EVENTS:
                self._seen.popitem(last=False)
        return True

    # ---- the work ---------------------------------------------------------------------------------------

    async def _asked(self, question: str, user: str, channel: str, thread: str | None,
                     respond: Respond | None) -> None:
        """Start the investigation a person asked for and answer in its thread (under the mention, or under a
        message saying who asked)."""
        problem, record = USAGE, None
        if len(question) >= 3:
            try:
                record = await anyio.to_thread.run_sync(partial(
                    start, self.here, question, remediate=True,
                    requested_by=self.approvers.name(user) or f"slack:{user}"))
            except HTTPException as exc:
                problem = blocks.not_started(str(exc.detail))
        if record is None:
            if respond is not None:
                await anyio.to_thread.run_sync(partial(respond, text=problem, response_type="ephemeral"))
            else:
                await self._web(self.client.chat_postMessage, channel=channel, thread_ts=thread, text=problem)
            return
        if thread is None:
            try:
                posted = await self._web(self.client.chat_postMessage, channel=channel,
                                         text=blocks.asked(user, question, record.id))
            except SlackApiError as exc:
                if respond is not None:
                    await anyio.to_thread.run_sync(partial(
                        respond, response_type="ephemeral",
                        text=f"I cannot post in this channel ({exc.response.get('error')}): invite me with "
                             f"`/invite @sre-agent`. The investigation {record.id} runs anyway."))
                return
            thread = str(posted["ts"])
        await self._follow(record.id, channel, thread)

    async def _announce(self, record: InvestigationRecord, channel: str) -> None:
        posted = await self._web(self.client.chat_postMessage, channel=channel, text=blocks.alert_notice(record))
        await self._follow(record.id, channel, str(posted["ts"]))

    async def _events(self, investigation: str) -> AsyncIterator[dict[str, Any]]:
        live = self.here.runner.hub.existing(investigation)
        if live is not None:
            async for _, event in live.follow():
                yield event
            return
        finished = self.here.store.get(investigation)  # it finished before we looked
        if finished is not None:
            for event in [*finished.trace, terminal_event(finished)]:
                yield event

    async def _follow(self, investigation: str, channel: str, thread: str) -> None:
        """One progress message in the thread, updated as the investigation goes; then its verdict."""
        progress = blocks.Progress(investigation)
        posted = await self._web(self.client.chat_postMessage, channel=channel, thread_ts=thread,
                                 text=progress.text())
        ts = str(posted["ts"])
        async for event in self._events(investigation):
            if progress.add(event):
                await self._web(self.client.chat_update, channel=channel, ts=ts, text=progress.text())
        record = self.here.store.get(investigation)
        if record is None:  # pragma: no cover - only a hand-edited data dir
            return
        await self._web(self.client.chat_update, channel=channel, ts=ts, text=progress.finished(record))
        text, verdict = blocks.verdict_message(record)
        await self._web(self.client.chat_postMessage, channel=channel, thread_ts=thread, text=text, blocks=verdict)

    async def _decide(self, user: str, approval: str, channel: str, ts: str, answer: dict[str, Any]) -> None:
        """Answer an approval as Slack user `user` through the server's decide path, then show the outcome on
        the verdict message (`ts`); a refusal goes to `user` alone and changes nothing."""
        name = self.approvers.name(user)
        if name is None:
            await self._ephemeral(channel, user, self._unmapped(user))
            return
        who = Identity(name, "slack")
        try:
            before = await anyio.to_thread.run_sync(self.here.approvals.get, approval)
        except ApprovalNotFound as exc:
            await self._ephemeral(channel, user, exc.message)
            return
        future = self.here.runner.decide(before.id, {**answer, "approver": who.name, "authenticated": True})
        if not await self._recorded(future, before):
            refusal = future.exception()
            why = (refusal.message if isinstance(refusal, RemediationError)
                   else describe(refusal) if refusal else "nothing changed")
            await self._ephemeral(channel, user, f":no_entry: Not done: {blocks.shown(why, 2000)}")
            return
        by = f"*{who.name}* (<@{user}>)"
        investigation = self.here.store.by_run(before.run_id)
        if investigation is None:  # pragma: no cover - an approval the CLI proposed has no verdict message here
            return
        now = await anyio.to_thread.run_sync(self.here.approvals.get, before.id)
        if now.status in ("approved", "executing", "executed"):
            await self._update(channel, ts, *blocks.approving(investigation, by))
        try:
            await asyncio.wrap_future(future)
        except Exception as exc:  # the decision stands; resuming failed (logged by the runner)
            await self._ephemeral(channel, user, f":x: The decision is recorded, but resuming the run failed: "
                                                 f"{blocks.shown(describe(exc), 2000)}")
        finished = self.here.store.by_run(before.run_id) or investigation
        await self._update(channel, ts, *blocks.verdict_message(finished, by=by))

    async def _recorded(self, future: Future[Any], before: ApprovalRecord) -> bool:
        """Wait until the decision is recorded on the approval (True) or the run refused it (False)."""
        while True:
            done = future.done()
            current = await anyio.to_thread.run_sync(self.here.approvals.get, before.id)
            if (current.status, current.first_approver) != (before.status, before.first_approver):
                return True
            if done:
                return future.exception() is None
            await asyncio.sleep(POLL_S)

    async def _update(self, channel: str, ts: str, text: str, verdict: list[Any]) -> None:
        await self._web(self.client.chat_update, channel=channel, ts=ts, text=text, blocks=verdict)

    async def _ephemeral(self, channel: str, user: str, text: str) -> None:
        await self._web(self.client.chat_postEphemeral, channel=channel, user=user, text=text)

    @staticmethod
    def _unmapped(user: str) -> str:
        return (f":no_entry: Not done: your Slack user ({user}) is not mapped to an approver. An admin adds "
                f"`{user}: <your approver name>` to {ENV_PREFIX}SLACK_APPROVERS.")
