"""The remediation policy: allow/refuse with the rule that decided, hard limits, and clear errors for bad files."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from agent.remediation.errors import PolicyError
from agent.remediation.policy import DEFAULT_POLICY, POLICY_ENV, PolicyDecision, load_policy, parse_policy
from agent.verdict import Action

DEFAULT = str(DEFAULT_POLICY)
WORKLOADS = f"rule 'workloads' (namespaces *) in {DEFAULT} (rules[1])"


def scale(replicas: int, namespace: str = "sock-shop", name: str = "queue-master") -> Action:
    return Action(action="scale", namespace=namespace, name=name, replicas=replicas)


@pytest.fixture(autouse=True)
def _no_policy_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(POLICY_ENV, raising=False)


def test_default_policy_allows_scale_within_bounds() -> None:
    policy = load_policy()
    assert policy.approval.expires_after == timedelta(minutes=15)
    assert policy.check(scale(1)) == PolicyDecision(
        allowed=True, rule=WORKLOADS, reason="scale of Deployment sock-shop/queue-master is allowed")


def test_scale_to_zero_is_refused_by_a_builtin_rule() -> None:
    decision = load_policy().check(scale(0))
    assert decision == PolicyDecision(
        allowed=False, rule="built-in: never scale to 0",
        reason="scale to 0 replicas refused: scaling to 0 stops the workload and is never done by this agent")
    assert str(decision).startswith("refused by built-in: never scale to 0: ")


def test_scale_above_max_names_the_rule_and_the_bounds() -> None:
    assert load_policy().check(scale(9)) == PolicyDecision(
        allowed=False, rule=WORKLOADS,
        reason="scale to 9 replicas is outside the allowed 1..5 for Deployment sock-shop/queue-master")


def test_system_namespaces_allow_nothing() -> None:
    decision = load_policy().check(Action(action="rollout_restart", namespace="kube-system", name="coredns"))
    assert decision == PolicyDecision(
        allowed=False,
        rule=f"rule 'system-namespaces-are-off-limits' (namespaces kube-*, openshift-*, cert-manager, istio-system, "
             f"monitoring) in {DEFAULT} (rules[0])",
        reason="rollout_restart is not allowed for Deployment kube-system/coredns; this rule allows nothing")


def test_action_none_is_refused() -> None:
    assert load_policy().check(Action(action="none")) == PolicyDecision(
        allowed=False, rule="built-in", reason="the action is 'none': nothing to run")


POLICY = {
    "approval": {"expires_after": "10m", "approvers": ["oncall-sre", "lead@example.com"]},
    "rules": [
        {"name": "shop-scaling", "namespaces": ["shop-*"], "deployments": ["worker*"],
         "allow": {"scale": {"min_replicas": 2, "max_replicas": 3}}},
        {"name": "shop-restarts", "namespaces": ["shop-*"], "allow": {"rollout_restart": None}},
    ],
}


def test_first_matching_rule_decides_and_unmatched_targets_are_refused() -> None:
    policy = parse_policy(POLICY, "team.yaml")
    assert policy.check(scale(2, "shop-eu", "worker-a")).allowed
    assert policy.check(scale(1, "shop-eu", "worker-a")).reason == (
        "scale to 1 replicas is outside the allowed 2..3 for Deployment shop-eu/worker-a")
    refused = policy.check(scale(2, "shop-eu", "api"))
    assert (refused.allowed, refused.rule) == (
        False, "rule 'shop-restarts' (namespaces shop-*) in team.yaml (rules[1])")
    assert refused.reason == "scale is not allowed for Deployment shop-eu/api; this rule allows rollout_restart"
    assert policy.check(Action(action="rollback", namespace="other", name="x")) == PolicyDecision(
        allowed=False, rule="default deny in team.yaml",
        reason="no rule matches Deployment other/x; nothing outside the listed rules may run")


def test_approvers_list() -> None:
    policy = parse_policy(POLICY, "team.yaml")
    assert policy.may_approve("oncall-sre").allowed
    assert policy.may_approve("mallory").reason == "mallory is not a listed approver (oncall-sre, lead@example.com)"
    assert not policy.may_approve("").allowed
    assert not policy.may_approve("rm -rf /").allowed
    assert load_policy().may_approve("anyone").reason == "any named person may approve"


@pytest.mark.parametrize(("change", "message"), [
    ({"rules": [{"name": "r", "namespaces": ["*"], "allow": {"delete": {}}}]},
     "rules.0.allow: unknown action 'delete'; the actions that exist are scale, rollout_restart, rollback "
     "(there is no delete)"),
    ({"rules": [{"name": "r", "namespaces": ["*"], "allow": {"scale": {"min_replicas": 0}}}]},
     "rules.0.allow.scale.min_replicas: Input should be greater than or equal to 1"),
    ({"rules": [{"name": "r", "namespaces": ["*"], "allow": {"scale": {"min_replicas": 3, "max_replicas": 2}}}]},
     "rules.0.allow.scale: max_replicas (2) is below min_replicas (3)"),
    ({"approval": {"expires_after": "soon"}},
     "approval.expires_after: cannot read duration 'soon': use seconds (900) or '15m', '900s', '1h'"),
    ({"approval": {"expires_after": "48h"}}, "approval.expires_after: expires_after must be between 1m and 24h, "
                                              "got 172800s"),
    ({"approval": {"approvers": ["ok", "not ok"]}},
     "approval.approvers: 'not ok' is not a usable name: use a handle or email (letters, digits, . _ @ + -)"),
    ({"rules": []}, "rules: List should have at least 1 item after validation, not 0"),
    ({"rulez": []}, "rulez: Extra inputs are not permitted"),
])
def test_bad_policy_names_file_field_and_reason(tmp_path: Path, change: dict, message: str) -> None:
    import yaml

    path = tmp_path / "policy.yaml"
    base = {"rules": [{"name": "r", "namespaces": ["*"]}]}
    path.write_text(yaml.safe_dump({**base, **change}))
    with pytest.raises(PolicyError) as caught:
        load_policy(path)
    lines = caught.value.message.splitlines()
    assert lines[0] == f"{path}: 1 problem(s)"
    assert lines[1] == f"  - {message}"


def test_unreadable_policy_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    missing = tmp_path / "nope.yaml"
    with pytest.raises(PolicyError, match=r"nope.yaml: policy file does not exist$"):
        load_policy(missing)
    monkeypatch.setenv(POLICY_ENV, str(missing))
    with pytest.raises(PolicyError, match=r"nope.yaml \(from \$SRE_AGENT_POLICY\): policy file does not exist$"):
        load_policy()
    broken = tmp_path / "broken.yaml"
    broken.write_text("rules: [unclosed\n")
    with pytest.raises(PolicyError, match=r"broken\.yaml: not valid YAML"):
        load_policy(broken)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("just text\n")
    with pytest.raises(PolicyError, match=r"scalar\.yaml: expected a mapping at the top level, got str"):
        load_policy(scalar)


def test_env_var_overrides_the_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "strict.yaml"
    path.write_text("rules:\n  - {name: only-restarts, namespaces: ['*'], allow: {rollout_restart: {}}}\n")
    monkeypatch.setenv(POLICY_ENV, str(path))
    policy = load_policy()
    assert policy.source == str(path)
    assert not policy.check(scale(1)).allowed
