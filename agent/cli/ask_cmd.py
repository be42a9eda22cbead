"""`sre-agent ask` and `sre-agent chat`."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from agent.cli.common import UsageProblem, err, friendly_errors, out, report
from agent.cli.render import progress_printer, render_approval_request, render_remediation, render_verdict
from agent.llm.base import ChatModel, ModelError
from agent.llm.resolve import MODEL_HELP, default_spec, resolve_model
from agent.question import usable_question
from agent.remediation.policy import valid_person
from agent.state import GUIDED_BUDGETS, Budgets

if TYPE_CHECKING:  # the graph, LangGraph and the model clients load only when a command runs
    from agent.remediation.runs import RunRecord
    from agent.run import RemediationRun
    from tools.toolkit import Sources

INTERACTIVE_ENV = "SRE_AGENT_INTERACTIVE"
DECLINED = "declined at prompt"
NOT_RECOVERED = ("not_recovered", "failed", "stale")

ScenarioOpt = Annotated[str | None, typer.Option(help="scenario id or folder to replay (offline)")]
LiveOpt = Annotated[bool, typer.Option("--live", help="use the real sources configured by env instead")]
ModelOpt = Annotated[str | None, typer.Option("--model", help=escape(MODEL_HELP))]


ContextOpt = Annotated[str | None, typer.Option(
    "--context", help="with --live: the kubeconfig context to read (and, with --remediate, to write); default "
                      "$KUBE_CONTEXT, else the kubeconfig's current-context")]


def open_sources(scenario: str | None, live: bool, context: str | None = None) -> Sources:
    if live == (scenario is not None):
        raise UsageProblem("choose exactly one of --scenario ID_OR_PATH (recorded replay) or --live")
    if context and not live:
        raise UsageProblem("--context names a live cluster: use it with --live")
    from agent.remediation.flow import LIVE
    from agent.remediation.flow import open_sources as open_run_sources

    return open_run_sources(LIVE if live else scenario or "", context)


def load_model(spec: str | None) -> ChatModel:
    try:
        return resolve_model(spec)
    except ModelError as exc:
        raise UsageProblem(str(exc)) from None


def ask(
    question: Annotated[str, typer.Argument(help='e.g. "why are shipments not going out?"')],
    scenario: ScenarioOpt = None,
    live: LiveOpt = False,
    context: ContextOpt = None,
    model: ModelOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print only the verdict JSON on stdout (with --remediate: "
                                                        "run_id, verdict, remediation, approval_request)")] = False,
    max_llm_calls: Annotated[int | None, typer.Option(
        min=1, help=f"model-call budget (default {Budgets.max_llm_calls}; {GUIDED_BUDGETS.max_llm_calls} for guided "
                    "small models)")] = None,
    max_tool_calls: Annotated[int | None, typer.Option(
        min=1, help=f"tool-call budget (default {Budgets.max_tool_calls})")] = None,
    timeout: Annotated[float | None, typer.Option(
        min=1, help=f"wall-clock budget, seconds (default {Budgets.timeout_s:.0f})")] = None,
    remediate: Annotated[bool, typer.Option(
        "--remediate", help="after the verdict, propose its action for a human's approval; in a terminal asks "
                            "whether to approve (y/N), otherwise leaves it pending for `sre-agent approvals` "
                            f"(${INTERACTIVE_ENV}=1 or 0 forces prompting on or off)")] = False,
    approver: Annotated[str | None, typer.Option(
        help="who answers the approval prompt (default: $USER)")] = None,
) -> None:
    """Investigate one question and print an evidence-backed verdict (and, with --remediate, act on it once a
    named human approves)."""
    with friendly_errors():
        try:
            question = usable_question(question)
        except ValueError as exc:
            raise UsageProblem(str(exc)) from None
        sources = open_sources(scenario, live, context)
        chat_model = load_model(model)
        defaults = GUIDED_BUDGETS if chat_model.guided else Budgets()
        budgets = Budgets(max_llm_calls=max_llm_calls or defaults.max_llm_calls,
                          max_tool_calls=max_tool_calls or defaults.max_tool_calls,
                          timeout_s=timeout or defaults.timeout_s)
        label = chat_model.name + (" [baseline]" if chat_model.is_baseline else "")
        if remediate:
            from agent.remediation.flow import LIVE, scenario_spec
            from agent.remediation.runs import RunRecord
            from agent.run import new_run_id

            person = approver_name(approver)
            run = RunRecord(run_id=new_run_id(), question=question, sources=LIVE if live else scenario_spec(
                scenario or ""), model=model or default_spec(), started_by=person, context=context)
            err.print(f"investigating with {label} on {sources.label} (run {run.run_id}, remediation on) …",
                      highlight=False, markup=False)
            code = remediate_run(run, chat_model, sources, budgets, person, as_json)
            if code:
                raise typer.Exit(code)
            return
        err.print(f"investigating with {label} on {sources.label} …", highlight=False, markup=False)
        from agent.run import investigate

        try:
            verdict = investigate(question, chat_model, sources, budgets=budgets,
                                  on_event=progress_printer(err, chat_model.name))
        except ModelError as exc:
            raise UsageProblem(str(exc)) from None
    if as_json:
        print(verdict.model_dump_json(indent=2))
    else:
        out.print(render_verdict(verdict, chat_model.is_baseline))


def approver_name(approver: str | None) -> str:
    name = approver or os.environ.get("USER") or ""
    if not name:
        raise UsageProblem("--remediate needs an approver: pass --approver NAME ($USER is not set)")
    try:
        return valid_person(name)
    except ValueError as exc:
        raise UsageProblem(f"--approver: {exc}") from None


def interactive() -> bool:
    """Prompt only with a terminal on stdin; $SRE_AGENT_INTERACTIVE=1/0 forces it (tests, `script` sessions)."""
    forced = os.environ.get(INTERACTIVE_ENV, "").strip().lower()
    if forced in ("1", "true", "yes"):
        return True
    if forced in ("0", "false", "no"):
        return False
    if forced:
        raise UsageProblem(f"${INTERACTIVE_ENV}={forced[:40]!r}: use 1 (always prompt) or 0 (never), or unset it")
    return sys.stdin.isatty()


def ask_approval(person: str) -> dict[str, Any]:
    err.print(f"deciding as {person} (--approver)", markup=False, highlight=False)
    err.print("Approve? [y/N] ", end="", markup=False, highlight=False)
    typed = sys.stdin.readline()
    if not sys.stdin.isatty():  # echo what was piped in, so the transcript reads like a terminal's
        err.print(typed.rstrip("\n"), markup=False, highlight=False)
    reply = typed.strip().lower()
    if reply in ("y", "yes"):
        return {"decision": "approve", "approver": person}
    return {"decision": "reject", "approver": person, "reason": DECLINED}


def remediate_run(run: RunRecord, chat_model: ChatModel, sources: Sources, budgets: Budgets, person: str,
                  as_json: bool) -> int:
    """Investigate with the remediation step on; ask at the prompt or leave the approval pending. Exit code."""
    from agent.remediation.checkpoint import make_checkpointer
    from agent.remediation.flow import checkpointer_target, open_remediator
    from agent.run import resume_run, start_remediation_run
    from tools.redaction import redact

    remediator = open_remediator(sources)
    target = checkpointer_target()
    run.checkpointer = redact(target)
    with make_checkpointer(target) as saver:
        try:
            result = start_remediation_run(run, chat_model, sources, remediator, saver, budgets=budgets,
                                           on_event=progress_printer(err, chat_model.name))
        except ModelError as exc:
            raise UsageProblem(str(exc)) from None
        if result.verdict and not as_json:
            out.print(render_verdict(result.verdict, chat_model.is_baseline))
        if result.request:
            (err if as_json else out).print(render_approval_request(result.request))
        if result.request and result.approval_id:
            if interactive():
                answer = ask_approval(person)
                result = resume_run(result.approval_id, answer, model=chat_model, sources=sources,
                                    remediator=remediator, checkpointer=saver, where=run.checkpointer)
            else:
                err.print(f"not approved: stdin is not a terminal, so approval {result.approval_id} stays pending "
                          "(until it expires). From any shell:", markup=False, highlight=False)
                err.print(f"  sre-agent approvals approve {result.approval_id} --as {person}\n"
                          f"  sre-agent approvals reject {result.approval_id} --as {person} --reason TEXT",
                          markup=False, highlight=False)
    if as_json:
        print(json.dumps(remediation_json(result), indent=2))
    else:
        out.print(render_remediation(result.remediation), soft_wrap=True)
    return 1 if result.status in NOT_RECOVERED else 0


def remediation_json(result: RemediationRun) -> dict[str, Any]:
    return {"run_id": result.run_id, "verdict": result.verdict.model_dump(mode="json") if result.verdict else None,
            "remediation": result.remediation, "approval_request": result.request}


def line_reader() -> Callable[[str], str]:
    """In a terminal, prompt_toolkit's line editing (arrow keys, ^R search) and a history kept in the data
    folder across sessions; piped input is read line by line as it comes."""
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        return input
    from prompt_toolkit import PromptSession
    from prompt_toolkit.history import FileHistory

    from agent.remediation.paths import data_dir

    try:
        data_dir().mkdir(parents=True, exist_ok=True)
        history: FileHistory | None = FileHistory(str(data_dir() / "chat-history"))
    except OSError:
        history = None
    return PromptSession[str](history=history).prompt


def chat(scenario: ScenarioOpt = None, live: LiveOpt = False, context: ContextOpt = None,
         model: ModelOpt = None) -> None:
    """A multi-turn conversation: ask, then follow up ("show me the queue again"). Empty line or 'exit' quits."""
    with friendly_errors():
        sources = open_sources(scenario, live, context)
        chat_model = load_model(model)
    from agent.run import ChatSession

    session = ChatSession(chat_model, sources, on_event=progress_printer(err, chat_model.name))
    err.print(f"chatting with {chat_model.name} on {sources.label}; empty line or 'exit' to quit", highlight=False,
              markup=False)
    read_line = line_reader()
    while True:
        try:
            question = read_line("you> ").strip()
        except (EOFError, KeyboardInterrupt):
            break
        if question in ("", "exit", "quit"):
            break
        try:
            reply = session.ask(usable_question(question))
        except ValueError as exc:
            report("error", str(exc))
            continue
        except ModelError as exc:
            report("error", str(exc))
            continue
        if reply.verdict:
            out.print(render_verdict(reply.verdict, chat_model.is_baseline))
        else:
            out.print(f"agent> {reply.answer}", markup=False, highlight=False)
