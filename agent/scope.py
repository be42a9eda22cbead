"""The question sets the scope: which namespaces an investigation is about.

Names and words in the question are matched against the discovered inventory (namespaces, workloads, queues).
A question that names nothing scopes to everything. A question that names a place scopes to it, and to the
namespaces its work flows through (the consumers of its queues, the broker), but never to a *sibling*: a
namespace that shares a word with the named one while carrying a different distinguishing word (`payments-prod`
named, `payments-staging` is a sibling; `tenant-acme` named, `tenant-globex` is a sibling). Environment words
are normalised, so "production" names `*-prod` and rules out `*-staging`; so are regions ("the EU pipeline"
rules out `orders-us`).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

ENVIRONMENTS = {
    "prod": ("prod", "production", "prd", "live"),
    "staging": ("staging", "stage", "stg", "preprod"),
    "dev": ("dev", "development"),
    "test": ("test", "testing", "qa", "uat", "sandbox", "acc", "acceptance", "int", "integration", "sit", "perf",
             "e2e", "nonprod"),
}
_ENV_OF = {word: env for env, words in ENVIRONMENTS.items() for word in words}
REGIONS = {
    "eu": ("eu", "europe", "european", "emea"),
    "us": ("us", "usa", "america", "american", "amer"),
    "uk": ("uk", "britain", "british"),
    "apac": ("apac", "asia", "asian"),
}
_REGION_OF = {word: region for region, words in REGIONS.items() for word in words}
SHORT_CODE = 2  # "us", "eu": a region only when written in capitals ("US"), else an ordinary word ("tell us")
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


def _names_workload(question_words: set[str], name: str) -> bool:
    """Whether the question names the workload `name` plainly: its head word, the last distinctive one (compounds
    are head-final: "the mailer" names `notification-mailer`), or every distinctive word. A modifier alone is
    likely a domain word ("device dashboards froze" hardly points at `device-registry`)."""
    parts = [w for w in words(name) if w not in GENERIC and (len(w) >= MIN_WORD or _env(w))]
    return bool(parts) and (_says(question_words, parts[-1]) or all(_says(question_words, p) for p in parts))


def _strength(question_words: set[str], name: str) -> tuple[int, int]:
    """How plainly the question names `name`, strongest first when sorted: its words said exactly, then by prefix."""
    parts = [w for w in words(name) if w not in GENERIC and len(w) >= MIN_WORD]
    exact = sum(1 for part in parts if part in question_words)
    return -exact, -sum(1 for part in parts if _says(question_words, part))


def _says(question_words: set[str], part: str) -> bool:
    env = _env(part)
    if env:
        return any(_env(q) == env for q in question_words)
    return any(q == part or _plural(q, part) or _plural(part, q)
               or (len(q) >= PREFIX and len(part) >= PREFIX and q[:PREFIX] == part[:PREFIX])
               for q in question_words)


def _plural(word: str, of: str) -> bool:
    """"carts" says `cart`, "boxes" says `box`: shorter than PREFIX, one word is the other's plural."""
    return len(of) >= MIN_WORD - 1 and word in (f"{of}s", f"{of}es")


@dataclass(frozen=True)
class Scope:
    """The namespaces the question is about; `everything` when it names none."""

    namespaces: frozenset[str] = frozenset()
    everything: bool = True
    named: tuple[str, ...] = ()
    excluded: frozenset[str] = field(default_factory=frozenset)
    focus: frozenset[tuple[str, str]] = field(default_factory=frozenset)

    def covers(self, namespace: str | None) -> bool:
        if namespace is None:
            return True
        return namespace not in self.excluded if self.everything else namespace in self.namespaces

    def covers_workload(self, namespace: str | None, name: str | None) -> bool:
        """A workload is in scope when its namespace is and, if the question names workloads by their full
        name, it is one of them or something their work flows through (their queues' consumers, what their
        errors name, the broker)."""
        if not self.covers(namespace):
            return False
        return not self.focus or namespace is None or name is None or (namespace, name) in self.focus

    def describe(self) -> str:
        if self.everything and not self.excluded:
            return "the whole system (the question names no namespace)"
        if self.everything:
            return f"everything but {', '.join(sorted(self.excluded))}"
        text = ", ".join(sorted(self.namespaces)) + (f" (named: {', '.join(self.named)})" if self.named else "")
        return text + (f"; about {', '.join(sorted(f'{ns}/{n}' for ns, n in self.focus))}" if self.focus else "")


EVERYTHING = Scope()


HEALTHY = re.compile(r"\b(?:looks?|seems?|is|are|appears?|stays?)\s+(?:\w+\s+){0,2}?"
                     r"(?:fine|ok|okay|healthy|good|normal|green|happy)\b"
                     r"|\bno errors\b|\b(?:works?|working|running)\s+(?:\w+\s+)?(?:fine|normally|ok)\b",
                     re.IGNORECASE)
NEGATED = re.compile(r"\bnot\b|n't\b|\bnever\b|\bno longer\b", re.IGNORECASE)
ASKING = re.compile(r"\s*(?:is|are|am|does|do|did|can|could|should|was|were|has|have|will|would|why|what|how|"
                    r"who|which|where|when)\b", re.IGNORECASE)
CLAUSE_BREAK = re.compile(r"\b(?:but|while|although|though|whereas|however|yet)\b|[;—–]| - ", re.IGNORECASE)


def without_cleared(question: str) -> str:
    """The question minus what the asker states is fine ("the mailer looks totally fine to me", "signing itself
    works fine"): a component the asker has already ruled out is context, not the place to look. Only statements
    count; "is the mailer fine?" still asks about the mailer."""
    kept = []
    for sentence in re.findall(r"[^.!?]+[.!?]*", question):
        clauses = CLAUSE_BREAK.split(sentence)
        asking = sentence.rstrip().endswith("?")
        kept += [clause for i, clause in enumerate(clauses)
                 if not _states_fine(clause) or (asking and i == len(clauses) - 1)]
    return " ".join(kept)


def _states_fine(clause: str) -> bool:
    return bool(HEALTHY.search(clause)) and not NEGATED.search(clause) and not ASKING.match(clause)


def scope_of(question: str, namespaces: Iterable[str], workloads: Iterable[tuple[str, str]] = (),
             consumers: Iterable[tuple[str, str]] = (), shared: Iterable[str] = (),
             calls: Iterable[tuple[str, str]] = ()) -> Scope:
    """Scope a question to the inventory. `workloads` are (namespace, name); `consumers` are (namespace of a
    queue's consumer, queue name) links; `shared` are namespaces every flow goes through (the broker's); `calls`
    are (callers' namespace, namespace of a dependency their error lines address) links."""
    question = without_cleared(question)
    asked = set(words(question))
    spaces = sorted(set(namespaces))
    named_envs = {env for w in asked if (env := _env(w))}
    direct = {ns for ns in spaces if _names(asked, ns)}
    matched = set(direct)
    named = sorted(direct)
    text = " ".join(words(question))
    exact = [(ns, name) for ns, name in workloads if ns in spaces and f" {' '.join(words(name))} " in f" {text} "]
    focus = frozenset(ref for ref in exact if _as_component(ref[1], text))
    said = [(ns, n) for ns, n in workloads if _names(asked, n) and ns in spaces]
    for namespace, name in exact or sorted(said, key=lambda ref: (_strength(asked, ref[1]), ref)):
        if exact or _names_workload(asked, name):  # a modifier alone names the workload, not the place to look
            matched.add(namespace)
        named.append(f"{namespace}/{name}")
    for namespace, queue in sorted(consumers):
        if _names(asked, queue) and namespace in spaces:
            matched.add(namespace)
            named.append(f"{namespace}/queue {queue}")
    excluded = _siblings(direct or matched, spaces, asked, _short_words_said(question)) \
        | _other_environments(spaces, named_envs) | _other_regions(spaces, question)
    matched -= excluded
    named = [n for n in named if n.split("/")[0] not in excluded]
    focus = frozenset(ref for ref in focus if ref[0] not in excluded)
    if not matched:
        return Scope(everything=True, excluded=frozenset(excluded), named=tuple(named), focus=focus)
    reached = set(matched) | {ns for ns in shared if ns in spaces}
    local = set(asked) | {w for ns in matched for w in words(ns)}
    local |= {w for namespace, name in workloads if namespace in matched for w in words(name)}
    reached |= {namespace for namespace, queue in consumers if namespace in spaces and _names(local, queue)}
    reached |= {dependency for caller, dependency in calls if caller in matched and dependency in spaces}
    return Scope(namespaces=frozenset(reached - excluded), everything=False, named=tuple(dict.fromkeys(named)),
                 excluded=frozenset(excluded), focus=focus)


COMPONENT_NOUNS = {"service", "services", "deployment", "deployments", "pod", "pods", "page", "pages", "api",
                   "app", "workload", "statefulset", "container", "containers", "server", "endpoint", "worker",
                   "workers", "svc", "image", "replicas", "consumer", "consumers"}


def _as_component(name: str, text: str) -> bool:
    """The question names the workload as a component, not as an ordinary word ("orders" in "tickets about
    orders"): a name with a hyphen or digit, or one followed by a component noun ("the orders service")."""
    if re.search(r"[-_0-9]", name):
        return True
    spoken = f" {' '.join(words(name))} "
    _, found, rest = f" {text} ".partition(spoken)
    return bool(found) and (rest.split(" ", 1)[0] in COMPONENT_NOUNS)


def _siblings(matched: set[str], spaces: list[str], asked: set[str], short: set[str]) -> set[str]:
    """Namespaces that share a word with a named one while each has a word of its own (`payments-prod` and
    `payments-staging`, `tenant-acme` and `tenant-globex`), the other's own words not in the question. A
    namespace that only adds to the named one's words (`media` and `media-batch`) is part of it, not a sibling.
    Two namespaces both named by their common word (`delivery-eu` said: `delivery-us` shares "delivery") are told
    apart by their own words: the one whose own word is not said is the sibling."""
    siblings = set()
    for other in spaces:
        mine = set(words(other))
        for named in matched - {other}:
            theirs = set(words(named))
            common = mine & theirs
            if not (common and theirs - common and mine - common):
                continue
            mine_said = any(_said_in_name(asked, short, w) for w in mine - common if w not in GENERIC)
            theirs_said = any(_said_in_name(asked, short, w) for w in theirs - common if w not in GENERIC)
            if not mine_said and (other not in matched or theirs_said):
                siblings.add(other)
    return siblings


def _said_in_name(asked: set[str], short: set[str], part: str) -> bool:
    """A distinguishing word of a name is said; a short one (`eu` of `delivery-eu`) only as part of a name or in
    capitals (`short`), not as an ordinary word ("tell us")."""
    return _says(asked, part) if len(part) >= MIN_WORD or _env(part) else part in short


def _short_words_said(question: str) -> set[str]:
    """Words shorter than MIN_WORD written as part of a name (`delivery-eu`, `eu_orders`) or in capitals (EU)."""
    joined = {w for name in re.findall(r"\w+(?:[-_.]\w+)+", question) for w in words(name)}
    capitals = {w.lower() for w in re.findall(r"\b[A-Z0-9]{1,3}\b", question)}
    return {w for w in joined | capitals if len(w) < MIN_WORD}


def _regions_said(question: str) -> set[str]:
    said = {w.lower() for w in re.findall(r"[A-Za-z]+", question) if len(w) > SHORT_CODE or w.isupper()}
    return {_REGION_OF[w] for w in said if w in _REGION_OF}


def _other_regions(spaces: list[str], question: str) -> set[str]:
    """With a region named ("the EU pipeline"), the namespaces that carry a different one (`orders-us`)."""
    named = _regions_said(question)
    if not named:
        return set()
    return {ns for ns in spaces if (regions := {r for w in words(ns) if (r := _REGION_OF.get(w))})
            and not regions & named}


def _other_environments(spaces: list[str], named_envs: set[str]) -> set[str]:
    """With an environment named, the namespaces that carry a different one."""
    if not named_envs:
        return set()
    return {ns for ns in spaces if (envs := {e for w in words(ns) if (e := _env(w))}) and not envs & named_envs}


def scope_from_results(question: str, results: Iterable[tuple[str, dict[str, Any], dict[str, Any]]]) -> Scope:
    """Scope the question to what the (tool, args, result) triples discovered so far."""
    from agent.findings import addressed_workloads
    from agent.signals import BROKER  # one definition of what a broker looks like

    namespaces: set[str] = set()
    workloads: set[tuple[str, str]] = set()
    consumers: set[tuple[str, str]] = set()  # and, for a queue with none, a workload at 0 named like it
    consuming: set[tuple[str, str, str]] = set()  # (namespace, workload, queue)
    brokers: set[tuple[str, str]] = set()
    down: set[tuple[str, str]] = set()  # workloads below desired or at 0
    starved: set[str] = set()  # queues holding messages with no consumer
    quiet: list[dict[str, Any]] = []  # queue details, some of which may have gone quiet
    details: dict[tuple[str, str], dict[str, Any]] = {}
    shared: set[str] = set()
    samples: list[dict[str, Any]] = []
    searches: list[tuple[str, dict[str, Any]]] = []  # (namespace searched, result)
    for tool, args, data in results:
        if "error" in data:
            continue
        namespaces |= {row["namespace"] for row in data.get("namespaces", []) if isinstance(row, dict)}
        if tool == "get_deployment" and "deployments" in data:
            namespaces.add(data["namespace"])
            for row in data["deployments"]:
                workloads.add((data["namespace"], row["name"]))
                if row.get("available", 0) < row.get("desired", 0) or row.get("desired") == 0:
                    down.add((data["namespace"], row["name"]))
                if BROKER.search(" ".join([row["name"], *row.get("images", [])])):
                    shared.add(data["namespace"])
                    brokers.add((data["namespace"], row["name"]))
        if tool == "get_deployment" and "name" in data and "deployments" not in data:
            details[(str(data.get("namespace")), str(data["name"]))] = data
        if tool == "get_queue_stats" and "queue" in data:
            quiet.append(data)
            refs = [c for c in data.get("consumed_by") or [] if isinstance(c, dict)]
            consumers |= {(c["namespace"], data["queue"]) for c in refs}
            consuming |= {(c["namespace"], c["name"], data["queue"]) for c in refs}
            if not data.get("consumers") and data.get("messages") and not data.get("dead_letters_from"):
                starved.add(data["queue"])
        if tool == "search_logs":
            samples += [line for line in data.get("samples") or [] if isinstance(line, dict)]
            searched = re.match(r"kube_namespace:(\S+) status:", str(args.get("query", "")))
            if searched:
                searches.append((searched.group(1), data))
    consumers |= {(ns, queue) for queue in starved for ns, name in down if _names(set(words(name)), queue)}
    calls = {(caller, ref[0]) for caller, data in searches for ref in addressed_workloads(
        data, caller, workloads, namespaces)}
    scope = scope_of(question, namespaces, workloads, consumers, shared, calls)
    if not scope.focus:
        return scope
    return replace(scope, focus=_flows_through(scope.focus, workloads, consuming, brokers | _missing_consumers(
        scope.focus, starved, down), samples, _stopped_producers(quiet, details)))


def _stopped_producers(queues: list[dict[str, Any]], details: dict[tuple[str, str], dict[str, Any]]
                       ) -> set[tuple[str, str, str]]:
    """(namespace, workload, queue) for a queue that went quiet when that workload went to 0 or rolled out: its
    producer, part of the flow of whoever consumes the queue."""
    from agent.producers import rolled_out_at, stopped_producer, went_to_zero_at

    changes = {ref: at for ref, detail in details.items()
               if (at := went_to_zero_at(detail, None) or rolled_out_at(detail))}
    return {(*found, str(queue["queue"])) for queue in queues if (found := stopped_producer(queue, changes))}


def _missing_consumers(focus: frozenset[tuple[str, str]], starved: set[str],
                       down: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """A queue named like a focused workload holds messages with no consumer: whichever workload of the same
    namespaces is down may be the consumer that is missing, so the work flows through it too."""
    focus_words = {w for _, name in focus for w in words(name)}
    if not any(_names(focus_words, queue) for queue in starved):
        return set()
    spaces = {ns for ns, _ in focus}
    return {ref for ref in down if ref[0] in spaces}


def _flows_through(focus: frozenset[tuple[str, str]], workloads: set[tuple[str, str]],
                   consuming: set[tuple[str, str, str]], brokers: set[tuple[str, str]],
                   samples: list[dict[str, Any]], producing: Collection[tuple[str, str, str]] = ()
                   ) -> frozenset[tuple[str, str]]:
    """The named workloads and what their work goes through: consumers of queues named like them, workloads
    their error lines address (a refused or timed-out dependency), the broker, and the producer that stopped
    feeding a queue they consume."""
    from agent.findings import mentioned_workloads

    reached = set(focus) | brokers
    focus_words = {w for _, name in focus for w in words(name)}
    reached |= {(ns, name) for ns, name, queue in consuming if _names(focus_words, queue)}
    fed = {queue for ns, name, queue in consuming if (ns, name) in focus}
    reached |= {(ns, name) for ns, name, queue in producing if queue in fed}
    names = [name for _, name in workloads]
    for ns, name in focus:
        own = [line for line in samples if line.get("service") == name]
        mentioned = mentioned_workloads({"samples": own}, names)
        reached |= {(wns, wname) for wns, wname in workloads if wname in mentioned and wns == ns}
    return frozenset(reached)


def conversation_scope(questions: list[str], results: list[tuple[str, dict[str, Any], dict[str, Any]]]) -> Scope:
    """The latest question that names a place sets the scope; follow-ups that name nothing keep it."""
    for question in reversed(questions):
        scope = scope_from_results(question, results)
        if not scope.everything or scope.excluded or scope.focus:
            return scope
    return EVERYTHING


def pre_production(namespace: str) -> bool:
    """A staging, dev or test environment's namespace, by its name's words."""
    return any(_env(w) in {"staging", "dev", "test"} for w in words(namespace))


def investigation_order(rows: list[dict[str, Any]], scope: Scope) -> list[str]:
    """The namespaces of a list_namespaces result in the order an SRE looks at them: the question's first, then
    production before the environments people test in (users report what production does), then those holding
    workloads that need attention, then those holding workloads at all (a namespace with none logs nothing a
    deployment wrote), then by name."""
    return [row["namespace"] for row in sorted(rows, key=lambda r: (
        not scope.covers(r["namespace"]), pre_production(r["namespace"]), not r.get("attention"),
        not r.get("deployments", 1), r["namespace"]))]
