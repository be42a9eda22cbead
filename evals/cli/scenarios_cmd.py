"""`sre-agent scenarios list|validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from agent.cli.common import err, out
from evals.expectations import load_scenario
from tools.replay.loading import ScenarioError, list_scenarios

scenarios_app = typer.Typer(no_args_is_help=True, help="List and validate scenario worlds.")


@scenarios_app.command("list")
def list_command(
    root: Annotated[Path | None, typer.Option(help="folder of scenario folders (default: built-in)")] = None,
) -> None:
    """List scenarios with their expected verdict."""
    table = Table("id", "expected", "title")
    for folder in list_scenarios(root):
        try:
            scenario = load_scenario(folder)
        except ScenarioError as exc:
            table.add_row(folder.name, "[red]invalid[/]", str(exc).splitlines()[0])
            continue
        expected = " | ".join(scenario.expect.statuses) if scenario.expect else "-"
        if scenario.expect and scenario.expect.category:
            expected += f" / {scenario.expect.category}"
        table.add_row(scenario.id, expected, scenario.title)
    out.print(table)


def _expanded(paths: list[str]) -> list[str]:
    """Each path, with a folder of scenario folders (a suite such as evals/scenarios) standing for its scenarios."""
    found: list[str] = []
    for path in paths:
        folder = Path(path)
        inside = list_scenarios(folder) if folder.is_dir() and not (folder / "scenario.yaml").exists() else []
        found += [str(p) for p in inside] or [path]
    return found


@scenarios_app.command("validate")
def validate_command(paths: Annotated[list[str], typer.Argument(
        help="scenario folders, files or ids, or a suite folder holding scenario folders")]) -> None:
    """Validate scenario files: report file, field and reason for each problem; exit 2 if any is invalid."""
    failed, paths = 0, _expanded(paths)
    for path in paths:
        try:
            scenario = load_scenario(path)
        except ScenarioError as exc:
            failed += 1
            err.print(f"[red]invalid[/] {escape(str(exc))}", markup=True)
            continue
        out.print(f"ok {scenario.id}: {len(scenario.world.deployments)} deployments, "
                  f"{len(scenario.world.queues)} queues, clock {scenario.clock.now.isoformat()}", soft_wrap=True)
    if failed:
        raise typer.Exit(2)
