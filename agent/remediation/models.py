"""Typed records shared by the approvals store, the actuators, the executor and verification."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from agent.verdict import Action
from tools.kubernetes.protocol import WorkloadKind


class TargetState(BaseModel):
    """What the target looked like: stored with the proposal, compared again before the change."""

    exists: bool
    replicas: int | None = Field(None, description="spec.replicas (desired)")
    revision: str | None = Field(None, description="deployment.kubernetes.io/revision")
    images: list[str] = Field(default_factory=list)
    uid: str | None = Field(None, description="metadata.uid: a same-named workload recreated or on another "
                                              "cluster has another")

    def relevant(self, action: Action) -> dict[str, Any]:
        """The fields whose change makes an approval of `action` stale."""
        if action.action == "scale":
            return {"exists": self.exists, "uid": self.uid, "replicas": self.replicas, "revision": self.revision}
        return {"exists": self.exists, "uid": self.uid, "revision": self.revision, "images": self.images}

    def changes_since(self, before: TargetState, action: Action) -> list[str]:
        then, now = before.relevant(action), self.relevant(action)
        return [f"{key}: {then[key]} at proposal → {now[key]} now" for key in then if then[key] != now[key]]


class ActuatorResult(BaseModel):
    """The answer to a dry run or a real change."""

    ok: bool
    dry_run: bool
    summary: str = Field(description="one line: what the server accepted or why it refused")
    before: TargetState | None = None
    after: dict[str, Any] = Field(default_factory=dict, description="the fields the server returned")
    status_code: int | None = None


class QueueRef(BaseModel):
    vhost: str = "/"
    name: str
    baseline: int = Field(0, ge=0, description="depth at or below which the backlog counts as drained")


class VerifyTarget(BaseModel):
    """What recovery means for one remediation: the deployment it touched, and the queue it feeds, if any."""

    namespace: str
    deployment: str = Field(description="the workload's name")
    kind: WorkloadKind = "Deployment"
    replicas: int | None = Field(None, description="desired replicas after the change, when the action sets them")
    queue: QueueRef | None = None

    @classmethod
    def of(cls, action: Action, queue: QueueRef | None = None) -> VerifyTarget:
        return cls(namespace=action.namespace, deployment=action.name, kind=action.kind, replicas=action.replicas,
                   queue=queue)
