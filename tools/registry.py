"""The agent's read-only toolbox."""

from __future__ import annotations

from tools.datadog.tools import get_metric, search_logs
from tools.kubernetes.tools import get_deployment, list_events, list_namespaces
from tools.rabbitmq.tools import get_queue_stats
from tools.toolkit import Tool, Toolbox

READ_ONLY_TOOLS = (list_namespaces, get_deployment, list_events, search_logs, get_metric, get_queue_stats)
TOOL_SOURCES = {"list_namespaces": "kubernetes", "get_deployment": "kubernetes", "list_events": "kubernetes",
                "search_logs": "datadog", "get_metric": "datadog", "get_queue_stats": "rabbitmq"}
"""The source each tool reads, as named in `Sources.missing` (list_events also reads Datadog's event history)."""


def default_toolbox() -> Toolbox:
    return Toolbox([Tool.from_function(function) for function in READ_ONLY_TOOLS])
