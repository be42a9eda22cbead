"""Alert payloads (a Datadog webhook, an Alertmanager version-4 webhook) → the scope and question of an
investigation, and the keys that make a repeat of the same alert join the investigation already open.

The question names the alert's namespace, workload and queue in words the agent's question-scoping reads
(`agent/scope.py`), e.g. "Datadog alert: Queue has no consumers. Investigate in namespace X, service Y, queue Z:
what is wrong and why?".
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from agent.server.records import AlertRef

NAMESPACE_KEYS = ("namespace", "kube_namespace")
QUEUE_KEYS = ("queue", "rabbitmq_queue")
# The workload: Datadog's unified `service` tag names it; an Alertmanager `service` label is the Kubernetes
# Service Prometheus scraped (an exporter, kube-state-metrics), so only `deployment` counts there.
WORKLOAD_KEYS = {"datadog": ("kube_deployment", "deployment", "service"),
                 "alertmanager": ("deployment", "kube_deployment")}
_STATE_PREFIX = re.compile(r"^\[[^\]]*\]\s*")  # Datadog's "[Triggered on {scope}] " before the monitor name
_K8S_NAME = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$")
_QUEUE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,254}$")
MAX_TITLE = 200
RECOVERED = ("recovered",)  # Datadog's $ALERT_TRANSITION of a monitor back to OK


class DatadogAlert(BaseModel):
    """The JSON a Datadog webhook sends with the payload template in docs/serve.md ($-variables filled in)."""

    model_config = ConfigDict(extra="ignore")

    alert_id: str = Field(min_length=1, description="$ALERT_ID: the monitor's id")
    alert_title: str | None = Field(None, description="$ALERT_TITLE")
    title: str | None = Field(None, description="$EVENT_TITLE (used when alert_title is empty)")
    alert_transition: str | None = Field(None, description="$ALERT_TRANSITION: Triggered, Re-Triggered, Warn, "
                                                           "No Data, Renotify, Recovered, ...")
    alert_scope: str | None = Field(None, description="$ALERT_SCOPE: the group that triggered, "
                                                      "e.g. kube_namespace:shop,kube_deployment:worker")
    tags: str | list[str] | None = Field(None, description="$TAGS: comma-separated event tags")
    body: str | None = Field(None, description="$EVENT_MSG")
    alert_status: str | None = Field(None, description="$ALERT_STATUS")
    alert_metric: str | None = Field(None, description="$ALERT_METRIC")
    alert_priority: str | None = Field(None, description="$ALERT_PRIORITY")
    alert_cycle_key: str | None = Field(None, description="$ALERT_CYCLE_KEY")
    id: str | None = Field(None, description="$ID: the event's id")
    link: str | None = Field(None, description="$LINK")
    date: str | None = Field(None, description="$DATE")

    @field_validator("alert_id", "id", mode="before")
    @classmethod
    def _text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("alert_id")
    @classmethod
    def _substituted(cls, value: str) -> str:
        if value.strip() in ("", "$ALERT_ID"):
            raise ValueError("alert_id is empty or was not substituted: set the payload template of docs/serve.md")
        return value.strip()


class AlertmanagerAlert(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["firing", "resolved"]
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    startsAt: datetime  # Alertmanager's field names, as it sends them
    endsAt: datetime | None = None
    generatorURL: str = ""
    fingerprint: str = ""


class AlertmanagerWebhook(BaseModel):
    """Prometheus Alertmanager's webhook_config payload, version 4."""

    model_config = ConfigDict(extra="ignore")

    version: Literal["4"]
    groupKey: str = Field(min_length=1)
    truncatedAlerts: int = 0
    status: Literal["firing", "resolved"]
    receiver: str
    groupLabels: dict[str, str] = Field(default_factory=dict)
    commonLabels: dict[str, str] = Field(default_factory=dict)
    commonAnnotations: dict[str, str] = Field(default_factory=dict)
    externalURL: str = ""
    alerts: list[AlertmanagerAlert] = Field(min_length=1)


class Intake(BaseModel):
    """What an alert asks for: an investigation of `question`, or nothing (`ignored` says why)."""

    question: str | None = None
    alert: AlertRef | None = None
    ignored: str | None = None


def tag_pairs(*texts: str | list[str] | None) -> list[tuple[str, str]]:
    """`key:value` tags from Datadog's comma-separated $TAGS / $ALERT_SCOPE (or a list of tags)."""
    pairs = []
    for text in texts:
        items = text if isinstance(text, list) else (text or "").split(",")
        for item in items:
            key, sep, value = str(item).strip().partition(":")
            if sep and key.strip() and value.strip():
                pairs.append((key.strip().lower(), value.strip()))
    return pairs


def _values(pairs: Iterable[tuple[str, str]], keys: tuple[str, ...], pattern: re.Pattern[str], notes: list[str],
            what: str) -> list[str]:
    found: list[str] = []
    for key, value in pairs:
        if key not in keys:
            continue
        if not pattern.match(value):
            notes.append(f"{key}:{value[:80]!r} ignored: not a usable {what} name")
        elif value not in found:
            found.append(value)
    return found


def _clean(text: str | None) -> str:
    return " ".join((text or "").split())[:MAX_TITLE]


def scoped(source: Literal["datadog", "alertmanager"], title: str, pairs: list[tuple[str, str]],
           keys: list[str]) -> Intake:
    notes: list[str] = []
    namespaces = _values(pairs, NAMESPACE_KEYS, _K8S_NAME, notes, "namespace")
    workloads = _values(pairs, WORKLOAD_KEYS[source], _K8S_NAME, notes, "workload")
    queues = _values(pairs, QUEUE_KEYS, _QUEUE_NAME, notes, "queue")
    where = [*(f"namespace {n}" for n in namespaces), *(f"service {w}" for w in workloads),
             *(f"queue {q}" for q in queues)]
    label = "Datadog" if source == "datadog" else "Alertmanager"
    question = (f"{label} alert: {title.rstrip('.')}. "
                + (f"Investigate in {', '.join(where)}: " if where else "Investigate: ") + "what is wrong and why?")
    return Intake(question=question, alert=AlertRef(source=source, title=title, keys=keys, namespaces=namespaces,
                                                    workloads=workloads, queues=queues, notes=notes))


def datadog_intake(payload: DatadogAlert) -> Intake:
    titles = [_clean(_STATE_PREFIX.sub("", text or "")) for text in (payload.alert_title, payload.title)]
    title = next((text for text in titles if text), f"monitor {payload.alert_id}")
    transition = (payload.alert_transition or "").strip().lower()
    if transition in RECOVERED:
        return Intake(ignored=f"monitor {payload.alert_id} recovered: nothing to investigate")
    scope = ",".join(sorted(f"{k}:{v}" for k, v in tag_pairs(payload.alert_scope)))
    return scoped("datadog", title, tag_pairs(payload.tags, payload.alert_scope),
                  [f"datadog:{payload.alert_id}:{scope}"])


def alertmanager_intake(payload: AlertmanagerWebhook) -> Intake:
    firing = [alert for alert in payload.alerts if alert.status == "firing"]
    if not firing:
        return Intake(ignored=f"group {payload.groupKey} is resolved: nothing to investigate")
    names = list(dict.fromkeys(a.labels.get("alertname", "") for a in firing if a.labels.get("alertname")))
    summary = (payload.commonAnnotations.get("summary") or firing[0].annotations.get("summary")
               or payload.commonAnnotations.get("description") or "")
    title = _clean(": ".join(part for part in (", ".join(names), summary) if part)) or f"group {payload.receiver}"
    pairs = [(k.lower(), v) for alert in firing for k, v in sorted(alert.labels.items())]
    keys = [f"alertmanager:group:{payload.groupKey}",
            *(f"alertmanager:fingerprint:{a.fingerprint}" for a in firing if a.fingerprint)]
    return scoped("alertmanager", title, pairs, keys)
