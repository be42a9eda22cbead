"""The live sources: Datadog, Kubernetes and RabbitMQ behind the same protocols as replay."""

from __future__ import annotations

from tools.datadog.events import DatadogEvents
from tools.datadog.live import DatadogLogs, DatadogMetrics, datadog_client
from tools.kubernetes.history import ClusterWithEventHistory
from tools.kubernetes.live import KubernetesCluster
from tools.rabbitmq.live import RabbitMQManagement
from tools.settings import Settings
from tools.timerange import system_clock
from tools.toolkit import Sources


def live_sources(settings: Settings | None = None) -> Sources:
    """Build every live backend; raises ConfigError naming the first missing credential. Kubernetes events older
    than the API server keeps come from Datadog's event stream."""
    settings = settings or Settings()
    datadog = datadog_client(settings)
    cluster = ClusterWithEventHistory(KubernetesCluster(settings), DatadogEvents(settings, datadog))
    return Sources(logs=DatadogLogs(settings, datadog), metrics=DatadogMetrics(settings, datadog, system_clock),
                   cluster=cluster, broker=RabbitMQManagement(settings), clock=system_clock, label="live")
