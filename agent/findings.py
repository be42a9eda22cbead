"""Facts an experienced SRE reads off tool results, each defined once and naming the call it rests on.

These work on the typed results as the tools return them (dicts of their pydantic models): a consumer that is
attached but makes no progress; callers whose errors name a workload that cannot serve; how a workload that
cannot serve is failing, and what would bring it back.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agent.scope import _names, words
from agent.signals import MAINTENANCE
from tools.kubernetes.protocol import MOUNT_FAILURES, SPEC_BLOCKED

ERROR_STATUSES = ("error", "critical", "warn", "warning")
ERROR_BURST = 10  # error lines from one service in a window that make it a suspect


STUCK_UTILISATION = 0.9


def stuck_consumers(queue: dict[str, Any]) -> bool:
    """Some or all consumers attached but making no progress: they hold unacknowledged messages and either ack
    nothing while messages wait, or cannot take the waiting messages (consumer utilisation well below 100 % with
    a backlog ready). Restarting their pods releases the held messages; more replicas leave them held."""
    consumers, unacked, ready = queue.get("consumers") or 0, queue.get("unacked") or 0, queue.get("ready") or 0
    if not consumers or not unacked or gives_back_every_message(queue):  # churning, not holding
        return False
    utilisation = queue.get("consumer_utilisation")
    idle = not (queue.get("ack_rate") or 0) and (utilisation in (0, 0.0, None) or ready > 0)
    return idle or (ready > 0 and utilisation is not None and utilisation < STUCK_UTILISATION)


def unconsumed(queue: dict[str, Any]) -> bool:
    """A queue's get_queue_stats detail shows work nobody takes: no consumer while messages wait or arrive. A
    dead-letter queue is the exception: it has no consumer by design (whether it grows is what matters)."""
    return (not queue.get("consumers") and bool(queue.get("messages") or queue.get("publish_rate"))
            and not queue.get("dead_letters_from"))


def dead_letter_queues(rows: list[dict[str, Any]]) -> set[str]:
    """The queues of a get_queue_stats table that other queues dead-letter into (through the default exchange)."""
    return {str(row["dead_letters_to"]).removeprefix("queue ") for row in rows
            if str(row.get("dead_letters_to") or "").startswith("queue ")}


def gives_back_every_message(queue: dict[str, Any]) -> bool:
    """Consumers attached and receiving, acking nothing, and the broker redelivering what they give back: they fail
    every message (a poison message, a broken dependency, a bad release). Restarts and more replicas change nothing
    until the cause in their own error lines is fixed."""
    return (bool(queue.get("consumers")) and (queue.get("deliver_rate") or 0) > 0 and not queue.get("ack_rate")
            and (queue.get("redeliver_rate") or 0) > 0)


TIMEOUT = re.compile(r"deadline exceeded|timed? ?out|timeout|504", re.IGNORECASE)


def hung_dependency(own_logs: dict[str, Any] | None, caller_logs: dict[str, Any]) -> Failure | None:
    """Callers time out against a workload that reports ready but logs nothing any more: its pods accept
    connections and never answer. New pods end a hang; more of the same do not."""
    timing_out = any(TIMEOUT.search(str(line.get("message", ""))) for line in caller_logs.get("samples") or [])
    silent = own_logs is not None and own_logs.get("total") == 0 and bool(
        ((own_logs.get("previous_window") or {}).get("total") or 0) > 0 or own_logs.get("last_line_at"))
    if timing_out and silent:
        return Failure("dependency_unavailable", "rollout_restart",
                       "its pods are ready but answer nothing (callers time out) and log nothing: hung")
    return None


def replicas_before_zero(desired_metric: dict[str, Any]) -> int | None:
    """The desired replica count before the latest drop to 0, from a kubernetes_state replicas_desired series
    (structured history, not event text)."""
    for series in desired_metric.get("series") or []:
        values = [v for v in series.get("values") or [] if v is not None]
        while values and values[-1] == 0:
            values.pop()
        level: list[float] = []  # the last stretch above 0; a rolled-up bucket may average the drop into it
        while values and values[-1] > 0:
            level.append(values.pop())
        if level:
            return round(max(level))
    return None


def mentioned_workloads(log_result: dict[str, Any], names: list[str]) -> list[str]:
    """Workload names that the error/warning lines of a search_logs result mention (e.g. a refused address)."""
    text = " ".join(str(line.get("message", "")) for line in log_result.get("samples") or []
                    if str(line.get("status", "")).lower() in ERROR_STATUSES)
    found = []
    for name in sorted(names, key=len, reverse=True):
        if _addressed(name, text) and name not in found:
            found.append(name)
    return found


def _addressed(name: str, text: str) -> bool:
    """`name` appears as an address or a peer, not as an ordinary word: `name.ns:8080`, `name:6379`,
    `upstream=name`, `http://name/`, `"name"`; a name no sentence uses as a word (`fare-service`, `db2`) anywhere
    as a whole token."""
    quoted = re.escape(name)
    if re.search(r"[-_0-9]", name) and re.search(rf"(?<![\w/.-]){quoted}(?![\w-])(?!/)", text):
        return True
    return bool(re.search(rf"(?<![\w/-]){quoted}(?=[.:])(?![.:]\s)|(?:(?<=[=@\"'])|(?<=//)){quoted}(?![\w-])",
                          text))


def workload_aliases(tables: Iterable[dict[str, Any]]) -> dict[tuple[str, str], str]:
    """(namespace, app label) -> workload name, from get_deployment tables: services and their addresses often
    carry a workload's app label (`app: rating-engine` on Deployment `svc-rating`) rather than its name."""
    return {(str(table.get("namespace")), str(row["app"])): str(row["name"]) for table in tables
            for row in table.get("deployments") or [] if row.get("app")}


def addressed_workloads(log_result: dict[str, Any], caller_namespace: str, workloads: Iterable[tuple[str, str]],
                        namespaces: Iterable[str] = (), aliases: dict[tuple[str, str], str] | None = None
                        ) -> list[tuple[str, str]]:
    """(namespace, name) of the workloads that the error/warning lines of callers in `caller_namespace` address,
    by name or by app label (`aliases`). A name that several namespaces hold is the one its address gives
    (`name.ns.svc`, `name.ns:8080`), else the callers' own, else none: a guess across namespaces would blame a
    stranger. A cluster address of a service in one of `namespaces` (`name.ns.svc…`) names it even before that
    namespace's workloads are listed."""
    aliases = aliases or {}
    found = _addressed_names(log_result, caller_namespace, [*workloads, *aliases], namespaces)
    return list(dict.fromkeys((ns, aliases.get((ns, name), name)) for ns, name in found))


def _addressed_names(log_result: dict[str, Any], caller_namespace: str, workloads: list[tuple[str, str]],
                     namespaces: Iterable[str]) -> list[tuple[str, str]]:
    owners: dict[str, list[str]] = {}
    for namespace, name in workloads:
        owners.setdefault(name, []).append(namespace)
    text = " ".join(str(line.get("message", "")) for line in log_result.get("samples") or []
                    if str(line.get("status", "")).lower() in ERROR_STATUSES)
    found = list(dict.fromkeys((ns, name) for ns in namespaces if ns != caller_namespace for name in re.findall(
        rf"(?<![\w.-])([a-z0-9](?:[a-z0-9-]*[a-z0-9])?)\.{re.escape(ns)}\.svc\b", text)
        if ns not in owners.get(name, [])))
    for name in mentioned_workloads(log_result, sorted(owners)):
        spaces = owners[name]
        given = [ns for ns in spaces if re.search(rf"(?<![\w-]){re.escape(name)}\.{re.escape(ns)}(?![\w-])", text)]
        home = given[0] if given else caller_namespace if caller_namespace in spaces else \
            spaces[0] if len(spaces) == 1 else None
        if home is not None:
            found.append((home, name))
    return found


def blamed_dependencies(log_result: dict[str, Any], caller_namespace: str, workloads: Iterable[tuple[str, str]],
                        aliases: dict[tuple[str, str], str] | None = None) -> dict[str, list[tuple[str, str]]]:
    """Each workload of `caller_namespace` whose own error/warning lines in a search_logs result address another
    workload, and those workloads: a caller reporting what failed it (a refused address, an upstream's 500, a
    timeout), in its namespace or another. A line's service is its workload's name or app label (`aliases`)."""
    refs = list(workloads)
    aliases = aliases or {}
    blamed: dict[str, list[tuple[str, str]]] = {}
    for line in log_result.get("samples") or []:
        service = str(line.get("service") or "")
        service = aliases.get((caller_namespace, service), service)
        if str(line.get("status", "")).lower() not in ERROR_STATUSES:
            continue
        others = [ref for ref in refs if ref != (caller_namespace, service)]
        others_aliases = {key: name for key, name in aliases.items() if (key[0], name) != (caller_namespace, service)}
        for ref in addressed_workloads({"samples": [line]}, caller_namespace, others, aliases=others_aliases):
            if ref not in blamed.setdefault(service, []):
                blamed[service].append(ref)
    return blamed


def logs_errors(log_result: dict[str, Any], name: str) -> bool:
    """Whether `name` itself writes error lines in a search_logs result: an error line of its among the samples,
    or, when the samples show none of its lines, a burst of lines from it while the result holds errors."""
    own = [line for line in log_result.get("samples") or [] if str(line.get("service")) == name]
    if own:
        return any(str(line.get("status", "")).lower() in ("error", "critical") for line in own)
    lines = (log_result.get("by_service") or {}).get(name) or 0
    return lines >= ERROR_BURST and bool((log_result.get("by_status") or {}).get("error"))


Ref = tuple[str, str]  # (namespace, workload name)


def failing_upstream(caller: Ref, error_logs: list[dict[str, Any]], states: dict[Ref, dict[str, Any]],
                     own_logs: dict[Ref, dict[str, Any]] | None = None,
                     aliases: dict[Ref, str] | None = None) -> Ref | None:
    """The workload `caller`'s own errors blame, when that workload is failing itself (it logs errors, cannot
    serve, is at 0, or hangs: callers time out while it logs nothing): the caller's errors are its symptom, not a
    cause of their own. `error_logs` are the caller's namespace's error searches, `states` the workloads known
    (detail or table row) in any namespace, `own_logs` the searches of a workload's own lines."""
    for logs in error_logs:
        for dependency in blamed_dependencies(logs, caller[0], states, aliases).get(caller[1], []):
            state = states.get(dependency) or {}
            failing = state.get("desired") == 0 or ("pods" in state and serving_failure(state) is not None)
            hung = hung_dependency((own_logs or {}).get(dependency), logs) is not None
            if failing or hung or logs_errors(logs, dependency[1]):
                return dependency
    return None


def missing_consumer(queue: str, consumers: list[tuple[str, str]],
                     zero_workloads: list[tuple[str, str]]) -> tuple[str, str] | None:
    """A workload at 0 replicas named like a backlogged queue and not among its consumers: the consumer that went
    away. What the rest of the consumers cannot keep up with is its share; restore it before adding others. A
    copy of an attached consumer (the same name in another namespace: another environment's) is not missing here."""
    attached = {name for _, name in consumers}
    for ref in zero_workloads:
        if ref not in consumers and ref[1] not in attached and _names(set(words(queue)), ref[1]):
            return ref
    return None


@dataclass(frozen=True)
class Failure:
    """How a workload is failing to serve, from its get_deployment detail."""

    category: str
    action: str  # scale | rollback | rollout_restart | none
    why: str


def serving_failure(detail: dict[str, Any], *, consumes_queue: bool = False) -> Failure | None:
    """None when the workload serves (all desired replicas available and ready)."""
    pods = detail.get("pods") or []
    waiting = sorted({p.get("waiting_reason") for p in pods if p.get("waiting_reason")})
    terminated = {p.get("last_termination_reason") for p in pods if p.get("last_termination_reason")}
    unready = [p for p in pods if p.get("phase") == "Running" and not p.get("ready") and not p.get("waiting_reason")]
    rolled_out = revision(detail) > 1
    if detail.get("desired") == 0:
        return Failure("consumer_unavailable" if consumes_queue else "dependency_unavailable", "scale",
                       "scaled to 0: nothing serves")
    if blocked := spec_blocked(detail):  # after a rollout the release is wrong; else what it names went away
        return Failure("config_change", "rollback" if rolled_out else "none", blocked)
    if "CrashLoopBackOff" in waiting:  # a workload that cannot stay up: after a rollout, a release that cannot start
        category = "resource_exhaustion" if "OOMKilled" in terminated else (
            "consumer_crashlooping" if consumes_queue else "config_change" if rolled_out else "dependency_unavailable")
        return Failure(category, "rollback" if rolled_out else "none",
                       f"pods crash-loop (last terminated: {', '.join(sorted(t for t in terminated if t)) or '?'})")
    if unschedulable := unschedulable_reason(detail):  # asks for more than any node has free
        if rolled_out:
            return Failure("config_change", "rollback", f"its new pods cannot be scheduled: {unschedulable}")
        return Failure("resource_exhaustion", "none", f"its pods cannot be scheduled: {unschedulable}")
    if unready:
        return Failure("config_change" if rolled_out else "dependency_unavailable",
                       "rollback" if rolled_out else "none", f"{len(unready)} pod(s) run but fail readiness")
    if rollout_stalled(detail):  # same template again (restart) or more of it (scale) stalls the same way
        why = "its new pods never became available: the rollout passed its progress deadline"
        if rolled_out:
            return Failure("config_change", "rollback", why + " since the latest rollout")
        return Failure("consumer_unavailable" if consumes_queue else "dependency_unavailable", "none", why)
    if (detail.get("available") or 0) < (detail.get("desired") or 0):
        return Failure("consumer_unavailable" if consumes_queue else "dependency_unavailable", "none",
                       "replicas unavailable")
    return None


def spec_blocked(detail: dict[str, Any]) -> str | None:
    """Why the pods' containers cannot even be created, with the kubelet's words, or None."""
    waiting = sorted({p.get("waiting_reason") or "" for p in detail.get("pods") or []} & set(SPEC_BLOCKED))
    mounts = [e for e in detail.get("events") or [] if e.get("reason") in MOUNT_FAILURES]
    failed = [e for e in detail.get("events") or [] if e.get("type") == "Warning" and e.get("reason") == "Failed"]
    if waiting:
        said = f": {str(failed[-1].get('message', ''))[:160]}" if failed else ""
        return f"{SPEC_BLOCKED[waiting[0]]} ({waiting[0]}){said}"
    if mounts and any(p.get("waiting_reason") == "ContainerCreating" for p in detail.get("pods") or []):
        return f"its pods cannot mount a volume (ContainerCreating): {str(mounts[-1].get('message', ''))[:160]}"
    return None


def unschedulable_reason(detail: dict[str, Any]) -> str | None:
    """The scheduler's latest word on why pods of a workload missing replicas stay Pending (FailedScheduling)."""
    if (detail.get("available") or 0) >= (detail.get("desired") or 0):
        return None
    if not any(p.get("phase") == "Pending" for p in detail.get("pods") or []):
        return None
    failed = [e for e in detail.get("events") or [] if e.get("reason") == "FailedScheduling"]
    return str(failed[-1].get("message", ""))[:160] if failed else None


def rollout_stalled(detail: dict[str, Any]) -> bool:
    """Replicas are missing and Kubernetes says the rollout stopped making progress (Progressing=False,
    ProgressDeadlineExceeded: its new pods did not become available within the deadline, e.g. Pending on an
    init container or unschedulable). Pending pods alone are not enough: every rollout starts with them."""
    if (detail.get("available") or 0) >= (detail.get("desired") or 0):
        return False
    return any(c.get("type") == "Progressing" and c.get("status") == "False"
               and c.get("reason") == "ProgressDeadlineExceeded" for c in detail.get("conditions") or [])


def revision(detail: dict[str, Any]) -> int:
    """The workload's template revision (1 when unknown): more than 1 means a rollout it can be rolled back from."""
    if isinstance(detail.get("revision"), int):
        return int(detail["revision"])
    raw = (detail.get("annotations") or {}).get("deployment.kubernetes.io/revision", "1")
    return int(raw) if str(raw).isdigit() else 1


def intentional_pause(detail: dict[str, Any]) -> bool:
    """Scaled down on purpose and said so: an annotation or an event of the workload names a pause."""
    notes = [f"{k} {v}" for k, v in (detail.get("annotations") or {}).items()]
    notes += [f"{e.get('reason')} {e.get('message')}" for e in detail.get("events") or []]
    return any(MAINTENANCE.search(note) for note in notes)


def recently_scaled(state: dict[str, Any]) -> bool:
    """Its ReplicaSets were scaled within the deployment's recent events (the last hour)."""
    return any(e.get("reason") == "ScalingReplicaSet" for e in state.get("events") or [])


STATEFUL_POD_EVENT = re.compile(r"^(create|delete) Pod (\S+) in StatefulSet \S+ successful$")


def recent_rollout(state: dict[str, Any]) -> bool:
    """A new template took over within the workload's recent events (a rollout, not a resize). A Deployment: a
    replica set was scaled up and another down, or the one scaled is not the one the current pods belong to. A
    StatefulSet: one of its pods was deleted and created again (scaling only adds or removes the highest ones)."""
    if state.get("kind") == "StatefulSet":
        verbs: dict[str, set[str]] = {}
        for event in state.get("events") or []:
            if found := STATEFUL_POD_EVENT.match(str(event.get("message", ""))):
                verbs.setdefault(found[2], set()).add(found[1])
        return revision(state) > 1 and any(seen == {"create", "delete"} for seen in verbs.values())
    scaling = [str(e.get("message", "")) for e in state.get("events") or [] if e.get("reason") == "ScalingReplicaSet"]
    if any("scaled up" in m.lower() for m in scaling) and any("scaled down" in m.lower() for m in scaling):
        return True
    current = {str(p.get("name", "")).rsplit("-", 1)[0] for p in state.get("pods") or []}
    scaled = {m.split("replica set ", 1)[1].split(" ")[0] for m in scaling if "replica set " in m}
    return bool(current and scaled - current)


def autoscaled_to_rest(detail: dict[str, Any]) -> bool:
    """Its replica count is owned by an autoscaler and sits at the autoscaler's minimum: an intended level."""
    scaler = detail.get("autoscaler") or {}
    return bool(scaler) and detail.get("desired") == scaler.get("min_replicas")


def restore_replicas(detail: dict[str, Any], desired_history: dict[str, Any] | None) -> int:
    """How many replicas bring a workload back from 0: the level before the drop in its replica history
    (metrics), else the count its latest scaling event names, and never below its autoscaler's minimum. The
    history comes first because event text can be forged; metrics are written by the cluster's own agent."""
    from agent.sizing import previous_replicas

    before = replicas_before_zero(desired_history) if desired_history else None
    before = before or previous_replicas((detail.get("last_scaled") or {}).get("message", "")) or 1
    return max(1, before, (detail.get("autoscaler") or {}).get("min_replicas") or 1)


KUBE_STATE_METRICS = {"Deployment": ("deployment", "kube_deployment", "replicas_available"),
                      "StatefulSet": ("statefulset", "kube_stateful_set", "replicas_ready")}
"""Datadog's kube-state-metrics family, name tag and serving-replicas metric for each workload kind."""


def desired_history_query(namespace: str, name: str, kind: str = "Deployment") -> str:
    """The metric query for a workload's desired-replica history (kube-state-metrics through Datadog)."""
    family, tag, _ = KUBE_STATE_METRICS.get(kind, KUBE_STATE_METRICS["Deployment"])
    return f"max:kubernetes_state.{family}.replicas_desired{{kube_namespace:{namespace},{tag}:{name}}}"


def workload_errors_query(namespace: str, name: str, kind: str = "Deployment") -> str:
    """The log query for a workload's own error and warning lines: what it says failed it, one hop further down
    a call chain than its callers' lines."""
    return f"{workload_logs_query(namespace, name, kind)} status:(error OR warn)"


def workload_logs_query(namespace: str, name: str, kind: str = "Deployment") -> str:
    """The log query for a workload's own lines: by the owner tag the Datadog agent puts on its pods' logs
    (`kube_deployment`, `kube_stateful_set`), which holds whatever its `service` tag is called."""
    _, tag, _ = KUBE_STATE_METRICS.get(kind, KUBE_STATE_METRICS["Deployment"])
    return f"kube_namespace:{namespace} {tag}:{name}"


def serving_replicas_query(namespace: str, name: str, kind: str = "Deployment") -> str:
    """The metric query for how many of a workload's replicas serve (available; ready for a StatefulSet)."""
    family, tag, serving = KUBE_STATE_METRICS.get(kind, KUBE_STATE_METRICS["Deployment"])
    return f"avg:kubernetes_state.{family}.{serving}{{kube_namespace:{namespace},{tag}:{name}}}"


def broker_alarms(queue_results: list[dict[str, Any]]) -> list[str]:
    """Resource alarms the broker reported in any get_queue_stats result: while set, every publisher is blocked."""
    return sorted({alarm for result in queue_results for alarm in result.get("alarms") or []})
