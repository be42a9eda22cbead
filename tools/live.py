"""The live sources: Datadog, Kubernetes and RabbitMQ behind the same protocols as replay.

Each source is built when it is configured and skipped when none of its settings is set; a skipped source answers
every call with NotConfigured, and `Sources.missing` names it. A source that is configured but unusable (one
Datadog key without the other, RABBITMQ_URL without credentials, a kubeconfig that does not load) is a ConfigError,
so a typo never silently turns into a missing source.
"""

from __future__ import annotations

import os

from tools.datadog.events import DatadogEvents
from tools.datadog.live import DatadogLogs, DatadogMetrics, datadog_client
from tools.datadog.protocol import LogSource, MetricSource
from tools.kubernetes.history import ClusterWithEventHistory, EventHistory
from tools.kubernetes.live import KubernetesCluster
from tools.kubernetes.protocol import ClusterReader
from tools.rabbitmq.live import RabbitMQManagement
from tools.rabbitmq.protocol import BrokerReader
from tools.settings import ConfigError, Settings
from tools.timerange import system_clock
from tools.toolkit import Sources
from tools.unconfigured import Unconfigured

DATADOG = "datadog"
KUBERNETES = "kubernetes"
RABBITMQ = "rabbitmq"
NOT_CONFIGURED = {
    DATADOG: "Datadog is not configured: set DD_API_KEY and DD_APP_KEY",
    KUBERNETES: "Kubernetes is not configured: set KUBECONFIG (and KUBE_CONTEXT) to a kubeconfig, or "
                "KUBE_IN_CLUSTER=1 in a pod with a service account",
    RABBITMQ: "RabbitMQ is not configured: set RABBITMQ_URL, with RABBITMQ_USER and RABBITMQ_PASSWORD or "
              "user:password@ in the URL",
}
NONE_CONFIGURED = (
    "no live source is configured: set DD_API_KEY and DD_APP_KEY (Datadog), KUBECONFIG or KUBE_IN_CLUSTER=1 "
    "(Kubernetes), and/or RABBITMQ_URL with RABBITMQ_USER and RABBITMQ_PASSWORD (RabbitMQ)")


def configured(settings: Settings) -> dict[str, bool]:
    """Which sources this environment means to use: Datadog by either key, Kubernetes by a kubeconfig (KUBECONFIG,
    KUBE_CONTEXT, ~/.kube/config) or the in-cluster account, RabbitMQ by an explicitly set RABBITMQ_URL."""
    in_cluster = settings.kube_in_cluster
    if in_cluster is None:
        in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ
    return {
        DATADOG: bool(settings.dd_api_key or settings.dd_app_key),
        KUBERNETES: bool(settings.kubeconfig or settings.kube_context or in_cluster
                         or os.path.exists(os.path.expanduser("~/.kube/config"))),
        RABBITMQ: "rabbitmq_url" in settings.model_fields_set,
    }


def live_sources(settings: Settings | None = None) -> Sources:
    """Build the configured live backends, the others as Unconfigured; ConfigError when a configured one is
    unusable or none is configured. Kubernetes events older than the API server keeps come from Datadog's event
    stream when Datadog is configured, else only the Kubernetes API's events are returned."""
    settings = settings or Settings()
    wanted = configured(settings)
    if not any(wanted.values()):
        raise ConfigError(NONE_CONFIGURED)
    missing = {source: NOT_CONFIGURED[source] for source, used in wanted.items() if not used}
    logs: LogSource = Unconfigured(LogSource, NOT_CONFIGURED[DATADOG])
    metrics: MetricSource = Unconfigured(MetricSource, NOT_CONFIGURED[DATADOG])
    history: EventHistory = Unconfigured(EventHistory, NOT_CONFIGURED[DATADOG])
    if wanted[DATADOG]:
        datadog = datadog_client(settings)
        logs, metrics = DatadogLogs(settings, datadog), DatadogMetrics(settings, datadog, system_clock)
        history = DatadogEvents(settings, datadog)
    cluster: ClusterReader = Unconfigured(ClusterReader, NOT_CONFIGURED[KUBERNETES])
    if wanted[KUBERNETES]:
        cluster = ClusterWithEventHistory(KubernetesCluster(settings), history)
    broker: BrokerReader = RabbitMQManagement(settings) if wanted[RABBITMQ] else Unconfigured(
        BrokerReader, NOT_CONFIGURED[RABBITMQ])
    return Sources(logs=logs, metrics=metrics, cluster=cluster, broker=broker, clock=system_clock, label="live",
                   missing=missing)
