"""POST /alerts/datadog and /alerts/alertmanager: an alert starts an investigation scoped to its tags or labels,
and a repeat of it joins the investigation still open. With SRE_AGENT_SERVE_WEBHOOK_SECRET set, a delivery must
carry `Authorization: Bearer <secret>` or `X-SRE-Agent-Signature: sha256=<HMAC-SHA256 of the body>` (401 if not).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from agent.server.alerts import (
    AlertmanagerWebhook,
    DatadogAlert,
    Intake,
    alertmanager_intake,
    datadog_intake,
)
from agent.server.api_investigations import start
from agent.server.auth import SIGNATURE_HEADER, webhook_problem
from agent.server.context import Server, ServerDep
from agent.server.records import AlreadyOpen

router = APIRouter(tags=["alerts"])


class AlertOutcome(BaseModel):
    investigation_id: str | None = Field(None, description="the investigation answering this alert")
    result: Literal["started", "joined", "ignored"]
    status: str | None = Field(None, description="the investigation's status")
    question: str | None = Field(None, description="what the investigation asks, built from the alert")
    reason: str | None = Field(None, description="why nothing was started (a recovery, a resolved group)")


def _signed(source: str) -> Any:
    async def check(request: Request, here: ServerDep) -> None:
        problem = webhook_problem(here.settings, await request.body(), request.headers.get("authorization"),
                                  request.headers.get(SIGNATURE_HEADER))
        if problem:
            here.metrics.alerts.labels(source, "unauthorized").inc()
            raise HTTPException(401, detail=problem, headers={"WWW-Authenticate": "Bearer"})

    return Depends(check)


def _intake(here: Server, source: str, intake: Intake, response: Response) -> AlertOutcome:
    if intake.ignored or intake.alert is None or intake.question is None:
        here.metrics.alerts.labels(source, "ignored").inc()
        response.status_code = 200
        return AlertOutcome(result="ignored", reason=intake.ignored)
    alert = intake.alert
    with here.intake:  # one delivery at a time decides, here and (through the store) across replicas
        for _ in range(3):
            joined = here.store.join(alert)  # a repeat: counted on the investigation still open
            if joined is not None:
                here.metrics.alerts.labels(source, "joined").inc()
                response.status_code = 200
                return AlertOutcome(investigation_id=joined.id, result="joined", status=joined.status,
                                    question=joined.question)
            try:
                record = start(here, intake.question, remediate=here.settings.alerts_remediate, alert=alert,
                               missing_status=503)
                break
            except AlreadyOpen:  # another replica started one for this alert meanwhile: join it
                continue
        else:  # pragma: no cover - an investigation opened and closed three times during one delivery
            raise HTTPException(503, detail="the alert's investigation kept changing; deliver it again")
    here.metrics.alerts.labels(source, "started").inc()
    return AlertOutcome(investigation_id=record.id, result="started", status=record.status,
                        question=record.question)


@router.post("/alerts/datadog", status_code=202, response_model=AlertOutcome, dependencies=[_signed("datadog")])
def datadog_alert(payload: DatadogAlert, here: ServerDep, response: Response) -> AlertOutcome:
    """A Datadog webhook (payload template: docs/serve.md). 202 started, 200 joined or ignored (Recovered)."""
    return _intake(here, "datadog", datadog_intake(payload), response)


@router.post("/alerts/alertmanager", status_code=202, response_model=AlertOutcome,
             dependencies=[_signed("alertmanager")])
def alertmanager_alert(payload: AlertmanagerWebhook, here: ServerDep, response: Response) -> AlertOutcome:
    """An Alertmanager webhook_config delivery (version 4). 202 started, 200 joined or ignored (resolved)."""
    return _intake(here, "alertmanager", alertmanager_intake(payload), response)
