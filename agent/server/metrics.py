"""Prometheus metrics of one server (its own registry, so two apps in one process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.investigations = Counter(
            "sre_agent_investigations", "Investigations finished, by outcome: the verdict's status (incident, "
            "healthy, inconclusive), or failed / interrupted", ["outcome"], registry=self.registry)
        self.duration = Histogram(
            "sre_agent_investigation_duration_seconds", "Wall-clock time from start to verdict (queueing excluded)",
            buckets=DURATION_BUCKETS, registry=self.registry)
        self.tool_errors = Counter(
            "sre_agent_tool_errors", "Tool calls that returned an error, by the source the tool reads",
            ["source"], registry=self.registry)
        self.approvals = Counter(
            "sre_agent_approvals", "Answers to approval requests through the server, by decision (approved, "
            "rejected, refused: the policy or the record's state said no)", ["decision"], registry=self.registry)
        self.alerts = Counter(
            "sre_agent_alerts", "Alert webhook deliveries, by source and result (started, joined, ignored)",
            ["source", "result"], registry=self.registry)
        self.queued = Gauge("sre_agent_investigations_queued", "Investigations waiting for a free slot",
                            registry=self.registry)
        self.running = Gauge("sre_agent_investigations_running", "Investigations running now",
                             registry=self.registry)
