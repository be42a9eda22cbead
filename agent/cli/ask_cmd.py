"""`sre-agent ask` and `sre-agent chat`."""

from __future__ import annotations

from typing import Annotated

import typer

from agent.cli.common import UsageProblem, err, friendly_errors, out
from agent.cli.render import progress_printer, render_verdict
from agent.llm.base import ChatModel, ModelError
from agent.llm.resolve import MODEL_HELP, resolve_model
from agent.run import ChatSession, investigate
from agent.state import Budgets
from tools.toolkit import Sources

ScenarioOpt = Annotated[str | None, typer.Option(help="scenario id or folder to replay (offline)")]
LiveOpt = Annotated[bool, typer.Option("--live", help="use the real sources configured by env instead")]
ModelOpt = Annotated[str | None, typer.Option("--model", help=MODEL_HELP)]


def open_sources(scenario: str | None, live: bool) -> Sources:
    if live == (scenario is not None):
        raise UsageProblem("choose exactly one of --scenario ID_OR_PATH (recorded replay) or --live")
    if live:
        from tools.live import live_sources

        return live_sources()
    from tools.replay import replay_sources

    return replay_sources(scenario)  # type: ignore[arg-type]


def load_model(spec: str | None) -> ChatModel:
    try:
        return resolve_model(spec)
    except ModelError as exc:
        raise UsageProblem(str(exc)) from None


def ask(
    question: Annotated[str, typer.Argument(help='e.g. "why are shipments not going out?"')],
    scenario: ScenarioOpt = None,
    live: LiveOpt = False,
    model: ModelOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print only the verdict JSON on stdout")] = False,
    max_llm_calls: Annotated[int, typer.Option(min=1, help="model-turn budget")] = Budgets.max_llm_calls,
    max_tool_calls: Annotated[int, typer.Option(min=1, help="tool-call budget")] = Budgets.max_tool_calls,
    timeout: Annotated[float, typer.Option(min=1, help="wall-clock budget, seconds")] = Budgets.timeout_s,
) -> None:
    """Investigate one question and print an evidence-backed verdict."""
    with friendly_errors():
        sources = open_sources(scenario, live)
        chat_model = load_model(model)
        budgets = Budgets(max_llm_calls=max_llm_calls, max_tool_calls=max_tool_calls, timeout_s=timeout)
        label = chat_model.name + (" [baseline]" if chat_model.is_baseline else "")
        err.print(f"investigating with {label} on {sources.label} …", highlight=False, markup=False)
        try:
            verdict = investigate(question, chat_model, sources, budgets=budgets,
                                  on_event=progress_printer(err, chat_model.name))
        except ModelError as exc:
            raise UsageProblem(str(exc)) from None
    if as_json:
        print(verdict.model_dump_json(indent=2))
    else:
        out.print(render_verdict(verdict, chat_model.is_baseline))


def chat(scenario: ScenarioOpt = None, live: LiveOpt = False, model: ModelOpt = None) -> None:
    """A multi-turn conversation: ask, then follow up ("show me the queue again"). Empty line or 'exit' quits."""
    with friendly_errors():
        sources = open_sources(scenario, live)
        chat_model = load_model(model)
    session = ChatSession(chat_model, sources, on_event=progress_printer(err, chat_model.name))
    err.print(f"chatting with {chat_model.name} on {sources.label}; empty line or 'exit' to quit", highlight=False,
              markup=False)
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            break
        if question in ("", "exit", "quit"):
            break
        try:
            reply = session.ask(question)
        except ModelError as exc:
            err.print(f"[red]error:[/] {exc}", markup=True)
            continue
        if reply.verdict:
            out.print(render_verdict(reply.verdict, chat_model.is_baseline))
        else:
            out.print(f"agent> {reply.answer}", markup=False, highlight=False)
