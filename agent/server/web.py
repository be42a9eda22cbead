"""The web page `serve` serves: investigations, a verdict beside the tool results it cites, a question box, and
pending approvals that a signed-in approver answers.

Pages are rendered on the server with Jinja2's autoescaping, so text from tool results and questions is shown,
never run. The page's buttons call the same JSON API as every other client (`POST /investigations`,
`POST /approvals/{id}/approve`). The approver's token lives in the browser's session storage and is sent as a
bearer header, so there is no cookie to forge a request with.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from agent.server.context import ApproverDep, ServerDep

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")


def cited_calls(verdict: dict[str, Any] | None, trace: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The tool-call events of a trace by call id, for the ids the verdict's evidence cites."""
    wanted = {str(item.get("tool_call_id")) for item in (verdict or {}).get("evidence") or []}
    return {str(event["id"]): event for event in trace
            if event.get("kind") == "tool" and str(event.get("id")) in wanted}


@router.get("/", response_class=HTMLResponse)
def investigations_page(request: Request, here: ServerDep) -> HTMLResponse:
    records = sorted(here.store.list(), key=lambda r: r.created_at, reverse=True)
    return templates.TemplateResponse(request, "investigations.html", {
        "records": records, "default_source": here.settings.default_source()})


@router.get("/ui/investigations/{investigation_id}", response_class=HTMLResponse)
def investigation_page(investigation_id: str, request: Request, here: ServerDep) -> HTMLResponse:
    record = here.store.get(investigation_id)
    if record is None:
        raise HTTPException(404, detail=f"no investigation {investigation_id}")
    return templates.TemplateResponse(request, "investigation.html", {
        "record": record, "verdict": record.verdict or {}, "calls": cited_calls(record.verdict, record.trace)})


@router.get("/ui/approvals", response_class=HTMLResponse)
def approvals_page(request: Request, here: ServerDep) -> HTMLResponse:
    here.approvals.expire_overdue()
    return templates.TemplateResponse(request, "approvals.html", {"approvals": here.approvals.list(status=None)})


@router.get("/me")
def me(who: ApproverDep) -> dict[str, str]:
    """Who the credentials sent are (401 without): the page shows it after sign-in."""
    return {"name": who.name, "via": who.via}
