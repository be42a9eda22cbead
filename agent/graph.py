"""The investigation graph: model → tools → model … → verdict → validate.

Built by `build_graph`, never at import time. The model decides which tools to call (several at once if it
likes); tools run with validated arguments and answer errors as results; a playbook tracker reminds the model
what is unchecked; every budget end still produces a verdict.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from pydantic import ValidationError

from agent.answers import answer_calls, answer_for
from agent.drafts import VerdictDraft
from agent.guided.inventory import Inventory, discovery_calls, unchecked
from agent.guided.steps import compact, step_schema, to_tool_call, transcript
from agent.guided.verdicts import expand_verdict, verdict_schema
from agent.llm.base import AssistantTurn, ChatModel, Message, ToolCall
from agent.prompts import guided_verdict_prompt, verdict_prompt
from agent.safety import find_injections
from agent.scope import Scope, conversation_scope
from agent.signals import Observation, progress_note, signals_for
from agent.sizing import ScaleBounds, within_bounds
from agent.state import GUIDED_BUDGETS, AgentState, Budgets
from agent.validator import fallback_verdict, validate, workload_kinds
from agent.verdict import ToolCallRecord, Trace
from tools.toolkit import Sources, Toolbox, ToolError, ToolOutcome

log = logging.getLogger(__name__)

MAX_TOOL_MESSAGE_CHARS = 8000
EventSink = Callable[[str, dict[str, Any]], None]
GraphExtension = Callable[[StateGraph], str]


def _no_events(kind: str, payload: dict[str, Any]) -> None:
    return None


def observations_of(state: AgentState) -> list[Observation]:
    return [Observation.from_dict(raw) for raw in state.get("observations", [])]


def _parse_json_object(text: str | None) -> dict[str, Any]:
    body = (text or "").strip()
    fenced = re.search(r"```(?:json)?\s*(\{.*\})\s*```", body, re.DOTALL)
    if fenced:
        body = fenced.group(1)
    elif not body.startswith("{") and "{" in body:
        body = body[body.index("{"): body.rindex("}") + 1]
    value = json.loads(body)
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def build_graph(model: ChatModel, toolbox: Toolbox, sources: Sources, budgets: Budgets | None = None, *,
                checkpointer: BaseCheckpointSaver[Any] | None = None, on_event: EventSink | None = None,
                after_verdict: GraphExtension | None = None, scale_bounds: ScaleBounds | None = None) -> Any:
    """`after_verdict` adds nodes that run once the verdict exists (e.g. the human-approved remediation step)
    and returns the name of its first node; without it the graph ends at the verdict."""
    limits = budgets or (GUIDED_BUDGETS if model.guided else Budgets())
    emit = on_event or _no_events
    pool_size = 4 if sources.label == "live" else 1

    def out_of_budget(state: AgentState) -> str | None:
        if time.time() - state.get("started_at", time.time()) > limits.timeout_s:
            return f"wall-clock timeout ({limits.timeout_s:.0f} s)"
        if state.get("llm_calls", 0) >= limits.max_llm_calls:
            return f"model-call budget ({limits.max_llm_calls})"
        if state.get("tool_calls", 0) >= limits.max_tool_calls:
            return f"tool-call budget ({limits.max_tool_calls})"
        if state.get("prompt_tokens", 0) + state.get("completion_tokens", 0) >= limits.max_tokens:
            return f"token budget ({limits.max_tokens})"
        return None

    def call_model(state: AgentState) -> dict[str, Any]:
        stop = out_of_budget(state)
        if stop:
            return {"stop_reason": stop}
        began = time.perf_counter()
        seen = observations_of(state)
        scope = _scope(state["messages"], seen)
        discovery = answer_calls(_questions(state["messages"])[-1], seen, scope) if _questions(state["messages"]) \
            else []
        discovery = discovery or (discovery_calls(seen, scope) if model.guided else [])
        if discovery:
            offset = len(state.get("observations", []))
            turn = AssistantTurn(tool_calls=[ToolCall(id=f"call_{offset + i}", name=name, arguments=args)
                                             for i, (name, args) in enumerate(discovery, start=1)])
            emit("model", {"turn": state.get("llm_calls", 0), "seconds": 0.0, "tokens": 0,
                           "tool_calls": [f"{name} (runtime inventory)" for name, _ in discovery]})
            return {"messages": [turn.as_message()], "stop_reason": None}
        turn, calls = guided_turn(state) if model.guided else (
            model.complete(state["messages"], toolbox.schemas()), 1)
        seconds = time.perf_counter() - began
        used = {o["call_id"] for o in state.get("observations", [])}
        for call in turn.tool_calls:
            if not call.id or call.id in used:
                call.id = f"call_{len(used) + 1}"
                while call.id in used:
                    call.id += "x"
            used.add(call.id)
        emit("model", {"turn": state.get("llm_calls", 0) + 1, "seconds": seconds,
                       "tool_calls": [c.name for c in turn.tool_calls], **_usage(turn)})
        return {"messages": [turn.as_message()], "llm_calls": state.get("llm_calls", 0) + calls,
                "prompt_tokens": state.get("prompt_tokens", 0) + turn.prompt_tokens,
                "completion_tokens": state.get("completion_tokens", 0) + turn.completion_tokens,
                "llm_seconds": state.get("llm_seconds", 0.0) + seconds, "stop_reason": None}

    def guided_turn(state: AgentState) -> tuple[AssistantTurn, int]:
        history = observations_of(state)
        inventory = Inventory.of(history, _scope(state["messages"], history))
        missing = unchecked(history)
        nudge = "Next step (JSON)." + (f" Not yet checked: {', '.join(missing)}." if missing else "")
        messages = [*transcript(state["messages"]), {"role": "user", "content": nudge}]
        prompt_tokens = completion_tokens = cached_tokens = 0
        prompt_ms = generation_ms = 0.0
        problem = ""
        for attempt in range(1, 3):
            raw = model.complete(messages, [], step_schema(inventory, history))
            prompt_tokens += raw.prompt_tokens
            completion_tokens += raw.completion_tokens
            cached_tokens += raw.cached_tokens
            prompt_ms += raw.prompt_ms or 0.0
            generation_ms += raw.generation_ms or 0.0
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                     "cached_tokens": cached_tokens, "prompt_ms": prompt_ms or None,
                     "generation_ms": generation_ms or None}
            try:
                call = to_tool_call(_parse_json_object(raw.content), workload_kinds(history))
            except ValueError as exc:
                problem = f"not a valid step ({exc}): {str(raw.content)[:120]!r}"
                messages += [{"role": "assistant", "content": raw.content or ""},
                             {"role": "user", "content": f"{problem}. Reply with one JSON step only."}]
                continue
            if call is None:
                return AssistantTurn(content="ready to answer", **usage), attempt
            call_id = f"call_{len(state.get('observations', [])) + 1}"
            return AssistantTurn(tool_calls=[ToolCall(id=call_id, name=call[0], arguments=call[1])], **usage), attempt
        return AssistantTurn(content=f"(gave up choosing a step: {problem})", prompt_tokens=prompt_tokens,
                             completion_tokens=completion_tokens), 2

    def after_model(state: AgentState) -> Literal["tools", "verdict", "__end__"]:
        last = state["messages"][-1]
        if not state.get("stop_reason") and last.get("role") == "assistant" and last.get("tool_calls"):
            return "tools"
        if state.get("mode") == "chat" and not state.get("stop_reason"):
            return "__end__"
        return "verdict"

    def run_one(name: str, raw_args: Any) -> ToolOutcome:
        if isinstance(raw_args, str):
            try:
                raw_args = json.loads(raw_args or "{}")
            except json.JSONDecodeError as exc:
                error = ToolError(error="bad_argument",
                                  message=f"arguments for {name} are not valid JSON ({exc.msg}): {raw_args[:200]!r}",
                                  hints=["send a JSON object of parameter names to values"])
                return ToolOutcome(name, {}, False, error, 0.0)
        if not isinstance(raw_args, dict):
            error = ToolError(error="bad_argument", message=f"arguments for {name} must be a JSON object")
            return ToolOutcome(name, {}, False, error, 0.0)
        return toolbox.call(sources, name, raw_args)

    def run_tools(state: AgentState) -> dict[str, Any]:
        calls = state["messages"][-1].get("tool_calls", [])
        history = observations_of(state)
        seen = {(o.tool, json.dumps(o.args, sort_keys=True)): o for o in history if o.repeated_from is None}
        made = state.get("tool_calls", 0)
        pending: list[tuple[str, str, Any]] = []
        messages: list[Message] = []
        new: list[Observation] = []
        replies: dict[str, str] = {}
        for call in calls:
            call_id, name, raw = call["id"], call["function"]["name"], call["function"]["arguments"]
            args = raw
            if isinstance(raw, str):
                try:
                    args = json.loads(raw or "{}")
                except json.JSONDecodeError:
                    args = raw
            key = (name, json.dumps(args, sort_keys=True)) if isinstance(args, dict) else None
            if key and key in seen:
                first = seen[key]
                obs = Observation(call_id, name, first.args, first.ok, first.data, 0.0, first.call_id,
                                  set(first.signals))
                new.append(obs)
                replies[call_id] = json.dumps({"note": f"repeated call: same result as {first.call_id}",
                                               **first.data})
                emit("tool", {"id": call_id, "name": name, "args": first.args, "ok": first.ok, "ms": 0.0,
                              "summary": f"(repeat of {first.call_id})"})
                continue
            if made >= limits.max_tool_calls:
                replies[call_id] = json.dumps({"error": "budget", "message": "tool-call budget exhausted; answer now"})
                continue
            made += 1
            pending.append((call_id, name, args))
        began = time.perf_counter()
        with ThreadPoolExecutor(max_workers=pool_size) as pool:
            outcomes = list(pool.map(lambda item: run_one(item[1], item[2]), pending))
        seconds = time.perf_counter() - began
        for (call_id, name, _), outcome in zip(pending, outcomes, strict=True):
            data = outcome.data()
            obs = Observation(call_id, name, outcome.args, outcome.ok, data, outcome.ms,
                              signals=signals_for(name, outcome.args, outcome.ok, data),
                              injections=find_injections(data))
            new.append(obs)
            if isinstance(outcome.args, dict) and outcome.ok:
                seen[(name, json.dumps(outcome.args, sort_keys=True))] = obs
            text = compact(name, data) if model.guided else outcome.text()
            replies[call_id] = text if len(text) <= MAX_TOOL_MESSAGE_CHARS else text[:MAX_TOOL_MESSAGE_CHARS] + "…"
            emit("tool", {"id": call_id, "name": name, "args": outcome.args, "ok": outcome.ok, "ms": outcome.ms,
                          "summary": obs.summary})
        for call in calls:
            messages.append({"role": "tool", "tool_call_id": call["id"], "content": replies[call["id"]]})
        everything = history + new
        update: dict[str, Any] = {"observations": [o.to_dict() for o in new], "tool_calls": made,
                                  "tool_seconds": state.get("tool_seconds", 0.0) + seconds}
        state_after = {**state, "tool_calls": made}
        stop = out_of_budget(state_after)  # type: ignore[arg-type]
        if model.guided and not stop and not unchecked(everything) and not discovery_calls(
                everything, _scope(state["messages"], everything)):
            stop = "all core playbook signals checked"
        if stop:
            update["stop_reason"] = stop
        elif not model.guided:
            note = progress_note(everything, limits.max_tool_calls - made,
                                 limits.max_llm_calls - state.get("llm_calls", 0))
            messages.append({"role": "user", "content": note})
        update["messages"] = messages
        return update

    def after_tools(state: AgentState) -> Literal["agent", "verdict"]:
        return "verdict" if state.get("stop_reason") else "agent"

    def draft_verdict(state: AgentState) -> dict[str, Any]:
        history = observations_of(state)
        if time.time() - state.get("started_at", time.time()) > limits.timeout_s:
            ran_out = fallback_verdict(history, "the wall-clock budget ran out", sources.missing)
            return {"verdict": _finish(ran_out, [], state, "timeout")}
        if model.guided:
            ids = [o.call_id for o in history if o.ok and o.repeated_from is None]
            messages = [*transcript(state["messages"]), {"role": "user", "content": guided_verdict_prompt()}]
            schema = verdict_schema(history, ids, _scope(state["messages"], history))
        else:
            calls = "\n".join(f"- {o.call_id} {o.tool}({json.dumps(o.args)}): "
                              f"{'ok' if o.ok else 'FAILED'} — {o.summary[:200]}" for o in history) or "- none"
            messages = [*state["messages"], {"role": "user", "content": verdict_prompt(calls)}]
            schema = VerdictDraft.model_json_schema()
        counters = {"llm_calls": state.get("llm_calls", 0), "prompt_tokens": state.get("prompt_tokens", 0),
                    "completion_tokens": state.get("completion_tokens", 0),
                    "llm_seconds": state.get("llm_seconds", 0.0)}
        problem = "no answer"
        for _attempt in range(2):
            began = time.perf_counter()
            turn: AssistantTurn = model.complete(messages, [], schema)
            counters["llm_calls"] += 1
            counters["prompt_tokens"] += turn.prompt_tokens
            counters["completion_tokens"] += turn.completion_tokens
            counters["llm_seconds"] += time.perf_counter() - began
            emit("model", {"turn": counters["llm_calls"], "seconds": time.perf_counter() - began,
                           "tool_calls": [], "verdict": True, **_usage(turn)})
            try:
                raw = _parse_json_object(turn.content)
                draft = VerdictDraft.model_validate(expand_verdict(raw, history) if model.guided else raw)
            except (ValueError, ValidationError) as exc:
                problem = str(exc).replace("\n", " ")[:400]
                log.info("verdict draft rejected: %s", problem)
                messages += [{"role": "assistant", "content": turn.content or ""},
                             {"role": "user", "content": f"That verdict is invalid: {problem}. "
                                                         "Reply with the corrected JSON object only."}]
                continue
            scope = _scope(state["messages"], history)
            verdict, notes = validate(draft, history, scope, sources.missing)
            notes += within_bounds(verdict, scale_bounds)
            verdict.answer = answer_for(_questions(state["messages"])[-1], history, scope)
            if verdict.answer is not None:
                verdict.summary = f"{verdict.answer.text} ({verdict.summary})"
            merged = {**state, **counters}
            return {**counters, "verdict": _finish(verdict, notes, merged, state.get("stop_reason") or "verdict"),
                    "messages": [{"role": "assistant", "content": f"Verdict ({verdict.status}): {verdict.summary}"}]}
        merged = {**state, **counters}
        fallback = fallback_verdict(history, f"the model produced no valid verdict ({problem})", sources.missing)
        return {**counters, "verdict": _finish(fallback, [f"verdict draft invalid twice: {problem}"], merged,
                                               "invalid verdict")}

    def _finish(verdict: Any, notes: list[str], state: Any, stop: str) -> dict[str, Any]:
        history = observations_of(state)
        elapsed = time.time() - state.get("started_at", time.time())
        llm_s, tool_s = state.get("llm_seconds", 0.0), state.get("tool_seconds", 0.0)
        verdict.trace = Trace(
            model=model.name, llm_calls=state.get("llm_calls", 0),
            tool_calls=[ToolCallRecord(id=o.call_id, name=o.tool, args=o.args, ok=o.ok, ms=o.ms,
                                       summary=o.summary[:200]) for o in history],
            prompt_tokens=state.get("prompt_tokens", 0), completion_tokens=state.get("completion_tokens", 0),
            elapsed_s=round(elapsed, 3), agent_overhead_s=round(max(0.0, elapsed - llm_s - tool_s), 3),
            stop_reason=stop, validation=notes)
        emit("verdict", {"status": verdict.status})
        return verdict.model_dump(mode="json")

    graph = StateGraph(AgentState)
    graph.add_node("agent", call_model)
    graph.add_node("tools", run_tools)
    graph.add_node("verdict", draft_verdict)
    graph.add_edge(START, "agent")
    graph.add_conditional_edges("agent", after_model)
    graph.add_conditional_edges("tools", after_tools)
    graph.add_edge("verdict", after_verdict(graph) if after_verdict else END)
    return graph.compile(checkpointer=checkpointer)


def _usage(turn: AssistantTurn) -> dict[str, Any]:
    return {"tokens": turn.prompt_tokens, "cached_tokens": turn.cached_tokens,
            "completion_tokens": turn.completion_tokens, "prompt_ms": turn.prompt_ms,
            "generation_ms": turn.generation_ms}


def _questions(messages: list[dict[str, Any]]) -> list[str]:
    return [str(m.get("content") or "") for m in messages if m.get("role") == "user"
            and not str(m.get("content") or "").startswith("[runtime]")]


def _scope(messages: list[dict[str, Any]], history: list[Observation]) -> Scope:
    return conversation_scope(_questions(messages), [(o.tool, o.args, o.data) for o in history if o.ok])
