"""What the model drafts: a verdict without the trace, a remediation as a typed action without a command."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from agent.verdict import Action, ActionKind, Evidence, Impact, Remediation, RootCause, Status


class RemediationDraft(BaseModel):
    model_config = ConfigDict(extra="ignore")

    action: ActionKind
    namespace: str = ""
    name: str = Field("", description="deployment name")
    replicas: int | None = Field(None, description="for scale only")
    risk: str = "low"
    rationale: str = ""
    verification: list[str] = Field(default_factory=list)


class VerdictDraft(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Status
    summary: str
    root_cause: RootCause | None = None
    evidence: list[Evidence] = Field(default_factory=list)
    ruled_out: list[str] = Field(default_factory=list)
    impact: Impact | None = None
    confidence: float = Field(ge=0.0, le=1.0)
    remediation: RemediationDraft | None = None
    security_notes: list[str] = Field(default_factory=list)
    also_noticed: list[str] = Field(default_factory=list)

    def to_remediation(self) -> Remediation | None:
        draft = self.remediation
        if draft is None or draft.action == "none":
            return None
        risk = draft.risk if draft.risk in ("low", "medium", "high") else "medium"
        action = Action(action=draft.action, namespace=draft.namespace, name=draft.name,
                        replicas=draft.replicas if draft.action == "scale" else None)
        return Remediation(action=action, risk=risk, rationale=draft.rationale, verification=draft.verification)
