"""Typed read-only tools over Kubernetes deployments, pods and events."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated

from pydantic import BaseModel, Field

from tools.kubernetes.protocol import AutoscalerInfo, Condition, DeploymentInfo, KubeEvent, PodInfo, WorkloadKind
from tools.summaries import Window
from tools.timerange import TimeRange, hhmm, iso, parse_time
from tools.toolkit import Sources

MAX_EVENTS = 25
MAX_PODS = 10
RECENT_EVENTS = timedelta(hours=1)


class EventLine(BaseModel):
    last_seen: str
    type: str
    reason: str
    object: str
    message: str
    count: int


def _line(event: KubeEvent) -> EventLine:
    return EventLine(last_seen=iso(event.last_seen) or "", type=event.type, reason=event.reason,
                     object=f"{event.kind}/{event.name}", message=event.message[:200], count=event.count)


class ScaleChange(BaseModel):
    at: str
    message: str


class DeploymentDetail(BaseModel):
    summary: str
    namespace: str
    name: str
    kind: WorkloadKind = "Deployment"
    desired: int
    ready: int
    available: int
    updated: int
    unavailable: int
    images: list[str]
    labels: dict[str, str]
    annotations: dict[str, str]
    conditions: list[Condition]
    revision: int | None = Field(None, description="the pod template's revision: a Deployment's revision annotation, "
                                                   "a StatefulSet's current ControllerRevision number")
    last_scaled: ScaleChange | None = Field(description="the latest scaling in the last hour (older: list_events)")
    autoscaler: AutoscalerInfo | None = Field(None, description="the HPA or ScaledObject that sets its replicas")
    autoscaler_gap: str | None = Field(None, description="why any autoscaler could not be read (e.g. forbidden): "
                                                         "it may exist although none is shown")
    pods: list[PodInfo]
    events: list[EventLine] = Field(description="events of the last hour: the workload, its replica sets, pods "
                                                "and autoscaler")


APP_LABELS = ("app.kubernetes.io/name", "app", "k8s-app", "tags.datadoghq.com/service")


class DeploymentRow(BaseModel):
    name: str
    kind: WorkloadKind = "Deployment"
    desired: int
    available: int
    images: list[str]
    app: str | None = Field(None, description="its app label, when not its name: what log services and service "
                                              "addresses often call it")
    autoscaler: AutoscalerInfo | None = Field(None, description="the HPA or ScaledObject that sets its replicas")


def app_label(info: DeploymentInfo) -> str | None:
    """The first app-identifying label whose value is not the workload's own name."""
    return next((info.labels[key] for key in APP_LABELS if info.labels.get(key) not in (None, "", info.name)), None)


class DeploymentTable(BaseModel):
    summary: str
    namespace: str
    deployments: list[DeploymentRow]
    attention: list[str] = Field(description="deployments with fewer available replicas than desired, or at 0")


class NamespaceRow(BaseModel):
    namespace: str
    deployments: int
    attention: list[str]


class NamespaceList(BaseModel):
    summary: str
    namespaces: list[NamespaceRow]


# What a controller appends to a workload's name: a ReplicaSet's pod-template hash, a Deployment pod's hash and
# suffix or a StatefulSet pod's ordinal, a Job's or CronJob run's suffix. A sibling named `<name>-v2` is not one.
_GENERATED_SUFFIX = {
    "ReplicaSet": re.compile(r"[a-z0-9]+"),
    "Pod": re.compile(r"[a-z0-9]+(?:-[a-z0-9]{5})?"),
    "Job": re.compile(r"[a-z0-9]+"),
}


def _owned(event: KubeEvent, name: str) -> bool:
    """The event is on the workload itself or on an object its controller generated from its name."""
    if event.name == name:
        return True
    suffix = event.name.removeprefix(f"{name}-")
    pattern = _GENERATED_SUFFIX.get(event.kind or "")
    return suffix != event.name and pattern is not None and bool(pattern.fullmatch(suffix))


def _scaler_phrase(scaler: AutoscalerInfo | None) -> str | None:
    if scaler is None:
        return None
    text = f"{scaler.kind} {scaler.name} min {scaler.min_replicas} max {scaler.max_replicas}"
    return text + (f" on {scaler.trigger}" if scaler.trigger else "")


def _detail_summary(info: DeploymentInfo, pods: list[PodInfo], last_scaled: ScaleChange | None) -> str:
    desired, available = info.desired, info.available
    text = f"{info.kind} desired {desired}, available {available}/{desired}"
    if desired == 0:
        text += "; scaled to 0: no pods are running and nothing this workload does is happening"
    if info.autoscaler:
        text += f"; replicas set by {_scaler_phrase(info.autoscaler)}"
        if desired < info.autoscaler.min_replicas:
            text += " (below its minimum: the autoscaler is not acting)"
    unready = [p for p in pods if p.phase == "Running" and not p.ready and not p.waiting_reason]
    waiting = [p for p in pods if p.waiting_reason]
    if waiting:
        reasons = sorted({p.waiting_reason or "" for p in waiting})
        terminated = sorted({p.last_termination_reason for p in waiting if p.last_termination_reason})
        restarts = sum(p.restarts for p in waiting)
        text += f"; {len(waiting)} pod(s) {', '.join(reasons)}"
        text += f" (last terminated: {', '.join(terminated)})" if terminated else ""
        text += f", {restarts} restarts"
    elif unready:
        text += f"; {len(unready)} pod(s) Running but not ready"
    elif pending := [p for p in pods if p.phase == "Pending"]:
        text += f"; {len(pending)} pod(s) Pending: no container has started"
    elif available < desired:
        text += f"; {desired - available} replica(s) unavailable"
    if last_scaled:
        text += f"; last scaled at {hhmm_iso(last_scaled.at)}: {last_scaled.message}"
    return text


def hhmm_iso(text: str) -> str:
    return text[11:] if len(text) > 11 else text


def get_deployment(
    sources: Sources,
    namespace: Annotated[str, Field(description="Kubernetes namespace")],
    name: Annotated[str | None, Field(description="deployment name; omit to list every deployment")] = None,
) -> DeploymentDetail | DeploymentTable:
    """With a name: one deployment's desired/ready/available replicas, conditions, image, annotations, when it
    was last scaled, its pods (phase, restarts, CrashLoopBackOff/OOMKilled) and recent events. Without a name:
    every deployment in the namespace with desired and available replicas, flagging those below desired or at 0."""
    if name is None:
        rows = [DeploymentRow(name=d.name, kind=d.kind, desired=d.desired, available=d.available, images=d.images,
                              app=app_label(d), autoscaler=d.autoscaler)
                for d in sources.cluster.list_deployments(namespace)]
        if not rows:
            return DeploymentTable(summary=f"no deployments in namespace {namespace} (list_namespaces shows which "
                                           "namespaces hold workloads)", namespace=namespace, deployments=[],
                                   attention=[])
        attention = [r.name for r in rows if r.available < r.desired or r.desired == 0]
        summary = f"{len(rows)} deployments in {namespace}; " + (
            "needing attention: " + ", ".join(
                f"{r.name} ({r.available}/{r.desired})" for r in rows if r.name in attention)
            if attention else "all at desired availability")
        return DeploymentTable(summary=summary, namespace=namespace, deployments=rows, attention=attention)
    info = sources.cluster.read_deployment(namespace, name)
    now = sources.clock()
    pods = sources.cluster.list_pods(namespace, info.selector)[:MAX_PODS]
    events = [e for e in sources.cluster.list_events(namespace, now - RECENT_EVENTS) if _owned(e, name)]
    scaling = [e for e in events if _scaling(e, info.kind, name)]
    last_scaled = ScaleChange(at=iso(scaling[-1].last_seen) or "", message=scaling[-1].message) if scaling else None
    return DeploymentDetail(
        summary=_detail_summary(info, pods, last_scaled), kind=info.kind,
        namespace=namespace, name=name, desired=info.desired, ready=info.ready, available=info.available,
        updated=info.updated, unavailable=info.unavailable, images=info.images, labels=info.labels,
        annotations={k: v[:200] for k, v in info.annotations.items()}, conditions=info.conditions,
        revision=info.revision,
        last_scaled=last_scaled, autoscaler=info.autoscaler, autoscaler_gap=info.autoscaler_gap, pods=pods,
        events=[_line(e) for e in events[-10:]])


SCALE_REASONS = ("ScalingReplicaSet", "KEDAScaleTargetActivated", "KEDAScaleTargetDeactivated",
                 "SuccessfulRescale")
RESIZE = re.compile(r"\bscal(?:e|ed|ing)\b.*\b(?:to|from) \d+\b", re.IGNORECASE)


def _scaling(event: KubeEvent, kind: str, name: str) -> bool:
    """A change of the workload's replica count: the controllers' and autoscalers' reasons, or any other tool's
    event on the workload itself that says it scaled it (a downscaler, an operator, a chaos tool)."""
    if event.reason in SCALE_REASONS:
        return True
    return event.kind == kind and event.name == name and bool(RESIZE.search(event.message))


class EventList(BaseModel):
    summary: str
    namespace: str
    window: Window
    involved_object: str | None
    total: int
    by_reason: dict[str, int]
    events: list[EventLine] = Field(description="newest last")
    history_gap: str | None = Field(None, description="why events older than the cluster keeps are missing")


def list_events(
    sources: Sources,
    namespace: Annotated[str, Field(description="Kubernetes namespace")],
    since: Annotated[str, Field(description="'now-1h', ISO time, or epoch seconds")] = "now-1h",
    involved_object: Annotated[
        str | None, Field(description="'Kind/name' or a name prefix (a deployment name matches its pods)")
    ] = None,
) -> EventList:
    """Kubernetes events in a namespace (scaling, pod deletions, restarts, back-offs, failed pulls). Events
    expire after about an hour on most clusters."""
    now = sources.clock()
    start = parse_time(since, now)
    kind, name = None, involved_object
    if involved_object and "/" in involved_object:
        kind, name = involved_object.split("/", 1)
    events = sources.cluster.list_events(namespace, start, kind=kind)
    if name:
        events = [e for e in events if _owned(e, name)]
    by_reason: dict[str, int] = {}
    for event in events:
        by_reason[event.reason] = by_reason.get(event.reason, 0) + 1
    warnings = sum(1 for e in events if e.type == "Warning")
    span = TimeRange(start, now)
    summary = f"{len(events)} events since {hhmm(start)}" + (f" for {involved_object}" if involved_object else "")
    if by_reason:
        summary += ": " + ", ".join(f"{r} {n}" for r, n in sorted(by_reason.items(), key=lambda kv: -kv[1]))
    if warnings:
        summary += f"; {warnings} warnings"
    gap = getattr(sources.cluster, "history_gap", None)
    if gap:
        why = "is not configured" if "(not_configured)" in gap else "could not be read"
        summary += f"; events older than the cluster keeps (~1 h) are missing: the event history (Datadog) {why}"
    return EventList(summary=summary, namespace=namespace, window=Window.of(span), involved_object=involved_object,
                     total=len(events), by_reason=by_reason, events=[_line(e) for e in events[-MAX_EVENTS:]],
                     history_gap=gap)


def list_namespaces(sources: Sources) -> NamespaceList:
    """Every namespace with how many deployments it has and which are below desired or scaled to 0. Start here
    when the question does not name a namespace."""
    rows = []
    for namespace in sources.cluster.list_namespaces():
        deployments = sources.cluster.list_deployments(namespace)
        if not deployments and namespace in ("default", "kube-system", "kube-public", "kube-node-lease"):
            continue
        attention = [f"{d.name} ({d.available}/{d.desired})" for d in deployments
                     if d.available < d.desired or d.desired == 0]
        rows.append(NamespaceRow(namespace=namespace, deployments=len(deployments), attention=attention))
    flagged = [f"{r.namespace}: {', '.join(r.attention)}" for r in rows if r.attention]
    summary = f"{len(rows)} namespaces with workloads" + (
        "; needing attention: " + "; ".join(flagged) if flagged else "; every deployment at desired availability")
    return NamespaceList(summary=summary, namespaces=rows)
