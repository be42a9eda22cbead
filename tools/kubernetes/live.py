"""Live Kubernetes backend: typed, read-only client calls (CoreV1Api, AppsV1Api, AutoscalingV2Api, CustomObjectsApi).

Workloads are Deployments and StatefulSets, each with the autoscaler that targets it: a KEDA ScaledObject before an
HPA, never the HPA KEDA owns. An API the cluster does not serve (404: no KEDA CRD) has no objects; autoscalers that
cannot be read (RBAC 403) leave the workload readable, `autoscaler_gap` saying why. CronJobs are not workloads here:
at 0 by design and selecting no pods, the deployment tools would report them as scaled to 0."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

import urllib3
from kubernetes import client
from kubernetes.client.exceptions import ApiException
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel

from tools.errors import (
    AuthFailed,
    BadQuery,
    BadResponse,
    NotFound,
    RateLimited,
    SourceError,
    Unavailable,
    transport_failure,
)
from tools.kubernetes.credentials import kubernetes_client
from tools.kubernetes.protocol import AutoscalerInfo, Condition, DeploymentInfo, KubeEvent, PodInfo
from tools.settings import Settings, header_seconds

T = TypeVar("T")
logger = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
KINDS = {kind.lower(): kind for kind in ("Deployment", "ReplicaSet", "Pod", "StatefulSet", "DaemonSet", "Job",
                                         "CronJob", "Service", "Node", "HorizontalPodAutoscaler", "ConfigMap")}


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status == 429 or (exc.status or 0) >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError)


def _retry_after(exc: BaseException) -> float | None:
    headers = exc.headers if isinstance(exc, ApiException) else None
    return header_seconds(headers.get("Retry-After") if headers else None)


def _translate(exc: ApiException) -> SourceError:
    status = exc.status or 0
    try:
        detail = json.loads(exc.body or "{}").get("message") or exc.reason
    except (ValueError, AttributeError):
        detail = exc.reason
    message = f"Kubernetes API {status}: {detail}"
    if status in (401, 403):
        return AuthFailed(message, hints=["check KUBECONFIG / KUBE_CONTEXT and the account's RBAC (get, list)"])
    if status == 404:
        return NotFound(message)
    if status == 429:
        return RateLimited(message, hints=["retry later"])
    if status >= 500 or status == 0:
        return Unavailable(message)
    return BadQuery(message)


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f"{key}={value}" for key, value in sorted(labels.items()))


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _workload(item: Any, kind: str = "Deployment") -> DeploymentInfo:
    """A V1Deployment or V1StatefulSet. Zero counts are omitted on the wire (the client gives None); a StatefulSet
    has no unavailable count; its revision number is read from its ControllerRevisions (`_revision_number`)."""
    meta, spec, status = item.metadata, item.spec, item.status
    annotations = dict(meta.annotations or {})
    revision = annotations.get(REVISION) if kind == "Deployment" else None
    conditions = [Condition(type=c.type, status=c.status, reason=c.reason, message=c.message,
                            last_transition=_utc(c.last_transition_time))
                  for c in (status.conditions if status else None) or []]
    desired = 1 if spec.replicas is None else spec.replicas
    available = (status and status.available_replicas) or 0
    unavailable = ((status and status.unavailable_replicas) or 0) if kind == "Deployment" \
        else max(0, desired - available)
    return DeploymentInfo(
        namespace=meta.namespace, name=meta.name, kind=kind, desired=desired,
        ready=(status and status.ready_replicas) or 0, available=available,
        updated=(status and status.updated_replicas) or 0, unavailable=unavailable,
        images=[c.image for c in spec.template.spec.containers], labels=dict(meta.labels or {}),
        annotations=annotations, selector=dict((spec.selector and spec.selector.match_labels) or {}),
        conditions=conditions, revision=int(revision) if revision and revision.isdigit() else None,
        created=_utc(meta.creation_timestamp))


class _Wire(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class _ScaleTarget(_Wire):
    name: str
    kind: str = "Deployment"
    api_version: str = "apps/v1"


class _Trigger(_Wire):
    type: str
    metadata: dict[str, str] = Field(default_factory=dict)


class _ScaledObjectSpec(_Wire):
    scale_target_ref: _ScaleTarget
    min_replica_count: int = 0
    max_replica_count: int = 100
    triggers: list[_Trigger] = Field(default_factory=list)


class _Named(_Wire):
    name: str


class _ScaledObject(_Wire):
    """What the agent reads of a keda.sh/v1alpha1 ScaledObject, with KEDA's defaults."""

    metadata: _Named
    spec: _ScaledObjectSpec


class _ScaledObjectList(_Wire):
    items: list[_ScaledObject]


Scaler = tuple[str, str, AutoscalerInfo]  # the kind and name of the workload it targets, and the autoscaler
TRIGGER_KEYS = ("queueName", "topic", "stream", "listName", "metricName", "query")


def _trigger_text(trigger: _Trigger) -> str:
    """A short phrase for what drives a ScaledObject; connection strings (`host`) and secrets are never shown."""
    meta = trigger.metadata
    if trigger.type == "rabbitmq":
        queue, target = meta.get("queueName") or "?", meta.get("value") or meta.get("queueLength")
        per = "messages/s published" if meta.get("mode") == "MessageRate" else "messages"
        return f"rabbitmq queue {queue}" + (f" (target {target} {per} per replica)" if target else "")
    if trigger.type == "cron":
        zone = f" ({meta['timezone']})" if meta.get("timezone") else ""
        return f"cron {meta.get('start', '?')} to {meta.get('end', '?')}{zone}"
    key = next((k for k in TRIGGER_KEYS if meta.get(k)), None)
    return trigger.type + (f" {key} {meta[key][:80]}" if key else "")


def _target(kind: str, api_version: str | None) -> str:
    """The workload kind a scaleTargetRef names; a kind of another API group (an operator's StatefulSet) never
    matches a Deployment or StatefulSet."""
    return kind if not api_version or api_version.startswith("apps/") else f"{api_version}/{kind}"


def _scaled_object(item: _ScaledObject) -> Scaler:
    spec, ref = item.spec, item.spec.scale_target_ref
    trigger = ", ".join(_trigger_text(t) for t in spec.triggers)[:200] or None
    return _target(ref.kind, ref.api_version), ref.name, AutoscalerInfo(
        kind="ScaledObject", name=item.metadata.name, min_replicas=spec.min_replica_count,
        max_replicas=spec.max_replica_count, trigger=trigger)


def _metric_text(metric: Any) -> str:
    source = metric.resource or metric.container_resource
    if source is not None:
        target = source.target
        if target.average_utilization is not None:
            return f"{source.name} utilization {target.average_utilization}%"
        return f"{source.name} average {target.average_value or target.value}"
    source = metric.external or metric.pods or metric.object
    name = source.metric.name if source is not None and source.metric else "?"
    return f"{(metric.type or 'metric').lower()} metric {name}"


def _hpa(item: Any) -> Scaler | None:
    """A V2HorizontalPodAutoscaler, or None for the one KEDA creates for a ScaledObject (the ScaledObject speaks)."""
    meta, spec, status = item.metadata, item.spec, item.status
    if any(ref.kind == "ScaledObject" for ref in meta.owner_references or []):
        return None
    trigger = ", ".join(_metric_text(m) for m in spec.metrics) if spec.metrics else "cpu utilization 80% (default)"
    current = None if status is None else status.current_replicas or 0  # omitted on the wire at 0
    ref = spec.scale_target_ref
    return _target(ref.kind, ref.api_version), ref.name, AutoscalerInfo(
        kind="HorizontalPodAutoscaler", name=meta.name, min_replicas=1 if spec.min_replicas is None
        else spec.min_replicas, max_replicas=spec.max_replicas, current_replicas=current, trigger=trigger[:200])


def _pod(item: Any) -> PodInfo:
    status = item.status
    containers = status.container_statuses or []
    waiting = next((c.state.waiting.reason for c in containers if c.state and c.state.waiting), None)
    terminated = next((c.last_state.terminated.reason for c in containers
                       if c.last_state and c.last_state.terminated), None)
    ready = any(c.type == "Ready" and c.status == "True" for c in status.conditions or [])
    return PodInfo(name=item.metadata.name, phase=status.phase or "Unknown", ready=ready,
                   restarts=sum(c.restart_count or 0 for c in containers), waiting_reason=waiting,
                   last_termination_reason=terminated, started_at=_utc(status.start_time), node=item.spec.node_name,
                   ip=status.pod_ip, **_owning_workload(item.metadata))


def _owning_workload(meta: Any) -> dict[str, Any]:
    """The Deployment (through its ReplicaSet `<deployment>-<hash>`) or the StatefulSet that owns a pod."""
    for ref in meta.owner_references or []:
        if ref.kind == "ReplicaSet" and "-" in ref.name:
            return {"owner": str(ref.name).rsplit("-", 1)[0], "owner_kind": "Deployment"}
        if ref.kind == "StatefulSet":
            return {"owner": str(ref.name), "owner_kind": "StatefulSet"}
    return {}


def _event(item: Any) -> KubeEvent:
    meta = item.metadata
    last = _utc(item.last_timestamp or item.event_time or item.first_timestamp or meta.creation_timestamp)
    first = _utc(item.first_timestamp or item.event_time) or last
    source = (item.source and item.source.component) or item.reporting_component
    count = item.count or (item.series and item.series.count) or 1
    return KubeEvent(namespace=meta.namespace or item.involved_object.namespace or "", type=item.type or "Normal",
                     reason=item.reason or "", message=(item.message or "").strip(), kind=item.involved_object.kind,
                     name=item.involved_object.name, source=source, first_seen=first or datetime.now(UTC),
                     last_seen=last or datetime.now(UTC), count=count)


@contextmanager
def _well_formed(what: str) -> Iterator[None]:
    """A body the client cannot read as the API's objects (truncated JSON, an HTML page, wrong types) is a typed
    error naming what was asked for, never a traceback."""
    try:
        yield
    except (ValueError, TypeError, AttributeError, KeyError, IndexError, LookupError, OverflowError, RecursionError,
            OSError) as exc:  # LookupError: a charset that does not exist; OSError: a time out of the platform's range
        errors = exc.errors() if isinstance(exc, ValidationError) else []
        text = isinstance(exc, json.JSONDecodeError) or any(isinstance(e.get("input"), str) for e in errors)
        body = "a body that is not JSON (truncated, or a page)" if text else f"JSON that is not {what} as its API " \
            "returns them"
        raise BadResponse(f"the Kubernetes API returned {body} ({type(exc).__name__}: {str(exc)[:120]})",
                          hints=["is KUBECONFIG pointing at an API server, not a proxy's error page?"]) from None


class KubernetesCluster:
    """ClusterReader over the Kubernetes API. Pass an ApiClient to point it at any cluster (tests do)."""

    def __init__(self, settings: Settings | None = None, api_client: client.ApiClient | None = None) -> None:
        self.settings = settings or Settings()
        self.api_client = api_client or kubernetes_client(self.settings)

    @cached_property
    def core(self) -> client.CoreV1Api:
        return client.CoreV1Api(self.api_client)

    @cached_property
    def apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(self.api_client)

    @cached_property
    def autoscaling(self) -> client.AutoscalingV2Api:
        return client.AutoscalingV2Api(self.api_client)

    @cached_property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api_client)

    def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        timeout = self.settings.timeout_seconds
        try:
            return self.settings.call(lambda: function(*args, _request_timeout=timeout, **kwargs),
                                      transient=_transient, reset_after=_retry_after, source="the Kubernetes API")
        except ApiException as exc:
            raise _translate(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise transport_failure(exc, "the Kubernetes API", timeout) from None

    def list_namespaces(self) -> list[str]:
        with _well_formed("namespaces"):
            items = self._call(self.core.list_namespace).items
            return sorted(item.metadata.name for item in items if item.metadata and item.metadata.name)

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]:
        """Deployments and StatefulSets. StatefulSets the account may not list (403) are left out, with a warning."""
        with _well_formed("deployments"):
            items = self._call(self.apps.list_namespaced_deployment, namespace).items
            workloads = [_workload(item) for item in items]
        try:
            with _well_formed("statefulsets"):
                sets = self._call(self.apps.list_namespaced_stateful_set, namespace).items
                workloads += [_workload(item, "StatefulSet") for item in sets]
        except AuthFailed as exc:
            logger.warning("StatefulSets in %s are not listed: %s", namespace, exc.message)
        return self._with_autoscalers(namespace, sorted(workloads, key=lambda d: (d.name, d.kind)))

    def read_deployment(self, namespace: str, name: str) -> DeploymentInfo:
        """The Deployment of that name, else the StatefulSet of that name; NotFound when neither exists."""
        try:
            with _well_formed("a deployment"):
                info = _workload(self._call(self.apps.read_namespaced_deployment, name, namespace))
        except NotFound as exc:
            info = self._read_statefulset(namespace, name, exc)
        return self._with_autoscalers(namespace, [info])[0]

    def _read_statefulset(self, namespace: str, name: str, missing: NotFound) -> DeploymentInfo:
        hints = ["call get_deployment without a name to list the namespace's deployments"]
        try:
            with _well_formed("a statefulset"):
                item = self._call(self.apps.read_namespaced_stateful_set, name, namespace)
                info = _workload(item, "StatefulSet")
            return info.model_copy(update={"revision": self._revision_number(item)})
        except NotFound:
            pass
        except AuthFailed as exc:
            hints.append(f"no StatefulSet could be checked: {exc.message}")
        raise NotFound(f'deployments.apps "{name}" not found in namespace {namespace!r}', hints=hints) from missing

    def _revision_number(self, stateful_set: Any) -> int | None:
        """The number of the ControllerRevision a StatefulSet's pods are updated to (`kubectl rollout history`):
        above 1, there is a revision to roll back to. None when the revisions cannot be read."""
        try:
            with _well_formed("controller revisions"):
                current = stateful_set.status.update_revision if stateful_set.status else None
                if not current:
                    return None
                labels = (stateful_set.spec.selector.match_labels if stateful_set.spec.selector else None) or {}
                selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
                revisions = self._call(self.apps.list_namespaced_controller_revision,
                                       stateful_set.metadata.namespace, label_selector=selector).items
                return next((r.revision for r in revisions if r.metadata and r.metadata.name == current), None)
        except SourceError as exc:
            logger.warning("revisions of a StatefulSet are not read: %s", exc.message)
            return None

    def _with_autoscalers(self, namespace: str, workloads: list[DeploymentInfo]) -> list[DeploymentInfo]:
        """Attach to each workload the ScaledObject, else the HPA, that targets it."""
        if not workloads:
            return workloads
        scalers: list[Scaler] = []
        gaps: list[str] = []
        for what, read in (("ScaledObjects", self._scaled_objects), ("HorizontalPodAutoscalers", self._hpas)):
            try:
                scalers += read(namespace)
            except NotFound:
                pass  # the API is not served (KEDA not installed): there are none
            except SourceError as exc:
                gaps.append(f"{what} could not be read: {exc.message}")
        gap = "; ".join(gaps) or None
        if gap:
            logger.warning("autoscalers in %s are unknown: %s", namespace, gap)
        attached = []
        for info in workloads:
            scaler = next((s for kind, name, s in scalers if (kind, name) == (info.kind, info.name)), None)
            if scaler is not None and scaler.kind == "ScaledObject":
                scaler = scaler.model_copy(update={"current_replicas": info.desired})
            attached.append(info.model_copy(update={"autoscaler": scaler, "autoscaler_gap": gap}))
        return attached

    def _scaled_objects(self, namespace: str) -> list[Scaler]:
        with _well_formed("ScaledObjects"):
            body = self._call(self.custom.list_namespaced_custom_object, "keda.sh", "v1alpha1", namespace,
                              "scaledobjects")
            return [_scaled_object(item) for item in _ScaledObjectList.model_validate(body).items]

    def _hpas(self, namespace: str) -> list[Scaler]:
        with _well_formed("HorizontalPodAutoscalers"):
            items = self._call(self.autoscaling.list_namespaced_horizontal_pod_autoscaler, namespace).items
            return [scaler for scaler in map(_hpa, items) if scaler is not None]

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[PodInfo]:
        query = {"label_selector": _selector(selector)} if selector else {}
        with _well_formed("pods"):
            items = self._call(self.core.list_namespaced_pod, namespace, **query).items
            return sorted((_pod(item) for item in items), key=lambda p: p.name)

    def list_events(self, namespace: str, since: datetime, kind: str | None = None,
                    name: str | None = None) -> list[KubeEvent]:
        kind = KINDS.get(kind.lower(), kind) if kind else None
        fields = [f"involvedObject.{key}={value}" for key, value in (("kind", kind), ("name", name)) if value]
        query = {"field_selector": ",".join(fields)} if fields else {}
        with _well_formed("events"):
            items = self._call(self.core.list_namespaced_event, namespace, **query).items
            events = [event for event in map(_event, items) if event.last_seen >= since]
        return sorted(events, key=lambda e: e.last_seen)
