"""A graph paused at a human approval survives a restart: resume it from a new checkpointer instance."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NotRequired, TypedDict

import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt

from agent.remediation.checkpoint import make_checkpointer
from agent.remediation.errors import CheckpointerError
from agent.remediation.models import QueueRef, VerifyTarget
from agent.remediation.paths import DATA_ENV
from agent.remediation.policy import DEFAULT_POLICY, load_policy
from agent.remediation.service import Remediator, approval_request
from agent.verdict import Action
from tests.postgres_server import postgres_url  # noqa: F401  (fixture)
from tests.test_remediation_approvals import small_world
from tools.replay import replay_sources
from tools.toolkit import Sources


class Flow(TypedDict):
    command: str
    approver: NotRequired[str]
    ran: NotRequired[bool]


def tiny_graph(saver: BaseCheckpointSaver) -> Any:
    def approval(state: Flow) -> dict[str, Any]:
        answer = interrupt({"command": state["command"], "question": "approve?"})
        return {"approver": answer["approver"]}

    def act(state: Flow) -> dict[str, Any]:
        return {"ran": True}

    graph = StateGraph(Flow)
    graph.add_node("approval", approval)
    graph.add_node("act", act)
    graph.add_edge(START, "approval")
    graph.add_edge("approval", "act")
    graph.add_edge("act", END)
    return graph.compile(checkpointer=saver)


def pause_then_resume_elsewhere(target: str) -> None:
    config: Any = {"configurable": {"thread_id": "incident-42"}}
    with make_checkpointer(target) as saver:
        paused = tiny_graph(saver).invoke({"command": "kubectl -n shop scale deployment/worker --replicas=1"}, config)
        [request] = paused["__interrupt__"]
        assert request.value == {"command": "kubectl -n shop scale deployment/worker --replicas=1",
                                 "question": "approve?"}
        assert "ran" not in paused
        assert tiny_graph(saver).get_state(config).next == ("approval",)
    with make_checkpointer(target) as fresh:  # another process, after a restart
        graph = tiny_graph(fresh)
        assert graph.get_state(config).next == ("approval",)
        done = graph.invoke(Command(resume={"approver": "oncall-sre"}), config)
    assert done == {"command": "kubectl -n shop scale deployment/worker --replicas=1", "approver": "oncall-sre",
                    "ran": True}


def test_sqlite_interrupt_survives_a_new_checkpointer(tmp_path: Path) -> None:
    pause_then_resume_elsewhere(str(tmp_path / "checkpoints.sqlite"))


@pytest.mark.postgres
def test_postgres_interrupt_survives_a_new_checkpointer(postgres_url: str) -> None:  # noqa: F811
    pause_then_resume_elsewhere(postgres_url)


class Desk(TypedDict):
    approval_id: NotRequired[str]
    outcome: NotRequired[str]


def remediation_graph(remediator: Remediator, sources: Sources, saver: BaseCheckpointSaver) -> Any:
    """How the agent's graph wires the remediation core: propose, pause for a human, execute, verify."""
    action = Action(action="scale", namespace="shop", name="worker", replicas=1)
    target = VerifyTarget(namespace="shop", deployment="worker", replicas=1, queue=QueueRef(name="jobs"))

    def propose(state: Desk) -> dict[str, Any]:
        return {"approval_id": remediator.propose(action, run_id="thread-1", verify_target=target).id}

    def approval(state: Desk) -> dict[str, Any]:
        answer = interrupt(approval_request(remediator.get(state["approval_id"])))
        record = remediator.decide(state["approval_id"], answer)
        return {"outcome": record.status}

    def execute(state: Desk) -> dict[str, Any]:
        if state["outcome"] != "approved":
            return {}
        remediator.execute(state["approval_id"])
        return {"outcome": remediator.verify(state["approval_id"], sources).summary}

    graph = StateGraph(Desk)
    for name, node in (("propose", propose), ("approval", approval), ("execute", execute)):
        graph.add_node(name, node)
    graph.add_edge(START, "propose")
    graph.add_edge("propose", "approval")
    graph.add_edge("approval", "execute")
    graph.add_edge("execute", END)
    return graph.compile(checkpointer=saver)


def test_remediation_graph_resumes_after_a_restart(tmp_path: Path) -> None:
    sources = replay_sources(small_world())
    checkpoints = str(tmp_path / "checkpoints.sqlite")
    config: Any = {"configurable": {"thread_id": "thread-1"}}
    before = Remediator.for_replay(sources, policy=load_policy(DEFAULT_POLICY), data=tmp_path)
    with make_checkpointer(checkpoints) as saver:
        paused = remediation_graph(before, sources, saver).invoke({}, config)
    [request] = paused["__interrupt__"]
    assert request.value["command"] == "kubectl -n shop scale deployment/worker --replicas=1"
    assert request.value["dry_run"] == "would scale deployment/worker in shop from 0 to 1 replicas"
    assert [r.id for r in before.pending()] == [request.value["approval_id"]]

    after = Remediator.for_replay(sources, policy=load_policy(DEFAULT_POLICY), data=tmp_path)
    with make_checkpointer(checkpoints) as saver:
        done = remediation_graph(after, sources, saver).invoke(
            Command(resume={"decision": "approve", "approver": "oncall-sre"}), config)
    assert done["outcome"].startswith("backlog ")
    assert done["outcome"].endswith("; consumers 0 → 1; available 0 → 1")
    assert [r.event for r in after.history(run_id="thread-1")] == [
        "proposed", "approved", "dry_run", "executed", "verified"]


def test_default_checkpointer_lives_in_the_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    with make_checkpointer() as saver:
        tiny_graph(saver)
    assert (tmp_path / "data" / "checkpoints.sqlite").is_file()


def test_bad_checkpointer_targets_are_clear_errors() -> None:
    with pytest.raises(CheckpointerError) as scheme, make_checkpointer("redis://cache:6379/0"):
        pass
    assert scheme.value.message == "unsupported checkpointer URL scheme 'redis' in redis://cache:6379/0"
    with pytest.raises(CheckpointerError) as refused, make_checkpointer(
            "postgresql://agent:s3cret@127.0.0.1:1/agent?connect_timeout=2"):
        pass
    assert refused.value.message.startswith(
        "cannot connect to PostgreSQL at postgresql://agent:***@127.0.0.1:1/agent?connect_timeout=2: ")
    assert "s3cret" not in refused.value.message
