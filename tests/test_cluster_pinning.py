"""The cluster is pinned: with a kubeconfig of two contexts, the tools and the executor resolve the same one, an
approval records it, and an executor for another cluster refuses without sending a request."""

from __future__ import annotations

from pathlib import Path

import pytest

from agent.remediation.errors import PolicyRefused
from agent.remediation.kube_actuator import KubeActuator
from agent.remediation.policy import DEFAULT_POLICY, load_policy
from agent.remediation.service import Remediator
from agent.verdict import Action
from tests.test_remediation_kube import player
from tools.kubernetes.credentials import kubernetes_client
from tools.settings import Settings

PROD, STAGING = "https://127.0.0.1:6443", "https://127.0.0.2:6443"
ACTION = Action(action="scale", namespace="sock-shop", name="queue-master", replicas=1)
KUBECONFIG = f"""
apiVersion: v1
kind: Config
current-context: staging
clusters:
- name: prod
  cluster: {{server: "{PROD}", insecure-skip-tls-verify: true}}
- name: staging
  cluster: {{server: "{STAGING}", insecure-skip-tls-verify: true}}
users:
- name: prod-reader
  user: {{token: prod-token}}
- name: staging-reader
  user: {{token: staging-token}}
contexts:
- name: prod
  context: {{cluster: prod, user: prod-reader}}
- name: staging
  context: {{cluster: staging, user: staging-reader}}
"""


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "kubeconfig"
    path.write_text(KUBECONFIG)
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.delenv("KUBE_IN_CLUSTER", raising=False)
    return path


def desk(settings: Settings, data: Path) -> Remediator:
    return Remediator(KubeActuator.from_settings(settings), policy=load_policy(DEFAULT_POLICY), data=data)


def test_kube_context_selects_one_cluster_for_reading_and_writing(
        kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBE_CONTEXT", "prod")
    settings = Settings()
    assert kubernetes_client(settings).configuration.host == PROD, "the tools read prod"
    prod = desk(settings, tmp_path)
    assert prod._actuator.label == f"kubernetes:prod@{PROD}"
    with player.use_cassette("scale_flow.yaml") as cassette:  # recorded against the prod API server only
        record = prod.propose(ACTION, run_id="run-prod")
        prod.approve(record.id, "oncall-sre")
        result = prod.execute(record.id)
        assert cassette.all_played
    hosts = {request.host for request in cassette.requests}
    assert hosts == {"127.0.0.1"}, "every request, read or write, went to the investigated cluster"
    assert result.approval.status == "executed"
    assert (record.cluster, record.snapshot.uid) == (f"kubernetes:prod@{PROD}", "5f0c6d7e-1b4a-4c21-9d8e-2a6f3b9c1e07")


def test_without_a_context_the_current_context_is_named(kubeconfig: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBE_CONTEXT", raising=False)
    actuator = KubeActuator.from_settings(Settings())
    assert actuator.label == f"kubernetes:staging@{STAGING}"


def test_an_executor_for_another_cluster_refuses_and_sends_nothing(
        kubeconfig: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KUBE_CONTEXT", raising=False)
    with player.use_cassette("scale_flow.yaml", allow_playback_repeats=True):
        prod = desk(Settings(kube_context="prod"), tmp_path)
        record = prod.propose(ACTION, run_id="run-prod")
        prod.approve(record.id, "oncall-sre")
    staging = desk(Settings(), tmp_path)  # another shell: no KUBE_CONTEXT, so the current-context, staging
    with player.use_cassette("no_requests.yaml") as cassette, pytest.raises(PolicyRefused) as refused:
        staging.execute(record.id)
    assert len(cassette.requests) == 0
    assert f"approved for kubernetes:prod@{PROD}, and this process would write to kubernetes:staging@{STAGING}" in (
        refused.value.message)
    assert staging.get(record.id).status == "failed"
    assert [r.event for r in staging.history(approval_id=record.id)][-1] == "refused"
