"""Live RabbitMQ backend over the management HTTP API (`/api/queues`)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from tools.errors import AuthFailed, BadQuery, NotFound, RateLimited, SourceError, TimedOut, Unavailable
from tools.rabbitmq.protocol import QueueInfo
from tools.settings import Settings, header_seconds

SAMPLES = 20


def rabbitmq_client(settings: Settings) -> httpx.Client:
    """An httpx client on RABBITMQ_URL with basic auth from RABBITMQ_USER / RABBITMQ_PASSWORD."""
    auth = (settings.require("rabbitmq_user"), settings.require("rabbitmq_password"))
    return httpx.Client(base_url=settings.rabbitmq_url, auth=auth, timeout=settings.timeout_seconds,
                        headers={"Accept": "application/json"})


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code == 429 or exc.response.status_code >= 500
    return isinstance(exc, httpx.TransportError)


def _retry_after(exc: BaseException) -> float | None:
    return header_seconds(exc.response.headers.get("Retry-After") if isinstance(exc, httpx.HTTPStatusError) else None)


def _path(*parts: str) -> str:
    return "api/queues" + "".join(f"/{quote(part, safe='')}" for part in parts)


def _time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)


def _rate(stats: dict[str, Any], key: str) -> float:
    return float((stats.get(f"{key}_details") or {}).get("rate") or 0.0)


def _samples(raw: list[dict[str, Any]], messages: int, now: datetime | None) -> list[tuple[datetime, int]]:
    """Oldest first; samples sit on `lengths_incr` boundaries and lag, so the current depth ends the list."""
    samples = sorted((datetime.fromtimestamp(s["timestamp"] / 1000, UTC), int(s["sample"])) for s in raw)
    if now is None:
        return samples
    return [(t, v) for t, v in samples if t < now] + [(now, messages)]


def _queue(raw: dict[str, Any], samples: list[tuple[datetime, int]] | None = None) -> QueueInfo:
    stats = raw.get("message_stats") or {}
    utilisation = raw.get("consumer_utilisation", raw.get("consumer_capacity"))
    return QueueInfo(
        vhost=raw["vhost"], name=raw["name"], messages=raw.get("messages") or 0,
        ready=raw.get("messages_ready") or 0, unacked=raw.get("messages_unacknowledged") or 0,
        consumers=raw.get("consumers") or 0, consumer_utilisation=utilisation,
        publish_rate=_rate(stats, "publish"), deliver_rate=_rate(stats, "deliver_get"), ack_rate=_rate(stats, "ack"),
        depth_rate=_rate(raw, "messages"), idle_since=_time(raw.get("idle_since")), durable=bool(raw.get("durable")),
        state=raw.get("state"), depth_samples=samples or [],
        consumer_hosts=[host for c in raw.get("consumer_details") or []
                        if (host := (c.get("channel_details") or {}).get("peer_host"))])


class RabbitMQManagement:
    """BrokerReader over the RabbitMQ management API. Pass an httpx.Client to point it elsewhere."""

    def __init__(self, settings: Settings | None = None, http: httpx.Client | None = None) -> None:
        self.settings = settings or Settings()
        self.http = http or rabbitmq_client(self.settings)

    def _get(self, path: str, **params: Any) -> httpx.Response:
        def fetch() -> httpx.Response:
            response = self.http.get(path, params=params)
            response.raise_for_status()
            return response

        try:
            return self.settings.call(fetch, transient=_transient, reset_after=_retry_after)
        except httpx.HTTPStatusError as exc:
            raise _translate(exc.response) from None
        except httpx.TimeoutException:
            raise TimedOut(f"the RabbitMQ management API did not answer within {self.settings.timeout_seconds} s",
                           hints=["the broker may be overloaded"]) from None
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach the RabbitMQ management API at {self.http.base_url}: {exc}",
                              hints=["the broker itself may be down; check its deployment"]) from None

    def list_queues(self, vhost: str | None = None) -> list[QueueInfo]:
        raw = self._get(_path(vhost) if vhost else _path()).json()
        return sorted((_queue(item) for item in raw), key=lambda q: (q.vhost, q.name))

    def alarms(self) -> list[str]:
        """Resource alarms set on any node (GET /api/nodes: mem_alarm, disk_free_alarm)."""
        nodes = self._get("/api/nodes", columns="name,mem_alarm,disk_free_alarm").json()
        found = [resource for node in nodes if isinstance(node, dict)
                 for resource, key in (("memory", "mem_alarm"), ("disk", "disk_free_alarm")) if node.get(key)]
        return sorted(set(found))

    def get_queue(self, vhost: str, name: str, history_seconds: int = 0) -> QueueInfo:
        """Current counts come from a plain GET: with `lengths_age` the API reports them as of the last sample."""
        try:
            current = self._get(_path(vhost, name))
        except NotFound:
            raise NotFound(f"queue {name!r} not found in vhost {vhost!r}", hints=[self._known(vhost)]) from None
        raw = current.json()
        if not history_seconds:
            return _queue(raw)
        history = self._get(_path(vhost, name), lengths_age=history_seconds,
                            lengths_incr=max(5, history_seconds // SAMPLES), columns="messages_details").json()
        details = history.get("messages_details") if isinstance(history, dict) else None  # [] before first stats
        date = current.headers.get("date")
        now = parsedate_to_datetime(date).astimezone(UTC) if date else None
        return _queue(raw, _samples((details or {}).get("samples") or [], raw.get("messages") or 0, now))

    def _known(self, vhost: str) -> str:
        try:
            names = sorted(item["name"] for item in self._get(_path(vhost), columns="name").json())
        except NotFound:
            return f"vhost {vhost!r} does not exist"
        except SourceError:
            return "could not list the vhost's queues"
        return f"queues in {vhost!r}: {', '.join(names) or 'none'}"


def _translate(response: httpx.Response) -> SourceError:
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    detail = (body.get("reason") or body.get("error")) if isinstance(body, dict) else None
    detail = detail or response.reason_phrase
    message = f"RabbitMQ management API {status}: {detail}"
    if status in (401, 403):
        return AuthFailed(message, hints=["check RABBITMQ_USER and RABBITMQ_PASSWORD (the user needs the "
                                          "monitoring or management tag)"])
    if status == 404:
        return NotFound(message)
    if status == 429:
        return RateLimited(message, hints=["retry later"])
    if status >= 500:
        return Unavailable(message)
    return BadQuery(message)
