"""What the calls discovered: the inventory of namespaces, deployments and queues in scope, the calls code makes
before and between the model's choices, the suspects worth a closer look, and the core signals still unchecked."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from agent.findings import (
    ERROR_BURST,
    addressed_workloads,
    broker_alarms,
    desired_history_query,
    stuck_consumers,
    workload_aliases,
    workload_errors_query,
    workload_logs_query,
)
from agent.guided.steps import _taken
from agent.scope import EVERYTHING, Scope, investigation_order, pre_production
from agent.signals import (
    CORE_SIGNALS,
    Observation,
    checked_signals,
    consumer_refs,
)

ERROR_QUERY = "kube_namespace:{namespace} status:(error OR warn)"
CALLERS_ERRORS = re.compile(r"kube_namespace:(\S+) (?:kube_\w+:\S+ )?status:")  # a namespace's, or one workload's
PRODUCER_QUERY = "kube_namespace:{namespace} (queue OR publish* OR enqueue*)"
MAX_SUSPECTS = 3
LONG_HISTORY = "now-24h"


@dataclass
class Inventory:
    namespaces: list[str] = field(default_factory=list)
    deployments: list[str] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)

    def deployment_refs(self) -> list[tuple[str, str]]:
        return [(ref.split("/", 1)[0], ref.split("/", 1)[1]) for ref in self.deployments]

    @classmethod
    def of(cls, observations: list[Observation], scope: Scope = EVERYTHING) -> Inventory:
        """What the calls discovered, limited to the question's scope."""
        inventory = cls._of(observations)
        inventory.namespaces = [ns for ns in inventory.namespaces if scope.covers(ns)]
        rows = [row for o in observations if o.ok for row in o.data.get("namespaces", [])]
        ordered = investigation_order(rows, scope)
        inventory.namespaces.sort(key=lambda ns: ordered.index(ns) if ns in ordered else len(ordered))
        for name in ("deployments", "flagged"):
            setattr(inventory, name, [ref for ref in getattr(inventory, name)
                                      if scope.covers_workload(*ref.split("/", 1))])
        return inventory

    @classmethod
    def _of(cls, observations: list[Observation]) -> Inventory:
        inventory = cls()
        for obs in observations:
            if not obs.ok:
                continue
            data = obs.data
            for row in data.get("namespaces", []):
                _add(inventory.namespaces, row.get("namespace"))
                for flagged in row.get("attention", []):
                    _add(inventory.deployments, f"{row.get('namespace')}/{flagged.split(' ')[0]}")
                    _add(inventory.flagged, f"{row.get('namespace')}/{flagged.split(' ')[0]}")
            for namespace, name in consumer_refs(data):
                _add(inventory.deployments, f"{namespace}/{name}")
            if "deployments" in data:
                for row in data["deployments"]:
                    _add(inventory.deployments, f"{data['namespace']}/{row['name']}")
            elif obs.tool == "get_deployment" and "name" in data:
                _add(inventory.deployments, f"{data['namespace']}/{data['name']}")
            for row in data.get("queues", []):
                _add(inventory.queues, row.get("queue"))
            if obs.tool == "get_queue_stats" and "queue" in data:
                _add(inventory.queues, data["queue"])
        return inventory


def _add(items: list[str], value: Any) -> None:
    if isinstance(value, str) and value and value not in items:
        items.append(value)


def discovery_calls(observations: list[Observation],
                    scope: Scope = EVERYTHING) -> list[tuple[str, dict[str, Any]]]:
    """What the runtime looks at before and between the model's choices: the inventory (namespaces, queues,
    deployment tables of the question's scope), then the leads any on-call engineer follows first."""
    made = [(o.tool, o.args) for o in observations]
    if not any(tool == "list_namespaces" for tool, _ in made):
        return [("list_namespaces", {}), ("get_queue_stats", {})]
    inventory = Inventory.of(observations, scope)
    listed = {args.get("namespace") for tool, args in made if tool == "get_deployment" and not args.get("name")}
    wanted = inventory.namespaces[:3]
    if _broker_in_trouble(observations):  # the broker is shared: find where it runs, whatever the question names
        wanted += [ns for ns in Inventory.of(observations).namespaces if ns not in wanted][:3]
    tables = [("get_deployment", {"namespace": ns}) for ns in wanted if ns not in listed]
    return tables or lead_calls(observations, scope)


def _broker_in_trouble(observations: list[Observation]) -> bool:
    queue_calls = [o for o in observations if o.tool == "get_queue_stats"]
    alarms = broker_alarms([o.data for o in queue_calls if o.ok])
    return bool(alarms) or (bool(queue_calls) and not any(o.ok for o in queue_calls))


def _broker_answered(observations: list[Observation]) -> bool:
    """The broker listed its queues: when it lists none, nothing publishes to it and no log says otherwise."""
    return any(o.ok and o.tool == "get_queue_stats" and "queues" in o.data for o in observations)


def _done(tool: str, args: dict[str, Any], observations: list[Observation]) -> bool:
    return any(o.tool == tool and all(o.args.get(k) == v for k, v in args.items()) for o in observations)


def _queue_args(row: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """A queue's get_queue_stats arguments: with its vhost when another vhost holds a queue of that name."""
    shared = len({r.get("vhost") for r in rows if r["queue"] == row["queue"]}) > 1
    return {"queue": row["queue"], "vhost": row.get("vhost")} if shared else {"queue": row["queue"]}


def _upstream(observations: list[Observation], states: dict[tuple[str, str], dict[str, Any]]
              ) -> list[tuple[str, str]]:
    """A queue went quiet and no change seen explains it: the other workloads of its consumers' namespaces, whose
    recent rollout or scale-down would."""
    from agent.producers import quiet_since, rolled_out_at, stopped_producer, went_to_zero_at

    changes = {ref: at for ref, state in states.items() if (at := went_to_zero_at(state, None) or rolled_out_at(state))}
    found: list[tuple[str, str]] = []
    for obs in observations:
        if not (obs.ok and obs.tool == "get_queue_stats" and quiet_since(obs.data)) or stopped_producer(obs.data,
                                                                                                       changes):
            continue
        consumers = consumer_refs(obs.data)
        found += [ref for ref, state in states.items() if ref[0] in {ns for ns, _ in consumers}
                  and ref not in consumers and "pods" not in state and ref not in found]
    return found[:3]


def _queue_rows(observations: list[Observation]) -> list[dict[str, Any]]:
    for obs in observations:
        if obs.ok and obs.tool == "get_queue_stats" and "queues" in obs.data:
            return list(obs.data["queues"])
    return []


def suspects(observations: list[Observation], scope: Scope = EVERYTHING) -> list[str]:
    """Deployments worth a closer look, most telling first: below desired, consuming a queue that is not keeping
    up, named by callers' errors, or logging errors."""
    inventory = Inventory.of(observations, scope)
    found: list[str] = [ref for ref in inventory.flagged if not pre_production(ref.split("/", 1)[0])]
    for obs in observations:
        if not obs.ok:
            continue
        if obs.tool == "get_queue_stats" and "queue" in obs.data and (_backlogged(obs.data)
                                                                      or stuck_consumers(obs.data)):
            for namespace, name in consumer_refs(obs.data):
                if scope.covers(namespace):
                    _add(found, f"{namespace}/{name}")
    for ref in called_and_failing(observations, scope):
        _add(found, ref)
    for obs in observations:
        scoped = re.match(r"kube_namespace:(\S+) status:", str(obs.args.get("query", "")))
        if obs.ok and obs.tool == "search_logs" and scoped:
            noisy = sorted((n, s) for s, n in (obs.data.get("by_service") or {}).items() if n >= ERROR_BURST)
            for _, service in reversed(noisy):
                ref = f"{scoped.group(1)}/{service}"
                if ref in inventory.deployments:
                    _add(found, ref)
    for ref in inventory.flagged:  # a test environment below desired: after what production shows
        _add(found, ref)
    return found


def _backlogged(queue: dict[str, Any]) -> bool:
    trend = queue.get("depth_trend") or {}
    if queue.get("dead_letters_from"):  # a dead-letter queue: only its growth says something
        return trend.get("direction") == "rising"
    return bool(queue.get("messages")) and (not queue.get("consumers") or trend.get("direction") == "rising")


def lead_calls(observations: list[Observation], scope: Scope = EVERYTHING) -> list[tuple[str, dict[str, Any]]]:
    """The first looks after the inventory, made by code: error and publishing logs per namespace, the stats of
    every queue holding messages or lacking consumers, and the detail of the suspect deployments."""
    inventory = Inventory.of(observations, scope)
    leads: list[tuple[str, dict[str, Any]]] = []
    rows = sorted(_queue_rows(observations), key=lambda r: (-(r.get("messages") or 0), r["queue"]))
    queries = (ERROR_QUERY, PRODUCER_QUERY) if rows or not _broker_answered(observations) else (ERROR_QUERY,)
    for namespace in inventory.namespaces[:2]:
        leads += [("search_logs", {"query": query.format(namespace=namespace), "start": "now-15m"})
                  for query in queries]
    leads += [("get_queue_stats", _queue_args(r, rows)) for r in rows
              if r.get("messages") or not r.get("consumers")][:2]
    from agent.validator import known_deployments  # the validator owns what a deployment's state is

    states = known_deployments(observations)
    stalled = any(r.get("messages") and not r.get("consumers") for r in rows)
    if stalled or any(state.get("desired") == 0 for state in states.values()):  # a changed producer's queue is quiet
        leads += [("get_queue_stats", _queue_args(r, rows)) for r in rows
                  if r.get("consumers") and not r.get("messages") and not r.get("publish_rate")][:2]
        leads += [("get_deployment", {"namespace": ns, "name": name}) for ns, name in _upstream(observations, states)]
    for ref in suspects(observations, scope)[:MAX_SUSPECTS]:
        namespace, name = ref.split("/", 1)
        leads.append(("get_deployment", {"namespace": namespace, "name": name}))
        state = states.get((namespace, name)) or {}
        if state.get("desired") == 0 and "name" in state:
            # sized from the replica history, which event text cannot forge
            history = desired_history_query(namespace, name, state.get("kind", "Deployment"))
            leads.append(("get_metric", {"query": history, "start": "now-24h"}))
            leads.append(("search_logs", {"query": workload_logs_query(namespace, name, state.get("kind",
                                                                                                 "Deployment")),
                                          "start": "now-5m"}))
            if "events" in state and not state.get("last_scaled"):  # the API keeps about an hour; the history more
                leads.append(("list_events", {"namespace": namespace, "since": LONG_HISTORY, "involved_object": name}))
    for ref in [r for r in scope.named if "/" in r and "/queue " not in r][:2]:  # what the question names
        namespace, name = ref.split("/", 1)
        leads.append(("get_deployment", {"namespace": namespace, "name": name}))
    for ref in called_and_failing(observations, scope)[:2]:
        namespace, name = ref.split("/", 1)  # a dependency that answers nothing also logs nothing
        state = states.get((namespace, name)) or {}
        kind = state.get("kind", "Deployment")
        leads.append(("get_deployment", {"namespace": namespace, "name": name}))
        leads.append(("search_logs", {"query": workload_logs_query(namespace, name, kind), "start": "now-5m"}))
        if state.get("available"):  # it answers: what do its own errors say failed it, one hop further down?
            leads.append(("search_logs", {"query": workload_errors_query(namespace, name, kind), "start": "now-15m"}))
        if state.get("desired") == 0:  # sized from its replica history
            leads.append(("get_metric", {"query": desired_history_query(namespace, name, kind), "start": "now-24h"}))
    return [(tool, args) for tool, args in leads if not _done(tool, args, observations)]


def inspected(observations: list[Observation]) -> list[str]:
    return [f"{o.args['namespace']}/{o.args['name']}" for o in observations
            if o.ok and o.tool == "get_deployment" and o.args.get("name")]


def unchecked(observations: list[Observation]) -> list[str]:
    """Core signals not yet checked, where a deployment's own logs count only when searched by its name (a
    namespace-wide error search cannot show that a consumer went quiet)."""
    missing = [s for s in CORE_SIGNALS if s not in checked_signals(observations)]
    logs_read = {subject for choice, subject in _taken(observations) if choice == "search_logs"}
    looked_at = set(inspected(observations))
    if "consumer_logs" not in missing and looked_at and not logs_read & looked_at:
        missing.insert(0, "consumer_logs")
    # A source that fails every call cannot be checked further; its failure is the finding.
    unreachable = {s for tool, signals in UNREACHABLE_SIGNALS.items() if _unreachable(observations, tool)
                   for s in signals}
    return [s for s in missing if s not in unreachable]


UNREACHABLE_SIGNALS = {"get_queue_stats": ("queue_consumers", "queue_depth"), "search_logs": ("consumer_logs",)}


def _unreachable(observations: list[Observation], tool: str) -> bool:
    calls = [o for o in observations if o.tool == tool]
    return bool(calls) and not any(o.ok for o in calls)


def called_and_failing(observations: list[Observation], scope: Scope = EVERYTHING) -> list[str]:
    """Workloads in scope that callers' error lines name (a refused address, a timeout against them)."""
    inventory = Inventory.of(observations, scope)
    known = Inventory.of(observations).namespaces
    found: list[str] = []
    for obs in observations:
        scoped = CALLERS_ERRORS.match(str(obs.args.get("query", "")))
        if obs.ok and obs.tool == "search_logs" and scoped and scope.covers(scoped.group(1)):
            refs = [(ref.split("/", 1)[0], ref.split("/", 1)[1]) for ref in inventory.deployments]
            for namespace, name in addressed_workloads(obs.data, scoped.group(1), refs, known,
                                                       observed_aliases(observations)):
                if scope.covers(namespace):
                    _add(found, f"{namespace}/{name}")
    return found


def observed_aliases(observations: list[Observation]) -> dict[tuple[str, str], str]:
    """(namespace, app label) -> workload name, from the deployment tables read so far."""
    return workload_aliases(o.data for o in observations if o.ok and o.tool == "get_deployment"
                            and "deployments" in o.data)


def stuck_refs(observations: list[Observation]) -> set[tuple[str, str]]:
    return {ref for o in observations if o.ok and o.tool == "get_queue_stats" and "queue" in o.data
            and stuck_consumers(o.data) for ref in consumer_refs(o.data)}
