"""The FastAPI application: `create_app(settings)` builds it (never at import time); uvicorn serves it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from agent.remediation.approvals import ApprovalStore
from agent.server import api_alerts, api_approvals, api_chats, api_health, api_investigations, web
from agent.server.auth import ApproverTokens
from agent.server.context import Server
from agent.server.metrics import Metrics
from agent.server.records import InvestigationStore
from agent.server.runner import ModelResolver, Runner, describe
from agent.server.settings import ServerSettings

log = logging.getLogger(__name__)

DESCRIPTION = """Investigations over typed read-only tools, started by a person or an alert, streamed as they go;
approvals answered by authenticated approvers. See docs/serve.md."""


def create_app(settings: ServerSettings | None = None, *, resolve: ModelResolver | None = None) -> FastAPI:
    """The server over `settings` (default: read from SRE_AGENT_SERVE_* variables). `resolve` turns a model
    spec into a model (default: `agent.llm.resolve.resolve_model`). Raises ServerConfigError for bad settings."""
    from agent.llm.resolve import resolve_model

    settings = settings or ServerSettings()
    folder = settings.folder()
    tokens = ApproverTokens(settings.approver_tokens)
    store = InvestigationStore(folder / "approvals.sqlite")  # beside the approvals: the shared database when set
    metrics = Metrics()
    runner = Runner(store, metrics, resolve or resolve_model, folder, settings.concurrency)
    here = Server(settings=settings, folder=folder, store=store, approvals=ApprovalStore(folder / "approvals.sqlite"),
                  runner=runner, metrics=metrics, tokens=tokens)
    slack = None
    if settings.slack:  # the Slack app (docs/slack.md), only when its signing secret and bot token are set
        from agent.server.slack import SlackApp

        slack = SlackApp(here)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if slack is not None:
            await slack.open()
        interrupted, queued = store.recover()
        for record in interrupted:
            log.warning("investigation %s was running when the server stopped: marked interrupted", record.id)
            metrics.investigations.labels("interrupted").inc()
        for record in queued:
            log.info("investigation %s was queued when the server stopped: queued again", record.id)
            runner.submit(record)
        if settings.webhook_secret is None:
            log.warning("alert webhooks are accepted unsigned: set SRE_AGENT_SERVE_WEBHOOK_SECRET")
        yield
        await anyio.to_thread.run_sync(runner.close)
        store.close()
        if slack is not None:
            await slack.close()

    app = FastAPI(title="sre-agent", version="0.1.0", description=DESCRIPTION, lifespan=lifespan)
    app.state.server = here
    for module in (api_investigations, api_chats, api_approvals, api_alerts, api_health, web):
        app.include_router(module.router)
    if slack is not None:
        app.include_router(slack.router())

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming each problem (where, what, its type) without echoing the input: FastAPI's own handler fails
        with a 500 on a body that is not UTF-8 (it decodes the raw bytes to show them) and returns any body whole."""
        problems = [{"loc": list(error.get("loc", ())), "msg": str(error.get("msg", "")),
                     "type": str(error.get("type", ""))} for error in exc.errors()]
        return JSONResponse({"detail": problems}, status_code=422)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception) -> JSONResponse:
        log.error("%s %s failed: %s", request.method, request.url.path, describe(exc), exc_info=exc)
        return JSONResponse({"detail": "internal error: see the server log"}, status_code=500)

    return app
