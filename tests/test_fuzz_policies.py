"""Hypothesis mutates remediation policy files (issue 16): the packaged default-policy.yaml and a fuller one (rule
approvers, a second approver, an authenticated identity), or writes one from nothing. Every case ends in a policy
that loads and then decides every action it is asked about (check, approvers, approvals needed, its identity), or in
one clear PolicyError naming the file: never another exception, never a hang.

Mutations are those of tests/fuzzing.py (a field dropped or of the wrong type, a number scaled up, NaN, unicode, a
long string or list, deep nesting, an unknown field, a rule duplicated; the text cut, spliced with bytes, binary,
padded past the size limit, nested past any parser's depth) plus YAML's own hazards: anchors and aliases, tags, and
keys that are not strings. `python -m pytest tests/test_fuzz_policies.py -s` prints the tally."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from agent.remediation.errors import PolicyError
from agent.remediation.policy import DEFAULT_POLICY, POLICY_BOUNDS, Policy, load_policy
from agent.verdict import Action
from tests.fuzzing import CASES, VALUES, fuzz_settings, hang_guard, text_mutations, tree_mutations

CASE_SECONDS = 2.0
DEFAULT_TEXT = DEFAULT_POLICY.read_text(encoding="utf-8")
FULLER_TEXT = """\
version: 1
approval:
  expires_after: 900
  approvers: [oncall-lead, sre@example.com]
  identity: authenticated
  second_approver_for: [rollback, scale]
rules:
  - name: payments-needs-its-owners
    namespaces: ["payments", "payments-*"]
    deployments: ["*-worker", "ledger"]
    approvers: [payments-owner]
    allow:
      scale: {min_replicas: 2, max_replicas: 8}
      rollback:
  - name: nothing-in-system
    namespaces: ["kube-*"]
    allow: {}
  - name: the-rest
    namespaces: ["*"]
    allow: {rollout_restart: {}, scale: {max_replicas: 3}}
"""
ORIGINALS = {"default": DEFAULT_TEXT, "fuller": FULLER_TEXT}
ACTIONS = [Action(action="scale", namespace=namespace, name=name, replicas=replicas)
           for namespace, name in (("payments", "refund-worker"), ("kube-system", "coredns"), ("shop", "ledger"))
           for replicas in (1, 3, 9)] + [
    Action(action=kind, namespace="payments", name="ledger") for kind in ("rollout_restart", "rollback", "none")]

BOMB = "a0: &a0 [x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]\n" for level in range(1, 9)) + "rules: *a8\n"
JSONISH = st.recursive(VALUES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["version", "approval", "rules", "name", "namespaces", "deployments", "allow", "scale",
                     "min_replicas", "max_replicas", "approvers", "expires_after", "identity", "rollback",
                     "second_approver_for", "rollout_restart", "delete", "source"]) | st.text(max_size=8),
    inner, max_size=5), max_leaves=20)
YAML_HAZARDS = st.sampled_from([
    BOMB,  # aliases that expand to 9⁹ nodes
    "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\nrules: [*b, *b, *b]\n",
    "rules: &r [{name: a, namespaces: ['*'], allow: {scale: {max_replicas: 2}}}]\nversion: 1\nx: *r\n",
    "rules: !!python/object/apply:os.system ['true']\n", "version: !!binary aGVsbG8=\nrules: []\n",
    "? [complex, key]\n: value\nrules: []\n", "1: one\nrules: []\n", "rules:\n  - &x {name: a, namespaces: [*x]}\n",
    "%YAML 1.1\n---\nrules: []\n---\nrules: []\n", "", "~", "[]", "42", "'just a string'", "rules: *undefined\n",
    "version: 1\nrules:\n  - {name: a, namespaces: ['[!]'], allow: {scale: {min_replicas: 0}}}\n",
    "approval: {expires_after: 99999999999999999999999h}\nrules: [{name: a, namespaces: ['*']}]\n",
])


@st.composite
def policy_files(draw: st.DrawFn) -> tuple[str, str | bytes]:
    """(what was done, the file's content)."""
    how = draw(st.sampled_from(["tree", "tree", "tree", "text", "generated", "hazard"]))
    original = draw(st.sampled_from(sorted(ORIGINALS)))
    text = ORIGINALS[original]
    if how == "tree":
        mutated = draw(tree_mutations(yaml.safe_load(text)))
        return f"{original}: tree", yaml.safe_dump(mutated, allow_unicode=True, sort_keys=False)
    if how == "text":
        return f"{original}: text", draw(text_mutations(text, POLICY_BOUNDS.bytes + 1))
    if how == "generated":
        return "generated", yaml.safe_dump(draw(JSONISH), allow_unicode=True)
    return "hazard", draw(YAML_HAZARDS)


def use(policy: Policy) -> None:
    """Everything a proposal and an approval ask of a policy."""
    for action in ACTIONS:
        assert str(policy.check(action))
        assert all(isinstance(name, str) for name in policy.approvers_for(action))
        assert policy.approvals_needed(action) in (1, 2)
    assert "@" in policy.identity()
    for person in ("oncall-lead", "", "bob; rm -rf /", "é" * 200):
        assert str(policy.may_approve(person))


def outcome(path: Path) -> str:
    try:
        policy = load_policy(path)
    except PolicyError as exc:
        message = str(exc)
        assert message.startswith(str(path)) and "Traceback" not in message, message
        return "clear error"
    use(policy)
    return "loaded"


def test_mutated_policy_files_load_or_fail_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    counts: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    slowest = [0.0]
    path = tmp_path / "policy.yaml"

    @fuzz_settings()
    @given(policy_files())
    def case(drawn: tuple[str, str | bytes]) -> None:
        how, content = drawn
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        started = time.monotonic()
        with hang_guard():
            result = outcome(path)
        elapsed = time.monotonic() - started
        assert elapsed < CASE_SECONDS, f"{how}: {elapsed:.1f} s"
        counts[result] += 1
        kinds[how.split(": ")[-1]] += 1
        slowest[0] = max(slowest[0], elapsed)

    case()
    total = sum(counts.values())
    with capsys.disabled():
        print(f"\nfuzzed policy files: {total} cases ({', '.join(f'{n} {k}' for k, n in sorted(kinds.items()))}), "
              f"{counts['loaded']} loaded and used, {counts['clear error']} clear errors, 0 tracebacks, 0 hangs; "
              f"slowest {slowest[0] * 1000:.0f} ms")
    assert total >= CASES
    assert counts["loaded"] and counts["clear error"]


@pytest.mark.parametrize(("content", "says"), [
    ("[" * 100_000, "nested deeper than"),
    ("a:\n" + "".join("  " * depth + "- \n" for depth in range(1, 60)), "nested deeper than"),
    ("rules: []\n" + "#" * (POLICY_BOUNDS.bytes + 1), f"larger than the limit of {POLICY_BOUNDS.bytes:,} bytes"),
    (b"rules: [\xff\xfe]\n", "not UTF-8 text"),
    (BOMB, "YAML nodes once aliases are expanded, above the limit of 20,000"),
    ("approval: {expires_after: 99999999999999999999999h}\nrules: [{name: a, namespaces: ['*']}]\n",
     "approval.expires_after: duration '99999999999999999999999h' is out of range"),  # was an OverflowError
], ids=["deep flow", "deep block", "huge", "not utf-8", "alias bomb", "duration overflow"])
def test_what_the_fuzzing_found(tmp_path: Path, content: str | bytes, says: str) -> None:
    """Regression examples: one clear PolicyError naming the file, quickly."""
    path = tmp_path / "policy.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    started = time.monotonic()
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    assert time.monotonic() - started < CASE_SECONDS
    assert str(caught.value).startswith(f"{path}: ") and says in str(caught.value), str(caught.value)
