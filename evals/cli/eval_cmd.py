"""`sre-agent eval`: scenarios × models × trials, scored deterministically, with reports."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from agent.cli.common import UsageProblem, err, friendly_errors
from agent.llm.base import ChatModel
from agent.llm.resolve import MODEL_HELP, resolve_model

if TYPE_CHECKING:  # the harness, the scorer and the model clients load only when the command runs
    from evals.expectations import EvalScenario as Scenario
    from evals.runner import RunResult, SuiteResult

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


DEFAULT_REPORT = Path("reports/evals")
DEFAULT_MERGED = Path("reports/merged")
RUN_DEFAULTS = {"--trials": 1, "--jobs": 2, "--seed": 7}


def _route(extra: list[Path], scenarios: list[Path] | None,
           merge: list[Path] | None) -> tuple[list[Path] | None, list[Path] | None]:
    """Paths after `--scenarios a` or `--merge a` (`--scenarios a b c`) arrive as extra arguments: they join the flag
    given (the two never go together); with neither flag they are a mistake."""
    if merge is not None:
        return scenarios, merge + extra
    if scenarios is not None:
        return scenarios + extra, merge
    if extra:
        raise UsageProblem(f"unexpected argument {str(extra[0])!r}: scenario folders go after --scenarios, report "
                           "folders after --merge, and --model takes one model per flag")
    return scenarios, merge


def _load_reports(paths: list[Path]) -> SuiteResult:
    from evals.runner import ResultsError, load_report_dirs, merge_suites

    try:
        return merge_suites(load_report_dirs(paths))
    except ResultsError as exc:
        raise UsageProblem(str(exc)) from None


def eval_command(
    extra: Annotated[list[Path] | None, typer.Argument(
        metavar="PATH", show_default=False,
        help="more folders for --scenarios or --merge, after the flag: --scenarios a b c")] = None,
    scenarios: Annotated[list[Path] | None, typer.Option(
        "--scenarios", help="scenario folder, or folder of scenario folders; several may follow one flag "
        "(--scenarios a b) or the flag may be repeated; default: built-in")] = None,
    models: Annotated[list[str] | None, typer.Option("--model", help=f"repeatable; {escape(MODEL_HELP)}")] = None,
    trials: Annotated[int, typer.Option(min=1, help="runs per scenario × model")] = RUN_DEFAULTS["--trials"],
    jobs: Annotated[int, typer.Option(min=1, help="parallel runs (the local model always runs one at a time)")] = (
        RUN_DEFAULTS["--jobs"]),
    report: Annotated[Path | None, typer.Option(
        help="folder for results.json, junit.xml, report.md, report.html (and comparison.json with --previous); "
        f"default: {DEFAULT_REPORT}, with --merge {DEFAULT_MERGED}", show_default=False)] = None,
    merge: Annotated[list[Path] | None, typer.Option(
        "--merge", metavar="DIR", help="run nothing: combine earlier eval report folders (each holding results.json, "
        "or a folder of them such as a nightly artifact) into one report; several may follow one flag")] = None,
    previous: Annotated[list[Path] | None, typer.Option(
        "--previous", metavar="DIR", help="an earlier report folder (repeatable; merged if several) whose pass rates "
        "are shown beside today's, per model and per scenario, with the delta")] = None,
    min_pass_rate: Annotated[float, typer.Option(min=0, max=1, help="exit 1 if any model passes less")] = 0.0,
    seed: Annotated[int, typer.Option(help="base sampling seed; trial k uses seed + k")] = RUN_DEFAULTS["--seed"],
) -> None:
    """Run the eval suite (or merge earlier runs) and write reports; exit 1 if a model's pass rate is below
    --min-pass-rate."""
    from evals.reports import compare, markdown, write_reports
    from evals.runner import collect_scenarios, model_summary
    from tools.replay.loading import builtin_scenarios_dir

    with friendly_errors():
        scenarios, merge = _route(extra or [], scenarios, merge)
        if merge is not None:
            given = {"--scenarios": scenarios is not None, "--model": models is not None,
                     **{flag: value != RUN_DEFAULTS[flag] for flag, value in
                        (("--trials", trials), ("--jobs", jobs), ("--seed", seed))}}
            clash = [flag for flag, used in given.items() if used]
            if clash:
                raise UsageProblem(f"--merge combines finished runs and runs nothing: drop {', '.join(clash)}")
        before = _load_reports(previous) if previous else None
        if merge is not None:
            suite = _load_reports(merge)
            target = report or DEFAULT_MERGED
            inputs = {Path(f).resolve().parent for f in suite.merged_from}
            if target.resolve() in inputs:
                raise UsageProblem(f"--report {target} is one of the --merge folders and its results.json would be "
                                   "overwritten; pick another --report folder")
        else:
            target = report or DEFAULT_REPORT
            chosen_models = models or ["playbook"]
            loaded = collect_scenarios(scenarios or [builtin_scenarios_dir()])
            for spec in chosen_models:
                if spec not in SERIAL_MODELS:
                    try:
                        resolve_model(spec)
                    except Exception as exc:
                        raise UsageProblem(str(exc)) from None
        _report_folder(target)
    if merge is None:
        suite = _run(loaded, chosen_models, trials, jobs, seed, target)
    comparison = compare(suite, before) if before else None
    paths = write_reports(suite, target, comparison)
    # plain text, not the rich console: piped output must keep every table row on one line
    typer.echo(markdown(suite, comparison, details=False), nl=False)
    err.print("reports: " + ", ".join(str(p) for p in paths.values()), markup=False, highlight=False)
    below = [row for row in model_summary(suite) if row["pass_rate"] < min_pass_rate]
    if below:
        for row in below:
            err.print(f"{row['model']}: pass rate {row['pass_rate']:.0%} is below {min_pass_rate:.0%}", markup=False)
        raise typer.Exit(1)


def _report_folder(target: Path) -> None:
    """The --report folder exists and can be written, before any run is spent on a report that cannot be kept."""
    if target.exists() and not target.is_dir():
        raise UsageProblem(f"--report {target} is a file, not a folder; pass a folder for the reports")
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(f"--report {target}: cannot create the folder ({exc.strerror or exc}); pass a writable "
                           "folder") from None


def _run(loaded: list[Scenario], models: list[str], trials: int, jobs: int, seed: int, target: Path) -> SuiteResult:
    from evals.runner import run_suite

    total = len(loaded) * len(models) * trials
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=err) as progress:
        task = progress.add_task("evaluating", total=total)

        def advance(result: RunResult) -> None:
            mark = "pass" if result.passed else "FAIL"
            progress.update(task, advance=1, description=f"{result.model} · {result.scenario} · {mark}")

        return run_suite(loaded, models, trials, model_factory(seed),  # type: ignore[arg-type]
                         jobs=jobs, serial_models=SERIAL_MODELS,
                         results_path=target / "results.json", on_result=advance)
