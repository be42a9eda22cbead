"""Fuzzing (issue 16): every tool, called with generated and mutated arguments on a replay world, answers with a
result or a typed `bad_argument`/source error the model can read, never an exception, within a time bound.

The arguments are what a model (or a user with `tools call --args`) might send: the tool's own parameters with
values of any type, plausible names with one character changed, queries with broken syntax, unknown keys."""

from __future__ import annotations

import json
import signal
import time
from collections import Counter
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.fuzzing import CASES, VALUES, fuzz_settings, hang_guard
from tools.registry import default_toolbox
from tools.replay import replay_sources

CASE_SECONDS = 5.0
PLAUSIBLE = st.sampled_from([
    "sock-shop", "queue-master", "shipping-task", "/", "now-15m", "now-24h", "now", "now+5m", "now-99999d",
    "kube_namespace:sock-shop status:(error OR warn)", "kube_namespace:sock-shop service:queue-master",
    "avg:rabbitmq.queue.messages{rabbitmq_queue:shipping-task}", "max:kubernetes_state.deployment.replicas_desired{*}",
    "status:(error OR", "service:", "*", "(((((", "a" * 2001, "kube_namespace:\x00", "{{", "}"])


def _mutated(text: str) -> st.SearchStrategy[str]:
    return st.integers(min_value=0, max_value=max(len(text) - 1, 0)).flatmap(
        lambda at: st.characters().map(lambda c: text[:at] + c + text[at + 1:]))


@st.composite
def calls(draw: st.DrawFn, names: dict[str, list[str]]) -> tuple[str, dict[str, Any]]:
    tool = draw(st.sampled_from(sorted(names)))
    args: dict[str, Any] = {}
    for key in names[tool]:
        if draw(st.booleans()):
            args[key] = draw(st.one_of(PLAUSIBLE, PLAUSIBLE.flatmap(_mutated), VALUES))
    if draw(st.integers(min_value=0, max_value=9)) == 0:
        args[draw(st.text(max_size=8))] = draw(VALUES)
    return tool, args


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="needs SIGALRM to stop a hang")
def test_tools_called_with_fuzzed_arguments_answer_or_fail_clearly(capsys: pytest.CaptureFixture[str]) -> None:
    toolbox = default_toolbox()
    sources = replay_sources("incident-5")
    names = {schema["function"]["name"]: sorted(schema["function"]["parameters"].get("properties", {}))
             for schema in toolbox.schemas()}
    counts: Counter[str] = Counter()
    slowest: list[tuple[float, str]] = [(0.0, "")]

    @fuzz_settings()
    @given(calls(names))
    def case(drawn: tuple[str, dict[str, Any]]) -> None:
        tool, args = drawn
        started = time.monotonic()
        with hang_guard():
            outcome = toolbox.call(sources, tool, args)
            text = outcome.text()  # what the model reads
        elapsed = time.monotonic() - started
        assert elapsed < CASE_SECONDS, f"{tool}({args!r:.200}): {elapsed:.1f} s"
        assert text.strip(), f"{tool}({args!r:.200}) answered nothing"
        if not outcome.ok:
            error = json.loads(text)
            assert error.get("error") and error.get("message"), f"{tool}: an untyped error: {error!r:.300}"
            counts[f"error:{error['error']}"] += 1
        else:
            counts["ok"] += 1
        if elapsed > slowest[0][0]:
            slowest[0] = (elapsed, tool)

    case()
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nfuzzed tool arguments: {total} cases over {len(names)} tools, {counts['ok']} answered, "
              f"{total - counts['ok']} typed errors ({', '.join(f'{k} {v}' for k, v in sorted(counts.items()))}), "
              f"0 exceptions, 0 hangs; slowest {slowest[0][0]:.2f} s ({slowest[0][1]})")
    assert total >= CASES
    assert counts["ok"] and total - counts["ok"], "the cases reach both answers and errors"
