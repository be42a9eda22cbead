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

from pydantic import BaseModel, Field, ValidationError

from agent.llm.base import ChatModel, ModelError
from agent.run import run_investigation
from agent.state import Budgets
from agent.verdict import Verdict
from evals.expectations import EvalScenario as Scenario
from evals.expectations import load_scenario
from evals.scoring import Score, error_score, score_run
from tools.replay import replay_sources
from tools.replay.loading import ScenarioError, list_scenarios

ModelFactory = Callable[[str, Scenario, int], ChatModel]
RESULTS_FILE = "results.json"


class ResultsError(Exception):
    """An earlier run's results cannot be used: the message names the file and what to do."""


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
    merged_from: list[str] = Field(default_factory=list, description="the results files a merged suite came from")

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


def _results_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ResultsError(f"{path}: no such folder; pass a folder an eval run wrote (sre-agent eval --report DIR)")
    if (path / RESULTS_FILE).is_file():
        return [path / RESULTS_FILE]
    nested = sorted(child / RESULTS_FILE for child in path.iterdir() if (child / RESULTS_FILE).is_file())
    if not nested:
        raise ResultsError(f"{path}: no {RESULTS_FILE} in it or in its subfolders; pass a folder an eval run wrote "
                           "(sre-agent eval --report DIR)")
    return nested


def _read_results(path: Path) -> SuiteResult:
    try:
        return load_results(path)
    except OSError as exc:
        reason = exc.strerror or exc
        raise ResultsError(f"{path}: cannot be read ({reason}); check the path and its permissions") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}); re-run the "
                           "eval or fetch the artifact again") from None
    except UnicodeDecodeError:
        raise ResultsError(f"{path}: not UTF-8 text; re-run the eval or fetch the artifact again") from None
    except RecursionError:
        raise ResultsError(f"{path}: JSON nested too deeply to be eval results; pass a results file written by "
                           "sre-agent eval") from None
    except ValidationError as exc:
        problems = exc.errors()
        where = ".".join(str(part) for part in problems[0]["loc"]) or "top level"
        more = f", and {len(problems) - 1} more problem(s)" if len(problems) > 1 else ""
        message = f"{where}: {problems[0]['msg']}{more}".replace("\n", " ")
        raise ResultsError(f"{path}: not eval results ({message}); pass a results file written by sre-agent eval") \
            from None


def load_report_dirs(paths: list[Path]) -> list[tuple[Path, SuiteResult]]:
    """Each path: a folder holding results.json, a folder of such folders (a nightly artifact), or the file itself."""
    return [(file, _read_results(file)) for path in paths for file in _results_files(path)]


def merge_suites(loaded: list[tuple[Path, SuiteResult]]) -> SuiteResult:
    """One suite from several runs (per-model nightly jobs, or shards of the scenarios), models and scenarios in
    alphabetical order whatever the order of the inputs; a run found twice is an error naming both files."""
    seen: dict[tuple[str, str, int], Path] = {}
    models: list[str] = []
    scenarios: list[str] = []
    runs: list[RunResult] = []
    for path, suite in loaded:
        for run in suite.runs:
            key = (run.model, run.scenario, run.trial)
            if key in seen:
                where = "given twice" if seen[key].resolve() == path.resolve() else f"also in {seen[key]}"
                raise ResultsError(f"{path}: {run.model} · {run.scenario} · trial {run.trial} is {where}; "
                                   "merge the results of different models (or different scenarios) only")
            seen[key] = path
            runs.append(run)
        models += [m for m in suite.models if m not in models]
        scenarios += [s for s in suite.scenarios if s not in scenarios]
    models.sort()
    scenarios.sort()
    order = {(m, s): i for i, (m, s) in enumerate((m, s) for m in models for s in scenarios)}
    runs.sort(key=lambda r: (order.get((r.model, r.scenario), len(order)), r.trial))
    finished = [s.finished for _, s in loaded if s.finished]
    return SuiteResult(started=min((s.started for _, s in loaded), default=""), finished=max(finished, default=None),
                       models=models, scenarios=scenarios, trials=max((s.trials for _, s in loaded), default=0),
                       runs=runs, merged_from=sorted(str(path) for path, _ in loaded))


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
