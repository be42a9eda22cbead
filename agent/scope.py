"""The question sets the scope: which namespaces an investigation is about.

Names and words in the question are matched against the discovered inventory (namespaces, workloads, queues).
A question that names nothing scopes to everything. A question that names a place scopes to it, and to the
namespaces its work flows through (the consumers of its queues, the broker), but never to a *sibling*: a
namespace that shares a word with the named one while carrying a different distinguishing word (`payments-prod`
named, `payments-staging` is a sibling; `tenant-acme` named, `tenant-globex` is a sibling). Environment words
are normalised, so "production" names `*-prod` and rules out `*-staging`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

ENVIRONMENTS = {
    "prod": ("prod", "production", "prd", "live"),
    "staging": ("staging", "stage", "stg", "preprod"),
    "dev": ("dev", "development"),
    "test": ("test", "testing", "qa", "uat", "sandbox"),
}
_ENV_OF = {word: env for env, words in ENVIRONMENTS.items() for word in words}
# Words too generic to tell one place from another when they are part of a name.
GENERIC = {"api", "app", "apps", "svc", "service", "services", "server", "web", "job", "jobs", "worker",
           "workers", "queue", "queues", "default", "system", "kube", "main", "core", "the", "and"}
MIN_WORD = 4
PREFIX = 5  # "invoices" names "invoicing", "notification" names "notify"


def words(text: str) -> list[str]:
    """Lower-case words of a name or a sentence, split on anything that is not a letter or digit."""
    return [w for w in re.split(r"[^a-z0-9]+", text.lower()) if w]


def _env(word: str) -> str | None:
    return _ENV_OF.get(word)


def _names(question_words: set[str], name: str) -> bool:
    """Whether the question names `name`: the whole name, or one of its distinctive words."""
    parts = [w for w in words(name) if w not in GENERIC and (len(w) >= MIN_WORD or _env(w))]
    return any(_says(question_words, part) for part in parts)


def _says(question_words: set[str], part: str) -> bool:
    env = _env(part)
    if env:
        return any(_env(q) == env for q in question_words)
    return any(q == part or (len(q) >= PREFIX and len(part) >= PREFIX and q[:PREFIX] == part[:PREFIX])
               for q in question_words)


@dataclass(frozen=True)
class Scope:
    """The namespaces the question is about; `everything` when it names none."""

    namespaces: frozenset[str] = frozenset()
    everything: bool = True
    named: tuple[str, ...] = ()
    excluded: frozenset[str] = field(default_factory=frozenset)

    def covers(self, namespace: str | None) -> bool:
        if namespace is None:
            return True
        return namespace not in self.excluded if self.everything else namespace in self.namespaces

    def describe(self) -> str:
        if self.everything and not self.excluded:
            return "the whole system (the question names no namespace)"
        if self.everything:
            return f"everything but {', '.join(sorted(self.excluded))}"
        return ", ".join(sorted(self.namespaces)) + (f" (named: {', '.join(self.named)})" if self.named else "")


EVERYTHING = Scope()


def scope_of(question: str, namespaces: Iterable[str], workloads: Iterable[tuple[str, str]] = (),
             consumers: Iterable[tuple[str, str]] = (), shared: Iterable[str] = ()) -> Scope:
    """Scope a question to the inventory. `workloads` are (namespace, name); `consumers` are (namespace of a
    queue's consumer, queue name) links; `shared` are namespaces every flow goes through (the broker's)."""
    asked = set(words(question))
    spaces = sorted(set(namespaces))
    named_envs = {env for w in asked if (env := _env(w))}
    direct = {ns for ns in spaces if _names(asked, ns)}
    matched = set(direct)
    named = sorted(direct)
    text = " ".join(words(question))
    exact = [(ns, name) for ns, name in workloads if ns in spaces and f" {' '.join(words(name))} " in f" {text} "]
    for namespace, name in exact or [(ns, n) for ns, n in workloads if _names(asked, n) and ns in spaces]:
        matched.add(namespace)
        named.append(f"{namespace}/{name}")
    for namespace, queue in consumers:
        if _names(asked, queue) and namespace in spaces:
            matched.add(namespace)
            named.append(f"{namespace}/queue {queue}")
    excluded = _siblings(direct or matched, spaces, asked) | _other_environments(spaces, named_envs)
    matched -= excluded
    named = [n for n in named if n.split("/")[0] not in excluded]
    if not matched:
        return Scope(everything=True, excluded=frozenset(excluded), named=tuple(named))
    reached = set(matched) | {ns for ns in shared if ns in spaces}
    local = set(asked) | {w for ns in matched for w in words(ns)}
    local |= {w for namespace, name in workloads if namespace in matched for w in words(name)}
    reached |= {namespace for namespace, queue in consumers if namespace in spaces and _names(local, queue)}
    return Scope(namespaces=frozenset(reached - excluded), everything=False, named=tuple(dict.fromkeys(named)),
                 excluded=frozenset(excluded))


def _siblings(matched: set[str], spaces: list[str], asked: set[str]) -> set[str]:
    """Namespaces that share a word with a named one while each has a word of its own (`payments-prod` and
    `payments-staging`, `tenant-acme` and `tenant-globex`), the other's own words not in the question. A
    namespace that only adds to the named one's words (`media` and `media-batch`) is part of it, not a sibling."""
    siblings = set()
    for other in spaces:
        if other in matched and _names(asked, other):
            continue
        mine = set(words(other))
        for named in matched - {other}:
            theirs = set(words(named))
            common = mine & theirs
            if common and theirs - common and mine - common \
                    and not any(_says(asked, w) for w in mine - common if w not in GENERIC):
                siblings.add(other)
    return siblings


def _other_environments(spaces: list[str], named_envs: set[str]) -> set[str]:
    """With an environment named, the namespaces that carry a different one."""
    if not named_envs:
        return set()
    return {ns for ns in spaces if (envs := {e for w in words(ns) if (e := _env(w))}) and not envs & named_envs}


def scope_from_results(question: str, results: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]) -> Scope:
    """Scope the question to what the (tool, args, result) triples discovered so far."""
    from agent.signals import BROKER  # one definition of what a broker looks like

    namespaces: set[str] = set()
    workloads: set[tuple[str, str]] = set()
    consumers: set[tuple[str, str]] = set()
    shared: set[str] = set()
    for tool, _args, data in results:
        if "error" in data:
            continue
        namespaces |= {row["namespace"] for row in data.get("namespaces", []) if isinstance(row, dict)}
        if tool == "get_deployment" and "deployments" in data:
            namespaces.add(data["namespace"])
            for row in data["deployments"]:
                workloads.add((data["namespace"], row["name"]))
                if BROKER.search(" ".join([row["name"], *row.get("images", [])])):
                    shared.add(data["namespace"])
        if tool == "get_queue_stats" and "queue" in data:
            consumers |= {(c["namespace"], data["queue"]) for c in data.get("consumed_by") or []
                          if isinstance(c, dict)}
    return scope_of(question, namespaces, workloads, consumers, shared)


def conversation_scope(questions: list[str], results: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> Scope:
    """The latest question that names a place sets the scope; follow-ups that name nothing keep it."""
    for question in reversed(questions):
        scope = scope_from_results(question, results)
        if not scope.everything or scope.excluded:
            return scope
    return EVERYTHING
