"""The remediation core: typed actions under a policy, human approvals, execution, verification, audit.

Nothing here runs a shell or kubectl: changes are typed Kubernetes client calls (or moves of a replayed
world), made only by the executor, only for an approved, unexpired approval it has atomically claimed.
"""

from agent.remediation.actuator import Actuator, inverse_action
from agent.remediation.approvals import ApprovalRecord, ApprovalStatus, ApprovalStore, ExecutionClaim
from agent.remediation.audit import AuditLog, AuditRecord
from agent.remediation.checkpoint import make_checkpointer
from agent.remediation.errors import (
    ApprovalExpired,
    ApprovalNotFound,
    ApprovalStateError,
    CheckpointerError,
    ExecutionFailed,
    PolicyError,
    PolicyRefused,
    ProposalRefused,
    RemediationError,
    StoreError,
    WorldChanged,
)
from agent.remediation.executor import ExecutionResult, Executor
from agent.remediation.models import ActuatorResult, QueueRef, TargetState, VerifyTarget
from agent.remediation.paths import data_dir
from agent.remediation.policy import Policy, PolicyDecision, load_policy, parse_policy
from agent.remediation.replay_actuator import ReplayActuator, WorldWaiter
from agent.remediation.service import (
    Decision,
    Remediator,
    approval_request,
    describe_effect,
    evidence_summary,
    verify_target_for,
)
from agent.remediation.verify import SleepWaiter, VerificationReport, verify

__all__ = [
    "Actuator", "ActuatorResult", "ApprovalExpired", "ApprovalNotFound", "ApprovalRecord", "ApprovalStateError",
    "ApprovalStatus", "ApprovalStore", "AuditLog", "AuditRecord", "CheckpointerError", "Decision", "ExecutionClaim",
    "ExecutionFailed", "ExecutionResult", "Executor", "Policy", "PolicyDecision", "PolicyError", "PolicyRefused",
    "ProposalRefused", "QueueRef", "RemediationError", "Remediator", "ReplayActuator", "SleepWaiter", "StoreError",
    "TargetState", "VerificationReport", "VerifyTarget", "WorldChanged", "WorldWaiter", "approval_request",
    "data_dir", "describe_effect", "evidence_summary", "inverse_action", "load_policy", "make_checkpointer",
    "parse_policy", "verify", "verify_target_for",
]
