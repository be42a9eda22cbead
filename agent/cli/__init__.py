"""The `sre-agent` command line."""

from __future__ import annotations

from importlib.metadata import entry_points

import typer

from agent.cli.approvals_cmd import approvals_app
from agent.cli.ask_cmd import ask, chat
from agent.cli.audit_cmd import audit
from agent.cli.schema_cmd import schema
from agent.cli.serve_cmd import serve_app
from agent.cli.tools_cmd import tools_app
from agent.cli.watch_cmd import watch

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                  help="An SRE agent that finds the silent incidents dashboards miss.")
app.command()(ask)
app.command()(chat)
app.command()(schema)
app.command()(audit)
app.command()(watch)
app.add_typer(tools_app, name="tools")
app.add_typer(approvals_app, name="approvals")
app.add_typer(serve_app, name="serve")


PLUGINS = "sre_agent.commands"  # command groups other packages add (the eval harness: `eval`, `scenarios`)
for plugin in entry_points(group=PLUGINS):
    plugin.load()(app)


def main() -> None:
    app()
