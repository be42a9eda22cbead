"""The one protocol through which the cluster is changed. Live and replay implement it.

Reading and dry-running need nothing. Changing needs an `ExecutionClaim`, which only
`ApprovalStore.claim` issues, after atomically moving an approved, unexpired record to `executing`.
"""

from __future__ import annotations

from typing import Protocol

from agent.remediation.approvals import ExecutionClaim
from agent.remediation.models import ActuatorResult, TargetState
from agent.verdict import Action


class Actuator(Protocol):
    label: str

    def current_state(self, action: Action) -> TargetState:
        """Read the target now. Never changes anything."""
        ...

    def dry_run(self, action: Action) -> ActuatorResult:
        """Validate the change server-side (dry_run=All) or in the simulation. Never changes anything."""
        ...

    def apply(self, claim: ExecutionClaim) -> ActuatorResult:
        """Make the change the claim's approved action describes. Only an executor holding a claim calls this."""
        ...


def inverse_action(action: Action, before: TargetState) -> Action | None:
    """The action that undoes `action` from the state recorded before it, if there is one."""
    if action.action == "scale" and before.replicas is not None:
        return Action(action="scale", kind=action.kind, namespace=action.namespace, name=action.name,
                      replicas=before.replicas)
    if action.action in ("rollout_restart", "rollback") and before.revision is not None:
        return Action(action="rollback", kind=action.kind, namespace=action.namespace, name=action.name)
    return None


def target_missing(action: Action, *, dry_run: bool, before: TargetState | None = None) -> ActuatorResult:
    """The API server's 404 for the workload an action names, in its words."""
    return ActuatorResult(ok=False, dry_run=dry_run, before=before, status_code=404,
                          summary=f'{action.kind.lower()}s.apps "{action.name}" not found in namespace '
                                  f'{action.namespace!r}')
