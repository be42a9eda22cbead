"""Where a watcher's notices go besides the terminal: an outgoing webhook, as generic JSON or as a PagerDuty
Events API v2 event (docs/watch.md shows both payloads). Delivery retries briefly; a notice that still cannot be
delivered is reported, never raised, so one unreachable receiver does not stop the watcher."""

from __future__ import annotations

import logging
from typing import Any, Literal

import httpx
from tenacity import retry, retry_if_exception_type, stop_after_attempt, wait_exponential

from agent.watch.watcher import Notice
from tools.redaction import redact

log = logging.getLogger(__name__)

Format = Literal["json", "pagerduty"]
PAGERDUTY_URL = "https://events.pagerduty.com/v2/enqueue"


class DeliveryError(Exception):
    pass


def pagerduty_event(notice: Notice, routing_key: str) -> dict[str, Any]:
    """A PagerDuty Events API v2 trigger or resolve; the anomaly's key deduplicates repeats on PagerDuty's side."""
    event: dict[str, Any] = {"routing_key": routing_key,
                             "event_action": "trigger" if notice.event == "raised" else "resolve",
                             "dedup_key": notice.anomaly.key}
    if notice.event == "raised":
        verdict = notice.verdict or {}
        event["payload"] = {"summary": notice.anomaly.summary[:1024], "source": "sre-agent watch",
                            "severity": "error", "timestamp": notice.at.isoformat(),
                            "component": ", ".join(notice.anomaly.workloads or notice.anomaly.queues) or None,
                            "custom_details": {"question": notice.anomaly.question(),
                                               "verdict": verdict.get("summary"),
                                               "root_cause": verdict.get("root_cause"),
                                               "remediation": verdict.get("remediation")}}
    return event


class WebhookNotifier:
    def __init__(self, url: str, *, fmt: Format = "json", routing_key: str | None = None,
                 timeout_s: float = 5.0, client: httpx.Client | None = None) -> None:
        if fmt == "pagerduty" and not routing_key:
            raise ValueError("a PagerDuty notifier needs a routing key (SRE_AGENT_PAGERDUTY_ROUTING_KEY)")
        self.url, self.fmt, self.routing_key = url, fmt, routing_key
        self.client = client or httpx.Client(timeout=timeout_s)
        self.failures: list[str] = []

    def payload(self, notice: Notice) -> dict[str, Any]:
        if self.fmt == "pagerduty":
            assert self.routing_key is not None
            return pagerduty_event(notice, self.routing_key)
        return notice.to_dict()

    @retry(retry=retry_if_exception_type(DeliveryError), stop=stop_after_attempt(3),
           wait=wait_exponential(multiplier=0.2, max=2), reraise=True)
    def _post(self, body: dict[str, Any]) -> None:
        try:
            response = self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise DeliveryError(f"cannot reach {self.url}: {exc}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise DeliveryError(f"{self.url} answered {response.status_code}")
        if response.status_code >= 400:
            raise ValueError(f"{self.url} refused the notice: {response.status_code} {response.text[:200]}")

    def __call__(self, notice: Notice) -> bool:
        """Deliver `notice`; False (and a logged, redacted reason) when it could not be."""
        try:
            self._post(self.payload(notice))
        except (DeliveryError, ValueError) as exc:
            reason = redact(str(exc))
            self.failures.append(reason)
            log.warning("notice %s %s not delivered: %s", notice.event, notice.anomaly.key, reason)
            return False
        return True
