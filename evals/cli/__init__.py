"""The eval harness's commands (`sre-agent eval`, `sre-agent scenarios`), plugged into the CLI through the
`sre_agent.commands` entry point so the agent's package never imports the harness."""

from __future__ import annotations

import typer

from evals.cli.eval_cmd import eval_command
from evals.cli.scenarios_cmd import scenarios_app


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
    app.add_typer(scenarios_app, name="scenarios")
