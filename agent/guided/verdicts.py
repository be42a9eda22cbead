"""The guided verdict: the categories and actions consistent with what the tools showed, the constrained schema
built from them, and the expansion of a compact choice into a full draft with evidence and sizing done by code."""

from __future__ import annotations

import json
import re
from typing import Any

from agent.coverage import unread_sources
from agent.findings import (
    autoscaled_to_rest,
    broker_alarms,
    dead_letter_queues,
    desired_history_query,
    failing_upstream,
    gives_back_every_message,
    hung_dependency,
    intentional_pause,
    logs_errors,
    missing_consumer,
    recent_rollout,
    recently_scaled,
    restore_replicas,
    revision,
    rollout_stalled,
    serving_failure,
    spec_blocked,
    unschedulable_reason,
    workload_errors_query,
    workload_logs_query,
)
from agent.guided.inventory import Inventory, _backlogged, called_and_failing, observed_aliases, stuck_refs
from agent.guided.steps import _enum
from agent.guided.trouble import standing_trouble
from agent.producers import rolled_out_at, stopped_producer, went_to_zero_at
from agent.scope import EVERYTHING, Scope
from agent.signals import (
    BROKER,
    Observation,
    checked_signals,
    consumer_refs,
)
from agent.sizing import replicas_to_keep_up
from tools.kubernetes.tools import APP_LABELS

ALL_ACTIONS = ["scale", "rollout_restart", "rollback", "none"]


def observed_symptoms(observations: list[Observation]) -> set[str]:
    """System-wide symptoms the tools showed: a queue growing despite consumers, consumers failing every message,
    error logs, a queue gone quiet when a workload upstream of it went to 0 (`stopped_producer`) or rolled out
    (`producer_changed`)."""
    from agent.validator import known_deployments

    found = set()
    states = known_deployments(observations)
    changes = {ref: at for ref, state in states.items() if not intentional_pause(state)
               and (at := went_to_zero_at(state, _history(observations, *ref, state.get("kind", "Deployment")))
                    or rolled_out_at(state))}
    for obs in observations:
        if not obs.ok:
            continue
        trend = obs.data.get("depth_trend") or {}
        refs = consumer_refs(obs.data) if obs.tool == "get_queue_stats" else []
        found |= {f"consumes:{ns}/{name}" for ns, name in refs}
        if obs.tool == "get_queue_stats" and gives_back_every_message(obs.data):
            found |= {f"app_errors:{ns}/{name}" for ns, name in refs}
        elif obs.tool == "get_queue_stats" and obs.data.get("consumers") and trend.get("direction") == "rising":
            found |= {f"consumer_too_slow:{ns}/{name}" for ns, name in refs}
        searched = re.match(r"kube_namespace:(\S+)", str(obs.args.get("query", ""))) if obs.tool == "search_logs" \
            else None
        if searched:  # each line's namespace is the one searched: a name in two namespaces is two workloads
            found |= {f"app_errors:{searched.group(1)}/{service}" for service in obs.data.get("by_service") or {}
                      if logs_errors(obs.data, service)}
        if obs.tool == "get_queue_stats" and "queue" in obs.data and _backlogged(obs.data):
            found |= {"backlog"} if obs.data.get("consumers") else {"backlog", "starved"}
        if obs.tool == "get_queue_stats" and (producer := stopped_producer(obs.data, changes)):
            gone = states[producer].get("desired") == 0
            found.add(f"{'stopped_producer' if gone else 'producer_changed'}:{producer[0]}/{producer[1]}")
        rows = obs.data.get("queues") or ([obs.data] if "queue" in obs.data else [])
        if obs.tool == "get_queue_stats" and any(not row.get("consumers") and row.get("queue") not in
                                                 dead_letter_queues(rows) for row in rows):
            found.add("orphaned_queue")
    return found


def _history(observations: list[Observation], namespace: str, name: str, kind: str) -> dict[str, Any] | None:
    query = desired_history_query(namespace, name, kind)
    return next((o.data for o in observations if o.ok and o.tool == "get_metric" and o.args.get("query") == query),
                None)


def consistent_options(state: dict[str, Any] | None,
                       symptoms: set[str] | None = None) -> tuple[list[str], list[str]]:
    """Root-cause categories and actions that agree with what the tools showed about a deployment. A crash-looping
    deployment cannot be 'scaled to 0', and scaling it up cannot fix it; a deployment at 0 is not crash-looping;
    a fully available deployment is at fault only through a symptom the tools showed (a growing queue, errors)."""
    from agent.verdict import Category

    every = [c for c in Category.__args__ if c != "planned_maintenance"]  # type: ignore[attr-defined]
    if not state:
        return every, ALL_ACTIONS
    waiting = {p.get("waiting_reason") for p in state.get("pods", []) if p.get("waiting_reason")}
    bare = {state.get("name"), *[(state.get("labels") or {}).get(key) for key in ("name", *APP_LABELS)]} - {None}
    names = bare | {f"{state.get('namespace')}/{name}" for name in bare}  # symptoms name `ns/name` (or a name)
    broker = bool(BROKER.search(" ".join(state.get("images", []))))
    rolled_out = revision(state) > 1
    if state.get("desired") == 0:
        # work waiting with nobody to take it; a backlog its attached consumers hold is theirs, not a zero's
        backlog = "starved" in (symptoms or set()) or (symptoms is not None and "backlog" in symptoms
                                                      and not any(s.startswith("consumes:") for s in symptoms))
        if any(f"stopped_producer:{name}" in (symptoms or set()) for name in names):
            return ["dependency_unavailable"], ["scale", "none"]
        if intentional_pause(state) and not backlog:
            return [], []
        if not (backlog or broker or (recently_scaled(state) and "orphaned_queue" in (symptoms or set()))):
            return [], []  # at 0 and nothing waits for it, or other consumers carry its queue: not what broke
        return ["broker_unavailable" if broker else "consumer_unavailable"], ["scale", "none"]
    if spec_blocked(state):  # the same spec again, or more of it, waits the same way
        return ["config_change"], ["rollback", "none"] if rolled_out else ["none"]
    if "CrashLoopBackOff" in waiting:
        # Restarting the revision that crashes brings back the same crash; after a rollout, undo it.
        served = symptoms is not None and any(s.startswith("consumes:") for s in symptoms) and not any(
            f"consumes:{name}" in symptoms for name in names)  # queues were read and it consumes none: it serves
        return ["dependency_unavailable" if served else "consumer_crashlooping", "app_errors", "resource_exhaustion",
                "config_change"], (["rollback", "none"] if rolled_out else ["rollout_restart", "none"])
    if unschedulable_reason(state):  # no node can take its pods: what it asks for, or a cluster out of room
        return ["config_change", "resource_exhaustion"] if rolled_out else ["resource_exhaustion"], (
            ["rollback", "none"] if rolled_out else ["none"])
    if rollout_stalled(state):  # the same template again, or more of it, stalls the same way
        return ["config_change", "consumer_unavailable", "dependency_unavailable", "resource_exhaustion"], (
            ["rollback", "none"] if rolled_out else ["none"])
    if any(f"producer_changed:{name}" in (symptoms or set()) for name in names):
        return ["config_change"], ["rollback", "none"]  # its queue went quiet when its new template took over
    if state.get("available", 0) >= state.get("desired", 0):
        seen = {s.split(":")[0] for s in symptoms or set() if ":" not in s or s.split(":", 1)[1] in names}
        shown: list[str] = [c for c in ("consumer_too_slow", "app_errors") if c in seen]
        if shown == ["consumer_too_slow"]:
            return shown, ["scale"]
        if shown == ["app_errors"] and rolled_out and recent_rollout(state):
            return shown, ["rollback", "none"]  # errors from a fully available revision just rolled out
        return shown, [a for a in ALL_ACTIONS if a != "rollback"] if shown else []
    return every, ALL_ACTIONS


def _namespace_errors(observations: list[Observation], namespace: str) -> list[dict[str, Any]]:
    return [o.data for o in observations if o.ok and o.tool == "search_logs"
            and str(o.args.get("query", "")).startswith(f"kube_namespace:{namespace} status:")]


def upstream_of(ref: tuple[str, str], observations: list[Observation]) -> tuple[str, str] | None:
    from agent.validator import known_deployments

    states = known_deployments(observations)
    own = {known: o.data for o in observations for known in states if o.ok and o.tool == "search_logs"
           and o.args.get("query") == workload_logs_query(*known, states[known].get("kind", "Deployment"))}
    errors_query = workload_errors_query(*ref, (states.get(ref) or {}).get("kind", "Deployment"))
    own_errors = [o.data for o in observations if o.ok and o.tool == "search_logs"
                  and o.args.get("query") == errors_query]
    return failing_upstream(ref, [*_namespace_errors(observations, ref[0]), *own_errors], states, own,
                            observed_aliases(observations))


def _replaced_consumer(ref: tuple[str, str], observations: list[Observation]) -> tuple[str, str] | None:
    """The consumer at 0 whose share a still-running consumer of the same backlogged queue cannot take up."""
    return next((found for consumers, found in _missing_consumers(observations) if ref in consumers), None)


def _missing_consumers(observations: list[Observation]) -> list[tuple[list[tuple[str, str]], tuple[str, str]]]:
    """For each backlogged queue with consumers attached: those consumers, and the one at 0 named like the queue."""
    from agent.validator import known_deployments

    zero = [key for key, state in known_deployments(observations).items() if state.get("desired") == 0]
    found = []
    for obs in observations:
        if obs.ok and obs.tool == "get_queue_stats" and "queue" in obs.data and _backlogged(obs.data):
            consumers = consumer_refs(obs.data)
            gone = missing_consumer(str(obs.data["queue"]), consumers, zero) if consumers else None
            if gone:
                found.append((consumers, gone))
    return found


def finding_options(ref: tuple[str, str], state: dict[str, Any],
                    observations: list[Observation]) -> tuple[list[str], list[str]] | None:
    """What the shared findings say a workload's fault can be and how it comes back, when they say anything."""
    if upstream_of(ref, observations) or _replaced_consumer(ref, observations):
        return [], []
    if any(gone == ref for _, gone in _missing_consumers(observations)):
        return ["consumer_unavailable"], ["scale", "none"]  # the consumer at 0 its queue's backlog waits for
    if ref in stuck_refs(observations):
        return ["consumer_stuck"], ["rollout_restart", "none"]
    if f"{ref[0]}/{ref[1]}" in called_and_failing(observations):
        own = next((o.data for o in observations if o.ok and o.tool == "search_logs"
                    and o.args.get("query") == workload_logs_query(*ref, state.get("kind", "Deployment"))), None)
        callers = [o.data for o in observations if o.ok and o.tool == "search_logs" and "status:" in
                   str(o.args.get("query"))]
        failure = serving_failure(state) or next(
            (found for logs in callers if (found := hung_dependency(own, logs))), None)
        if failure is not None:
            return [failure.category], [failure.action, "none"]
    alarms = broker_alarms([o.data for o in observations if o.ok and o.tool == "get_queue_stats"])
    if alarms and BROKER.search(" ".join(state.get("images", []))):
        return ["resource_exhaustion"], ["none"]
    if autoscaled_to_rest(state) and "backlog" not in observed_symptoms(observations):
        return [], []
    return None


def verdict_schema(observations: list[Observation], call_ids: list[str],
                   scope: Scope = EVERYTHING) -> dict[str, Any]:
    """One branch per kind of answer: healthy / inconclusive, or an incident at one discovered deployment with the
    categories and actions consistent with its observed state."""
    from agent.validator import known_deployments

    states = known_deployments(observations)
    symptoms = observed_symptoms(observations)
    common = {"evidence": {"type": "array", "items": _enum(call_ids), "maxItems": 8},
              "confidence": {"type": "number", "minimum": 0, "maximum": 1}}
    checked = checked_signals(observations)
    missing = bool(unread_sources(observations)) or not {"queue_consumers", "queue_depth"} <= set(checked)
    calm = ["healthy", "inconclusive"] if missing else ["healthy"]
    trouble = standing_trouble(observations, scope)
    if trouble:
        calm = ["inconclusive"]
    branches: list[dict[str, Any]] = [{
        "type": "object", "additionalProperties": False, "required": ["status", "evidence", "confidence"],
        "properties": {"status": {"type": "string", "enum": calm}, **common}}]
    for (namespace, name) in Inventory.of(observations, scope).deployment_refs():
        state = states.get((namespace, name)) or {}
        state = {"namespace": namespace, "name": name, **state} if state else state
        found = finding_options((namespace, name), state, observations) if state else None
        categories, actions = found if found is not None else consistent_options(state or None, symptoms)
        if not categories:
            continue
        actions = [a for a in actions if a != "none"] or ["none"]  # an incident comes with its fix
        branches.append({
            "type": "object", "additionalProperties": False,
            "required": ["status", "component", "category", "remediation", "evidence", "confidence"],
            "properties": {"status": {"type": "string", "enum": ["incident"]},
                           "component": {"type": "string", "enum": [f"{namespace}/{name}"]},
                           "category": _enum(categories), "remediation": _enum(actions),
                           **common}})
    if trouble and len(branches) > 1:  # what rules out 'healthy' is explained first, 'not sure' comes last
        branches = [*branches[1:], branches[0]]
    return {"anyOf": branches}


def _evidence_for(obs: Observation) -> list[dict[str, Any]]:
    data, claim = obs.data, obs.summary[:200]
    items: list[dict[str, Any]] = []
    if obs.tool == "get_queue_stats" and "queue" in data:
        items += [{"signal": "queue_consumers", "observed": {"consumers": data["consumers"]}},
                  {"signal": "queue_depth", "observed": {"messages": data["messages"]}}]
        if data.get("publish_rate") is not None:
            items.append({"signal": "producer_activity", "observed": {"publish_rate": data["publish_rate"]}})
    elif obs.tool == "get_queue_stats" and data.get("queues"):
        row = next((r for r in data["queues"] if r["queue"] in data.get("attention", [])), data["queues"][0])
        items += [{"signal": "queue_consumers", "observed": {"consumers": row["consumers"]}},
                  {"signal": "queue_depth", "observed": {"messages": row["messages"]}}]
    elif obs.tool == "get_deployment" and "deployments" in data:
        items.append({"signal": "replicas", "observed": {"attention": data.get("attention", [])}})
    elif obs.tool == "get_deployment" and "name" in data:
        items.append({"signal": "replicas", "observed": {"desired": data["desired"], "available": data["available"]}})
        events = data.get("events") or []
        notable = ([e for e in events if e.get("type") == "Warning"]
                   or [e for e in events if e.get("reason") == "ScalingReplicaSet"] or events)
        if notable:
            event = notable[-1]
            items.append({"signal": "events", "observed": {"reason": event["reason"]},
                          "claim": f"{event.get('object')}: {event['reason']}: {event.get('message', '')}"[:200]})
        else:  # nothing restarted, scaled or rolled out in the hour: that is a finding too
            items.append({"signal": "events", "observed": {"events": []},
                          "claim": f"{data['name']}: no events in the last hour"})
    elif obs.tool == "search_logs" and "status:" in str(obs.args.get("query")):
        items += [{"signal": "errors", "observed": {"total": data["total"]}},
                  {"signal": "producer_activity", "observed": {"total": data["total"]}}]
    elif obs.tool == "search_logs":
        items.append({"signal": "consumer_logs", "observed": {"total": data["total"]}})
    elif obs.tool == "get_metric" and data.get("series"):
        signal = next((s for s in ("replicas", "queue_consumers", "queue_depth", "producer_activity")
                       if s in obs.signals), "other")
        items.append({"signal": signal, "observed": {"series.0.trend.last": data["series"][0]["trend"]["last"]}})
    elif obs.tool == "list_events":
        items.append({"signal": "events", "observed": {"total": data["total"]}})
    return [{"claim": claim, **item, "tool_call_id": obs.call_id} for item in items]


def _shows_errors(obs: Observation) -> bool:
    statuses = obs.data.get("by_status") or {}
    return obs.tool == "search_logs" and any(statuses.get(s) for s in ("error", "critical", "warn", "warning"))


def _facts(choice: dict[str, Any], observations: list[Observation]) -> list[str]:
    """What the calls about the chosen component (then the rest) returned, one clipped line each."""
    names = {str(choice.get("component") or "").partition("/")[2]} - {""}
    ordered = sorted(observations, key=lambda o: not _concerns(o, names | {str(o.data.get("queue"))}))
    return [f"{o.call_id}: {_clip(o.summary.split('; consumed by')[0], 140)}" for o in ordered[:3]]


def _summary(choice: dict[str, Any], facts: list[str], kind: str = "Deployment") -> str:
    """Written by code from the choice and what the cited calls returned, so every sentence is backed."""
    status = choice.get("status", "inconclusive")
    if status == "incident":
        head = f"{str(choice.get('category', 'unknown')).replace('_', ' ').capitalize()} at {kind} " \
               f"{choice.get('component')}"
    elif status == "healthy":
        head = "No incident: work is flowing"
    else:
        head = "Inconclusive: the evidence is missing or contradictory"
    return head + (f" ({facts[0]})" if facts else "")


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit].rsplit(" ", 1)[0] + " …"


def _concerns(obs: Observation, names: set[str]) -> bool:
    text = json.dumps(obs.args) + " " + obs.summary
    return any(name in text for name in names)


def _replicas(namespace: str, name: str, observations: list[Observation]) -> int:
    """Sized by code: back to the count before a scale-down to 0; enough consumers to outpace the producers of
    a queue it is falling behind on; otherwise one more than now."""
    from agent.validator import known_deployments

    state = known_deployments(observations).get((namespace, name)) or {}
    desired = state.get("desired", 0)
    if not desired:
        return restore_replicas(state, _history(observations, namespace, name, state.get("kind", "Deployment")))
    for obs in observations:
        data = obs.data
        if obs.ok and obs.tool == "get_queue_stats" and _backlogged(data) and (namespace, name) in consumer_refs(data):
            return replicas_to_keep_up(desired, data.get("publish_rate") or 0.0, data.get("deliver_rate") or 0.0,
                                       data.get("messages") or 0)
    return desired + 1


def expand_verdict(choice: dict[str, Any], observations: list[Observation]) -> dict[str, Any]:
    """A full verdict draft from the compact one: evidence from the cited calls (and, as bookkeeping, every other
    successful call about the chosen component or a queue), numbers copied from their results."""
    status = choice.get("status", "inconclusive")
    namespace, _, name = str(choice.get("component") or "").partition("/")
    by_id = {o.call_id: o for o in observations if o.ok and o.repeated_from is None}
    cited = [by_id[c] for c in choice.get("evidence", []) if c in by_id]
    names = {name} if name else set()
    names |= {o.data["queue"] for o in by_id.values() if o.tool == "get_queue_stats" and "queue" in o.data}
    if status == "healthy":  # it rests on everything that was read
        related = [o for o in by_id.values() if o not in cited]
    else:
        related = [o for o in by_id.values() if o not in cited and (
            _concerns(o, names) or _shows_errors(o) or o.tool == "get_queue_stats")]  # the queues: where work flows
    evidence = [item for obs in [*cited, *related] for item in _evidence_for(obs)]
    facts = _facts(choice, [*cited, *related])
    from agent.validator import workload_kinds

    kind = workload_kinds(observations).get(f"{namespace}/{name}", "Deployment")
    summary = _summary(choice, facts, kind)
    draft: dict[str, Any] = {"status": status, "summary": summary,
                             "confidence": choice.get("confidence", 0.5), "evidence": evidence}
    if status == "incident" and name:
        draft["root_cause"] = {"category": choice.get("category", "unknown"),
                               "explanation": "; ".join(facts) or summary,
                               "component": {"kind": kind, "namespace": namespace, "name": name}}
        action = choice.get("remediation", "none")
        if action != "none":
            draft["remediation"] = {"action": action, "namespace": namespace, "name": name,
                                    "replicas": _replicas(namespace, name, observations)
                                    if action == "scale" else None,
                                    "verification": ["available replicas at desired", "queue consumers ≥ 1",
                                                     "queue depth falling"]}
    return draft
