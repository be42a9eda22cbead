"""Checks a drafted verdict against what the tools actually returned, in code.

Evidence must cite a real, successful tool call whose result holds the observed values and can speak to the
signal; components and remediation targets must have been returned by a tool; confidence is capped when
signals are missing, telemetry failed or results contradict the claim; without support the verdict falls back
to inconclusive rather than guess.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from agent.coverage import still_possible, unread_sources
from agent.drafts import VerdictDraft
from agent.scope import EVERYTHING, Scope
from agent.signals import CORE_SIGNALS, Observation, checked_signals
from agent.verdict import Action, Evidence, Remediation, RootCause, Verdict

CONSUMER_CATEGORIES = ("consumer_unavailable", "consumer_crashlooping", "consumer_too_slow")


def _walk(value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield key, item
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _lookup(data: dict[str, Any], key: str) -> list[Any]:
    """The values an observed key names in a result, at its exact place: `a.b.0.c` is a path (list items by
    index); a bare key is a field of the result itself or of one of its rows (the items of a top-level list,
    such as a table's queues or deployments), never a field nested deeper (`previous_window.total` does not
    vouch for `total`)."""
    if "." in key:
        node: Any = data
        for part in key.split("."):
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                return []
        return [node]
    if key in data:
        return [data[key]]
    return [row[key] for value in data.values() if isinstance(value, list)
            for row in value if isinstance(row, dict) and key in row]


def _same(expected: Any, actual: Any) -> bool:
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected == actual
    if isinstance(expected, int | float) and isinstance(actual, int | float):
        return abs(expected - actual) <= max(1e-6, 0.01 * abs(actual))
    if isinstance(expected, str) and isinstance(actual, int | float):
        try:
            return _same(float(expected), actual)
        except ValueError:
            return False
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(_same(e, a) for e, a in zip(expected, actual, strict=True))
    return str(expected).strip().lower() == str(actual).strip().lower()


def evidence_problem(item: Evidence, observations: dict[str, Observation]) -> str | None:
    obs = observations.get(item.tool_call_id)
    if obs is None:
        return f"cites tool call {item.tool_call_id!r}, which was never made"
    if not obs.ok:
        return f"cites {item.tool_call_id}, which failed ({obs.summary[:80]})"
    if item.signal not in obs.signals and item.signal != "other":
        return f"signal {item.signal} cannot come from {obs.tool} ({item.tool_call_id})"
    for key, expected in item.observed.items():
        found = _lookup(obs.data, key)
        if not found:
            return f"observed field {key!r} is not in the result of {item.tool_call_id}"
        if not any(_same(expected, actual) for actual in found):
            return f"observed {key}={expected!r} but {item.tool_call_id} returned {found[:3]!r}"
    return None


def known_names(observations: list[Observation]) -> set[str]:
    """Every name a tool returned: string values, and both halves of `key:value` tags and `Kind/name` refs."""
    names: set[str] = set()
    for obs in observations:
        if not obs.ok:
            continue
        for _, value in _walk(obs.data):
            if isinstance(value, str) and len(value) < 200:
                names.add(value)
                for sep in (":", "/"):
                    if sep in value:
                        names.update(value.split(sep, 1))
        names.update(str(v) for v in obs.args.values() if isinstance(v, str))
    return names


def known_deployments(observations: list[Observation]) -> dict[tuple[str, str], dict[str, Any]]:
    """(namespace, name) -> latest known state, from get_deployment results."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for obs in observations:
        if not obs.ok or obs.tool != "get_deployment":
            continue
        namespace = obs.data.get("namespace", obs.args.get("namespace", ""))
        if "deployments" in obs.data:
            for row in obs.data["deployments"]:
                found.setdefault((namespace, row["name"]), row)
        else:
            found[(namespace, obs.data.get("name", ""))] = obs.data
    return found


def workload_kinds(observations: list[Observation]) -> dict[str, str]:
    """`namespace/name` -> the kind the cluster reported for every workload seen."""
    return {f"{ns}/{name}": state.get("kind", "Deployment")
            for (ns, name), state in known_deployments(observations).items()}


def _kinds_as_read(root_cause: RootCause | None, remediation: Remediation | None,
                   workloads: dict[tuple[str, str], dict[str, Any]]) -> tuple[RootCause | None, Remediation | None]:
    """A workload's kind (Deployment, StatefulSet) is what the cluster said it is, whatever the draft wrote."""
    component = root_cause.component if root_cause else None
    if root_cause and component and component.kind != "Queue" and (
            state := workloads.get((component.namespace, component.name))):
        kind = state.get("kind", "Deployment")
        root_cause = root_cause.model_copy(update={"component": component.model_copy(update={"kind": kind})})
    if remediation and (state := workloads.get((remediation.action.namespace, remediation.action.name))):
        action = Action.model_validate({**remediation.action.model_dump(), "kind": state.get("kind", "Deployment")})
        remediation = Remediation(action=action, risk=remediation.risk, rationale=remediation.rationale,
                                  verification=remediation.verification)
    return root_cause, remediation


def validate(draft: VerdictDraft, history: list[Observation], scope: Scope = EVERYTHING,
             unconfigured: dict[str, str] | None = None) -> tuple[Verdict, list[str]]:
    """`unconfigured`: the sources this process has no configuration for (`Sources.missing`)."""
    notes: list[str] = []
    draft = _within_scope(draft, scope, notes)
    by_id = {o.call_id: o for o in history}
    evidence = []
    for item in draft.evidence:
        problem = evidence_problem(item, by_id)
        if problem:
            notes.append(f"dropped evidence ({item.signal}): {problem}")
        else:
            evidence.append(item)
    status, confidence = draft.status, draft.confidence
    root_cause = draft.root_cause
    try:
        remediation = draft.to_remediation()
    except ValueError as exc:
        notes.append(f"remediation malformed, removed: {str(exc).splitlines()[-1]}")
        remediation = None
    names = known_names(history)
    deployments = known_deployments(history)
    root_cause, remediation = _kinds_as_read(root_cause, remediation, deployments)

    def cap(limit: float, reason: str) -> None:
        nonlocal confidence
        if confidence > limit:
            notes.append(f"confidence capped {confidence:.2f} → {limit:.2f}: {reason}")
            confidence = limit

    if root_cause and root_cause.component:
        component = root_cause.component
        if component.name not in names or component.namespace not in names:
            notes.append(f"component {component.ref()} was never returned by a tool: rejected")
            status, root_cause, remediation = "inconclusive", None, None
            cap(0.3, "the named component is not in any tool result")
    if remediation is not None:
        action = remediation.action
        if action.action == "scale" and (action.replicas or 0) < 1:
            notes.append("remediation that scales to 0 removed: the agent never proposes taking capacity away")
            remediation = None
        elif (action.namespace, action.name) not in deployments:
            notes.append(f"remediation target {action.target_ref()} was not seen by get_deployment: removed")
            remediation = None
    if status == "healthy" and remediation is not None:
        notes.append("remediation removed: a healthy verdict proposes no change")
        remediation = None

    distinct_signals = {e.signal for e in evidence}
    if status == "incident":
        if not evidence:
            notes.append("no supported evidence for an incident: falling back to inconclusive")
            status, remediation = "inconclusive", None
            cap(0.3, "no supported evidence")
        elif len(distinct_signals) < 2:
            cap(0.5, "evidence covers a single signal")
        checked = checked_signals(history)
        missing = [s for s in CORE_SIGNALS if s not in checked]
        if root_cause and root_cause.category in CONSUMER_CATEGORIES and "replicas" in missing:
            cap(0.6, "the consumer's replicas were never checked")
        if root_cause and root_cause.component and root_cause.category in CONSUMER_CATEGORIES[:2]:
            state = deployments.get((root_cause.component.namespace, root_cause.component.name))
            if state and state.get("desired", 0) > 0 and state.get("available", 0) >= state.get("desired", 0):
                notes.append(f"{root_cause.component.ref()} is at full availability, contradicting "
                             f"{root_cause.category}: inconclusive")
                status, remediation = "inconclusive", None
                cap(0.3, "tool results contradict the root cause")
    if status == "healthy" and not {"queue_consumers", "queue_depth"} & set(checked_signals(history)):
        cap(0.6, "no queue was checked before calling the system healthy")
    unread = unread_sources(history, unconfigured)
    summary, ruled_out = draft.summary, still_possible(draft.ruled_out, unread)
    if unread:
        cap(0.75, f"{', '.join(u.source for u in unread)} could not be read, the picture is partial")
    if unread and status == "healthy":
        blind = "; ".join(u.describe() for u in unread)
        notes.append(f"healthy → inconclusive: it would rest on sources that were not read ({blind})")
        status, summary = "inconclusive", (f"Not confirmed healthy: {blind}, so what it would show is unknown. "
                                           "Nothing that was read shows a problem.")
        cap(0.5, "a healthy verdict needs every source it rests on")
    security_notes = list(draft.security_notes)
    flagged = [o for o in history if o.injections and o.repeated_from is None]
    if flagged and not security_notes:
        notes.append("security notes added: tool results contained instruction-like text the draft did not report")
        security_notes = [f"ignored instruction-like text in {o.call_id} ({o.tool}): {text!r}"
                          for o in flagged for text in o.injections][:5]
    verdict = Verdict(
        status=status, summary=summary, root_cause=root_cause, evidence=evidence, ruled_out=ruled_out,
        impact=draft.impact, confidence=round(confidence, 2), remediation=remediation,
        security_notes=security_notes, also_noticed=draft.also_noticed, limitations=[u.describe() for u in unread])
    return verdict, notes


def _within_scope(draft: VerdictDraft, scope: Scope, notes: list[str]) -> VerdictDraft:
    """A verdict answers the question asked: a cause outside its scope becomes an 'also noticed' line, and no
    change is proposed outside it."""
    update: dict[str, object] = {}
    remediation = draft.remediation
    if remediation is not None and remediation.action != "none" and not scope.covers_workload(
            remediation.namespace, remediation.name):
        notes.append(f"dropped remediation on {remediation.namespace}/{remediation.name}: outside the question's "
                     f"scope ({scope.describe()})")
        update["remediation"] = None
    component = draft.root_cause.component if draft.root_cause else None
    if draft.status == "incident" and component is not None and not scope.covers_workload(
            component.namespace, component.name if component.kind != "Queue" else None):
        notes.append(f"{component.ref()} is outside the question's scope ({scope.describe()}): reported as also "
                     "noticed, not as the answer")
        cited = sorted({e.tool_call_id for e in draft.evidence})
        update |= {"status": "inconclusive", "root_cause": None, "remediation": None,
                   "also_noticed": [*draft.also_noticed, f"{draft.summary} [{', '.join(cited)}]"],
                   "summary": f"Nothing in scope ({scope.describe()}) explains the question; a problem elsewhere "
                              f"is reported below."}
    return draft.model_copy(update=update) if update else draft


def fallback_verdict(history: list[Observation], reason: str, missing: dict[str, str] | None = None) -> Verdict:
    """An honest inconclusive verdict from whatever was observed, when no valid verdict could be drafted."""
    findings = [f"{o.call_id} {o.tool}: {o.summary[:160]}" for o in history if o.ok][:8]
    summary = f"Inconclusive: {reason}."
    if findings:
        summary += " Observed so far: " + " | ".join(findings)
    return Verdict(status="inconclusive", summary=summary, confidence=0.0, remediation=None,
                   ruled_out=[], evidence=[],
                   limitations=[u.describe() for u in unread_sources(history, missing)])


__all__ = ["Remediation", "fallback_verdict", "validate"]
