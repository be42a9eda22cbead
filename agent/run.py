"""Entry points: one investigation to a verdict, a chat session that keeps the conversation, or a remediation run
that pauses for a human's approval and is resumed (from any process) with the answer."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from agent.graph import EventSink, build_graph, observations_of
from agent.llm.base import ChatModel, Message
from agent.prompts import guided_system_prompt, system_prompt
from agent.remediation.approvals import ApprovalStore
from agent.remediation.checkpoint import make_checkpointer
from agent.remediation.errors import ApprovalStateError, RemediationError
from agent.remediation.flow import (
    check_answer,
    checkpointer_target,
    open_remediator,
    open_sources,
    remediation_steps,
    resume_model,
)
from agent.remediation.paths import data_dir
from agent.remediation.policy import load_policy
from agent.remediation.runs import RunRecord, RunRegistry
from agent.remediation.service import Remediator
from agent.remediation.verify import VerificationReport
from agent.signals import Observation
from agent.sizing import ScaleBounds
from agent.state import Budgets
from agent.verdict import Verdict
from tools.redaction import redact
from tools.registry import default_toolbox
from tools.timerange import iso
from tools.toolkit import Sources, Toolbox

RECURSION_LIMIT = 200


def opening(question: str, sources: Sources, guided: bool = False) -> list[Message]:
    described = "recorded scenario replay" if sources.label.startswith("replay") else "live production sources"
    prompt = guided_system_prompt if guided else system_prompt
    return [{"role": "system", "content": prompt(iso(sources.clock()) or "", described)},
            {"role": "user", "content": question}]


def fresh_turn(mode: str) -> dict[str, Any]:
    return {"mode": mode, "started_at": time.time(), "llm_calls": 0, "tool_calls": 0, "prompt_tokens": 0,
            "completion_tokens": 0, "llm_seconds": 0.0, "tool_seconds": 0.0, "stop_reason": None,
            "answer": None, "verdict": None}


def configured_scale_bounds() -> ScaleBounds | None:
    """The configured remediation policy's scale bounds, so a verdict proposes what may run; none when the policy
    cannot be loaded (proposing the action reports why)."""
    try:
        return load_policy().scale_bounds
    except RemediationError:
        return None


@dataclass
class Investigation:
    verdict: Verdict
    observations: list[Observation]


def run_investigation(question: str, model: ChatModel, sources: Sources, *, toolbox: Toolbox | None = None,
                      budgets: Budgets | None = None, on_event: EventSink | None = None) -> Investigation:
    graph = build_graph(model, toolbox or default_toolbox(), sources, budgets, on_event=on_event,
                        scale_bounds=configured_scale_bounds())
    state = graph.invoke({**fresh_turn("investigate"), "messages": opening(question, sources, model.guided)},
                         {"recursion_limit": RECURSION_LIMIT})
    return Investigation(Verdict.model_validate(state["verdict"]), observations_of(state))


def investigate(question: str, model: ChatModel, sources: Sources, *, toolbox: Toolbox | None = None,
                budgets: Budgets | None = None, on_event: EventSink | None = None) -> Verdict:
    return run_investigation(question, model, sources, toolbox=toolbox, budgets=budgets, on_event=on_event).verdict


@dataclass
class ChatReply:
    verdict: Verdict | None = None
    answer: str | None = None


@dataclass
class ChatSession:
    """Multi-turn: the first question gets a full verdict, follow-ups reuse the conversation and its results."""

    model: ChatModel
    sources: Sources
    budgets: Budgets | None = None
    on_event: EventSink | None = None
    thread: str = field(default_factory=lambda: uuid.uuid4().hex)
    turns: int = 0

    def __post_init__(self) -> None:
        self.graph = build_graph(self.model, default_toolbox(), self.sources, self.budgets,
                                 checkpointer=InMemorySaver(), on_event=self.on_event,
                                 scale_bounds=configured_scale_bounds())

    def ask(self, question: str) -> ChatReply:
        first = self.turns == 0
        self.turns += 1
        messages = (opening(question, self.sources, self.model.guided) if first
                    else [{"role": "user", "content": question}])
        state = self.graph.invoke({**fresh_turn("investigate" if first else "chat"), "messages": messages},
                                  {"configurable": {"thread_id": self.thread}, "recursion_limit": RECURSION_LIMIT})
        if state.get("verdict"):
            return ChatReply(verdict=Verdict.model_validate(state["verdict"]))
        return ChatReply(answer=str(state["messages"][-1].get("content") or ""))


@dataclass
class RemediationRun:
    """Where a remediation run stands: its verdict, `state["remediation"]`, and the approval request while paused."""

    run_id: str
    verdict: Verdict | None
    remediation: dict[str, Any]
    request: dict[str, Any] | None = None

    @property
    def status(self) -> str:
        return str(self.remediation.get("status") or "none")

    @property
    def approval_id(self) -> str | None:
        value = self.remediation.get("approval_id")
        return str(value) if value else None


def new_run_id() -> str:
    return "run-" + uuid.uuid4().hex[:12]


def _remediation_graph(model: ChatModel, sources: Sources, remediator: Remediator,
                       checkpointer: BaseCheckpointSaver[Any], toolbox: Toolbox | None, budgets: Budgets | None,
                       on_event: EventSink | None) -> Any:
    return build_graph(model, toolbox or default_toolbox(), sources, budgets, checkpointer=checkpointer,
                       on_event=on_event, after_verdict=remediation_steps(remediator, sources),
                       scale_bounds=remediator.policy.scale_bounds)


def _thread(run_id: str) -> Any:
    return {"configurable": {"thread_id": run_id}, "recursion_limit": RECURSION_LIMIT}


def _outcome(run_id: str, values: dict[str, Any]) -> RemediationRun:
    interrupts = values.get("__interrupt__") or []
    verdict = Verdict.model_validate(values["verdict"]) if values.get("verdict") else None
    return RemediationRun(run_id, verdict, dict(values.get("remediation") or {}),
                          dict(interrupts[0].value) if interrupts else None)


def start_remediation_run(run: RunRecord, model: ChatModel, sources: Sources, remediator: Remediator,
                          checkpointer: BaseCheckpointSaver[Any], *, toolbox: Toolbox | None = None,
                          budgets: Budgets | None = None, on_event: EventSink | None = None) -> RemediationRun:
    """Investigate, then propose the verdict's action and pause for a human (thread id = run id)."""
    RunRegistry.beside(remediator).save(run)
    graph = _remediation_graph(model, sources, remediator, checkpointer, toolbox, budgets, on_event)
    start = {**fresh_turn("investigate"), "messages": opening(run.question, sources, model.guided),
             "remediation": {"enabled": True, "run_id": run.run_id, "status": "requested"}}
    return _outcome(run.run_id, graph.invoke(start, _thread(run.run_id), durability="sync"))


def resume_run(approval_id: str, answer: dict[str, Any], *, model: ChatModel, sources: Sources,
               remediator: Remediator, checkpointer: BaseCheckpointSaver[Any], where: str = "the checkpointer",
               on_event: EventSink | None = None) -> RemediationRun:
    """Resume the run paused at `approval_id` with a human's answer ({"decision", "approver", "reason"}).

    Approved: executes (once, whoever else tries) and verifies. Rejected: ends cleanly. An answer that cannot
    apply (already executed, rejected, expired) raises a RemediationError saying why, after closing the run."""
    remediator.store.expire_overdue()
    record = remediator.get(approval_id)
    graph = _remediation_graph(model, sources, remediator, checkpointer, None, None, on_event)
    config = _thread(record.run_id)
    waiting = graph.get_state(config).next
    approving = isinstance(answer, dict) and answer.get("decision") == "approve"
    check_answer(remediator, record, answer)
    if record.status == "pending" or (record.status == "approved" and approving):
        if not waiting:
            raise RemediationError(f"run {record.run_id} is not paused in {where}: there is nothing to resume for "
                                   f"{record.describe()}",
                                   hints=["set SRE_AGENT_CHECKPOINTER to the checkpointer the run was started with"])
        # paused at the approval: answer it; paused later (a crash after the decision): carry on from there
        resume: Command[Any] | None = Command(resume=answer) if "approval" in waiting else None
        return _outcome(record.run_id, graph.invoke(resume, config, durability="sync"))
    if "approval" in waiting and record.status not in ("approved", "executing"):
        graph.invoke(Command(resume=answer), config, durability="sync")  # closes the run with the final status
    remediator.decide(record.id, answer)  # raises: why this answer cannot apply any more
    raise ApprovalStateError(f"{record.describe()} is {record.status}")  # pragma: no cover


def verify_approval(approval_id: str, *, actor: str, data: str | Path | None = None, timeout_s: float = 300,
                    interval_s: float = 5) -> VerificationReport:
    """Look at an executed or abandoned approval's target again, from a fresh process, and record what it shows."""
    folder = Path(data) if data is not None else data_dir()
    record = ApprovalStore(folder / "approvals.sqlite").get(approval_id)
    run = RunRegistry.in_data(folder).get(record.run_id)
    sources = open_sources(run.sources, run.context)
    return open_remediator(sources, data=folder).verify(record.id, sources, timeout_s=timeout_s,
                                                        interval_s=interval_s, actor=f"verifier (for {actor})")


def resume_approval(approval_id: str, answer: dict[str, Any], *, data: str | Path | None = None,
                    on_event: EventSink | None = None) -> RemediationRun:
    """`resume_run` from a fresh process: everything is rebuilt from the data dir (approval, run record,
    replayed world or live sources, model spec) and the durable checkpointer."""
    folder = Path(data) if data is not None else data_dir()
    record = ApprovalStore(folder / "approvals.sqlite").get(approval_id)
    run = RunRegistry.in_data(folder).get(record.run_id)
    sources = open_sources(run.sources, run.context)
    remediator = open_remediator(sources, data=folder)
    target = checkpointer_target(folder)
    with make_checkpointer(target) as saver:
        return resume_run(record.id, answer, model=resume_model(run.model), sources=sources, remediator=remediator,
                          checkpointer=saver, where=redact(target), on_event=on_event)
