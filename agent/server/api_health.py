"""GET /healthz (the process answers), GET /readyz (it can do its work), GET /metrics (Prometheus text)."""

from __future__ import annotations

import tempfile
import time

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from agent.server.context import Server, ServerDep
from agent.server.runner import describe, open_sources

router = APIRouter(tags=["health"])
SOURCES_CHECK_TTL_S = 60.0  # building a replayed world takes a fraction of a second: not on every probe


class Readiness(BaseModel):
    ready: bool
    checks: dict[str, str]


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


def _data_writable(here: Server) -> str | None:
    try:
        with tempfile.NamedTemporaryFile(dir=here.folder, prefix=".readyz-"):
            pass
        here.approvals.list(status="pending")
    except Exception as exc:  # any failure here means not ready; say which
        return f"data dir {here.folder}: {describe(exc)}"
    return None


def _sources(here: Server) -> str | None:
    spec = here.settings.default_source()
    if spec is None:
        return None
    checked = here.sources_checked
    if checked is not None and time.monotonic() - checked[0] < SOURCES_CHECK_TTL_S:
        return checked[1]
    try:
        open_sources(spec, here.settings.context)
        problem = None
    except Exception as exc:  # any failure to build the default sources means not ready; say why
        problem = f"cannot open the default sources {spec!r}: {describe(exc)}"
    here.sources_checked = (time.monotonic(), problem)
    return problem


@router.get("/readyz", response_model=Readiness, responses={503: {"model": Readiness}})
def readyz(here: ServerDep) -> JSONResponse:
    """Ready when the data dir is writable and the default sources (scenario or live) can be built."""
    data, sources = _data_writable(here), _sources(here)
    spec = here.settings.default_source()
    checks = {"data": data or f"writable: {here.folder}",
              "sources": sources or (f"ok: {spec}" if spec else "none by default (requests name one)")}
    ready = data is None and sources is None
    return JSONResponse(Readiness(ready=ready, checks=checks).model_dump(), status_code=200 if ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(here: ServerDep) -> Response:
    """Prometheus text format: investigations by outcome, their duration, tool errors by source, approvals by
    decision, alert deliveries, and what is queued or running now."""
    return Response(generate_latest(here.metrics.registry), media_type=CONTENT_TYPE_LATEST)
