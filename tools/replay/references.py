"""The cross-references of a scenario world: what each part names must exist, once."""

from __future__ import annotations

from collections import Counter
from datetime import datetime
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tools.replay.scenario import Deployment, World


def reference_problems(world: World) -> list[str]:
    """Why the world's names do not resolve: every deployment, queue, vhost, gate, broker or namespace that a part of
    it names must exist, nothing is defined twice, and a hang needs running pods."""
    known = {world.workload_key(d.name, d.namespace) for d in world.deployments}
    queues = {q.name for q in world.queues}
    problems = _duplicates(world) + _queue_references(world)

    def check(owner: str, name: str, namespace: str | None) -> None:
        ns, _ = world.workload_key(name, namespace)
        if (ns, name) not in known:
            problems.append(f"{owner} names unknown deployment {ns}/{name}")

    for flow in world.flows:
        for step in flow.steps:
            for s in (step, step.on_publish_failure, step.on_call_failure):
                if s and s.deployment:
                    check(f"flow {flow.name!r}", s.deployment, s.namespace)
                if s and s.call:
                    check(f"flow {flow.name!r} call", s.call, s.namespace)
                if s and s.publish and s.publish not in queues:
                    problems.append(f"flow {flow.name!r} publishes to unknown queue {s.publish!r}")
    for queue in world.queues:
        for consumer in queue.consumers:
            check(f"queue {queue.name!r} consumer", consumer.deployment, consumer.namespace)
    if world.broker:
        check("broker", world.broker.deployment, world.broker.namespace)
    for log in world.logs:
        check(f"log at {log.at}", log.deployment, log.namespace)
    gates = [(f"flow {f.name!r}", f.only_while) for f in world.flows] + [
        (f"log stream of {d.name!r}", stream.only_while) for d in world.deployments for stream in d.logs]
    for owner, gate in gates:
        if gate is not None:
            check(f"{owner} gate", gate.deployment, gate.namespace)
    for d in world.deployments:
        if d.autoscaler and d.autoscaler.queue and d.autoscaler.queue not in queues:
            problems.append(f"autoscaler of {d.name!r} watches unknown queue {d.autoscaler.queue!r}")
    for d in world.deployments:
        for hang in d.hangs:
            running = _replicas_at(d, hang.at, world.start)
            if running == 0:
                problems.append(f"deployment {d.name!r} hangs at {hang.at.isoformat()} but has no pods then: "
                                "a hang needs running pods (give replicas > 0 at that time)")
            elif hang.pods is not None and running < hang.pods:
                problems.append(f"deployment {d.name!r} hangs {hang.pods} pods at {hang.at.isoformat()} but has "
                                f"{running} then")
    spaces = {ns for ns, _ in known} | {world.namespace, *world.extra_namespaces}
    for index, event in enumerate(world.events):
        if event.namespace is not None and event.namespace not in spaces:
            problems.append(f"events.{index}.namespace: {event.namespace!r} is no namespace of the world (add it "
                            "to extra_namespaces)")
    return problems


def _duplicates(world: World) -> list[str]:
    problems = []
    for what, keys in (
        ("deployments", [f"{ns}/{name}" for ns, name in (world.workload_key(d.name, d.namespace)
                                                           for d in world.deployments)]),
        ("queues", [f"{q.vhost}:{q.name}" if q.vhost != "/" else q.name for q in world.queues]),
        ("flows", [f.name for f in world.flows]),
    ):
        twice = sorted(key for key, count in Counter(keys).items() if count > 1)
        if twice:
            problems.append(f"{what} defined twice: {', '.join(twice)}")
    return problems


def _queue_references(world: World) -> list[str]:
    """A publish names a queue that exists: in its vhost, or the only queue of that name."""
    problems = []
    vhosts: dict[str, set[str]] = {}
    for queue in world.queues:
        vhosts.setdefault(queue.name, set()).add(queue.vhost)
    for q_index, queue in enumerate(world.queues):
        if queue.dead_letter is not None and queue.vhost not in vhosts.get(queue.dead_letter, set()):
            problems.append(f"queues.{q_index}.dead_letter: queue {queue.name!r} dead-letters to "
                            f"{queue.dead_letter!r}, which is not a queue of vhost {queue.vhost!r}")
        if queue.dead_letter == queue.name:
            problems.append(f"queues.{q_index}.dead_letter: a queue cannot dead-letter to itself")
    for f_index, flow in enumerate(world.flows):
        for s_index, step in enumerate(flow.steps):
            where = f"flows.{f_index}.steps.{s_index}"
            if step.vhost is not None and step.publish is None:
                problems.append(f"{where}.vhost: only a publishing step has a vhost")
            if step.publish is None or step.publish not in vhosts:
                continue  # an unknown queue is reported below, with the flow's name
            held = vhosts[step.publish]
            if step.vhost is not None and step.vhost not in held:
                problems.append(f"{where}: flow {flow.name!r} publishes to unknown queue {step.publish!r} in "
                                f"vhost {step.vhost!r} (it is in {', '.join(sorted(held))})")
            elif step.vhost is None and len(held) > 1 and "/" not in held:
                problems.append(f"{where}: flow {flow.name!r} publishes to {step.publish!r}, which is in several "
                                f"vhosts ({', '.join(sorted(held))}): give its vhost")
    return problems


def _replicas_at(deployment: Deployment, at: datetime, start: datetime) -> int:
    """Desired replicas of a deployment's timeline at `at` (0 before its first change)."""
    if isinstance(deployment.replicas, int):
        return deployment.replicas
    changes = [c for c in sorted(deployment.replicas, key=lambda c: c.at) if c.at <= max(at, start)]
    return changes[-1].replicas if changes else 0
