"""Does a verdict survive new names? Every scenario again, with its namespaces, workloads, queues, vhosts, labels and
cluster renamed, consistently, everywhere they appear (log lines, events, annotations, the question, the expected
answer).

Names are renamed word by word ("docket-lookup-v2" → "heron-lupine-v2", "docket" → "heron"), so the relations
between names that real systems have (a Service named after its app label, a queue named after its consumer) stay,
and the words that carry meaning everywhere stay too (`renaming-words.yaml`): environments (prod, staging, dev),
roles (api, worker, gateway), versions, numbers, broker and database products. An agent that passes a scenario
and fails its renaming has learnt a name, not the fault.

    python -m evals.renaming [--model playbook] [--seed 1] [DIR ...]
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml

from evals.expectations import EvalScenario, load_scenario

_LISTS = yaml.safe_load((Path(__file__).parent / "renaming-words.yaml").read_text(encoding="utf-8"))
KEPT = frozenset(_LISTS["kept"].split())
SPOKEN_KEPT = frozenset(_LISTS["spoken_kept"].split())
WORDS = list(dict.fromkeys(_LISTS["fresh"].split()))
_SEPARATOR = re.compile(r"([-_.:/@]+)")
_SKIPPED_KEYS = frozenset({"id", "category", "status", "action", "kind", "pod_state", "required_signals", "type",
                           "mode", "source", "resource", "when", "error", "signal", "field", "at", "now", "start"})


def _names(data: dict[str, Any]) -> set[str]:
    world = data.get("world") or {}
    names = {world.get("namespace"), world.get("cluster"), *world.get("extra_namespaces", [])}
    names.add((world.get("broker") or {}).get("deployment"))
    for deployment in world.get("deployments", []):
        names |= {deployment.get("name"), deployment.get("namespace"), *(deployment.get("labels") or {}).values()}
    for queue in world.get("queues", []):
        names |= {queue.get("name"), queue.get("vhost")}
    return {n for n in names if isinstance(n, str) and n and n != "/"}


def _keeps(word: str) -> bool:
    return len(word) <= 2 or word.lower() in KEPT or bool(re.fullmatch(r"v?\d+[a-z]?\d*|\d.*", word.lower()))


def renaming(data: dict[str, Any], seed: int) -> dict[str, str]:
    """Old name → new name, word by word, with words that appear nowhere in the scenario; and each renamed word
    (lower case) → its new word, for the question, where people name things by a word of their name."""
    text = yaml.safe_dump(data).lower()
    fresh = [w for w in WORDS if w not in text]
    random.Random(seed).shuffle(fresh)
    names = sorted(_names(data))
    words: dict[str, str] = {}
    for word in sorted({p.lower() for n in names for p in _SEPARATOR.split(n) if not _SEPARATOR.fullmatch(p)
                        and not _keeps(p)}, key=lambda w: (len(w), w)):
        # a word that extends a shorter one by a suffix (exports, transcoder) keeps the relation: tundras, swiftr
        stem = next((w for w in sorted(words, key=len, reverse=True)
                     if len(w) >= 4 and word.startswith(w) and len(word) - len(w) <= 3), None)
        words[word] = words[stem] + word[len(stem):] if stem else (fresh.pop() if fresh else f"w{len(words)}x")
    mapping = {name: "".join(part if _SEPARATOR.fullmatch(part) or _keeps(part) else words[part.lower()]
                             for part in _SEPARATOR.split(name)) for name in names}
    spoken = {word: new for word, new in words.items() if word not in SPOKEN_KEPT}
    return {old: new for old, new in {**spoken, **mapping}.items() if old != new}


def _substitute(value: Any, pattern: re.Pattern[str], mapping: dict[str, str], key: str = "") -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, pattern, mapping, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, pattern, mapping, key) for v in value]
    if isinstance(value, str) and key not in _SKIPPED_KEYS:
        return pattern.sub(lambda match: _cased(match.group(0), mapping[match.group("name").lower()]
                                                + match.group(0)[len(match.group("name")):]), value)
    return value


def _cased(seen: str, new: str) -> str:
    """People write names as they speak them: Acme, ACME, acme."""
    return new.upper() if seen.isupper() and len(seen) > 1 else new.capitalize() if seen[:1].isupper() else new


def _pattern(names: dict[str, str], plural: str = "") -> re.Pattern[str]:
    alternatives = "|".join(re.escape(name) for name in sorted(names, key=len, reverse=True))
    return re.compile(rf"(?<![A-Za-z0-9_])(?P<name>{alternatives}){plural}(?![A-Za-z0-9_])", re.IGNORECASE)


def renamed(scenario: EvalScenario, seed: int) -> tuple[dict[str, Any], dict[str, str]]:
    """The scenario's data with every name replaced (in the question, every word of one too), and the renaming."""
    data = scenario.model_dump(mode="json", exclude_defaults=True)
    mapping = {old.lower(): new for old, new in renaming(data, seed).items()}
    names = {old: new for old, new in mapping.items() if _SEPARATOR.search(old) or old in _names_lower(data)}
    if not names:
        return data, mapping
    data = _substitute(data, _pattern(names), names)
    data["question"] = _substitute(data["question"], _pattern(mapping, plural="(?:e?s)?"), mapping)
    return data, mapping


def _names_lower(data: dict[str, Any]) -> set[str]:
    return {name.lower() for name in _names(data)}


def write_renamed(source: Path, folder: Path, seed: int) -> Path:
    """A renamed copy of the scenario at `source`, as `<folder>/<id>/scenario.yaml`."""
    data, _ = renamed(load_scenario(source), seed)
    target = folder / str(data["id"]) / "scenario.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return target.parent


def compare(paths: list[Path], model_spec: str, seed: int) -> list[tuple[str, bool, bool]]:
    """(scenario id, passed as written, passed renamed) for each scenario."""
    from agent.llm.resolve import resolve_model
    from agent.run import run_investigation
    from evals.scoring import score_run
    from tools.replay import replay_sources

    rows = []
    with tempfile.TemporaryDirectory(prefix="renamed-") as scratch:
        for path in paths:
            outcomes = []
            for variant in (path, write_renamed(path, Path(scratch), seed)):
                scenario = load_scenario(variant)
                result = run_investigation(scenario.question, resolve_model(model_spec), replay_sources(scenario))
                outcomes.append(score_run(result.verdict, result.observations, scenario).passed)
            rows.append((path.name, outcomes[0], outcomes[1]))
    return rows


def main() -> None:
    from tools.replay.loading import list_scenarios

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dirs", nargs="*", type=Path, help="scenario folders or sets (default: the suite)")
    parser.add_argument("--model", default="playbook")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    paths = [p for d in args.dirs for p in ([d] if (d / "scenario.yaml").exists() else list_scenarios(d))] \
        if args.dirs else list_scenarios()
    rows = compare(paths, args.model, args.seed)
    for name, before, after in rows:
        if before != after:
            print(f"{name}: {'passes' if before else 'fails'} as written, {'passes' if after else 'fails'} renamed")
    print(f"{args.model}: {sum(b for _, b, _ in rows)}/{len(rows)} as written, "
          f"{sum(a for _, _, a in rows)}/{len(rows)} renamed (seed {args.seed})")


if __name__ == "__main__":
    main()
