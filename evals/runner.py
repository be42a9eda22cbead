"""Run every scenario × model × trial, score each run, and keep results safe as they arrive."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from agent.llm.base import ChatModel, ModelError
from agent.run import run_investigation
from agent.state import Budgets
from agent.verdict import Verdict
from evals.scoring import Score, error_score, score_run
from tools.replay import replay_sources
from tools.replay.scenario import Scenario, ScenarioError, list_scenarios, load_scenario

ModelFactory = Callable[[str, Scenario, int], ChatModel]


class RunResult(BaseModel):
    scenario: str
    model: str
    trial: int
    passed: bool
    score: Score
    verdict: Verdict | None = None
    error: str | None = None


class SuiteResult(BaseModel):
    started: str
    finished: str | None = None
    models: list[str]
    scenarios: list[str]
    trials: int
    runs: list[RunResult] = Field(default_factory=list)

    def pass_rate(self, model: str | None = None, scenario: str | None = None) -> float:
        chosen = [r for r in self.runs if model in (None, r.model) and scenario in (None, r.scenario)]
        return sum(r.passed for r in chosen) / len(chosen) if chosen else 0.0


def collect_scenarios(paths: list[Path]) -> list[Scenario]:
    """Scenario folders from each path: a scenario folder, a scenario file, or a folder of scenario folders."""
    folders: list[Path] = []
    for path in paths:
        if (path / "scenario.yaml").is_file() or path.is_file():
            folders.append(path)
        elif path.is_dir():
            found = list_scenarios(path)
            if not found:
                raise ScenarioError(f"{path}: no scenario folders (folders holding scenario.yaml) inside")
            folders += found
        else:
            raise ScenarioError(f"{path}: no such scenario folder or file")
    scenarios = [load_scenario(folder) for folder in folders]
    unscored = [s.id for s in scenarios if s.expect is None]
    if unscored:
        raise ScenarioError(f"scenarios without an expect block cannot be scored: {', '.join(unscored)}")
    return scenarios


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)


@dataclass
class Job:
    scenario: Scenario
    model: str
    trial: int


def run_one(job: Job, factory: ModelFactory, budgets: Budgets | None) -> RunResult:
    try:
        model = factory(job.model, job.scenario, job.trial)
        result = run_investigation(job.scenario.question, model, replay_sources(job.scenario), budgets=budgets)
    except (ModelError, ScenarioError) as exc:
        return RunResult(scenario=job.scenario.id, model=job.model, trial=job.trial, passed=False,
                         score=error_score(str(exc)), error=str(exc))
    except Exception as exc:  # a crashing run is a failed run with its reason kept, never a lost suite
        message = f"{type(exc).__name__}: {exc}"
        return RunResult(scenario=job.scenario.id, model=job.model, trial=job.trial, passed=False,
                         score=error_score(message), error=message)
    score = score_run(result.verdict, result.observations, job.scenario)
    return RunResult(scenario=job.scenario.id, model=job.model, trial=job.trial, passed=score.passed, score=score,
                     verdict=result.verdict)


def run_suite(scenarios: list[Scenario], models: list[str], trials: int, factory: ModelFactory, *,
              jobs: int = 1, serial_models: set[str] | None = None, budgets: Budgets | None = None,
              results_path: Path | None = None, on_result: Callable[[RunResult], None] | None = None) -> SuiteResult:
    suite = SuiteResult(started=datetime.now(UTC).isoformat(timespec="seconds"), models=models,
                        scenarios=[s.id for s in scenarios], trials=trials)
    work = [Job(s, m, t) for m in models for s in scenarios for t in range(trials)]
    serial = [j for j in work if j.model in (serial_models or set())]
    parallel = [j for j in work if j not in serial]

    def record(result: RunResult) -> None:
        suite.runs.append(result)
        if results_path:
            write_atomically(results_path, suite.model_dump_json(indent=1))
        if on_result:
            on_result(result)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_one, job, factory, budgets) for job in parallel]
        for job in serial:
            record(run_one(job, factory, budgets))
        for future in as_completed(futures):
            record(future.result())
    order = {(m, s.id, t): i for i, (m, s, t) in enumerate((j.model, j.scenario, j.trial) for j in work)}
    suite.runs.sort(key=lambda r: order[(r.model, r.scenario, r.trial)])
    suite.finished = datetime.now(UTC).isoformat(timespec="seconds")
    if results_path:
        write_atomically(results_path, suite.model_dump_json(indent=1))
    return suite


def load_results(path: Path) -> SuiteResult:
    return SuiteResult.model_validate(json.loads(path.read_text(encoding="utf-8")))


def model_summary(suite: SuiteResult) -> list[dict[str, Any]]:
    rows = []
    for model in suite.models:
        runs = [r for r in suite.runs if r.model == model]
        done = [r.score.efficiency for r in runs]
        rows.append({"model": model, "runs": len(runs), "passed": sum(r.passed for r in runs),
                     "pass_rate": suite.pass_rate(model), **_medians(done)})
    return rows


def _medians(items: list[Any]) -> dict[str, float]:
    def median(values: list[float]) -> float:
        ordered = sorted(values)
        if not ordered:
            return 0.0
        mid = len(ordered) // 2
        return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2

    return {"median_elapsed_s": round(median([e.elapsed_s for e in items]), 3),
            "median_llm_calls": median([e.llm_calls for e in items]),
            "median_tool_calls": median([e.tool_calls for e in items]),
            "median_tokens": median([e.tokens for e in items])}
