"""What the tools need from Kubernetes, read-only. Live and replay backends both implement this."""

from __future__ import annotations

from datetime import datetime
from typing import Literal, Protocol

from pydantic import BaseModel, Field

WorkloadKind = Literal["Deployment", "StatefulSet"]
"""The workloads the tools read and the remediation executor changes."""


class Condition(BaseModel):
    type: str
    status: str
    reason: str | None = None
    message: str | None = None
    last_transition: datetime | None = None


class PodInfo(BaseModel):
    name: str
    phase: str
    ready: bool
    restarts: int = 0
    waiting_reason: str | None = None
    last_termination_reason: str | None = None
    started_at: datetime | None = None
    node: str | None = None
    ip: str | None = None
    owner: str | None = Field(None, description="the Deployment (through its ReplicaSet) or StatefulSet owning it")
    owner_kind: WorkloadKind | None = None


class AutoscalerInfo(BaseModel):
    """An object that owns a workload's replica count: an HPA, or a KEDA ScaledObject (which may scale to 0)."""

    kind: str = Field(description="HorizontalPodAutoscaler or ScaledObject")
    name: str
    min_replicas: int
    max_replicas: int
    current_replicas: int | None = None
    trigger: str | None = Field(None, description="what drives it, e.g. a queue's length")


class DeploymentInfo(BaseModel):
    namespace: str
    name: str
    kind: WorkloadKind = "Deployment"
    desired: int
    ready: int = 0
    available: int = 0
    updated: int = 0
    unavailable: int = 0
    images: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    selector: dict[str, str] = Field(default_factory=dict)
    conditions: list[Condition] = Field(default_factory=list)
    revision: int | None = None
    created: datetime | None = None
    autoscaler: AutoscalerInfo | None = None
    autoscaler_gap: str | None = Field(None, description="why no autoscaler may be known although one exists: the "
                                                         "HPAs or ScaledObjects could not be read (e.g. RBAC 403)")


# Waiting reasons of a container whose pod spec names something that is not there (an image, a Secret, a ConfigMap
# key, a volume): a restart or more replicas start the same spec and wait the same way.
SPEC_BLOCKED = {
    "ImagePullBackOff": "its image cannot be pulled",
    "ErrImagePull": "its image cannot be pulled",
    "InvalidImageName": "its image name is invalid",
    "CreateContainerConfigError": "its container config refers to a Secret, ConfigMap or key that does not exist",
    "CreateContainerError": "its container cannot be created",
}
# Every pod waits in ContainerCreating for a moment; with these kubelet events it waits for good.
MOUNT_FAILURES = ("FailedMount", "FailedAttachVolume")


class KubeEvent(BaseModel):
    namespace: str
    type: str = "Normal"
    reason: str
    message: str
    kind: str
    name: str
    source: str | None = None
    first_seen: datetime
    last_seen: datetime
    count: int = 1


class ClusterReader(Protocol):
    def list_namespaces(self) -> list[str]: ...

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]: ...

    def read_deployment(self, namespace: str, name: str) -> DeploymentInfo:
        """Raise NotFound when the deployment does not exist."""
        ...

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[PodInfo]: ...

    def list_events(
        self, namespace: str, since: datetime, kind: str | None = None, name: str | None = None
    ) -> list[KubeEvent]: ...
