"""Hypothesis mutates real scenario files (issue 16) and every case must end in a valid scenario that replays, or in
the loader's clear error (`ScenarioError`, one line per problem, each naming a file), within a time bound: never a
traceback, a hang or an unbounded world.

Mutations: a field dropped or replaced by a value of the wrong type, a number made 10 to 10⁶ times larger (the
worlds that stay valid are the heavy ones the replay budget must keep fast), a huge, negative, infinite or NaN
number, a time out of range or without a zone, random unicode, a long string or list, deep nesting, an unknown
field, an entry duplicated; or the text itself cut, spliced with random unicode or bytes, replaced by binary, or
padded past the size limit. The base file a scenario extends is mutated too. The generated cases are the same on
every run (`derandomize`); `SRE_AGENT_FUZZ_RANDOM=1` draws new ones and `SRE_AGENT_FUZZ_CASES` sets how many
(500)."""

from __future__ import annotations

import contextlib
import copy
import math
import os
import signal
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evals.expectations import load_scenario
from tools.errors import SourceError
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.replay.limits import MAX_FILE_BYTES
from tools.replay.loading import ScenarioError, builtin_scenarios_dir

CASES = int(os.environ.get("SRE_AGENT_FUZZ_CASES", "500"))
CASE_SECONDS = 5.0  # a case slower than this fails; one that hangs is stopped at HANG_SECONDS
HANG_SECONDS = 30
# Small real worlds (one extends the Sock Shop base, one has a ScaledObject, one a hang, one a second vhost…), so that
# the valid cases replay in tens of milliseconds.
BASES = ["incident-5", "keda-report-builder-idle", "claims-ocr-worker-hung", "renamed-topology", "rollout-sql-500s",
         "tenant-asked-other-crashing", "batch-exporter-parked"]
BASE_FILE = builtin_scenarios_dir() / "_base" / "sock-shop.yaml"
TOOLBOX = default_toolbox()


@dataclass(frozen=True)
class Original:
    id: str
    text: str
    data: dict[str, Any]
    extends: bool


ORIGINALS = [Original(i, text, yaml.safe_load(text), "extends:" in text)
             for i in BASES for text in [(builtin_scenarios_dir() / i / "scenario.yaml").read_text(encoding="utf-8")]]
BASE_TEXT = BASE_FILE.read_text(encoding="utf-8")
BASE_DATA = yaml.safe_load(BASE_TEXT)


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value under `node` (mapping keys and list indexes)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**20, 10**400, 1e20, -1e20, 1e308, 5e-324, math.inf, -math.inf,
                     math.nan]),
    st.floats(allow_nan=True, allow_infinity=True),
)
TIMES = st.sampled_from(["2025-11-09T14:47:30Z", "2025-11-09T14:47:30", "0001-01-01T00:00:00Z",
                         "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2015-11-09T14:47:30Z", "not a time",
                         "2025-02-30T00:00:00Z", ""])
VALUES = st.one_of(
    st.none(), st.booleans(), NUMBERS, TIMES,
    st.text(max_size=40),  # random unicode
    st.binary(max_size=24),  # dumped as !!binary
    st.sampled_from(["x" * 5000, "{id}" * 900, "{", "}", "{0}", "{n:>1000000}", " ", "\u202e", "../../etc/passwd"]),
    st.lists(NUMBERS, max_size=3), st.dictionaries(st.text(max_size=6), NUMBERS, max_size=3),
    st.integers(min_value=1, max_value=300).map(nested),
    st.sampled_from([[0] * 1500, {f"k{i}": i for i in range(1500)}]),
)


@st.composite
def tree_mutations(draw: st.DrawFn, data: Any) -> Any:
    """`data` (a deep copy) with one or a few structural changes."""
    data = yaml.safe_load(yaml.safe_dump(data))  # a copy
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = list(paths(data))
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        kind = draw(st.sampled_from(["drop", "replace", "replace", "replace", "unknown", "duplicate", "scale"]))
        if kind == "drop":
            del parent[last]
        elif kind == "replace":
            parent[last] = copy.deepcopy(draw(VALUES))  # never the strategy's own list or mapping
        elif kind == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = copy.deepcopy(draw(VALUES))
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(parent[last])
        elif kind == "scale" and isinstance(parent[last], int | float) and not isinstance(parent[last], bool):
            parent[last] *= 10 ** draw(st.integers(min_value=1, max_value=6))  # big, often still valid
    return data


@st.composite
def text_mutations(draw: st.DrawFn, text: str) -> str | bytes:
    kind = draw(st.sampled_from(["cut", "splice", "bytes", "binary", "huge", "repeat"]))
    at = draw(st.integers(min_value=0, max_value=len(text)))
    if kind == "cut":
        return text[:at]
    if kind == "splice":
        return text[:at] + draw(st.text(min_size=1, max_size=20)) + text[at:]
    if kind == "bytes":
        return text[:at].encode() + draw(st.binary(min_size=1, max_size=20)) + text[at:].encode()
    if kind == "binary":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "huge":
        return text + "#" * (MAX_FILE_BYTES + 1)
    return text + "\n" + text[:at]


@st.composite
def cases(draw: st.DrawFn) -> tuple[Original, str, str | bytes, str | bytes]:
    """(scenario, what was mutated, its file's content, the base file's content)."""
    original = draw(st.sampled_from(ORIGINALS))
    target = draw(st.sampled_from(["scenario", "scenario", "scenario", "base"] if original.extends else ["scenario"]))
    text, data = (original.text, original.data) if target == "scenario" else (BASE_TEXT, BASE_DATA)
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        mutated: str | bytes = draw(text_mutations(text))
    else:
        mutated = yaml.safe_dump(draw(tree_mutations(data)), allow_unicode=True, sort_keys=False)
    if target == "scenario":
        return original, target, mutated, BASE_TEXT
    return original, target, original.text, mutated


class Hung(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise Hung(f"a case ran past {HANG_SECONDS} s")


def replay(folder: Path) -> str:
    """'valid' after a replay and one call of every tool, or 'clear error' for a ScenarioError that names a file."""
    try:
        scenario = load_scenario(folder)
    except ScenarioError as exc:
        lines = str(exc).splitlines()
        assert lines and all(line.startswith(str(folder.parent)) for line in lines), str(exc)
        return "clear error"
    sources = replay_sources(scenario)  # a valid world is never refused by the simulator at its clock
    for tool, args in [("get_queue_stats", {}), ("list_namespaces", {}), ("list_events", {}),
                       ("search_logs", {"query": "*"}), ("get_metric", {"query": "avg:kubernetes.cpu.usage.total{*}"}),
                       ("get_deployment", {"name": scenario.world.deployments[0].name})]:
        with contextlib.suppress(SourceError):  # a fault the scenario injects
            TOOLBOX.call(sources, tool, args)
    return "valid"


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM to stop a hang")
def test_mutated_scenarios_load_or_fail_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts: Counter[str] = Counter()
    slowest: list[tuple[float, str]] = [(0.0, "")]
    (tmp_path / "_base").mkdir()

    @settings(max_examples=CASES, deadline=None, database=None, print_blob=True,
              derandomize=os.environ.get("SRE_AGENT_FUZZ_RANDOM") != "1",
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.large_base_example])
    @given(cases())
    def case(drawn: tuple[Original, str, str | bytes, str | bytes]) -> None:
        original, target, content, base = drawn
        folder = tmp_path / original.id
        folder.mkdir(exist_ok=True)
        for path, value in ((folder / "scenario.yaml", content), (tmp_path / "_base" / "sock-shop.yaml", base)):
            if isinstance(value, bytes):
                path.write_bytes(value)
            else:
                path.write_text(value, encoding="utf-8")
        previous = signal.signal(signal.SIGALRM, _alarm)
        signal.setitimer(signal.ITIMER_REAL, HANG_SECONDS)
        started = time.monotonic()
        try:
            outcome = replay(folder)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)
        elapsed = time.monotonic() - started
        assert elapsed < CASE_SECONDS, f"{original.id} ({target} mutated): {elapsed:.1f} s"
        counts[outcome] += 1
        if elapsed > slowest[0][0]:
            slowest[0] = (elapsed, f"{original.id}, {target} mutated, {outcome}")

    case()
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nfuzzed scenario files: {total} cases, {counts['valid']} valid (replayed, every tool called), "
              f"{counts['clear error']} clear errors, 0 tracebacks, 0 hangs; slowest {slowest[0][0]:.2f} s "
              f"({slowest[0][1]})")
    assert total >= CASES
    assert counts["valid"] and counts["clear error"]
