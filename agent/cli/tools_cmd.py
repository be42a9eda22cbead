"""`sre-agent tools list|call`: a tool's schema and result, for debugging and for scenario authors."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer
from rich.table import Table

from agent.cli.common import UsageProblem, err, friendly_errors, out
from tools.registry import default_toolbox
from tools.replay import replay_sources

tools_app = typer.Typer(no_args_is_help=True, help="Inspect and call the agent's read-only tools.")


@tools_app.command("list")
def list_tools(as_json: Annotated[bool, typer.Option("--json", help="print the JSON schemas")] = False) -> None:
    """List the tools with their descriptions (or full JSON schemas)."""
    toolbox = default_toolbox()
    if as_json:
        out.print_json(json.dumps(toolbox.schemas()))
        return
    table = Table("tool", "parameters", "description", show_lines=True)
    for tool in toolbox.tools.values():
        params = tool.parameters_schema()
        required = set(params.get("required", []))
        names = [f"{n}{'' if n in required else '?'}" for n in params.get("properties", {})]
        table.add_row(tool.name, ", ".join(names), tool.description.split("\n")[0])
    out.print(table)


def parse_args(text: str) -> dict[str, Any]:
    try:
        args = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageProblem(f"--args is not valid JSON ({exc.msg} at column {exc.colno}): {text[:200]!r}") from None
    except RecursionError:
        raise UsageProblem("--args is JSON nested too deeply to be tool arguments; pass a flat JSON object like "
                           "'{\"queue\": \"q\"}'") from None
    if not isinstance(args, dict):
        raise UsageProblem(f"--args must be a JSON object like '{{\"queue\": \"q\"}}', got {text[:200]!r}")
    return args


@tools_app.command("call")
def call_tool(
    name: Annotated[str, typer.Argument(help="tool name (see `sre-agent tools list`)")],
    scenario: Annotated[str, typer.Option(help="scenario id or path to replay")],
    args: Annotated[str, typer.Option(help="JSON object of arguments")] = "{}",
    as_json: Annotated[bool, typer.Option("--json", help="print the raw result JSON")] = False,
) -> None:
    """Call one tool against a scenario replay and print its result."""
    with friendly_errors():
        toolbox = default_toolbox()
        if name not in toolbox:
            raise UsageProblem(f"no tool named {name!r}; tools: {', '.join(toolbox.names())}")
        arguments = parse_args(args)
        sources = replay_sources(scenario)
        outcome = toolbox.call(sources, name, arguments)
    if as_json:
        out.print_json(outcome.text())
    else:
        data = outcome.data()
        status = "[green]ok[/]" if outcome.ok else "[red]error[/]"
        err.print(f"{name} {status} in {outcome.ms:.1f} ms ({len(outcome.text())} chars)", markup=True)
        out.print(data.get("summary") or data.get("message", ""))
        out.print_json(outcome.text())
    if not outcome.ok:  # bad arguments are the caller's input (2); a source that failed is the call's outcome (1)
        raise typer.Exit(2 if outcome.data().get("error") in ("bad_argument", "bad_query") else 1)
