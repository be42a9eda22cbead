"""POST /investigations, GET /investigations[/{id}], and the progress stream GET /investigations/{id}/events."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, HTTPException
from fastapi.sse import EventSourceResponse, ServerSentEvent
from pydantic import BaseModel, ConfigDict, Field

from agent.llm.base import ChatModel, ModelError
from agent.question import Question
from agent.server.context import Server, ServerDep
from agent.server.records import AlertRef, InvestigationRecord, InvestigationStatus, new_investigation_id
from agent.server.runner import describe, open_sources, terminal_event
from tools.errors import SourceError
from tools.replay.loading import ScenarioError
from tools.settings import ConfigError

router = APIRouter(tags=["investigations"])


class InvestigationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[Question, Field(examples=["why are shipments not going out?"])]
    scenario: str | None = Field(None, description="a replayed world: scenario id or path on the server")
    live: bool = Field(False, description="read the live sources the server is configured for")
    context: str | None = Field(None, description="with live: the kubeconfig context (default: the server's)")
    model: str | None = Field(None, description="playbook, openai:<model> or local (default: the server's)")
    remediate: bool = Field(False, description="propose the verdict's action and wait for an approver")


class InvestigationSummary(BaseModel):
    id: str
    status: InvestigationStatus
    question: str
    created_at: datetime
    verdict_status: str | None = None
    remediation_status: str | None = None
    approval_id: str | None = None

    @classmethod
    def of(cls, record: InvestigationRecord) -> InvestigationSummary:
        return cls(id=record.id, status=record.status, question=record.question, created_at=record.created_at,
                   verdict_status=(record.verdict or {}).get("status"),
                   remediation_status=(record.remediation or {}).get("status"), approval_id=record.approval_id)


def source_spec(here: Server, scenario: str | None, live: bool, context: str | None,
                missing_status: int = 422) -> tuple[str, str | None]:
    """The sources a request reads (spec, kubeconfig context), or an HTTP error saying what to ask for."""
    from agent.remediation.flow import LIVE, scenario_spec

    if live and scenario:
        raise HTTPException(422, detail="choose scenario or live, not both")
    if context and not (live or (scenario is None and here.settings.live)):
        raise HTTPException(422, detail="context names a live cluster: use it with live")
    if live:
        return LIVE, context or here.settings.context
    if scenario:
        return scenario_spec(scenario), None
    default = here.settings.default_source()
    if default is None:
        raise HTTPException(missing_status, detail="name a scenario or live: the server has no default source "
                                                   "(SRE_AGENT_SERVE_SCENARIO or SRE_AGENT_SERVE_LIVE)")
    return default, (context or here.settings.context) if default == LIVE else None


def start(here: Server, question: str, *, scenario: str | None = None, live: bool = False,
          context: str | None = None, model: str | None = None, remediate: bool = False,
          alert: AlertRef | None = None, requested_by: str | None = None,
          missing_status: int = 422) -> InvestigationRecord:
    """Check what an investigation needs (its sources open, its model resolves) and queue it."""
    from agent.llm.resolve import default_spec

    spec, kube_context = source_spec(here, scenario, live, context, missing_status)
    try:
        sources = open_sources(spec, kube_context)
    except (ScenarioError, ConfigError, SourceError) as exc:
        raise HTTPException(422, detail=f"cannot open the sources {spec!r}: {describe(exc)}") from None
    model_spec = model or here.settings.model or default_spec()
    chat_model: ChatModel | None = None
    if model_spec != "local":  # the embedded model loads in the worker, not in a request
        try:
            chat_model = here.runner.resolve(model_spec)
        except ModelError as exc:
            raise HTTPException(422, detail=describe(exc)) from None
    record = InvestigationRecord(id=new_investigation_id(), question=" ".join(question.split()), sources=spec,
                                 context=kube_context, model=model_spec, remediate=remediate, alert=alert,
                                 requested_by=requested_by)
    return here.runner.submit(record, sources, chat_model)


def investigation(investigation_id: str, here: ServerDep) -> InvestigationRecord:
    record = here.store.get(investigation_id)
    if record is None:
        raise HTTPException(404, detail=f"no investigation {investigation_id!r}")
    return record


RecordDep = Annotated[InvestigationRecord, Depends(investigation)]


@router.post("/investigations", status_code=202, response_model=InvestigationRecord)
def create_investigation(body: InvestigationRequest, here: ServerDep) -> InvestigationRecord:
    """Queue an investigation; it runs when a slot is free (SRE_AGENT_SERVE_CONCURRENCY at once)."""
    return start(here, body.question, scenario=body.scenario, live=body.live, context=body.context,
                 model=body.model, remediate=body.remediate)


@router.get("/investigations", response_model=list[InvestigationSummary])
def list_investigations(here: ServerDep, status: InvestigationStatus | None = None) -> list[InvestigationSummary]:
    return [InvestigationSummary.of(record) for record in here.store.list(status)]


@router.get("/investigations/{investigation_id}", response_model=InvestigationRecord)
def get_investigation(record: RecordDep) -> InvestigationRecord:
    """Status, the verdict (once done), the trace of progress events, and where its remediation stands."""
    return record


def _sse(index: int, event: dict[str, Any]) -> ServerSentEvent:
    kind = str(event.get("kind", "message"))
    data = event["verdict"] if kind == "verdict" else {k: v for k, v in event.items() if k != "kind"}
    return ServerSentEvent(event=kind, id=str(index), data=data)


@router.get("/investigations/{investigation_id}/events", response_class=EventSourceResponse)
async def investigation_events(record: RecordDep, here: ServerDep,
                               last_event_id: Annotated[str | None, Header()] = None
                               ) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events: `status`, `model` and `tool` as they happen, ending with `verdict` (the Verdict
    JSON) or `failed` / `interrupted` (with `error`). Reconnect with Last-Event-ID to skip what was seen."""
    start_at = int(last_event_id) + 1 if last_event_id and last_event_id.isdigit() else 0
    channel = here.runner.hub.existing(record.id)
    if channel is not None:
        async for index, event in channel.follow(start_at):
            yield _sse(index, event)
        return
    finished = here.store.get(record.id) or record  # finished meanwhile, or before this server started
    for index, event in enumerate([*finished.trace, terminal_event(finished)]):
        if index >= start_at:
            yield _sse(index, event)
