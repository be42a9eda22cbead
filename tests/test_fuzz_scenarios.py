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
import signal
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from evals.expectations import load_scenario
from tests.fuzzing import CASES, fuzz_settings, hang_guard, text_mutations, tree_mutations
from tools.errors import SourceError
from tools.registry import default_toolbox
from tools.replay import replay_sources
from tools.replay.limits import MAX_FILE_BYTES
from tools.replay.loading import ScenarioError, builtin_scenarios_dir

CASE_SECONDS = 5.0  # a case slower than this fails; one that hangs is stopped by tests.fuzzing.hang_guard
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


@st.composite
def cases(draw: st.DrawFn) -> tuple[Original, str, str | bytes, str | bytes]:
    """(scenario, what was mutated, its file's content, the base file's content)."""
    original = draw(st.sampled_from(ORIGINALS))
    target = draw(st.sampled_from(["scenario", "scenario", "scenario", "base"] if original.extends else ["scenario"]))
    text, data = (original.text, original.data) if target == "scenario" else (BASE_TEXT, BASE_DATA)
    if draw(st.integers(min_value=0, max_value=3)) == 0:
        mutated: str | bytes = draw(text_mutations(text, MAX_FILE_BYTES + 1))
    else:
        mutated = yaml.safe_dump(draw(tree_mutations(data)), allow_unicode=True, sort_keys=False)
    if target == "scenario":
        return original, target, mutated, BASE_TEXT
    return original, target, original.text, mutated


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

    @fuzz_settings()
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
        started = time.monotonic()
        with hang_guard():
            outcome = replay(folder)
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
