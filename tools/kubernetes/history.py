"""A ClusterReader whose events reach further back than the API server's hour: the Kubernetes API's events plus
those a longer-lived event store (e.g. Datadog) kept that the API no longer has."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Protocol

from tools.errors import NotConfigured, SourceError
from tools.kubernetes.protocol import ClusterReader, DeploymentInfo, KubeEvent, PodInfo

logger = logging.getLogger(__name__)

SAME_EVENT_SLACK = timedelta(minutes=1)


class EventHistory(Protocol):
    def list_events(self, namespace: str, since: datetime, kind: str | None = None,
                    name: str | None = None) -> list[KubeEvent]: ...


def _key(event: KubeEvent) -> tuple[str, str, str, str]:
    return event.kind, event.name, event.reason, event.message


def merge_events(current: list[KubeEvent], history: list[KubeEvent]) -> list[KubeEvent]:
    """`current` plus the `history` events it does not already hold (same object, reason and message, seen within
    a minute of its first..last seen), oldest first."""
    spans: dict[tuple[str, str, str, str], list[tuple[datetime, datetime]]] = {}
    for event in current:
        spans.setdefault(_key(event), []).append((event.first_seen - SAME_EVENT_SLACK,
                                                  event.last_seen + SAME_EVENT_SLACK))
    older = [event for event in history
             if not any(start <= event.last_seen <= end for start, end in spans.get(_key(event), []))]
    return sorted([*current, *older], key=lambda e: e.last_seen)


class ClusterWithEventHistory:
    """Reads the cluster through `cluster`; list_events adds what `history` kept. When the history fails, or is
    not configured (NotConfigured), the cluster's own events are still returned and `history_gap` says why."""

    def __init__(self, cluster: ClusterReader, history: EventHistory) -> None:
        self.cluster = cluster
        self.history = history
        self.history_gap: str | None = None  # why the last list_events lacks the older events, if it does

    def list_namespaces(self) -> list[str]:
        return self.cluster.list_namespaces()

    def list_deployments(self, namespace: str) -> list[DeploymentInfo]:
        return self.cluster.list_deployments(namespace)

    def read_deployment(self, namespace: str, name: str) -> DeploymentInfo:
        return self.cluster.read_deployment(namespace, name)

    def list_pods(self, namespace: str, selector: dict[str, str]) -> list[PodInfo]:
        return self.cluster.list_pods(namespace, selector)

    def list_events(self, namespace: str, since: datetime, kind: str | None = None,
                    name: str | None = None) -> list[KubeEvent]:
        current = self.cluster.list_events(namespace, since, kind=kind, name=name)
        self.history_gap = None
        try:
            older = self.history.list_events(namespace, since, kind=kind, name=name)
        except SourceError as exc:
            self.history_gap = f"{exc.message} ({exc.kind})" + "".join(f"; {hint}" for hint in exc.hints)
            log = logger.info if isinstance(exc, NotConfigured) else logger.warning
            log("events older than the Kubernetes API keeps are missing: %s", self.history_gap)
            return current
        return merge_events(current, older)
