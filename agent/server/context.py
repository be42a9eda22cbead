"""What every endpoint shares: the settings, the stores, the runner, the metrics, the approver tokens."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from agent.remediation.approvals import ApprovalStore
from agent.server.auth import ApproverTokens, Identity, Unauthenticated, authenticate
from agent.server.chats import Chats
from agent.server.metrics import Metrics
from agent.server.records import InvestigationStore
from agent.server.runner import Runner
from agent.server.settings import ServerSettings


@dataclass
class Server:
    settings: ServerSettings
    folder: Path
    store: InvestigationStore
    approvals: ApprovalStore
    runner: Runner
    metrics: Metrics
    tokens: ApproverTokens
    intake: threading.Lock = field(default_factory=threading.Lock, repr=False)  # alert joins-or-starts
    chats: Chats = field(default_factory=Chats, repr=False)
    sources_checked: tuple[float, str | None] | None = None  # /readyz: (when, problem) of the last source check


def server(request: Request) -> Server:
    found: Server = request.app.state.server
    return found


ServerDep = Annotated[Server, Depends(server)]
_bearer = HTTPBearer(auto_error=False, description="a personal approver token (`sre-agent serve token NAME`)")


def approver(request: Request, here: ServerDep,
             credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Identity:
    """The authenticated person making this request, or 401."""
    try:
        return authenticate(here.settings, here.tokens, credentials.credentials if credentials else None,
                            dict(request.headers), request.client.host if request.client else None)
    except Unauthenticated as exc:
        raise HTTPException(401, detail=str(exc), headers={"WWW-Authenticate": "Bearer"}) from None


ApproverDep = Annotated[Identity, Depends(approver)]
