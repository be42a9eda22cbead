"""The deployment manifests, checked offline: every object against the Kubernetes schemas (kubernetes-validate's
bundled ones, strict), and the safety properties the design rests on (read-only investigations, an executor
limited to scaling and restarting in the namespaces the policy allows, credentials only from Secrets)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from agent.remediation.policy import load_policy

ROOT = Path(__file__).resolve().parents[1]
MANIFESTS = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.31.0"
READ_VERBS = {"get", "list", "watch"}


def _documents() -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))
    docs = []
    for name in kustomization["resources"]:
        docs += [doc for doc in yaml.safe_load_all((MANIFESTS / name).read_text(encoding="utf-8")) if doc]
    return docs


DOCUMENTS = _documents()


def _of(kind: str) -> list[dict[str, Any]]:
    return [doc for doc in DOCUMENTS if doc["kind"] == kind]


@pytest.mark.parametrize("doc", DOCUMENTS, ids=lambda d: f"{d['kind']}/{d['metadata']['name']}")
def test_every_object_is_valid_against_the_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_file_is_listed_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text(encoding="utf-8"))["resources"])
    assert listed == {p.name for p in MANIFESTS.glob("*.yaml")} - {"kustomization.yaml"}


def test_investigations_read_only() -> None:
    [reader] = [r for r in _of("ClusterRole") if r["metadata"]["name"] == "sre-agent-read"]
    for rule in reader["rules"]:
        assert set(rule["verbs"]) <= READ_VERBS, rule
        assert "secrets" not in rule["resources"] and "configmaps" not in rule["resources"]
    assert not [b for b in _of("ClusterRoleBinding") if b["roleRef"]["name"] != "sre-agent-read"]


def test_the_executor_may_only_scale_and_restart_where_the_policy_allows(tmp_path: Path) -> None:
    roles = _of("Role")
    assert roles, "no executor Role"
    for role in roles:
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "patch"}, rule
            assert set(rule["resources"]) <= {"deployments", "statefulsets", "deployments/scale",
                                              "statefulsets/scale"}, rule
    [configmap] = _of("ConfigMap")
    policy_file = tmp_path / "policy.yaml"
    policy_file.write_text(configmap["data"]["policy.yaml"], encoding="utf-8")
    policy = load_policy(policy_file)
    allowing = {ns for rule in policy.rules if rule.allow.kinds() for ns in rule.namespaces}
    assert {role["metadata"]["namespace"] for role in roles} == allowing
    assert policy.approval.identity == "authenticated"
    bound = {(b["metadata"]["namespace"], s["name"]) for b in _of("RoleBinding") for s in b["subjects"]}
    assert {name for _, name in bound} == {"sre-agent-server"}


def test_the_watcher_runs_read_only_and_credentials_come_from_secrets() -> None:
    accounts = {d["metadata"]["name"]: d["spec"]["template"]["spec"]["serviceAccountName"]
                for d in _of("Deployment")}
    assert accounts == {"sre-agent-server": "sre-agent-server", "sre-agent-watcher": "sre-agent-reader"}
    for deployment in _of("Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            names = {e["name"] for e in container.get("env", [])}
            assert not names & {"DD_API_KEY", "DD_APP_KEY", "RABBITMQ_URL", "OPENAI_API_KEY"}  # never inline
            assert any("secretRef" in source for source in container.get("envFrom", []))
            assert container["securityContext"]["readOnlyRootFilesystem"] is True
