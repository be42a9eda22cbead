"""Live RabbitMQ backend over the management HTTP API (`/api/queues`)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, TypeVar
from urllib.parse import quote, unquote, urlsplit, urlunsplit

import httpx

from tools.errors import AuthFailed, BadQuery, BadResponse, NotFound, RateLimited, SourceError, TimedOut, Unavailable
from tools.rabbitmq.protocol import QueueInfo
from tools.settings import ConfigError, Settings, header_seconds

T = TypeVar("T")

SAMPLES = 20
SOURCE = "the RabbitMQ management API"
MAX_BODY_BYTES = 32 * 2**20
BODY_HINT = "something other than the management API may be answering (a proxy, a login page): check RABBITMQ_URL"


def rabbitmq_login(settings: Settings) -> tuple[str, str, str]:
    """The base URL without its userinfo, the user and the password: RABBITMQ_USER / RABBITMQ_PASSWORD when set,
    else the userinfo of RABBITMQ_URL (`http://user:password@host:15672/`), percent-decoded."""
    url = settings.rabbitmq_url.strip()
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"RABBITMQ_URL is not a valid URL ({exc}); expected http://host:15672/") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"RABBITMQ_URL must be an http(s) URL like http://host:15672/, not {url!r}")
    base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    user = settings.rabbitmq_user or unquote(parts.username or "")
    secret = settings.rabbitmq_password
    password = secret.get_secret_value() if secret is not None else unquote(parts.password or "")
    missing = [name for name, value in (("RABBITMQ_USER", user), ("RABBITMQ_PASSWORD", password)) if not value]
    if missing:
        raise ConfigError(f"{missing[0]} is not set" + "".join(f" (nor {name})" for name in missing[1:]) +
                          "; export RABBITMQ_USER and RABBITMQ_PASSWORD, or give them as the userinfo of "
                          "RABBITMQ_URL (user:password@ before the host)")
    return base, user, password


def rabbitmq_client(settings: Settings) -> httpx.Client:
    """An httpx client on RABBITMQ_URL (its userinfo removed) with basic auth from `rabbitmq_login`."""
    base, user, password = rabbitmq_login(settings)
    return httpx.Client(base_url=base, auth=(user, password), timeout=settings.timeout_seconds,
                        headers={"Accept": "application/json"})


@dataclass(frozen=True)
class _Reply:
    """One answer of the management API, read in full within the call's deadline."""

    path: str
    status: int
    reason: str
    headers: httpx.Headers
    body: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):  # truncated or not JSON at all, not UTF-8, nested past any reason
            content_type = (self.headers.get("content-type") or "no content type").split(";")[0].strip()
            raise BadResponse(f"RabbitMQ management API returned a body that is not JSON ({content_type}, "
                              f"{len(self.body)} bytes) from {self.path}", hints=[BODY_HINT]) from None

    def shaped(self, build: Callable[[Any], T]) -> T:
        """`build(self.json())`, with a body of the wrong shape or types as BadResponse."""
        data = self.json()
        try:
            return build(data)
        except (KeyError, IndexError, TypeError, ValueError, AttributeError, OverflowError, RecursionError,
                OSError) as exc:  # OSError: a timestamp out of the platform's range
            detail = str(exc).splitlines()[0][:160] if str(exc) else ""
            raise BadResponse(f"RabbitMQ management API returned JSON of an unexpected shape from {self.path} "
                              f"({type(exc).__name__}: {detail})", hints=[BODY_HINT]) from None


class StatusError(Exception):
    """An answer with an error status, retried or translated by `_translate`."""

    def __init__(self, reply: _Reply) -> None:
        super().__init__(f"HTTP {reply.status} from {reply.path}")
        self.reply = reply


def _read(response: httpx.Response, path: str, deadline: float) -> bytes:
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_bytes():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise BadResponse(f"RabbitMQ management API sent more than {MAX_BODY_BYTES // 2**20} MB from {path}",
                              hints=["narrow the listing to one vhost"])
        if time.monotonic() > deadline:  # the caller has given up: stop reading and close the connection
            raise TimedOut(f"{SOURCE} was still sending {path} at the call's deadline")
        chunks.append(chunk)
    return b"".join(chunks)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, StatusError):
        return exc.reply.status == 429 or exc.reply.status >= 500
    return isinstance(exc, httpx.TransportError)


def _retry_after(exc: BaseException) -> float | None:
    return header_seconds(exc.reply.headers.get("Retry-After") if isinstance(exc, StatusError) else None)


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


def _dead_letter(raw: dict[str, Any], key: str) -> str | None:
    """A dead-letter setting: the queue's x-argument wins over its policy's (RabbitMQ's own precedence)."""
    arguments, policy = raw.get("arguments") or {}, raw.get("effective_policy_definition") or {}
    value = arguments.get(f"x-{key}", policy.get(key))
    return None if value is None else str(value)


def _queue(raw: dict[str, Any], samples: list[tuple[datetime, int]] | None = None) -> QueueInfo:
    stats = raw.get("message_stats") or {}
    utilisation = raw.get("consumer_utilisation", raw.get("consumer_capacity"))
    return QueueInfo(
        redeliver_rate=_rate(stats, "redeliver"), dead_letter_exchange=_dead_letter(raw, "dead-letter-exchange"),
        dead_letter_routing_key=_dead_letter(raw, "dead-letter-routing-key"),
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

    def _get(self, path: str, **params: Any) -> _Reply:
        shown = "/" + path.lstrip("/")
        deadline = time.monotonic() + self.settings.call_deadline_seconds

        def fetch() -> _Reply:
            with self.http.stream("GET", path, params=params) as response:
                reply = _Reply(shown, response.status_code, response.reason_phrase, response.headers,
                               _read(response, shown, deadline))
            if reply.status >= 400:
                raise StatusError(reply)
            return reply

        try:
            return self.settings.call(fetch, transient=_transient, reset_after=_retry_after, source=SOURCE)
        except StatusError as exc:
            raise _translate(exc.reply) from None
        except httpx.TimeoutException:
            raise TimedOut(f"{SOURCE} did not answer within {self.settings.timeout_seconds} s",
                           hints=["the broker may be overloaded"]) from None
        except httpx.TransportError as exc:
            raise Unavailable(f"cannot reach {SOURCE} at {self.http.base_url}: {exc}",
                              hints=["the broker itself may be down; check its deployment"]) from None

    def list_queues(self, vhost: str | None = None) -> list[QueueInfo]:
        reply = self._get(_path(vhost) if vhost else _path())
        return reply.shaped(lambda raw: sorted((_queue(item) for item in raw), key=lambda q: (q.vhost, q.name)))

    def alarms(self) -> list[str]:
        """Resource alarms set on any node (GET /api/nodes: mem_alarm, disk_free_alarm)."""
        reply = self._get("/api/nodes", columns="name,mem_alarm,disk_free_alarm")
        return reply.shaped(lambda nodes: sorted({
            resource for node in nodes if isinstance(node, dict)
            for resource, key in (("memory", "mem_alarm"), ("disk", "disk_free_alarm")) if node.get(key)}))

    def get_queue(self, vhost: str, name: str, history_seconds: int = 0) -> QueueInfo:
        """Current counts come from a plain GET: with `lengths_age` the API reports them as of the last sample."""
        try:
            current = self._get(_path(vhost, name))
        except NotFound:
            raise NotFound(f"queue {name!r} not found in vhost {vhost!r}", hints=[self._known(vhost)]) from None
        if not history_seconds:
            return current.shaped(_queue)
        history = self._get(_path(vhost, name), lengths_age=history_seconds,
                            lengths_incr=max(5, history_seconds // SAMPLES), columns="messages_details")

        def with_samples(raw: dict[str, Any]) -> QueueInfo:
            found = history.json()
            details = found.get("messages_details") if isinstance(found, dict) else None  # [] before first stats
            date = current.headers.get("date")
            now = parsedate_to_datetime(date).astimezone(UTC) if date else None
            return _queue(raw, _samples((details or {}).get("samples") or [], raw.get("messages") or 0, now))

        return current.shaped(with_samples)

    def _known(self, vhost: str) -> str:
        try:
            reply = self._get(_path(vhost), columns="name")
            names = reply.shaped(lambda raw: sorted(str(item["name"]) for item in raw))
        except NotFound:
            return f"vhost {vhost!r} does not exist"
        except SourceError:
            return "could not list the vhost's queues"
        return f"queues in {vhost!r}: {', '.join(names) or 'none'}"


def _translate(reply: _Reply) -> SourceError:
    status = reply.status
    try:
        body = json.loads(reply.body)
    except ValueError:
        body = None
    detail = (body.get("reason") or body.get("error")) if isinstance(body, dict) else None
    message = f"RabbitMQ management API {status}: {detail or reply.reason}"
    if status in (401, 403):
        return AuthFailed(message, hints=["check RABBITMQ_USER and RABBITMQ_PASSWORD (the user needs the "
                                          "monitoring or management tag)"])
    if status == 404:
        return NotFound(message)
    if status == 429:
        retry = reply.headers.get("Retry-After")
        return RateLimited(message, hints=[f"the broker asks to retry in {retry} s" if retry else "retry later"])
    if status >= 500:
        return Unavailable(message)
    return BadQuery(message)
