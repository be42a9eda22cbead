"""The live actuator's calls, checked against hand-written cassettes in the Kubernetes API's wire format.

Every cassette is played with record_mode=none and must be played entirely: an extra, missing or different
request (method, path, query, body, content type) fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import vcr
from kubernetes import client as k8s

from agent.remediation.errors import ProposalRefused, WorldChanged
from agent.remediation.kube_actuator import KubeActuator
from agent.remediation.policy import DEFAULT_POLICY, load_policy
from agent.remediation.service import Remediator
from agent.verdict import Action

CASSETTES = Path(__file__).parent / "cassettes" / "remediation"
HOST = "https://127.0.0.1:6443"
NOW = datetime(2025, 11, 9, 15, 2, 11, 483000, tzinfo=UTC)


def content_type(r1: Any, r2: Any) -> None:
    assert r1.headers.get("Content-Type") == r2.headers.get("Content-Type"), (
        f"{r1.headers.get('Content-Type')} != {r2.headers.get('Content-Type')}")


player = vcr.VCR(
    cassette_library_dir=str(CASSETTES), record_mode="none",
    match_on=["method", "scheme", "host", "port", "path", "query", "body", "content_type"],
    filter_headers=["authorization"], decode_compressed_response=True,
)
player.register_matcher("content_type", content_type)


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Remediator]:
    configuration = k8s.Configuration()
    configuration.host = HOST
    api = k8s.ApiClient(configuration)
    yield Remediator(KubeActuator(api, clock=lambda: NOW), policy=load_policy(DEFAULT_POLICY), data=tmp_path)
    api.close()


def test_scale_dry_run_then_patch_after_approval(desk: Remediator) -> None:
    with player.use_cassette("scale_flow.yaml") as cassette:
        record = desk.propose(Action(action="scale", namespace="sock-shop", name="queue-master", replicas=1),
                              run_id="run-7")
        assert record.dry_run is not None and record.dry_run.summary == (
            "server accepted (dry run): scale deployment/queue-master in sock-shop to 1 replicas")
        assert record.snapshot.model_dump() == {
            "exists": True, "replicas": 0, "revision": "1", "images": ["weaveworksdemos/queue-master:0.3.1"],
            "uid": "5f0c6d7e-1b4a-4c21-9d8e-2a6f3b9c1e07"}
        assert record.cluster == f"kubernetes:{HOST}"
        assert cassette.play_count == 2
        desk.approve(record.id, "oncall-sre")
        result = desk.execute(record.id)
        assert cassette.all_played and cassette.play_count == 5
    assert result.applied.model_dump() == {
        "ok": True, "dry_run": False, "summary": "applied: scale deployment/queue-master in sock-shop to 1 replicas",
        "before": None, "after": {"replicas": 1}, "status_code": None}
    assert result.approval.status == "executed"
    assert result.inverse_command == "kubectl -n sock-shop scale deployment/queue-master --replicas=0"
    assert [r.event for r in desk.history(approval_id=record.id)] == ["proposed", "approved", "dry_run", "executed"]
    assert desk.history(approval_id=record.id)[-1].detail["actuator"] == f"kubernetes:{HOST}"


def test_changed_replicas_since_the_proposal_stop_before_any_patch(desk: Remediator) -> None:
    with player.use_cassette("scale_world_changed.yaml") as cassette:
        record = desk.propose(Action(action="scale", namespace="sock-shop", name="queue-master", replicas=1),
                              run_id="run-8")
        desk.approve(record.id, "oncall-sre")
        with pytest.raises(WorldChanged, match=r"replicas: 0 at proposal → 2 now"):
            desk.execute(record.id)
        assert cassette.all_played
    assert desk.get(record.id).status == "stale"


def test_forbidden_dry_run_and_missing_target_create_no_approval(desk: Remediator) -> None:
    with player.use_cassette("refusals.yaml") as cassette:
        with pytest.raises(ProposalRefused) as forbidden:
            desk.propose(Action(action="scale", namespace="sock-shop", name="queue-master", replicas=1), run_id="r")
        with pytest.raises(ProposalRefused) as missing:
            desk.propose(Action(action="scale", namespace="sock-shop", name="queue-mastr", replicas=1), run_id="r")
        assert cassette.all_played
    assert forbidden.value.message == (
        "kubectl -n sock-shop scale deployment/queue-master --replicas=1 cannot be proposed: dry run refused for "
        'deployment/queue-master in sock-shop: 403 Forbidden: deployments.apps "queue-master" is forbidden: User '
        '"system:serviceaccount:sre:sre-agent" cannot patch resource "deployments/scale" in API group "apps" in the '
        'namespace "sock-shop"')
    assert missing.value.message == (
        "kubectl -n sock-shop scale deployment/queue-mastr --replicas=1 cannot be proposed: Deployment "
        "sock-shop/queue-mastr does not exist")
    assert desk.store.list() == []
    assert [r.event for r in desk.history(run_id="r")] == ["refused", "refused"]


def test_rollout_restart_patches_the_template_annotation(desk: Remediator) -> None:
    with player.use_cassette("restart_flow.yaml") as cassette:
        record = desk.propose(Action(action="rollout_restart", namespace="sock-shop", name="orders"), run_id="r")
        desk.approve(record.id, "oncall-sre")
        result = desk.execute(record.id)
        assert cassette.all_played
    assert result.applied.summary == (
        "applied: restart every pod of deployment/orders in sock-shop (restartedAt 2025-11-09T15:02:11Z)")
    assert result.applied.after == {"kubectl.kubernetes.io/restartedAt": "2025-11-09T15:02:11Z", "replicas": 1,
                                    "images": ["weaveworksdemos/orders:0.4.7"]}
    assert result.inverse_command == "kubectl -n sock-shop rollout undo deployment/orders"


def test_rollback_replaces_the_template_with_the_previous_replica_sets(desk: Remediator) -> None:
    with player.use_cassette("rollback_flow.yaml") as cassette:
        record = desk.propose(Action(action="rollback", namespace="sock-shop", name="carts"), run_id="r")
        assert record.dry_run is not None and record.dry_run.summary == (
            "server accepted (dry run): roll deployment/carts in sock-shop back from revision 3 to 2 "
            "(weaveworksdemos/carts:0.4.8)")
        desk.approve(record.id, "oncall-sre")
        result = desk.execute(record.id)
        assert cassette.all_played and cassette.play_count == 11
    assert result.applied.summary == (
        "applied: roll deployment/carts in sock-shop back from revision 3 to 2 (weaveworksdemos/carts:0.4.8)")
    assert result.applied.after == {"to_revision": "2", "replicas": 1, "images": ["weaveworksdemos/carts:0.4.8"]}
    sent = [(r.method, r.headers.get("Content-Type"), r.query) for r in cassette.requests if r.method == "PATCH"]
    assert sent == [("PATCH", "application/json-patch+json", [("dryRun", "All"), ("fieldManager", "sre-agent")])] * 2 \
        + [("PATCH", "application/json-patch+json", [("fieldManager", "sre-agent")])]


STATEFUL_SET = {"kind": "StatefulSet", "namespace": "ledger", "name": "filer"}


def test_a_statefulset_is_scaled_through_its_scale_subresource(desk: Remediator) -> None:
    with player.use_cassette("statefulset_scale_flow.yaml") as cassette:
        record = desk.propose(Action(action="scale", replicas=2, **STATEFUL_SET), run_id="r")  # type: ignore[arg-type]
        assert record.snapshot.revision == "filer-7d9c6b5f48" and record.snapshot.replicas == 0
        assert record.command == "kubectl -n ledger scale statefulset/filer --replicas=2"
        desk.approve(record.id, "oncall-sre")
        result = desk.execute(record.id)
        assert cassette.all_played and cassette.play_count == 5
    assert result.applied.summary == "applied: scale statefulset/filer in ledger to 2 replicas"
    assert result.inverse_command == "kubectl -n ledger scale statefulset/filer --replicas=0"


def test_a_statefulset_rolls_back_to_its_previous_controller_revision(desk: Remediator) -> None:
    with player.use_cassette("statefulset_rollback_flow.yaml") as cassette:
        record = desk.propose(Action(action="rollback", **STATEFUL_SET), run_id="r")  # type: ignore[arg-type]
        assert record.dry_run is not None and record.dry_run.summary == (
            "server accepted (dry run): roll statefulset/filer in ledger back from revision 4 to 3 "
            "(registry.example.com/ledger/filer:2.0)")
        desk.approve(record.id, "oncall-sre")
        result = desk.execute(record.id)
        assert cassette.all_played and cassette.play_count == 11
    assert result.applied.after == {"to_revision": "3", "replicas": 2,
                                    "images": ["registry.example.com/ledger/filer:2.0"]}
    patches = [r for r in cassette.requests if r.method == "PATCH"]
    assert [p.headers.get("Content-Type") for p in patches] == ["application/json-patch+json"] * 3
    assert '"$patch"' not in patches[-1].body.decode() and '"path": "/metadata/generation", "value": 4' in \
        patches[-1].body.decode()
