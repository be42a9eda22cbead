"""`sre-agent eval`: scenarios × models × trials, scored deterministically, with reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.cli.common import UsageProblem, err, friendly_errors, out
from agent.llm.base import ChatModel
from agent.llm.resolve import MODEL_HELP, resolve_model

if TYPE_CHECKING:  # the harness, the scorer and the model clients load only when the command runs
    from evals.runner import RunResult
    from tools.replay.scenario import Scenario

SERIAL_MODELS = {"local"}


def model_factory(seed: int) -> object:
    shared: dict[str, ChatModel] = {}

    from agent.llm.openai_model import OpenAIChatModel

    def factory(spec: str, scenario: Scenario, trial: int) -> ChatModel:
        if spec in SERIAL_MODELS:
            if spec not in shared:
                shared[spec] = resolve_model(spec)
            model = shared[spec]
        else:
            model = resolve_model(spec)
        if isinstance(model, OpenAIChatModel):
            model.seed = seed + trial
        return model

    return factory


def eval_command(
    scenarios: Annotated[list[Path] | None, typer.Option(
        "--scenarios", help="scenario folder, or folder of scenario folders (repeatable); default: built-in")] = None,
    models: Annotated[list[str] | None, typer.Option("--model", help=f"repeatable; {escape(MODEL_HELP)}")] = None,
    trials: Annotated[int, typer.Option(min=1, help="runs per scenario × model")] = 1,
    jobs: Annotated[int, typer.Option(min=1, help="parallel runs (the local model always runs one at a time)")] = 2,
    report: Annotated[Path, typer.Option(help="folder for results.json, junit.xml, report.md, report.html")] = Path(
        "reports/evals"),
    min_pass_rate: Annotated[float, typer.Option(min=0, max=1, help="exit 1 if any model passes less")] = 0.0,
    seed: Annotated[int, typer.Option(help="base sampling seed; trial k uses seed + k")] = 7,
) -> None:
    """Run the eval suite and write reports; exit 1 if a model's pass rate is below --min-pass-rate."""
    from evals.reports import markdown, write_reports
    from evals.runner import collect_scenarios, model_summary, run_suite
    from tools.replay.scenario import builtin_scenarios_dir

    chosen_models = models or ["playbook"]
    with friendly_errors():
        loaded = collect_scenarios(scenarios or [builtin_scenarios_dir()])
        for spec in chosen_models:
            if spec not in SERIAL_MODELS:
                try:
                    resolve_model(spec)
                except Exception as exc:
                    raise UsageProblem(str(exc)) from None
    total = len(loaded) * len(chosen_models) * trials
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        task = progress.add_task("evaluating", total=total)

        def advance(result: RunResult) -> None:
            mark = "pass" if result.passed else "FAIL"
            progress.update(task, advance=1, description=f"{result.model} · {result.scenario} · {mark}")

        suite = run_suite(loaded, chosen_models, trials, model_factory(seed),  # type: ignore[arg-type]
                          jobs=jobs, serial_models=SERIAL_MODELS, results_path=report / "results.json",
                          on_result=advance)
    paths = write_reports(suite, report)
    out.print(markdown(suite).split("\n## Failed checks")[0].split("\n## Reliability")[0], markup=False)
    err.print("reports: " + ", ".join(str(p) for p in paths.values()), markup=False, highlight=False)
    below = [row for row in model_summary(suite) if row["pass_rate"] < min_pass_rate]
    if below:
        for row in below:
            err.print(f"{row['model']}: pass rate {row['pass_rate']:.0%} is below {min_pass_rate:.0%}", markup=False)
        raise typer.Exit(1)
