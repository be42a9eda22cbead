"""Kubernetes events from Datadog's event stream (v2 events search), where the Agent's Kubernetes integration
forwards them. Datadog keeps them for weeks; the Kubernetes API keeps events for about an hour.

The Agent bundles the events of one object and type per collection run into one Datadog event: title
`Events from the <Kind> <namespace>/<name>`, text `%%% \\n<count> **<Reason>**: <message>\\n <count> **…` with a
trailing `_Events emitted by the <component> seen at …_` line. With `unbundle_events` each event is its own
Datadog event: title `<Kind> <namespace>/<name>: <Reason>`, text the message.
"""

from __future__ import annotations

import logging
import re
from datetime import UTC, datetime
from functools import partial
from typing import Any

from datadog_api_client.v2.api.events_api import EventsApi
from datadog_api_client.v2.model.events_list_request import EventsListRequest
from datadog_api_client.v2.model.events_query_filter import EventsQueryFilter
from datadog_api_client.v2.model.events_request_page import EventsRequestPage
from datadog_api_client.v2.model.events_sort import EventsSort

from tools.datadog.live import _at, _DatadogBackend, _when, reading
from tools.datadog.scoping import scoped_logs
from tools.kubernetes.protocol import KubeEvent

logger = logging.getLogger(__name__)

EVENT_PAGE_LIMIT = 1000
MAX_EVENT_PAGES = 5
SOURCE = "datadog"
EVENTS_SEARCH = "POST /api/v2/events/search"

_BUNDLE_TITLE = re.compile(r"Events from the (?P<kind>\w+) (?:(?P<namespace>[^\s/]+)/)?(?P<name>\S+)")
_SINGLE_TITLE = re.compile(r"(?P<kind>\w+) (?:(?P<namespace>[^\s/]+)/)?(?P<name>[^\s:]+): (?P<reason>\w+)")
_LINE = re.compile(r"(?P<count>\d+) \*\*(?P<reason>[^*\s]+)\*\*: ?(?P<message>.*)")
_FOOTER = re.compile(r"_.*\bemitted by\b.*_")
_WARNING_STATUSES = {"warning", "warn", "error", "failure"}


def _lines(text: str) -> list[str]:
    """The text's lines without the markdown fences, blank lines and the `emitted by` footer."""
    lines = (line.strip().replace("\\~", "~") for line in text.split("\n"))
    return [line for line in lines if line and line != "%%%" and not _FOOTER.fullmatch(line)]


def parse_event(title: str, text: str, at: datetime, *, status: str | None = None,
                namespace: str = "") -> list[KubeEvent]:
    """The Kubernetes events in one Datadog event, or [] when it is not one the Agent forwarded.

    `at` is the Datadog event's time (the bundle's last event), `status` its alert type, `namespace` the one to
    assume when the title names none."""
    event_type = "Warning" if (status or "").lower() in _WARNING_STATUSES else "Normal"
    title = title.strip()

    def event(kind: str, name: str, ns: str | None, reason: str, message: str, count: int = 1) -> KubeEvent:
        return KubeEvent(namespace=ns or namespace, type=event_type, reason=reason, message=message.strip(),
                         kind=kind, name=name, source=SOURCE, first_seen=at, last_seen=at, count=count)

    if single := _SINGLE_TITLE.fullmatch(title):
        message = "\n".join(_lines(text))
        if not message:
            return []
        return [event(single["kind"], single["name"], single["namespace"], single["reason"], message)]
    bundle = _BUNDLE_TITLE.fullmatch(title)
    if not bundle:
        return []
    parsed: list[tuple[int, str, str]] = []
    for line in _lines(text):
        if item := _LINE.fullmatch(line):
            parsed.append((int(item["count"]), item["reason"], item["message"]))
        elif parsed:  # a message that spans several lines
            count, reason, message = parsed[-1]
            parsed[-1] = (count, reason, f"{message}\n{line}")
    return [event(bundle["kind"], bundle["name"], bundle["namespace"], reason, message, count)
            for count, reason, message in parsed]


def _tag(tags: list[str], key: str) -> str:
    return next((tag.split(":", 1)[1] for tag in tags if tag.startswith(f"{key}:")), "")


def _kube_events(item: Any) -> list[KubeEvent]:
    outer = item.get("attributes")
    inner = outer.get("attributes") if outer else None
    if outer is None or inner is None:
        return []
    at = outer.get("timestamp")
    if isinstance(at, datetime):
        at = at.astimezone(UTC)
    elif inner.get("timestamp") is not None:
        at = datetime.fromtimestamp(inner.get("timestamp") / 1000, UTC)
    else:
        return []
    status = inner.get("status")
    tags = list(outer.get("tags") or [])
    return parse_event(inner.get("title") or "", outer.get("message") or "", at,
                       status=str(getattr(status, "value", status) or ""), namespace=_tag(tags, "kube_namespace"))


def _query(namespace: str, name: str | None) -> str:
    query = f"source:kubernetes kube_namespace:{namespace}"
    return f"{query} (kube_name:{name} OR name:{name})" if name else query


class DatadogEvents(_DatadogBackend):
    """ClusterReader.list_events over the Datadog events v2 search: newest first through the pages (so a bound
    drops the oldest), returned oldest first like the Kubernetes API's."""

    page_size = EVENT_PAGE_LIMIT
    max_pages = MAX_EVENT_PAGES

    def list_events(self, namespace: str, since: datetime, kind: str | None = None, name: str | None = None,
                    until: datetime | None = None) -> list[KubeEvent]:
        api = EventsApi(self.api_client)
        query = scoped_logs(_query(namespace, name), self.settings.kube_cluster_name)
        query_filter = EventsQueryFilter(query=query, _from=_when(since), to=_when(until) if until else "now")
        events: list[KubeEvent] = []
        cursor: str | None = None
        for _ in range(self.max_pages):
            page = EventsRequestPage(limit=self.page_size)
            if cursor:
                page.cursor = cursor
            body = EventsListRequest(filter=query_filter, page=page, sort=EventsSort.TIMESTAMP_DESCENDING)
            response = self._call(partial(api.search_events, body=body), EVENTS_SEARCH)
            with reading(EVENTS_SEARCH):
                data = list(response.get("data") or [])
                for item in data:
                    events.extend(_kube_events(item))
                cursor = _at(response, "meta", "page", "after")
            if not cursor or len(data) < self.page_size:  # the last page may still carry a cursor
                break
        else:
            logger.warning("Datadog has more than %d pages of events for %r; kept the newest", self.max_pages, query)
        wanted = [e for e in events if e.namespace == namespace and e.last_seen >= since
                  and (until is None or e.last_seen <= until)
                  and (kind is None or e.kind.lower() == kind.lower()) and (name is None or e.name == name)]
        return sorted(wanted, key=lambda e: e.last_seen)
