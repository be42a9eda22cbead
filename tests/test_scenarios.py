from pathlib import Path

import pytest

from evals.expectations import load_scenario
from tools.replay import replay_sources
from tools.replay.loading import ScenarioError, list_scenarios

VALID = """
id: tiny
title: tiny
question: is it ok?
clock: {now: "2025-01-01T01:00:00Z"}
world:
  start: "2025-01-01T00:00:00Z"
  namespace: ns
  deployments:
    - {name: worker, image: "w:1"}
"""


def write(tmp_path: Path, text: str) -> Path:
    folder = tmp_path / "tiny"  # a scenario folder is named after its id
    folder.mkdir(exist_ok=True)
    (folder / "scenario.yaml").write_text(text)
    return folder


def test_every_builtin_scenario_loads() -> None:
    folders = list_scenarios()
    assert {f.name for f in folders} >= {"incident-5", "incident-5-healthy"}
    for folder in folders:
        assert load_scenario(folder).id == folder.name


def test_valid_external_scenario(tmp_path: Path) -> None:
    scenario = load_scenario(write(tmp_path, VALID))
    assert scenario.world.deployments[0].name == "worker"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (VALID.replace("question: is it ok?\n", ""), "question: Field required"),
        (VALID.replace('image: "w:1"', 'image: "w:1", replicas: -1'), "world.deployments.0.replicas"),
        (VALID + "  queues:\n    - {name: q, consumer: {deployment: ghost}}\n",
         "queue 'q' consumer names unknown deployment ns/ghost"),
        (VALID.replace('now: "2025-01-01T01:00:00Z"', 'now: "2024-01-01T00:00:00Z"'), "must be after world.start"),
        (VALID + "surprise: 1\n", "surprise: Extra inputs are not permitted"),
        ("id: [unclosed", "not valid YAML"),
        ("- a list", "expected a mapping"),
        ("extends: ../nowhere.yaml\n" + VALID, "which does not exist"),
    ],
)
def test_broken_scenarios_name_file_field_and_reason(tmp_path: Path, text: str, expected: str) -> None:
    folder = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_scenario(folder)
    assert str(folder / "scenario.yaml") in str(info.value)
    assert expected in str(info.value)


def test_replays_are_identical() -> None:
    first, second = replay_sources("incident-5"), replay_sources("incident-5")
    assert first.extras["world"].logs == second.extras["world"].logs
    assert first.extras["world"].events == second.extras["world"].events


def test_validate_takes_a_whole_suite_folder(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from agent.cli import app

    suite = Path(__file__).resolve().parents[1] / "evals" / "scenarios"
    result = CliRunner().invoke(app, ["scenarios", "validate", str(suite)])
    assert result.exit_code == 0, result.output
    assert result.output.count("\nok ") + result.output.startswith("ok ") == len(list_scenarios(suite))
    broken = tmp_path / "suite" / "typo"
    broken.mkdir(parents=True)
    (broken / "scenario.yaml").write_text((suite / "incident-5" / "scenario.yaml").read_text()
                                          .replace("id: incident-5", "id: typo")
                                          .replace("extends: ../_base/sock-shop.yaml",
                                                   f"extends: {suite / '_base' / 'sock-shop.yaml'}")
                                          .replace("category: consumer_unavailable", "category: consumer_dead"))
    failed = CliRunner().invoke(app, ["scenarios", "validate", str(tmp_path / "suite")])
    assert failed.exit_code == 2 and "consumer_dead" in failed.output and "Traceback" not in failed.output
