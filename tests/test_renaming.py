"""A verdict rests on the fault, not on the names: every suite scenario renamed (evals/renaming.py) is answered as
the scenario itself is."""

from __future__ import annotations

from pathlib import Path

import pytest

from evals.expectations import load_scenario
from evals.renaming import compare, renamed, write_renamed
from tools.replay.loading import builtin_scenarios_dir, list_scenarios


def test_names_are_renamed_word_by_word_everywhere_and_meaningful_words_stay(tmp_path: Path) -> None:
    source = builtin_scenarios_dir() / "tenant-asked-other-crashing"
    data, mapping = renamed(load_scenario(source), seed=1)
    assert mapping["tenant-acme"].endswith("-" + mapping["acme"]), "word by word: relations between names stay"
    assert mapping["acme.exports"] == f"{mapping['acme']}.{mapping['export']}s", "a plural keeps its stem's word"
    assert mapping["export-api"].endswith("-api") and mapping["platform-mq"].endswith("-mq")
    text = str(data)
    assert "acme" not in text.lower() and "globex" not in text.lower()
    assert mapping["acme"].capitalize() in data["question"], "the question names the tenant as people do"
    assert data["expect"]["watch"] == [f"no_consumer:{mapping['globex']}.{mapping['export']}s"]
    copy = load_scenario(write_renamed(source, tmp_path, seed=1))  # still a valid scenario
    assert copy.world.namespace == mapping["tenant-acme"]


@pytest.mark.parametrize("seed", [1])
def test_the_baseline_answers_every_renamed_suite_scenario_as_the_scenario_itself(seed: int) -> None:
    rows = compare(list_scenarios(), "playbook", seed)
    changed = [f"{name}: {'passes' if before else 'fails'} as written, not renamed" for name, before, after in rows
               if before != after]
    assert len(rows) >= 45 and changed == []
