"""Live Kubernetes backend: typed, read-only client calls (CoreV1Api, AppsV1Api)."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, TypeVar

import urllib3
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from pydantic import ValidationError

from tools.errors import (
    AuthFailed,
    BadQuery,
    BadResponse,
    NotFound,
    RateLimited,
    SourceError,
    TimedOut,
    Unavailable,
)
from tools.kubernetes.protocol import Condition, DeploymentInfo, KubeEvent, PodInfo
from tools.settings import ConfigError, Settings, header_seconds

T = TypeVar("T")

REVISION = "deployment.kubernetes.io/revision"
KINDS = {kind.lower(): kind for kind in ("Deployment", "ReplicaSet", "Pod", "StatefulSet", "DaemonSet", "Job",
                                         "CronJob", "Service", "Node", "HorizontalPodAutoscaler", "ConfigMap")}


def kubernetes_client(settings: Settings) -> client.ApiClient:
    """An ApiClient from the kubeconfig (KUBECONFIG, KUBE_CONTEXT) or the pod's service account."""
    configuration = client.Configuration()
    in_cluster = settings.kube_in_cluster
    if in_cluster is None:
        in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ and not (
            settings.kubeconfig or os.path.exists(os.path.expanduser("~/.kube/config")))
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(config_file=settings.kubeconfig, context=settings.kube_context,
                                    client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, yaml.YAMLError, ValueError, TypeError, AttributeError) as exc:
        source = "the in-cluster service account" if in_cluster else "KUBECONFIG / KUBE_CONTEXT"
        raise ConfigError(f"cannot load Kubernetes credentials from {source}: {exc}") from None
    configuration.retries = False
    return client.ApiClient(configuration)


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


def _deployment(item: Any) -> DeploymentInfo:
    meta, spec, status = item.metadata, item.spec, item.status
    annotations = dict(meta.annotations or {})
    revision = annotations.get(REVISION)
    conditions = [Condition(type=c.type, status=c.status, reason=c.reason, message=c.message,
                            last_transition=_utc(c.last_transition_time))
                  for c in (status.conditions if status else None) or []]
    return DeploymentInfo(
        namespace=meta.namespace, name=meta.name, desired=1 if spec.replicas is None else spec.replicas,
        ready=(status and status.ready_replicas) or 0, available=(status and status.available_replicas) or 0,
        updated=(status and status.updated_replicas) or 0, unavailable=(status and status.unavailable_replicas) or 0,
        images=[c.image for c in spec.template.spec.containers], labels=dict(meta.labels or {}),
        annotations=annotations, selector=dict((spec.selector and spec.selector.match_labels) or {}),
        conditions=conditions, revision=int(revision) if revision and revision.isdigit() else None,
        created=_utc(meta.creation_timestamp))


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
                   ip=status.pod_ip, owner=_owning_deployment(item.metadata))


def _owning_deployment(meta: Any) -> str | None:
    for ref in meta.owner_references or []:
        if ref.kind == "ReplicaSet" and "-" in ref.name:
            return str(ref.name).rsplit("-", 1)[0]
    return None


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
    except (ValueError, TypeError, AttributeError, KeyError) as exc:
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

    def _call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        timeout = self.settings.timeout_seconds
        try:
            return self.settings.call(lambda: function(*args, _request_timeout=timeout, **kwargs),
                                      transient=_transient, reset_after=_retry_after, source="the Kubernetes API")
        except ApiException as exc:
            raise _translate(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(exc, urllib3.exceptions.TimeoutError) or isinstance(reason, urllib3.exceptions.TimeoutError):
                raise TimedOut(f"the Kubernetes API did not answer within {timeout} s") from None
            raise Unavailable(f"cannot reach the Kubernetes API: {reason}") from None

    def list_namespaces(self) -> list[str]:
        with _well_formed("namespaces"):
            items = self._call(self.core.list_namespace).items
            return sorted(item.metadata.name for item in items if item.metadata and item.metadata.name)

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]:
        with _well_formed("deployments"):
            items = self._call(self.apps.list_namespaced_deployment, namespace).items
            return sorted((_deployment(item) for item in items), key=lambda d: d.name)

    def read_deployment(self, namespace: str, name: str) -> DeploymentInfo:
        try:
            with _well_formed("a deployment"):
                return _deployment(self._call(self.apps.read_namespaced_deployment, name, namespace))
        except NotFound as exc:
            raise NotFound(f'deployments.apps "{name}" not found in namespace {namespace!r}',
                           hints=["call get_deployment without a name to list the namespace's deployments"]) from exc

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
