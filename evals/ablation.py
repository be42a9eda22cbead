"""How much the guided graph decides on its own: the suite run through guided mode by pickers with no judgment.

Guided mode narrows each choice to options consistent with what the tools showed. If a picker that always takes
the first, the last or a random option passed the suite, the narrowing would be giving the answers away and the
evals would no longer measure the model. This prints their pass rates; a test keeps them well below the model's.

    python -m evals.ablation [--trials 3]
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agent.llm.base import AssistantTurn, Message
from agent.run import run_investigation
from evals.expectations import load_scenario
from evals.scoring import score_run
from tools.replay import replay_sources
from tools.replay.loading import list_scenarios

PICKERS = ("first", "last", "random")


@dataclass
class NoJudgment:
    """A guided 'model' that fills each constrained schema by position, never by reading the results."""

    pick: str
    seed: int = 0
    name: str = "no-judgment"
    is_baseline: bool = True
    guided: bool = True
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def _choose(self, options: list[Any]) -> Any:
        if self.pick == "first":
            return options[0]
        return options[-1] if self.pick == "last" else self.rng.choice(options)

    def complete(self, messages: list[Message], tools: list[dict[str, Any]],
                 response_schema: dict[str, Any] | None = None) -> AssistantTurn:
        branch = self._choose((response_schema or {}).get("anyOf") or [response_schema or {}])
        choice: dict[str, Any] = {}
        for key, spec in (branch.get("properties") or {}).items():
            if spec.get("enum"):
                choice[key] = self._choose(spec["enum"])
            elif spec.get("type") == "number":
                choice[key] = 0.7
            elif spec.get("type") == "array":
                choice[key] = []
        return AssistantTurn(content=json.dumps(choice))


def incident_scenarios() -> list[Path]:
    """The suite's incidents: a healthy world whose every workload's state is explained leaves only 'healthy' to
    choose, so there a picker passes by construction; incidents measure whether code picks the cause."""
    return [path for path in list_scenarios() if (expect := load_scenario(path).expect) is not None
            and "incident" in expect.statuses]


def pass_rate(pick: str, trials: int, scenarios: list[Path] | None = None) -> tuple[int, int]:
    passed = total = 0
    for path in scenarios or list_scenarios():
        scenario = load_scenario(path)
        for trial in range(trials if pick == "random" else 1):
            result = run_investigation(scenario.question, NoJudgment(pick, seed=trial), replay_sources(scenario))
            passed += score_run(result.verdict, result.observations, scenario).passed
            total += 1
    return passed, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=3, help="trials for the random picker")
    args = parser.parse_args()
    incidents = incident_scenarios()
    for pick in PICKERS:
        passed, total = pass_rate(pick, args.trials)
        on_incidents, of = pass_rate(pick, args.trials, incidents)
        print(f"guided mode, {pick}-option picker: {passed}/{total} = {passed / total:.0%} of the suite, "
              f"{on_incidents}/{of} = {on_incidents / of:.0%} of its incidents")


if __name__ == "__main__":
    main()
