"""What the fuzz tests share (issue 16): Hypothesis strategies that mutate a real document (a scenario, a policy,
an HTTP body, a request), a hang guard, and the settings every fuzz test runs with.

The generated cases are the same on every run (`derandomize`); `SRE_AGENT_FUZZ_RANDOM=1` draws new ones and
`SRE_AGENT_FUZZ_CASES` sets how many per input kind (500)."""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

CASES = int(os.environ.get("SRE_AGENT_FUZZ_CASES", "500"))
HANG_SECONDS = 30  # a case still running after this is stopped and fails


def fuzz_settings(cases: int = CASES) -> Callable[[Any], Any]:
    return settings(max_examples=cases, deadline=None, database=None, print_blob=True,
                    derandomize=os.environ.get("SRE_AGENT_FUZZ_RANDOM") != "1",
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.large_base_example, HealthCheck.filter_too_much])


def paths(node: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value under `node` (mapping keys and list indexes)."""
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield (*prefix, index)
            yield from paths(value, (*prefix, index))


def nested(depth: int) -> Any:
    value: Any = "leaf"
    for level in range(depth):
        value = [value] if level % 2 else {"k": value}
    return value


NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.sampled_from([0, -1, 1, 2**31, 2**63, 10**20, 10**400, 1e20, -1e20, 1e308, 5e-324, math.inf, -math.inf,
                     math.nan]),
    st.floats(allow_nan=True, allow_infinity=True),
)
TIMES = st.sampled_from(["2025-11-09T14:47:30Z", "2025-11-09T14:47:30", "0001-01-01T00:00:00Z",
                         "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "2015-11-09T14:47:30Z", "not a time",
                         "2025-02-30T00:00:00Z", ""])
VALUES = st.one_of(
    st.none(), st.booleans(), NUMBERS, TIMES,
    st.text(max_size=40),  # random unicode
    st.binary(max_size=24),  # dumped as !!binary in YAML, as latin-1 text in JSON
    st.sampled_from(["x" * 5000, "{id}" * 900, "{", "}", "{0}", "{n:>1000000}", " ", "\u202e", "../../etc/passwd"]),
    st.lists(NUMBERS, max_size=3), st.dictionaries(st.text(max_size=6), NUMBERS, max_size=3),
    st.integers(min_value=1, max_value=300).map(nested),
    st.sampled_from([[0] * 1500, {f"k{i}": i for i in range(1500)}]),
)


@st.composite
def tree_mutations(draw: st.DrawFn, data: Any) -> Any:
    """`data` (a deep copy) with one or a few structural changes: a value dropped, replaced by one of `VALUES`, an
    unknown key added, a list entry duplicated, a number made 10 to 10⁶ times larger."""
    data = copy.deepcopy(data)
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        where = list(paths(data))
        if not where:
            break
        path = draw(st.sampled_from(where))
        parent = data
        for part in path[:-1]:
            parent = parent[part]
        last = path[-1]
        kind = draw(st.sampled_from(["drop", "replace", "replace", "replace", "unknown", "duplicate", "scale"]))
        if kind == "drop":
            del parent[last]
        elif kind == "replace":
            parent[last] = copy.deepcopy(draw(VALUES))  # never the strategy's own list or mapping
        elif kind == "unknown" and isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12))] = copy.deepcopy(draw(VALUES))
        elif kind == "duplicate" and isinstance(parent, list):
            parent.append(parent[last])  # the same object: a YAML alias once dumped
        elif kind == "scale" and isinstance(parent[last], int | float) and not isinstance(parent[last], bool):
            parent[last] *= 10 ** draw(st.integers(min_value=1, max_value=6))  # big, often still valid
    return data


@st.composite
def text_mutations(draw: st.DrawFn, text: str, huge: int) -> str | bytes:
    """`text` cut, spliced with random unicode or bytes, replaced by binary, padded to `huge` bytes, repeated, or
    wrapped in brackets nested far deeper than any parser recurses."""
    kind = draw(st.sampled_from(["cut", "splice", "bytes", "binary", "huge", "repeat", "deep"]))
    at = draw(st.integers(min_value=0, max_value=len(text)))
    if kind == "cut":
        return text[:at]
    if kind == "splice":
        return text[:at] + draw(st.text(min_size=1, max_size=20)) + text[at:]
    if kind == "bytes":
        return text[:at].encode() + draw(st.binary(min_size=1, max_size=20)) + text[at:].encode()
    if kind == "binary":
        return draw(st.binary(min_size=1, max_size=200))
    if kind == "huge":
        return text + "#" * huge
    if kind == "deep":
        depth = draw(st.sampled_from([1000, 5000, 100_000]))
        return "[" * depth + text + "]" * depth * draw(st.sampled_from([0, 1]))
    return text + "\n" + text[:at]


def as_json(data: Any) -> bytes:
    """`data` as a JSON body, whatever it holds (bytes as latin-1 text; NaN and infinities as JSON's extensions)."""
    return json.dumps(data, default=lambda value: value.decode("latin-1") if isinstance(value, bytes) else str(value)
                      ).encode()


class Hung(Exception):
    pass


@contextlib.contextmanager
def hang_guard(seconds: float = HANG_SECONDS) -> Iterator[None]:
    """Raise Hung in the block if it runs past `seconds` (SIGALRM: the main thread only)."""

    def alarm(signum: int, frame: Any) -> None:
        raise Hung(f"a case ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
