"""The events a pod in trouble keeps re-reporting while it stays so: back-offs, probe failures, scheduling
failures. Derived from the world's pods at the moment read, aggregated the way the API server counts them."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from tools.kubernetes.protocol import KubeEvent
from tools.replay.state import now_ready_failing

if TYPE_CHECKING:
    from tools.replay.world import World


def standing_pod_events(world: World) -> list[KubeEvent]:
    events: list[KubeEvent] = []
    for sim in world.deployments.values():
        for pod in sim.pods:
            restarts = pod.restarts(world.now)
            if pod.state == "crashloop" and restarts:
                events.append(KubeEvent(
                    namespace=sim.namespace, type="Warning", reason="BackOff",
                    message=f"Back-off restarting failed container {sim.name} in pod {pod.name}",
                    kind="Pod", name=pod.name, source="kubelet",
                    first_seen=pod.created + timedelta(seconds=15), last_seen=world.now, count=restarts))
            if pod.state == "unready" and now_ready_failing(pod, world.now):
                events.append(KubeEvent(
                    namespace=sim.namespace, type="Warning", reason="Unhealthy",
                    message=f"Readiness probe failed: {pod.reason or 'HTTP probe failed with statuscode: 503'}",
                    kind="Pod", name=pod.name, source="kubelet", first_seen=pod.created + timedelta(seconds=10),
                    last_seen=world.now, count=max(1, int((world.now - pod.created).total_seconds() // 10))))
            if pod.state == "pending":  # the scheduler retries and re-reports while nothing fits
                events.append(KubeEvent(
                    namespace=sim.namespace, type="Warning", reason="FailedScheduling",
                    message=pod.reason or "0/3 nodes are available: 3 Insufficient cpu.",
                    kind="Pod", name=pod.name, source="default-scheduler", first_seen=pod.created,
                    last_seen=world.now, count=max(1, int((world.now - pod.created).total_seconds() // 300))))
            if pod.state == "imagepull":
                events.append(KubeEvent(
                    namespace=sim.namespace, type="Warning", reason="BackOff",
                    message=f'Back-off pulling image "{sim.revision.image}"', kind="Pod", name=pod.name,
                    source="kubelet", first_seen=pod.created + timedelta(seconds=10), last_seen=world.now,
                    count=max(1, int((world.now - pod.created).total_seconds() // 60))))
            if pod.state == "configerror":  # the kubelet retries creating the container and fails the same way
                events.append(KubeEvent(
                    namespace=sim.namespace, type="Warning", reason="Failed",
                    message=f"Error: {pod.reason or 'secret not found'}", kind="Pod", name=pod.name,
                    source="kubelet", first_seen=pod.created + timedelta(seconds=5), last_seen=world.now,
                    count=max(1, int((world.now - pod.created).total_seconds() // 60))))
            if pod.state == "mountfail":
                events.append(KubeEvent(
                    namespace=sim.namespace, type="Warning", reason="FailedMount",
                    message=pod.reason or 'MountVolume.SetUp failed for volume "config" : configmap "config" not found',
                    kind="Pod", name=pod.name, source="kubelet", first_seen=pod.created + timedelta(seconds=2),
                    last_seen=world.now, count=max(1, int((world.now - pod.created).total_seconds() // 120))))
    return events
