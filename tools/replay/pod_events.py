"""The events a pod in trouble keeps re-reporting while it stays so: back-offs, probe failures, scheduling
failures. Derived from the world's pods at the moment read, aggregated the way the API server counts them."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from tools.kubernetes.protocol import KubeEvent
from tools.replay.state import DeploymentSim, PodSim, now_ready_failing

if TYPE_CHECKING:
    from tools.replay.world import World


def standing_pod_events(world: World) -> list[KubeEvent]:
    events: list[KubeEvent] = []
    for sim in world.deployments.values():
        for pod in sim.pods:
            if (said := _trouble(sim, pod, world)) is None:
                continue
            reason, message, source, first_after_s, every_s = said
            count = pod.restarts(world.now) if pod.state == "crashloop" else max(
                1, int((world.now - pod.created).total_seconds() // every_s))
            events.append(KubeEvent(namespace=sim.namespace, type="Warning", reason=reason, message=message,
                                    kind="Pod", name=pod.name, source=source, count=count, last_seen=world.now,
                                    first_seen=pod.created + timedelta(seconds=first_after_s)))
    return events


def _trouble(sim: DeploymentSim, pod: PodSim, world: World) -> tuple[str, str, str, int, int] | None:
    """(reason, message, source, seconds after creation first reported, seconds between reports) or None."""
    if pod.state == "crashloop" and pod.restarts(world.now):
        return "BackOff", f"Back-off restarting failed container {sim.name} in pod {pod.name}", "kubelet", 15, 1
    if pod.state == "unready" and now_ready_failing(pod, world.now):
        message = f"Readiness probe failed: {pod.reason or 'HTTP probe failed with statuscode: 503'}"
        return "Unhealthy", message, "kubelet", 10, 10
    if pod.state == "pending":  # the scheduler retries and re-reports while nothing fits
        return ("FailedScheduling", pod.reason or "0/3 nodes are available: 3 Insufficient cpu.", "default-scheduler",
                0, 300)
    if pod.state == "imagepull":
        return "BackOff", f'Back-off pulling image "{sim.revision.image}"', "kubelet", 10, 60
    if pod.state == "configerror":  # the kubelet retries creating the container and fails the same way
        return "Failed", f"Error: {pod.reason or 'secret not found'}", "kubelet", 5, 60
    if pod.state == "mountfail":
        message = pod.reason or 'MountVolume.SetUp failed for volume "config" : configmap "config" not found'
        return "FailedMount", message, "kubelet", 2, 120
    return None
