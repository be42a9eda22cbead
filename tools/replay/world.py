"""A scenario world simulated over time.

Every signal derives from one timeline: deployments decide which pods are up, flows publish to queues only
while the broker is up, consumers drain queues only while their deployment has available pods, and logs,
Kubernetes events, KSM/RabbitMQ metrics and the management API are all read off the same state. Seeded, so
two replays are identical. `advance_to` and the actions let remediation run against it over simulated time.
The state it keeps is in `state`, what moves through it (broker, flows, calls, consumers, logs) in `traffic`.
"""

from __future__ import annotations

import random
from collections import deque
from datetime import datetime, timedelta

from tools.datadog.protocol import LogRecord
from tools.kubernetes.protocol import KubeEvent
from tools.replay.limits import (
    MAX_AFTER_CLOCK,
    MAX_HISTORY,
    MAX_QUEUE_DEPTH,
    MAX_REPLICAS,
    SIMULATOR_HEADROOM,
    replay_cost,
)
from tools.replay.loading import ScenarioError
from tools.replay.scenario import Deployment, PodState, ReplicaChange, Scenario
from tools.replay.state import (
    TICK,
    DeploymentSim,
    PodSim,
    QueueSim,
    QueueState,
    Request,
    Revision,
    Snapshot,
    _stable_hash,
    _suffix,
)
from tools.replay.traffic import Traffic


class WorldTooLarge(ScenarioError):
    """A world that would take too long or too much memory to simulate: refused, naming why, before any work."""


class World(Traffic):
    def __init__(self, scenario: Scenario, *, now: datetime | None = None, horizon: datetime | None = None) -> None:
        """Simulated up to `now` (default: the scenario's clock). Recorded changes up to `horizon` (default: the
        clock) happen as the world moves on; later ones are the recorded future, which only actions bring."""
        self.scenario = scenario
        self.horizon = horizon or scenario.clock.now
        self._guard(max(now or scenario.clock.now, self.horizon))
        self.rng = random.Random(scenario.seed)
        self.start = scenario.world.start
        self.now = self.start
        self.logs: list[LogRecord] = []
        self.events: list[KubeEvent] = []
        self.snapshots: list[Snapshot] = []
        self.requests: list[Request] = []
        self.deployments: dict[tuple[str, str], DeploymentSim] = {}
        self._timelines: dict[tuple[str, str], list[ReplicaChange]] = {}
        self._counter = 0
        for spec in scenario.world.deployments:
            self._add_deployment(spec)
        self.queues: dict[tuple[str, str], QueueSim] = {
            (q.vhost, q.name): QueueSim(q, deque(self._message_vars() for _ in range(q.initial_depth)))
            for q in scenario.world.queues
        }
        self._pending_logs = sorted(scenario.world.logs, key=lambda log: log.at)
        for event in scenario.world.events:
            self.events.append(
                KubeEvent(
                    namespace=event.namespace or self.namespace, type=event.type, reason=event.reason,
                    message=event.message, kind=event.kind, name=event.name, source=event.source,
                    first_seen=event.at, last_seen=event.at,
                )
            )
        self._snapshot()
        self.advance_to(now or scenario.clock.now)

    @property
    def namespace(self) -> str:
        return self.scenario.world.namespace

    def sim(self, name: str, namespace: str | None = None) -> DeploymentSim:
        return self.deployments[(namespace or self.namespace, name)]

    def _add_deployment(self, spec: Deployment) -> None:
        namespace = spec.namespace or self.namespace
        timeline = (
            [ReplicaChange(at=self.start, replicas=spec.replicas)] if isinstance(spec.replicas, int)
            else sorted(spec.replicas, key=lambda change: change.at)
        )
        first = timeline[0]
        revision = self._new_revision(spec.name, 1, first.image or spec.image, first.pod_state, first.reason)
        sim = DeploymentSim(spec, namespace, 0, revision, [revision], dict(spec.annotations),
                            hangs=sorted((h for h in spec.hangs if h.at <= self.horizon),
                                         key=lambda h: h.at))
        self.deployments[(namespace, spec.name)] = sim
        self._timelines[(namespace, spec.name)] = list(timeline)
        # Changes after the clock are the recorded future; a replay only moves past `now` through actions.
        timeline = [c for c in timeline if c.at <= self.horizon]
        initial = [c for c in timeline if c.at <= self.start]
        if initial:
            change = initial[-1]
            sim.annotations.update(change.annotations)
            sim.desired = change.replicas
            for _ in range(change.replicas):
                self._create_pod(sim, self.start - timedelta(hours=6), emit=False)
            self._timelines[(namespace, spec.name)] = [c for c in timeline if c.at > self.start]

    def _new_revision(self, name: str, number: int, image: str, state: PodState, reason: str | None) -> Revision:
        template_hash = _suffix(10, self.scenario.seed, name, image, number)
        return Revision(number, image, state, reason, template_hash)

    def _message_vars(self) -> dict[str, str]:
        self._counter += 1
        return {
            "id": f"{self.rng.getrandbits(96):024x}",
            "uuid": f"{self.rng.getrandbits(128):032x}",
            "n": str(self._counter),
            "ms": str(self.rng.randint(2, 60)),
        }

    # ---- pods and events -------------------------------------------------------------------------------

    def replica_set(self, sim: DeploymentSim) -> str:
        """The controller object that owns the pods: a ReplicaSet per revision, or the StatefulSet itself."""
        return sim.name if sim.spec.kind == "StatefulSet" else f"{sim.name}-{sim.revision.template_hash}"

    def _owner_kind(self, sim: DeploymentSim) -> str:
        return "StatefulSet" if sim.spec.kind == "StatefulSet" else "ReplicaSet"

    def _pod_name(self, sim: DeploymentSim) -> str:
        if sim.spec.kind == "StatefulSet":
            taken = {p.name for p in sim.pods}
            return next(f"{sim.name}-{i}" for i in range(len(taken) + 1) if f"{sim.name}-{i}" not in taken)
        return f"{self.replica_set(sim)}-{_suffix(5, self.scenario.seed, sim.namespace, sim.name, sim.pod_counter)}"

    def _create_pod(self, sim: DeploymentSim, at: datetime, *, emit: bool = True) -> None:
        sim.pod_counter += 1
        name = self._pod_name(sim)
        node = f"node-{_stable_hash(self.scenario.seed, name) % 3 + 1}"
        address = _stable_hash(self.scenario.seed, sim.namespace, name, "ip")  # one name in two namespaces: two pods
        ip = f"10.{36 + address % 8}.{(address >> 8) % 256}.{(address >> 16) % 250 + 2}"
        pod = PodSim(name, at, sim.revision.pod_state, sim.revision.reason, node, ip)
        sim.pods.append(pod)
        if emit:
            owner = self._owner_kind(sim)
            self._event(sim.namespace, owner, self.replica_set(sim), "SuccessfulCreate",
                        f"Created pod: {name}" if owner == "ReplicaSet"
                        else f"create Pod {name} in StatefulSet {sim.name} successful", at,
                        source=f"{owner.lower()}-controller")
            if pod.state != "pending":  # a pod no node can take gets FailedScheduling (pod_events) instead
                self._event(sim.namespace, "Pod", name, "Scheduled",
                            f"Successfully assigned {sim.namespace}/{name} to {node}", at, source="default-scheduler")
            if pod.state in ("running", "crashloop", "unready"):
                self._event(sim.namespace, "Pod", name, "Started", f"Started container {sim.name}",
                            at + timedelta(seconds=2), source="kubelet")
            if pod.state == "imagepull":
                self._event(sim.namespace, "Pod", name, "Failed",
                            f'Failed to pull image "{sim.revision.image}": not found', at, "Warning", "kubelet")

    def _delete_pod(self, sim: DeploymentSim, pod: PodSim, at: datetime, rs_name: str) -> None:
        sim.pods.remove(pod)
        for queue in self.queues.values():  # a closed channel's unacknowledged messages are requeued
            held = queue.unacked.pop(pod.name, [])
            queue.ready.extendleft(reversed(held))
        owner = self._owner_kind(sim)
        self._event(sim.namespace, "Pod", pod.name, "Killing", f"Stopping container {sim.name}", at, source="kubelet")
        self._event(sim.namespace, owner, rs_name, "SuccessfulDelete",
                    f"Deleted pod: {pod.name}" if owner == "ReplicaSet"
                    else f"delete Pod {pod.name} in StatefulSet {sim.name} successful", at,
                    source=f"{owner.lower()}-controller")

    def _event(self, namespace: str, kind: str, name: str, reason: str, message: str, at: datetime,
               type_: str = "Normal", source: str | None = None) -> None:
        self.events.append(KubeEvent(namespace=namespace, type=type_, reason=reason, message=message, kind=kind,
                                     name=name, source=source, first_seen=at, last_seen=at))

    def _scale(self, sim: DeploymentSim, replicas: int, at: datetime) -> None:
        if not 0 <= replicas <= MAX_REPLICAS:
            raise WorldTooLarge(f"scenario {self.scenario.id!r}: cannot scale {sim.namespace}/{sim.name} to "
                                f"{replicas} replicas: the simulator runs 0 to {MAX_REPLICAS} (MAX_REPLICAS)")
        before = sim.desired
        if replicas == before:
            return
        rs_name = self.replica_set(sim)
        verb = "down" if replicas < before else "up"
        if sim.spec.kind == "Deployment":
            self._event(sim.namespace, "Deployment", sim.name, "ScalingReplicaSet",
                        f"Scaled {verb} replica set {rs_name} to {replicas} from {before}", at,
                        source="deployment-controller")
        sim.desired = replicas
        while len(sim.pods) > replicas:
            self._delete_pod(sim, sim.pods[-1], at, rs_name)
        while len(sim.pods) < replicas:
            self._create_pod(sim, at)

    def _rollout(self, sim: DeploymentSim, revision: Revision, at: datetime) -> None:
        old_rs = self.replica_set(sim)
        sim.revision = revision
        if revision not in sim.history:
            sim.history.append(revision)
        new_rs = self.replica_set(sim)
        deployment = sim.spec.kind == "Deployment"  # a StatefulSet replaces its pods itself, highest ordinal first
        if deployment:
            self._event(sim.namespace, "Deployment", sim.name, "ScalingReplicaSet",
                        f"Scaled up replica set {new_rs} to {sim.desired}", at, source="deployment-controller")
        for pod in list(sim.pods) if deployment else list(reversed(sim.pods)):
            self._delete_pod(sim, pod, at, old_rs)
        for _ in range(sim.desired):
            self._create_pod(sim, at)
        if deployment:
            self._event(sim.namespace, "Deployment", sim.name, "ScalingReplicaSet",
                        f"Scaled down replica set {old_rs} to 0 from {sim.desired}", at,
                        source="deployment-controller")

    def _apply_change(self, sim: DeploymentSim, change: ReplicaChange) -> None:
        sim.annotations.update(change.annotations)
        image = change.image or sim.revision.image
        if (image, change.pod_state, change.reason) != (sim.revision.image, sim.revision.pod_state,
                                                        sim.revision.reason):
            revision = self._new_revision(sim.name, sim.revision.number + 1, image, change.pod_state, change.reason)
            sim.desired = change.replicas
            self._rollout(sim, revision, change.at)
        else:
            self._scale(sim, change.replicas, change.at)

    # ---- actions (remediation) -------------------------------------------------------------------------

    def deployment(self, namespace: str, name: str) -> DeploymentSim | None:
        return self.deployments.get((namespace, name))

    def scale(self, namespace: str, name: str, replicas: int) -> None:
        sim = self.deployments[(namespace, name)]
        self._scale(sim, replicas, self.now)

    def rollout_restart(self, namespace: str, name: str) -> None:
        sim = self.deployments[(namespace, name)]
        sim.annotations["kubectl.kubernetes.io/restartedAt"] = self.now.isoformat()
        current = sim.revision
        self._rollout(sim, Revision(current.number + 1, current.image, current.pod_state, current.reason,
                                    _suffix(10, self.scenario.seed, sim.name, "restart", self.now)), self.now)

    def rollback(self, namespace: str, name: str) -> Revision | None:
        sim = self.deployments[(namespace, name)]
        previous = [r for r in sim.history if r.number < sim.revision.number]
        if not previous:
            return None
        target = previous[-1]
        restored = Revision(sim.revision.number + 1, target.image, target.pod_state, target.reason,
                            target.template_hash)
        self._rollout(sim, restored, self.now)
        return restored

    # ---- simulation --------------------------------------------------------------------------------------

    def _guard(self, until: datetime) -> None:
        """Refuse, before simulating, a span past the limits: too long after the clock, or over the replay budget
        (with headroom for moving past the clock). A loaded scenario is within them at its clock; a world built by
        code, an action or a watch's `--until` may not be."""
        label = f"scenario {self.scenario.id!r}"
        world = self.scenario.world
        latest = self.scenario.clock.now + MAX_AFTER_CLOCK
        if until > latest or until - world.start > MAX_HISTORY + MAX_AFTER_CLOCK:
            raise WorldTooLarge(f"{label}: cannot simulate up to {until.isoformat()}: at most MAX_AFTER_CLOCK "
                                f"({MAX_AFTER_CLOCK.total_seconds() / 3600:.0f} h) past its clock and MAX_HISTORY "
                                f"({MAX_HISTORY.total_seconds() / 3600:.0f} h) before it")
        for queue in world.queues:
            if queue.initial_depth > MAX_QUEUE_DEPTH:
                raise WorldTooLarge(f"{label}: queue {queue.name!r}: initial_depth {queue.initial_depth} is above "
                                    f"the limit of {MAX_QUEUE_DEPTH} (MAX_QUEUE_DEPTH)")
        pods = sum(len(sim.pods) for sim in getattr(self, "deployments", {}).values())
        problems = replay_cost(world, until, pods).problems(SIMULATOR_HEADROOM)
        if problems:
            raise WorldTooLarge(f"{label}: cannot simulate up to {until.isoformat()}: {'; '.join(problems)}")

    def advance_to(self, until: datetime) -> None:
        if until > self.now:
            self._guard(until)
        while self.now + TICK <= until:
            self._tick(self.now, self.now + TICK)
            self.now += TICK
            self._snapshot()
        self.logs.sort(key=lambda record: record.timestamp)

    def _tick(self, begin: datetime, end: datetime) -> None:
        for key, timeline in self._timelines.items():
            while timeline and timeline[0].at < end:
                self._apply_change(self.deployments[key], timeline.pop(0))
        for sim in self.deployments.values():
            while sim.hangs and sim.hangs[0].at < end:
                hang = sim.hangs.pop(0)
                for pod in [p for p in sim.ready_pods(hang.at) if not p.hung][:hang.pods or len(sim.pods)]:
                    pod.hung = True
            if sim.spec.autoscaler is not None:
                self._autoscale(sim, end)
        while self._pending_logs and self._pending_logs[0].at < end:
            log = self._pending_logs.pop(0)
            sim = self.sim(log.deployment, log.namespace)
            self._log(sim, log.at, log.message, log.status, {}, dict(log.attributes), include_hung=True)
        for flow in self.scenario.world.flows:
            if (flow.start and end <= flow.start) or (flow.end and begin >= flow.end):
                continue
            for at in self._arrivals(flow.rate_per_min, begin, end):
                if self.gate_open(flow.only_while, at):
                    self._run_flow(flow.steps, at)
        for queue in self.queues.values():
            self._consume(queue, begin, end)
        for sim in self.deployments.values():
            for stream in sim.spec.logs:
                if (stream.start and end <= stream.start) or (stream.end and begin >= stream.end):
                    continue
                for at in self._arrivals(stream.rate_per_min, begin, end):
                    if not self._stream_active(sim, stream.when, at) or not self.gate_open(stream.only_while, at):
                        continue
                    self._log(sim, at, stream.message, stream.status, self._message_vars(), dict(stream.attributes))

    def _autoscale(self, sim: DeploymentSim, at: datetime) -> None:
        """KEDA's loop for a queue-driven ScaledObject: activate from 0 when the queue holds messages, scale up
        to the target length per replica, deactivate to the minimum after the cooldown with an empty queue."""
        scaler = sim.spec.autoscaler
        if scaler is not None and sim.desired > scaler.max_replicas:  # a manual scale above the bound is undone
            self._scale(sim, scaler.max_replicas, at)
        if scaler is None or scaler.kind != "ScaledObject" or scaler.queue is None:
            return
        if sim.last_poll is not None and (at - sim.last_poll).total_seconds() < scaler.polling_seconds:
            return
        sim.last_poll = at
        queue = next(q for q in self.queues.values() if q.spec.name == scaler.queue)
        depth = len(queue.ready) + queue.unacked_count() if self.broker_up(at) else 0
        name = scaler.name or sim.name
        target = f"apps/v1.{sim.spec.kind} {sim.namespace}/{sim.name}"
        if depth > 0:
            sim.idle_since = None
            wanted = min(scaler.max_replicas, max(scaler.min_replicas, 1, -(-depth // scaler.messages_per_replica)))
            if wanted > sim.desired:
                if sim.desired == 0:
                    self._event(sim.namespace, "ScaledObject", name, "KEDAScaleTargetActivated",
                                f"Scaled {target} from 0 to {wanted}", at, source="keda-operator")
                self._scale(sim, wanted, at)
            return
        sim.idle_since = sim.idle_since or at
        idle = (at - sim.idle_since).total_seconds()
        if sim.desired > scaler.min_replicas and idle >= scaler.cooldown_seconds:
            self._event(sim.namespace, "ScaledObject", name, "KEDAScaleTargetDeactivated",
                        f"Deactivated {target} from {sim.desired} to {scaler.min_replicas}", at,
                        source="keda-operator")
            self._scale(sim, scaler.min_replicas, at)

    def _snapshot(self) -> None:
        at = self.now
        deployments = {
            key: (sim.desired, sim.available(at), len(sim.pods), sum(p.restarts(at) for p in sim.pods))
            for key, sim in self.deployments.items()
        }
        queues = {
            key: QueueState(len(q.ready), self.consumers(q.spec, at), q.published, q.delivered, self.broker_up(at),
                            q.unacked_count(), q.acked, self.working_consumers(q.spec, at), q.redelivered)
            for key, q in self.queues.items()
        }
        self.snapshots.append(Snapshot(at, deployments, queues))

    def snapshot_at(self, at: datetime) -> Snapshot:
        index = min(len(self.snapshots) - 1, max(0, int((at - self.start) / TICK)))
        return self.snapshots[index]
