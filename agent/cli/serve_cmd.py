"""`sre-agent serve` (the HTTP API on uvicorn) and `sre-agent serve token NAME` (a new approver token)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from agent.cli.ask_cmd import ContextOpt, LiveOpt, ModelOpt, ScenarioOpt
from agent.cli.common import err, friendly_errors, out, report
from agent.remediation.policy import valid_person

serve_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                        help="Serve the HTTP API: investigations, alert webhooks, approvals, metrics (docs/serve.md).")


@serve_app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port to listen on")] = 8080,
    scenario: ScenarioOpt = None,
    live: LiveOpt = False,
    context: ContextOpt = None,
    model: ModelOpt = None,
    concurrency: Annotated[int | None, typer.Option(
        min=1, help="investigations at once, more are queued (default $SRE_AGENT_SERVE_CONCURRENCY, else 2)")] = None,
    approver_tokens: Annotated[Path | None, typer.Option(
        help="YAML file of approver name → sha256:<hash of token> (default $SRE_AGENT_SERVE_APPROVER_TOKENS)")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn's log level")] = "info",
) -> None:
    """Serve the API until interrupted. Settings not given here come from SRE_AGENT_SERVE_* variables."""
    if ctx.invoked_subcommand is not None:
        return
    from agent.server.records import RecordError
    from agent.server.settings import ServerConfigError, ServerSettings

    overrides: dict[str, Any] = {"scenario": scenario, "context": context, "model": model,
                                 "concurrency": concurrency, "approver_tokens": approver_tokens}
    if live:
        overrides["live"] = True
    with friendly_errors():
        try:
            import uvicorn

            from agent.server.app import create_app

            app = create_app(ServerSettings(**{k: v for k, v in overrides.items() if v is not None}))
        except (ServerConfigError, RecordError) as exc:
            report("error", str(exc))
            raise typer.Exit(2) from None
    err.print(f"serving on http://{host}:{port} (OpenAPI at /docs)", markup=False, highlight=False)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


@serve_app.command("token")
def token(name: Annotated[str, typer.Argument(help="the approver's name, as the policy lists it")]) -> None:
    """Print a new approver token once (give it to NAME) and the line to add to the approver tokens file."""
    from agent.server.auth import new_token, token_hash

    with friendly_errors():
        try:
            person = valid_person(name)
        except ValueError as exc:
            report("error", str(exc))
            raise typer.Exit(2) from None
    secret = new_token()
    err.print(f"token for {escape(person)} (shown once; they send it as Authorization: Bearer <token>):")
    out.print(secret, markup=False, highlight=False)
    err.print("add this line to the approver tokens file ($SRE_AGENT_SERVE_APPROVER_TOKENS):")
    out.print(f"{person}: {token_hash(secret)}", markup=False, highlight=False)
