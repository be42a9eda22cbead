"""Expected failures of the remediation core: each carries one clear message (and hints) for a human or the CLI."""

from __future__ import annotations

from tools.redaction import redact


class RemediationError(Exception):
    """A refusal or a bad input, reported as one clear message, never a traceback."""

    def __init__(self, message: str, *, hints: list[str] | None = None) -> None:
        message = redact(message)  # a refusal may quote an API's answer, which can carry credentials
        super().__init__(message)
        self.message = message
        self.hints = [redact(hint) for hint in hints or []]


class PolicyError(RemediationError):
    """A policy file that cannot be used: the message names the file, the field and the reason."""


class PolicyRefused(RemediationError):
    """The policy does not allow this action (or this approver)."""


class ProposalRefused(RemediationError):
    """The target is missing or the server-side dry run refused the change: no approval is created."""


class ApprovalNotFound(RemediationError):
    pass


class ApprovalStateError(RemediationError):
    """The approval is not in a state that allows the operation (already decided, not approved, ...)."""


class ApprovalExpired(ApprovalStateError):
    pass


class WorldChanged(RemediationError):
    """The target changed since the proposal was made; the approval no longer applies."""


class ExecutionFailed(RemediationError):
    """The dry run or the real call was rejected by the cluster."""


class StoreError(RemediationError):
    """The approvals database or the audit log cannot be used."""


class CheckpointerError(RemediationError):
    """A checkpointer URL or path that cannot be opened."""
