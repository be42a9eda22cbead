"""A set of questions of different kinds asked of built-in worlds, each scored like a suite scenario."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from evals.expectations import EvalScenario, Expect, load_scenario

QUESTIONS = Path(__file__).parent / "questions.yaml"


class AskedQuestion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    scenario: str
    question: str
    expect: dict[str, Any]


def question_cases(path: Path = QUESTIONS) -> list[EvalScenario]:
    """Each entry as a scenario: its world, the entry's question and expect block (validated against the world)."""
    cases = []
    for index, raw in enumerate(yaml.safe_load(path.read_text(encoding="utf-8"))):
        entry = AskedQuestion.model_validate(raw)
        base = load_scenario(entry.scenario)
        data = base.model_dump(mode="json") | {"id": f"{entry.scenario}-q{index + 1}", "question": entry.question,
                                               "expect": Expect.model_validate(entry.expect).model_dump(mode="json")}
        cases.append(EvalScenario.model_validate(data))
    return cases
