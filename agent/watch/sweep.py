"""One sweep: a cheap look, with no LLM, for the failures nobody is paged for.

It reads every queue (all vhosts) and the workloads that consume it, and the workloads that are at 0 or below
what they want while something waits for them, through the same read-only tools and the same findings
(`agent/findings.py`) the agent uses. It reports what a person should be told, not why: the investigation
an anomaly opens answers that.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from agent.findings import (
    ERROR_BURST,
    autoscaled_to_rest,
    blamed_dependencies,
    broker_alarms,
    gives_back_every_message,
    hung_dependency,
    intentional_pause,
    logs_errors,
    missing_consumer,
    recent_rollout,
    stuck_consumers,
    workload_logs_query,
)
from agent.producers import stopped_producer, went_to_zero_at
from agent.signals import consumer_refs
from tools.registry import TOOL_SOURCES, default_toolbox
from tools.toolkit import Sources, Toolbox

RECENT_ERRORS = "now-5m"
MAX_NAMESPACES = 30
RECENT_SAMPLES = 6  # of a queue's depth samples (about 45 s apart): the last few minutes
# How long each kind of trouble must last before anyone is told:
AUTOSCALER_GRACE_S = 180  # a consumer an autoscaler keeps at 0 is started by the messages: give it that long
STUCK_GRACE_S = 120  # consumers holding messages without acking for this long are stuck, not busy
CAPACITY_LOST_GRACE_S = 120  # a queue growing since some of its consumers went away
FALLING_BEHIND_GRACE_S = 1200  # a queue growing under load with every consumer there: a burst, unless it lasts
UNREADABLE_GRACE_S = 180  # a source that cannot be read: one failed call is not an outage


@dataclass(frozen=True)
class Anomaly:
    """Something a person should know about. `key` says what makes a repeat of it (the same queue or workload in
    the same trouble); `grace_s` is how long it must last before anyone is told."""

    key: str
    kind: str  # no_consumer | stuck_consumers | falling_behind | broker_alarm | dependency_down |
    # errors_after_rollout | failing_consumers | dead_letters | unreadable
    summary: str
    namespaces: tuple[str, ...] = ()
    workloads: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()
    grace_s: int = 0

    def question(self) -> str:
        """The investigation's question, in words the agent's question-scoping reads."""
        where = [*(f"namespace {n}" for n in self.namespaces), *(f"service {w}" for w in self.workloads),
                 *(f"queue {q}" for q in self.queues)]
        return (f"Watch found: {self.summary.rstrip('.')}. "
                + (f"Investigate in {', '.join(where)}: " if where else "Investigate: ") + "what is wrong and why?")


@dataclass
class Sweep:
    """What one sweep found: anomalies; what looked wrong but is meant to be so (`quiet`, with why); and the
    calls that failed (`unread`: not looked at this time); and which workloads consume each queue now."""

    anomalies: list[Anomaly] = field(default_factory=list)
    quiet: list[str] = field(default_factory=list)
    unread: list[str] = field(default_factory=list)
    consumers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # queue → workloads seen consuming


class _Reader:
    def __init__(self, sources: Sources, toolbox: Toolbox, sweep: Sweep) -> None:
        self.sources, self.toolbox, self.sweep = sources, toolbox, sweep
        self._cache: dict[str, dict[str, Any] | None] = {}

    def call(self, tool: str, **args: Any) -> dict[str, Any] | None:
        key = f"{tool}{sorted(args.items())}"
        if key not in self._cache:
            outcome = self.toolbox.call(self.sources, tool, args)
            if not outcome.ok:
                self.sweep.unread.append(f"{tool}: {outcome.data().get('message', 'failed')}")
            self._cache[key] = outcome.data() if outcome.ok else None
        return self._cache[key]


def queue_ref(vhost: str, queue: str) -> str:
    return queue if vhost == "/" else f"{vhost}/{queue}"


def sweep(sources: Sources, toolbox: Toolbox | None = None,
          known_consumers: dict[str, list[tuple[str, str]]] | None = None) -> Sweep:
    """`known_consumers`: the workloads earlier sweeps saw consuming each queue (by `queue_ref`), which name the
    consumer that went away better than any name can."""
    found = Sweep()
    read = _Reader(sources, toolbox or default_toolbox(), found)
    tables = _workload_tables(read)
    zero = [(ns, row["name"]) for ns, table in tables.items() for row in table.get("deployments") or []
            if row.get("desired") == 0]
    _queues(read, zero, known_consumers or {}, found)
    _stopped_producers(read, zero, found)
    _dependencies(read, tables, found)
    for source in sorted({TOOL_SOURCES.get(line.split(":", 1)[0], "?") for line in found.unread}):
        found.anomalies.append(Anomaly(f"unreadable:{source}", "unreadable",
                                       f"{source} cannot be read, so what it would show is not being watched",
                                       grace_s=UNREADABLE_GRACE_S))
    return found


def _workload_tables(read: _Reader) -> dict[str, dict[str, Any]]:
    listing = read.call("list_namespaces") or {}
    tables = {}
    for row in (listing.get("namespaces") or [])[:MAX_NAMESPACES]:
        if row.get("deployments"):
            table = read.call("get_deployment", namespace=row["namespace"])
            if table:
                tables[row["namespace"]] = table
    return tables


def _queues(read: _Reader, zero: list[tuple[str, str]], known: dict[str, list[tuple[str, str]]],
            found: Sweep) -> None:
    table = read.call("get_queue_stats")
    if table is None:
        return
    for alarm in broker_alarms([table]):
        found.anomalies.append(Anomaly(f"broker_alarm:{alarm}", "broker_alarm",
                                       f"the broker's {alarm} alarm is set: every publisher is blocked"))
    for row in table.get("queues") or []:
        if not (row.get("messages") or row.get("publish_rate")):
            continue
        detail = read.call("get_queue_stats", queue=row["queue"], vhost=row["vhost"])
        if detail is None:
            continue
        place = f"{row['queue']} (vhost {row['vhost']})"
        ref = queue_ref(row["vhost"], row["queue"])
        refs = consumer_refs(detail)
        namespaces, workloads = tuple(dict.fromkeys(ns for ns, _ in refs)), tuple(n for _, n in refs)
        if refs:
            found.consumers[ref] = refs
        if detail.get("dead_letters_from"):
            if still_rising(detail):
                found.anomalies.append(Anomaly(
                    f"dead_letters:{ref}", "dead_letters",
                    f"dead-letter queue {place} keeps growing ({detail.get('messages')} held): the consumers of "
                    f"{', '.join(detail['dead_letters_from'])} reject or let expire what they receive",
                    queues=(row["queue"], *detail["dead_letters_from"]), grace_s=STUCK_GRACE_S))
            else:
                found.quiet.append(f"{place}: a dead-letter queue, no consumer by design, not growing")
        elif not detail.get("consumers"):
            _no_consumer(read, detail, place, known.get(ref, []), zero, found)
        elif gives_back_every_message(detail):
            found.anomalies.append(Anomaly(
                f"failing_consumers:{ref}", "failing_consumers",
                f"queue {place}: its {detail['consumers']} consumer(s) receive messages and give every one back "
                f"(redeliver {detail.get('redeliver_rate')}/s, no acks)",
                namespaces=namespaces, workloads=workloads, queues=(row["queue"],), grace_s=STUCK_GRACE_S))
        elif stuck_consumers(detail):
            found.anomalies.append(Anomaly(
                f"stuck_consumers:{ref}", "stuck_consumers",
                f"queue {place} has {detail['consumers']} consumer(s) holding {detail.get('unacked')} "
                f"unacknowledged messages and acking nothing while {detail.get('ready')} wait",
                namespaces=namespaces, workloads=workloads, queues=(row["queue"],), grace_s=STUCK_GRACE_S))
        elif still_rising(detail):
            reduced = [f"{ns}/{name} was scaled down" for ns, name in refs if _scaled_down(read, ns, name)]
            gone = missing_consumer(row["queue"], refs, zero)
            if gone:
                reduced.append(f"{gone[0]}/{gone[1]} is at 0 replicas")
            trend = detail.get("depth_trend") or {}
            found.anomalies.append(Anomaly(
                f"falling_behind:{ref}", "falling_behind",
                f"queue {place} keeps growing ({trend.get('first', 0):.0f} -> {detail.get('messages')} in 15 min) "
                f"with {detail['consumers']} consumer(s)" + (f"; {'; '.join(reduced)}" if reduced else ""),
                namespaces=tuple(dict.fromkeys([*namespaces, *([gone[0]] if gone else [])])),
                workloads=tuple(dict.fromkeys([*workloads, *([gone[1]] if gone else [])])),
                queues=(row["queue"],), grace_s=CAPACITY_LOST_GRACE_S if reduced else FALLING_BEHIND_GRACE_S))


def _stopped_producers(read: _Reader, zero: list[tuple[str, str]], found: Sweep) -> None:
    """A queue gone quiet (consumers waiting, nothing published) when a workload that is not its consumer went to
    0: the work stopped at its source."""
    table = read.call("get_queue_stats") or {}
    quiet = [r for r in table.get("queues") or [] if r.get("consumers") and not r.get("messages")
             and not r.get("publish_rate")]
    if not (quiet and zero):
        return
    changes = {ref: at for ref in zero if (detail := read.call("get_deployment", namespace=ref[0], name=ref[1]))
               and not intentional_pause(detail) and (at := went_to_zero_at(detail, None))}
    for row in quiet[:5]:
        detail = read.call("get_queue_stats", queue=row["queue"], vhost=row["vhost"])
        producer = stopped_producer(detail, changes) if detail and changes else None
        if detail and producer:
            place = f"{row['queue']} (vhost {row['vhost']})"
            found.anomalies.append(Anomaly(
                f"producer_stopped:{queue_ref(row['vhost'], row['queue'])}", "producer_stopped",
                f"queue {place} has been idle since {detail['idle_since']} with {detail['consumers']} consumer(s) "
                f"waiting: {producer[0]}/{producer[1]}, upstream of it, went to 0 then",
                namespaces=tuple(dict.fromkeys([producer[0], *(ns for ns, _ in consumer_refs(detail))])),
                workloads=(producer[1],), queues=(row["queue"],), grace_s=CAPACITY_LOST_GRACE_S))


def still_rising(queue: dict[str, Any]) -> bool:
    """Its depth rose over the last 15 minutes and is still rising in the last few: not a burst already draining."""
    samples = queue.get("depth_samples") or []
    return ((queue.get("depth_trend") or {}).get("direction") == "rising" and len(samples) >= RECENT_SAMPLES
            and samples[-1] > samples[-RECENT_SAMPLES])


def _scaled_down(read: _Reader, namespace: str, name: str) -> bool:
    detail = read.call("get_deployment", namespace=namespace, name=name) or {}
    scaling = [str(e.get("message", "")).lower() for e in detail.get("events") or []
               if e.get("reason") == "ScalingReplicaSet"]
    return any("scaled down" in m for m in scaling) and not recent_rollout(detail) and not intentional_pause(detail)


def _no_consumer(read: _Reader, detail: dict[str, Any], place: str, last_consumers: list[tuple[str, str]],
                 zero: list[tuple[str, str]], found: Sweep) -> None:
    """The consumer that went away: one that consumed the queue before and is at 0 now, else a workload at 0
    named like the queue."""
    queue = detail["queue"]
    accumulating = bool(detail.get("publish_rate")) or (detail.get("depth_trend") or {}).get("direction") == "rising"
    owner = next((ref for ref in last_consumers if ref in zero), None) or missing_consumer(queue, [], zero)
    grace = 0
    if owner is not None:
        state = read.call("get_deployment", namespace=owner[0], name=owner[1]) or {}
        if intentional_pause(state) and not accumulating:
            found.quiet.append(f"{place}: its consumer {owner[0]}/{owner[1]} is paused on purpose and nothing "
                               "arrives")
            return
        if autoscaled_to_rest(state):
            grace = AUTOSCALER_GRACE_S
    what = "messages keep arriving" if accumulating else "messages are waiting"
    found.anomalies.append(Anomaly(
        f"no_consumer:{queue_ref(detail['vhost'], queue)}", "no_consumer",
        f"queue {place} has no consumer while {what} ({detail.get('messages')} held)"
        + (f"; {owner[0]}/{owner[1]} is at 0 replicas" if owner else ""),
        namespaces=(owner[0],) if owner else (), workloads=(owner[1],) if owner else (), queues=(queue,),
        grace_s=grace))


def _dependencies(read: _Reader, tables: dict[str, dict[str, Any]], found: Sweep) -> None:
    """Workloads whose callers' error and warning lines name them while they cannot serve (at 0, or fewer
    available than desired), hang (callers time out, they log nothing), or fail themselves (they log errors)."""
    rows = {(ns, row["name"]): row for ns, table in tables.items() for row in table.get("deployments") or []}
    for namespace in tables:
        logs = read.call("search_logs", query=f"kube_namespace:{namespace} status:(error OR warn)",
                         start=RECENT_ERRORS)
        if not logs or not logs.get("total"):
            continue
        callers_of: dict[tuple[str, str], list[str]] = {}
        for caller, blamed in blamed_dependencies(logs, namespace, rows).items():
            for ref in blamed:
                callers_of.setdefault(ref, []).append(caller)
        _errors_after_rollout(read, namespace, logs, {name for ns, name in rows if ns == namespace}, found)
        for (home, name), callers in sorted(callers_of.items()):
            row = rows[(home, name)]
            how = _failing(read, home, name, row, logs)
            if how:
                found.anomalies.append(Anomaly(
                    f"dependency_down:{home}/{name}", "dependency_down",
                    f"{home}/{name} {how}, and {', '.join(sorted(set(callers)))} log errors naming it",
                    namespaces=tuple(dict.fromkeys([home, namespace])), workloads=(name,)))


def _failing(read: _Reader, namespace: str, name: str, row: dict[str, Any], caller_logs: dict[str, Any]) -> str | None:
    if row.get("desired") == 0 or (row.get("available") or 0) < (row.get("desired") or 0):
        return f"has {row.get('available', 0)}/{row.get('desired', 0)} available"
    own = read.call("search_logs", query=workload_logs_query(namespace, name, row.get("kind", "Deployment")),
                    start=RECENT_ERRORS)
    if hung_dependency(own, caller_logs):
        return "is ready but answers nothing and logs nothing (hung)"
    if own is not None and logs_errors(own, name):
        return "logs errors itself"
    return None


def _errors_after_rollout(read: _Reader, namespace: str, logs: dict[str, Any], names: set[str],
                          found: Sweep) -> None:
    """A workload writing a burst of errors itself since a new revision of it took over: the rollout broke it."""
    for name, lines in sorted((logs.get("by_service") or {}).items()):
        if name not in names or lines < ERROR_BURST or not logs_errors(logs, name):
            continue
        detail = read.call("get_deployment", namespace=namespace, name=name) or {}
        if recent_rollout(detail):
            found.anomalies.append(Anomaly(
                f"errors_after_rollout:{namespace}/{name}", "errors_after_rollout",
                f"{namespace}/{name} logs {lines} error lines in 5 min since a new revision of it rolled out",
                namespaces=(namespace,), workloads=(name,)))
