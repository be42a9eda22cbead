"""Scenario files as a careless or hostile user writes them (issue 16): each reproduction is a copy of Incident-5
with one field changed, and each ends in one line naming the file, the field and the reason, with exit code 2 from
the CLI, quickly, never in a traceback, a hang or an out-of-memory run. The limits are `tools.replay.limits`."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from agent.cli import app
from evals.expectations import load_scenario
from tools.replay.limits import MAX_AFTER_CLOCK
from tools.replay.loading import builtin_scenarios_dir
from tools.replay.world import World, WorldTooLarge

runner = CliRunner()
QUEUE_MASTER = 12  # its index in the merged world.deployments of sock-shop
Edit = Callable[[dict[str, Any]], None]


def incident5(tmp_path: Path, edit: Edit | None = None, *, text: str | bytes | None = None) -> Path:
    """A copy of Incident-5 (and the base it extends) with `edit` applied to its YAML, or its file replaced."""
    shutil.copytree(builtin_scenarios_dir() / "_base", tmp_path / "_base")
    folder = tmp_path / "incident-5"
    shutil.copytree(builtin_scenarios_dir() / "incident-5", folder)
    spec = folder / "scenario.yaml"
    if edit is not None:
        data = yaml.safe_load(spec.read_text(encoding="utf-8"))
        edit(data)
        spec.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    if isinstance(text, str):
        spec.write_text(text, encoding="utf-8")
    elif isinstance(text, bytes):
        spec.write_bytes(text)
    return folder


def refused(folder: Path, line: str, *command: str) -> None:
    """`scenarios validate` (and `command`, if given) exit 2 with exactly `line` about the folder's file, fast."""
    spec = folder / "scenario.yaml"
    started = time.monotonic()
    result = runner.invoke(app, ["scenarios", "validate", str(folder)])
    assert (result.exit_code, result.stdout, result.stderr) == (2, "", f"invalid {spec}: {line}\n")
    if command:
        result = runner.invoke(app, [*command, "--scenario", str(folder)])
        assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
        assert (result.exit_code, result.stderr) == (2, f"error: {spec}: {line}\n")
    assert time.monotonic() - started < 10


def world(**fields: Any) -> Edit:
    return lambda data: data["world"].update(fields)


def queue_master(**fields: Any) -> Edit:
    return lambda data: data["world"]["deployments"].__setitem__(0, {"name": "queue-master", **fields})


def expect(**fields: Any) -> Edit:
    return lambda data: data["expect"].update(fields)


TOOL = ("tools", "call", "get_queue_stats")


# ---- worlds that validated but could not be simulated ---------------------------------------------------------

@pytest.mark.parametrize("depth", [10**20, 1e20], ids=["integer", "float"])
def test_a_huge_queue_depth_is_refused_before_any_message_is_made(tmp_path: Path, depth: float) -> None:
    folder = incident5(tmp_path, world(queues=[{"name": "shipping-task", "initial_depth": depth}]))
    refused(folder, "world.queues.0.initial_depth: 100000000000000000000 is above the limit of 50000 "
                    "(MAX_QUEUE_DEPTH)", *TOOL)


def test_a_trillion_replicas_are_refused(tmp_path: Path) -> None:
    folder = incident5(tmp_path, queue_master(replicas=10**12))
    refused(folder, f"world.deployments.{QUEUE_MASTER}.replicas: 1000000000000 is above the limit of 1000 "
                    "(MAX_REPLICAS)", *TOOL)


def test_ten_years_of_history_are_refused(tmp_path: Path) -> None:
    folder = incident5(tmp_path, world(start="2015-11-09T14:47:30Z"))
    refused(folder, "world.start: 87672.0 h of history before clock.now is above the limit of 24 h (MAX_HISTORY)",
            *TOOL)


def test_a_world_over_the_replay_budget_is_refused_naming_the_estimate(tmp_path: Path) -> None:
    folder = incident5(tmp_path, lambda data: data["world"].update(
        start="2025-11-09T00:00:00Z",
        flows=[{"name": "checkout", "rate_per_min": 5000, "steps": [
            {"deployment": "front-end", "message": "POST /orders 201"}]}]))
    refused(folder, "world: a replay would write about 4,492,230 records (log lines, spans, messages, events over "
                    "14.8 h), above the limit of 50,000 (MAX_REPLAY_LINES): lower the rates, the depths or the "
                    "replicas, or shorten the history", *TOOL)


@pytest.mark.parametrize(("edit", "line"), [
    (world(start="0001-01-01T00:00:00Z"),
     "world.start: 0001-01-01T00:00:00+00:00 is outside the limits 1971-01-01..2999-12-31 (EARLIEST, LATEST)"),
    (queue_master(replicas=[]), f"world.deployments.{QUEUE_MASTER}.replicas: List should have at least 1 item "
                                "after validation, not 0 (got a list of 0 items)"),
    (queue_master(startup_seconds=10**13),
     f"world.deployments.{QUEUE_MASTER}.startup_seconds: 10000000000000 is above the limit of 86400 (MAX_SECONDS)"),
    (queue_master(latency_ms=float("inf")),
     f"world.deployments.{QUEUE_MASTER}.latency_ms: Input should be a finite number (got inf)"),
    (queue_master(replicas=1, hangs=[{"at": "2025-11-09T14:00:00Z", "pods": 3}]),
     "world: deployment 'queue-master' hangs 3 pods at 2025-11-09T14:00:00+00:00 but has 1 then"),
], ids=["year one", "an empty timeline", "a startup of 300,000 years", "an infinite latency", "more hung pods"])
def test_values_that_crashed_the_simulator_are_refused(tmp_path: Path, edit: Edit, line: str) -> None:
    refused(incident5(tmp_path, edit), line, *TOOL)


def test_a_time_without_a_zone_is_utc_instead_of_a_traceback(tmp_path: Path) -> None:
    folder = incident5(tmp_path, lambda data: data["clock"].update(now="2025-11-09T14:47:30"))
    assert load_scenario(folder).clock.now.isoformat() == "2025-11-09T14:47:30+00:00"


def test_the_simulator_refuses_a_world_too_large_however_it_was_built() -> None:
    scenario = load_scenario("incident-5")
    queue = scenario.world.queues[0].model_copy(update={"initial_depth": 10**20})
    unchecked = scenario.model_copy(update={"world": scenario.world.model_copy(update={"queues": [queue]})})
    with pytest.raises(WorldTooLarge, match=r"^scenario 'incident-5': queue 'shipping-task': initial_depth "
                                            r"100000000000000000000 is above the limit of 50000 \(MAX_QUEUE_DEPTH\)$"):
        World(unchecked)
    replay = World(scenario)
    started = time.monotonic()
    with pytest.raises(WorldTooLarge, match=r"cannot simulate up to 2035-11-09T14:47:30\+00:00: at most "
                                            r"MAX_AFTER_CLOCK \(6 h\) past its clock"):
        replay.advance_to(scenario.clock.now + timedelta(days=3652))
    replay.advance_to(scenario.clock.now + MAX_AFTER_CLOCK)  # the bound itself is simulated
    with pytest.raises(WorldTooLarge, match="cannot scale sock-shop/queue-master to 1000000000000 replicas"):
        replay.scale("sock-shop", "queue-master", 10**12)
    assert time.monotonic() - started < 10


# ---- validation that accepted what the docs forbid ------------------------------------------------------------

def test_an_unknown_category_is_refused(tmp_path: Path) -> None:
    folder = incident5(tmp_path, expect(category="consumer_dead"))
    refused(folder, "expect.category: Input should be 'consumer_unavailable', 'consumer_crashlooping', "
                    "'consumer_too_slow', 'consumer_stuck', 'broker_unavailable', 'dependency_unavailable', "
                    "'app_errors', 'resource_exhaustion', 'config_change', 'planned_maintenance' or 'unknown' "
                    "(got 'consumer_dead')")


def test_an_id_other_than_its_folder_is_refused(tmp_path: Path) -> None:
    folder = incident5(tmp_path, lambda data: data.update(id="incident-6"))
    refused(folder, "id: 'incident-6' differs from its folder's name 'incident-5'; they must be equal")


@pytest.mark.parametrize(("second", "line"), [
    ({"name": "queue-master", "image": "x:1"}, "world.deployments.1: 'queue-master' is defined twice (also "
                                               "world.deployments.0)"),
    ({"name": "queue-master", "namespace": "sock-shop", "image": "x:1"},
     "world: deployments defined twice: sock-shop/queue-master"),
], ids=["in one file", "once with its namespace"])
def test_a_deployment_defined_twice_is_refused(tmp_path: Path, second: dict[str, Any], line: str) -> None:
    folder = incident5(tmp_path, lambda data: data["world"]["deployments"].append(second))
    refused(folder, line)


@pytest.mark.parametrize("question", ["", "   "], ids=["empty", "blank"])
def test_an_empty_question_is_refused(tmp_path: Path, question: str) -> None:
    refused(incident5(tmp_path, lambda data: data.update(question=question)), "question: must not be empty or blank")


# ---- files that are not a scenario at all ---------------------------------------------------------------------

def test_a_deeply_nested_file_is_refused_without_a_recursion_error(tmp_path: Path) -> None:
    nested = "world:\n" + "".join("  " * depth + "- \n" for depth in range(1, 400))
    refused(incident5(tmp_path, text=nested), "nested deeper than the limit of 24 levels (MAX_DEPTH) at line 25")


def test_a_deeply_nested_flow_sequence_is_refused(tmp_path: Path) -> None:
    refused(incident5(tmp_path, text="world: " + "[" * 50_000 + "]" * 50_000),
            "nested deeper than the limit of 24 levels (MAX_DEPTH) at line 1")


def test_a_binary_file_is_refused_without_a_unicode_error(tmp_path: Path) -> None:
    refused(incident5(tmp_path, text=b"\xff\xfe\x00\x81binary"),
            "not UTF-8 text (byte 0: invalid start byte); a scenario is a YAML text file")


def test_a_huge_file_is_refused_before_parsing(tmp_path: Path) -> None:
    refused(incident5(tmp_path, text="id: incident-5\n" + "#" * 2_000_000 + "\n"),
            "larger than the limit of 1,000,000 bytes (MAX_FILE_BYTES); not parsed")


def test_an_alias_bomb_is_refused_before_it_expands(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    refused(incident5(tmp_path, text="\n".join(lines) + "\n"),
            "490,329,064 YAML nodes once aliases are expanded, above the limit of 200,000 (MAX_NODES)")


@pytest.mark.parametrize(("text", "line"), [
    ("id: " + "9" * 5000 + "\n", "not a usable YAML value: Exceeds the limit (4300 digits) for integer string "
                                 "conversion: value has 5000 digits; use sys.set_int_max_str_digits() to increase "
                                 "the limit"),
    ("clock: {now: 2025-13-45}\n", "not a usable YAML value: month must be in 1..12"),
    ("a: &a [*a]\n", "not a usable YAML value: an alias refers to a node that contains it (a recursive structure)"),
    ("question: " + "?" * 5000 + "\n", "question: a string of 5,000 characters is above the limit of 4,000 "
                                        "(MAX_TEXT)"),
], ids=["a 5000-digit number", "a 13th month", "a recursive alias", "a 5000-character question"])
def test_values_yaml_cannot_hold_are_one_clear_error(tmp_path: Path, text: str, line: str) -> None:
    refused(incident5(tmp_path, text=text), line)


# ---- cross-references name what exists ------------------------------------------------------------------------

@pytest.mark.parametrize(("edit", "line"), [
    (world(flows=[{"name": "checkout", "rate_per_min": 1, "steps": [{"publish": "shipping-tasks"}]}]),
     "world: flow 'checkout' publishes to unknown queue 'shipping-tasks'"),
    (world(flows=[{"name": "checkout", "rate_per_min": 1, "steps": [{"publish": "shipping-task", "vhost": "eu"}]}]),
     "world: flows.0.steps.0: flow 'checkout' publishes to unknown queue 'shipping-task' in vhost 'eu' (it is in "
     "/)"),
    (queue_master(autoscaler={"kind": "ScaledObject", "max_replicas": 2, "queue": "orders"}),
     "world: autoscaler of 'queue-master' watches unknown queue 'orders'"),
    (world(queues=[{"name": "shipping-task", "consumer": {"deployment": "queue-mastr"}}]),
     "world: queue 'shipping-task' consumer names unknown deployment sock-shop/queue-mastr"),
    (world(flows=[{"name": "checkout", "rate_per_min": 1, "only_while": {"deployment": "gateway", "up": True},
                   "steps": [{"deployment": "orders", "message": "ok"}]}]),
     "world: flow 'checkout' gate names unknown deployment sock-shop/gateway"),
    (world(broker={"deployment": "rabbit"}), "world: broker names unknown deployment sock-shop/rabbit"),
    (expect(forbidden_actions=["scale:payments/*"]),
     "expect.forbidden_actions: 'scale:payments/*' names namespace 'payments', which has no deployment in the "
     "world"),
    (queue_master(replicas=[{"at": "2025-11-09T13:45:00Z", "replicas": 0}], hangs=[{"at": "2025-11-09T14:00:00Z"}]),
     "world: deployment 'queue-master' hangs at 2025-11-09T14:00:00+00:00 but has no pods then: a hang needs "
     "running pods (give replicas > 0 at that time)"),
    (world(events=[{"at": "2025-11-09T14:00:00Z", "namespace": "payments", "kind": "Pod", "name": "p",
                    "reason": "Killing", "message": "m"}]),
     "world: events.0.namespace: 'payments' is no namespace of the world (add it to extra_namespaces)"),
], ids=["a queue", "a vhost", "an autoscaler's queue", "a consumer", "a gate", "a broker", "a forbidden namespace",
        "a hung consumer with no pods", "an event's namespace"])
def test_a_reference_to_nothing_is_refused(tmp_path: Path, edit: Edit, line: str) -> None:
    refused(incident5(tmp_path, edit), line)
