"""Live Datadog backends: logs v2 search and aggregate, metrics v1 query and active list, metrics v2 tags."""

from __future__ import annotations

import difflib
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar

import urllib3
from datadog_api_client import ApiClient, Configuration
from datadog_api_client.exceptions import ApiException, ApiTypeError, OpenApiException
from datadog_api_client.v1.api.metrics_api import MetricsApi as MetricsApiV1
from datadog_api_client.v2.api.logs_api import LogsApi
from datadog_api_client.v2.api.metrics_api import MetricsApi as MetricsApiV2
from datadog_api_client.v2.model.logs_aggregate_request import LogsAggregateRequest
from datadog_api_client.v2.model.logs_aggregate_request_page import LogsAggregateRequestPage
from datadog_api_client.v2.model.logs_aggregation_function import LogsAggregationFunction
from datadog_api_client.v2.model.logs_compute import LogsCompute
from datadog_api_client.v2.model.logs_compute_type import LogsComputeType
from datadog_api_client.v2.model.logs_group_by import LogsGroupBy
from datadog_api_client.v2.model.logs_list_request import LogsListRequest
from datadog_api_client.v2.model.logs_list_request_page import LogsListRequestPage
from datadog_api_client.v2.model.logs_query_filter import LogsQueryFilter
from datadog_api_client.v2.model.logs_sort import LogsSort

from tools.datadog.metricquery import parse_metric_query
from tools.datadog.protocol import LogCount, LogRecord, Series
from tools.datadog.scoping import scoped_logs, scoped_metric
from tools.errors import (
    AuthFailed,
    BadQuery,
    BadResponse,
    NotFound,
    RateLimited,
    SourceError,
    Unavailable,
    UnknownMetric,
    transport_failure,
)
from tools.settings import Settings, header_seconds
from tools.timerange import Clock, system_clock

logger = logging.getLogger(__name__)

T = TypeVar("T")

PAGE_LIMIT = 1000
GROUP_LIMIT = 50
MAX_GROUP_PAGES = 5
ACTIVE_LOOKBACK = timedelta(days=1)
SOURCE = "Datadog"
LOGS_SEARCH = "POST /api/v2/logs/events/search"
LOGS_AGGREGATE = "POST /api/v2/logs/analytics/aggregate"
ACTIVE_METRICS = "GET /api/v1/metrics"
METRIC_TAGS = "GET /api/v2/metrics/{metric_name}/all-tags"
METRICS_QUERY = "GET /api/v1/query"
BODY_HINT = "something other than the Datadog API may be answering (a proxy, a login page): check DD_SITE / DD_HOST"


def datadog_client(settings: Settings) -> ApiClient:
    """An ApiClient with the keys, site (or DD_HOST), timeout from settings and no hidden urllib3 retries."""
    configuration = Configuration(host=settings.dd_host) if settings.dd_host else Configuration()
    if not settings.dd_host:
        configuration.server_variables["site"] = settings.dd_site
    configuration.api_key["apiKeyAuth"] = settings.require("dd_api_key")
    configuration.api_key["appKeyAuth"] = settings.require("dd_app_key")
    configuration.request_timeout = settings.timeout_seconds
    configuration.retry_policy = False
    return ApiClient(configuration)


def _header(exc: ApiException, name: str) -> str | None:
    return next((v for k, v in (exc.headers or {}).items() if k.lower() == name.lower()), None)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, ApiException):
        return exc.status == 429 or (exc.status or 0) >= 500
    return isinstance(exc, urllib3.exceptions.HTTPError)


def _reset_after(exc: BaseException) -> float | None:
    return header_seconds(_header(exc, "X-RateLimit-Reset") if isinstance(exc, ApiException) else None)


def _translate(exc: ApiException) -> SourceError:
    status = exc.status or 0
    body = exc.body if isinstance(exc.body, dict) else {}
    detail = ("; ".join(map(str, body.get("errors") or [])) or str(body.get("error") or body.get("message") or "")
              or str(exc.body or exc.reason or "")[:300])
    content_type = (_header(exc, "Content-Type") or "").split(";")[0].strip()
    if isinstance(exc.body, str) and exc.body and "json" not in content_type:  # an HTML error page, say
        detail = f"{exc.reason or ''} ({content_type or 'no content type'}, {len(exc.body)} bytes)".strip()
    message = f"Datadog {status} {exc.reason or ''}: {detail}".strip()
    if status in (401, 403):
        return AuthFailed(f"{message}; check DD_API_KEY and DD_APP_KEY",
                          hints=["the keys must belong to the organisation on DD_SITE (or DD_HOST)"])
    if status == 404:
        return NotFound(message)
    if status == 429:
        reset = _header(exc, "X-RateLimit-Reset")
        return RateLimited(message, hints=[f"rate limit resets in {reset} s" if reset else "retry later",
                                           "narrow the query or the time range"])
    if status >= 500 or status == 0:
        return Unavailable(message)
    return BadQuery(message)


class _DatadogBackend:
    def __init__(self, settings: Settings | None = None, api_client: ApiClient | None = None) -> None:
        self.settings = settings or Settings()
        self.api_client = api_client or datadog_client(self.settings)

    def _call(self, function: Callable[[], T], what: str) -> T:
        """`function()` (one request to `what`, an endpoint) with retries, as a SourceError when it fails."""
        try:
            return self.settings.call(function, transient=_transient, reset_after=_reset_after, source=SOURCE)
        except ApiException as exc:
            raise _translate(exc) from None
        except urllib3.exceptions.HTTPError as exc:
            raise transport_failure(exc, "Datadog", self.settings.timeout_seconds) from None
        except UNREADABLE as exc:  # the client could not read the body into its models
            raise _unreadable(exc, what) from None


# What reading a body of the wrong shape raises in the client's deserializer: its own errors, a charset that does
# not exist, a list where it wants a mapping, nesting past Python's recursion limit, a number past a float's range.
UNREADABLE = (OpenApiException, LookupError, TypeError, ValueError, AttributeError, OverflowError, RecursionError)


def _unreadable(exc: Exception, what: str) -> BadResponse:
    if isinstance(exc, ApiTypeError) and exc.path_to_item == ["received_data"]:
        return BadResponse(f"Datadog returned a body that is not JSON from {what} (truncated, or an HTML page)",
                           hints=[BODY_HINT])
    detail = (str(exc).splitlines() or [""])[0][:200]
    return BadResponse(f"Datadog returned a body that does not match its API from {what} "
                       f"({type(exc).__name__}: {detail})", hints=[BODY_HINT])


@contextmanager
def reading(what: str) -> Iterator[None]:
    """Turn a response of the wrong shape (a missing field, a wrong type) met while reading it into BadResponse."""
    try:
        yield
    except (*UNREADABLE, KeyError, IndexError, OSError) as exc:  # OSError: a timestamp out of the platform's range
        raise _unreadable(exc, what) from None


def _at(node: Any, *path: str) -> Any:
    for key in path:
        if node is None:
            return None
        node = node.get(key)
    return node


def _complete(response: T, query: str) -> T:
    status = _at(response, "meta", "status")
    if status is not None and str(status) != "done":
        logger.warning("Datadog returned partial log results (%s) for %r", status, query)
    return response


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _parse(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _interval(seconds: int) -> str:
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def _record(item: Any) -> LogRecord:
    attributes = item.attributes
    return LogRecord(
        timestamp=attributes.timestamp.astimezone(UTC), service=attributes.get("service"),
        status=attributes.get("status") or "info", host=attributes.get("host"),
        message=attributes.get("message") or "", tags=list(attributes.get("tags") or []),
        attributes=dict(attributes.get("attributes") or {}))


class DatadogLogs(_DatadogBackend):
    """LogSource over the logs v2 search and aggregate endpoints."""

    page_size = PAGE_LIMIT
    group_limit = GROUP_LIMIT
    max_group_pages = MAX_GROUP_PAGES

    def _filter(self, query: str, start: datetime, end: datetime) -> LogsQueryFilter:
        return LogsQueryFilter(query=scoped_logs(query, self.settings.kube_cluster_name), _from=_when(start),
                               to=_when(end), indexes=["*"])

    def search(self, query: str, start: datetime, end: datetime, limit: int) -> list[LogRecord]:
        api = LogsApi(self.api_client)
        records: list[LogRecord] = []
        cursor: str | None = None
        while len(records) < limit:
            page = LogsListRequestPage(limit=min(limit - len(records), self.page_size))
            if cursor:
                page.cursor = cursor
            body = LogsListRequest(filter=self._filter(query, start, end), page=page,
                                   sort=LogsSort.TIMESTAMP_DESCENDING)
            response = _complete(self._call(partial(api.list_logs, body=body), LOGS_SEARCH), query)
            with reading(LOGS_SEARCH):
                data = response.get("data") or []
                records.extend(_record(item) for item in data)
                cursor = _at(response, "meta", "page", "after")
            if not cursor or not data:
                break
        return records[:limit]

    def _buckets(self, query: str, start: datetime, end: datetime, group_by: list[str],
                 compute: LogsCompute) -> list[Any]:
        """Every bucket, following the cursor Datadog returns when the groups do not fit in one response."""
        api = LogsApi(self.api_client)
        buckets: list[Any] = []
        cursor: str | None = None
        for _ in range(self.max_group_pages):
            body = LogsAggregateRequest(compute=[compute], filter=self._filter(query, start, end))
            if group_by:
                body.group_by = [LogsGroupBy(facet=facet, limit=self.group_limit) for facet in group_by]
            if cursor:
                body.page = LogsAggregateRequestPage(cursor=cursor)
            response = _complete(self._call(partial(api.aggregate_logs, body=body), LOGS_AGGREGATE), query)
            with reading(LOGS_AGGREGATE):
                page = list(_at(response, "data", "buckets") or [])
                buckets.extend(page)
                cursor = _at(response, "meta", "page", "after")
            if not cursor or not page:
                return buckets
        logger.warning("Datadog has more than %d pages of groups for %r; kept the first", self.max_group_pages, query)
        return buckets

    def count(self, query: str, start: datetime, end: datetime, group_by: list[str],
              bucket_seconds: int | None) -> list[LogCount]:
        if bucket_seconds:
            compute = LogsCompute(aggregation=LogsAggregationFunction.COUNT, type=LogsComputeType.TIMESERIES,
                                  interval=_interval(bucket_seconds))
        else:
            compute = LogsCompute(aggregation=LogsAggregationFunction.COUNT, type=LogsComputeType.TOTAL)
        buckets = self._buckets(query, start, end, group_by, compute)
        with reading(LOGS_AGGREGATE):
            return _counts(buckets, start, group_by, bucket_seconds)


def _counts(buckets: list[Any], start: datetime, group_by: list[str], bucket_seconds: int | None) -> list[LogCount]:
    counts = []
    for bucket in buckets:
        by = bucket.get("by") or {}
        group = {facet: str(by.get(facet, "")) for facet in group_by}
        value = (bucket.get("computes") or {}).get("c0")
        if not bucket_seconds:
            counts.append(LogCount(group=group, count=round(float(value or 0))))
            continue
        for point in getattr(value, "value", None) or []:
            if point.get("value"):
                moment = max(_parse(point.get("time")), start)  # buckets align to the interval, not to start
                counts.append(LogCount(time=moment, group=group, count=round(point.get("value"))))
    return counts


class DatadogMetrics(_DatadogBackend):
    """MetricSource over the metrics v1 query and active-metrics endpoints and the v2 all-tags endpoint."""

    def __init__(self, settings: Settings | None = None, api_client: ApiClient | None = None,
                 clock: Clock = system_clock) -> None:
        super().__init__(settings, api_client)
        self.clock = clock
        self._active: dict[int, list[str]] = {}

    def _active_since(self, since: datetime) -> list[str]:
        since_s = int(since.timestamp()) // 3600 * 3600
        if since_s not in self._active:
            response = self._call(lambda: MetricsApiV1(self.api_client).list_active_metrics(_from=since_s),
                                  ACTIVE_METRICS)
            with reading(ACTIVE_METRICS):
                self._active[since_s] = sorted(str(name) for name in response.get("metrics") or [])
        return self._active[since_s]

    def metric_names(self) -> list[str]:
        return self._active_since(self.clock() - ACTIVE_LOOKBACK)

    def metric_tags(self, metric: str) -> list[str]:
        try:
            response = self._call(lambda: MetricsApiV2(self.api_client).list_tags_by_metric_name(metric), METRIC_TAGS)
        except NotFound:
            return []
        with reading(METRIC_TAGS):
            return sorted({str(tag) for tag in _at(response, "data", "attributes", "tags") or []})

    def query(self, query: str, start: datetime, end: datetime) -> list[Series]:
        parsed = parse_metric_query(query)
        response = self._call(lambda: MetricsApiV1(self.api_client).query_metrics(
            _from=int(start.timestamp()), to=int(end.timestamp()),
            query=scoped_metric(query, self.settings.kube_cluster_name)), METRICS_QUERY)
        with reading(METRICS_QUERY):
            failed = response.get("status") == "error"
            series = [] if failed else [_series(item) for item in response.get("series") or []]
        if failed:
            raise BadQuery(f"Datadog could not run {query!r}: {response.get('error')}")
        if series:
            return series
        names = self._active_since(min(start, self.clock() - ACTIVE_LOOKBACK))
        if parsed.metric not in names:
            close = difflib.get_close_matches(parsed.metric, names, n=5, cutoff=0.5)
            raise UnknownMetric(f"no metric named {parsed.metric!r} has reported data",
                                hints=[f"closest known metrics: {', '.join(close)}" if close
                                       else "list metrics by prefix, e.g. kubernetes_state.deployment.*"])
        return []


def _series(item: Any) -> Series:
    pairs = [getattr(point, "value", point) for point in item.get("pointlist") or []]
    points = [(datetime.fromtimestamp(float(ms) / 1000, UTC), None if value is None else float(value))
              for ms, value in pairs]
    units = [u for u in item.get("unit") or [] if u]
    return Series(metric=item.get("metric") or "", tags=list(item.get("tag_set") or []), points=points,
                  unit=units[0].get("name") if units else None)
