"""The actuator over a simulated world: dry runs validate without changing anything, changes move the world."""

from __future__ import annotations

from datetime import timedelta

from agent.remediation.actuator import target_missing
from agent.remediation.approvals import ExecutionClaim
from agent.remediation.errors import RemediationError
from agent.remediation.models import ActuatorResult, TargetState
from agent.verdict import Action
from tools.replay.world import World
from tools.toolkit import Sources


def world_of(sources: Sources) -> World:
    world = sources.extras.get("world")
    if not isinstance(world, World):
        raise RemediationError(f"sources {sources.label!r} are not a replayed world: use the live actuator")
    return world


class ReplayActuator:
    def __init__(self, world: World) -> None:
        self.world = world
        self.label = f"replay:{world.scenario.id}"

    @classmethod
    def from_sources(cls, sources: Sources) -> ReplayActuator:
        return cls(world_of(sources))

    def current_state(self, action: Action) -> TargetState:
        sim = self.world.deployment(action.namespace, action.name)
        if sim is None:
            return TargetState(exists=False)
        return TargetState(exists=True, replicas=sim.desired, revision=str(sim.revision.number),
                           images=[sim.revision.image])

    def _validate(self, action: Action) -> ActuatorResult:
        before = self.current_state(action)
        target = f"{action.resource()} in {action.namespace}"
        if not before.exists:
            return target_missing(action, dry_run=True, before=before)
        if action.action == "scale":
            if action.replicas is None or action.replicas < 0:
                return ActuatorResult(ok=False, dry_run=True, before=before, status_code=422,
                                      summary=f"spec.replicas: Invalid value: {action.replicas}: must be >= 0")
            return ActuatorResult(ok=True, dry_run=True, before=before, after={"replicas": action.replicas},
                                  summary=f"would scale {target} from {before.replicas} to {action.replicas} replicas")
        if action.action == "rollout_restart":
            return ActuatorResult(ok=True, dry_run=True, before=before, after={"revision": str(int(
                before.revision or 0) + 1)}, summary=f"would restart every pod of {target} (a new revision)")
        if action.action == "rollback":
            sim = self.world.deployments[(action.namespace, action.name)]
            previous = [r for r in sim.history if r.number < sim.revision.number]
            if not previous:
                return ActuatorResult(ok=False, dry_run=True, before=before, status_code=422,
                                      summary=f"{target} has no previous revision to roll back to")
            return ActuatorResult(ok=True, dry_run=True, before=before,
                                  after={"to_revision": str(previous[-1].number), "image": previous[-1].image},
                                  summary=f"would roll {target} back to revision {previous[-1].number} "
                                          f"({previous[-1].image})")
        return ActuatorResult(ok=False, dry_run=True, before=before, summary=f"cannot run {action.action!r}")

    def dry_run(self, action: Action) -> ActuatorResult:
        return self._validate(action)

    def apply(self, claim: ExecutionClaim) -> ActuatorResult:
        action = claim.action
        check = self._validate(action)
        if not check.ok:
            return check.model_copy(update={"dry_run": False})
        if action.action == "scale":
            assert action.replicas is not None
            self.world.scale(action.namespace, action.name, action.replicas)
        elif action.action == "rollout_restart":
            self.world.rollout_restart(action.namespace, action.name)
        else:
            self.world.rollback(action.namespace, action.name)
        after = self.current_state(action)
        return ActuatorResult(ok=True, dry_run=False, before=check.before, after=after.model_dump(exclude={"exists"}),
                              summary=_past(check.summary) + f" at {self.world.now.isoformat()}")


def _past(summary: str) -> str:
    for future, past in (("would scale", "scaled"), ("would restart", "restarted"), ("would roll", "rolled")):
        if summary.startswith(future):
            return past + summary[len(future):]
    return summary


class WorldWaiter:
    """Waiting, for verification on a replay: advance the simulated clock instead of sleeping. The world moves in
    whole ticks, so waits shorter than a tick add up until they make one (each alone would never move it)."""

    def __init__(self, world: World) -> None:
        self.world = world
        self._until = world.now

    def wait(self, seconds: float) -> None:
        self._until = max(self._until, self.world.now) + timedelta(seconds=seconds)
        self.world.advance_to(self._until)
