"""Factual questions get direct answers: what the question asks for, the calls that can answer it, and the
answer built by code from their results (every value copied from a cited call, never written by a model).
"""

from __future__ import annotations

import re
from typing import Any

from agent.scope import Scope
from agent.signals import Observation
from agent.verdict import Answer, AnswerKind, Fact

ASKS: dict[AnswerKind, re.Pattern[str]] = {
    "replicas": re.compile(r"\bhow many\b[^?.!]{0,60}?\b(replicas|pods|instances|copies)\b|\breplica count\b|"
                           r"\bscaled to\b\??$", re.IGNORECASE),
    "image": re.compile(r"\b(what|which) (image|version|tag|build)\b|\bimage (is|does)\b|\brunning which\b",
                        re.IGNORECASE),
    "queues": re.compile(r"\b(which|what|list( the)?|show( me)?( the)?) queues\b|\bhow deep\b|\bqueue depths\b",
                         re.IGNORECASE),
    "changes": re.compile(r"\b(did|has|have) anything (change|changed|been changed|happen)|\bwhat (has )?changed\b|"
                          r"\brecent (changes|deploys|deployments|rollouts)\b|\bany (deploys|rollouts|changes)\b",
                          re.IGNORECASE),
}
CHANGE_REASONS = ("ScalingReplicaSet", "SuccessfulRescale", "KEDAScaleTargetActivated",
                  "KEDAScaleTargetDeactivated", "SuccessfulCreate", "SuccessfulDelete")
MAX_NAMESPACES = 3


def asks(question: str) -> list[AnswerKind]:
    return [kind for kind, pattern in ASKS.items() if pattern.search(question)]


def _named(scope: Scope) -> list[tuple[str, str]]:
    refs = [ref for ref in scope.named if "/" in ref and "/queue " not in ref]
    return [(ref.split("/", 1)[0], ref.split("/", 1)[1]) for ref in refs]


def _made(history: list[Observation], tool: str, **args: Any) -> bool:
    return any(o.tool == tool and all(o.args.get(k) == v for k, v in args.items()) for o in history)


def _namespaces(history: list[Observation], scope: Scope) -> list[str]:
    listed = [row["namespace"] for o in history if o.ok and o.tool == "list_namespaces"
              for row in o.data.get("namespaces", [])]
    return [ns for ns in listed if scope.covers(ns)][:MAX_NAMESPACES]


def answer_calls(question: str, history: list[Observation], scope: Scope) -> list[tuple[str, dict[str, Any]]]:
    """The calls a factual question needs that have not been made; [] until the inventory is known."""
    if not _made(history, "list_namespaces"):
        return []
    calls: list[tuple[str, dict[str, Any]]] = []
    kinds = asks(question)
    if {"replicas", "image"} & set(kinds):
        calls += [("get_deployment", {"namespace": ns, "name": name}) for ns, name in _named(scope)
                  if not _made(history, "get_deployment", namespace=ns, name=name)]
    if "queues" in kinds and not _made(history, "get_queue_stats", queue=None):
        calls.append(("get_queue_stats", {}))
    if "changes" in kinds:
        calls += [("list_events", {"namespace": ns, "since": "now-1h"}) for ns in _namespaces(history, scope)
                  if not _made(history, "list_events", namespace=ns, since="now-1h")]
    return calls


def answer_for(question: str, history: list[Observation], scope: Scope) -> Answer | None:
    """The direct answer to a factual question, from the results of the calls that answer it."""
    kinds = asks(question)
    if not kinds:
        return None
    facts: list[Fact] = []
    lines: list[str] = []
    ok = [o for o in history if o.ok and o.repeated_from is None]
    named = set(_named(scope))
    for obs in ok:
        if obs.tool == "get_deployment" and (obs.data.get("namespace"), obs.data.get("name")) in named:
            ref = f"{obs.data['namespace']}/{obs.data['name']}"
            if "replicas" in kinds:
                facts += [Fact(subject=ref, field=key, value=obs.data[key], tool_call_id=obs.call_id)
                          for key in ("desired", "available")]
                lines.append(f"{ref} has {obs.data['desired']} desired and {obs.data['available']} available "
                             f"replica(s) [{obs.call_id}]")
            if "image" in kinds:
                facts.append(Fact(subject=ref, field="images", value=obs.data["images"], tool_call_id=obs.call_id))
                lines.append(f"{ref} runs {', '.join(obs.data['images'])} [{obs.call_id}]")
        if obs.tool == "get_queue_stats" and "queues" in obs.data and "queues" in kinds:
            for row in obs.data["queues"]:
                subject = row["queue"] if row["vhost"] == "/" else f"{row['vhost']}/{row['queue']}"
                facts += [Fact(subject=subject, field=key, value=row[key], tool_call_id=obs.call_id)
                          for key in ("messages", "consumers")]
            lines.append(f"{len(obs.data['queues'])} queue(s): " + ", ".join(
                f"{r['queue']} ({r['messages']} messages, {r['consumers']} consumers)" for r in obs.data["queues"])
                + f" [{obs.call_id}]")
        if obs.tool == "list_events" and "changes" in kinds:
            changes = [e for e in obs.data.get("events", []) if e["reason"] in CHANGE_REASONS]
            facts.append(Fact(subject=obs.data["namespace"], field="changes", value=len(changes),
                              tool_call_id=obs.call_id))
            lines.append(f"{obs.data['namespace']}: " + ("; ".join(
                f"{e['last_seen'][11:16]} {e['object']}: {e['message']}" for e in changes[-5:])
                if changes else "no scaling or rollout in the last hour") + f" [{obs.call_id}]")
    if not lines:
        return None
    return Answer(kind=kinds[0], text=". ".join(lines) + ".", facts=facts)
