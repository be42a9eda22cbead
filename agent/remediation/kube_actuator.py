"""The live actuator: typed calls through the `kubernetes` client, each first as a server-side dry run.

    scale            PATCH …/{deployments|statefulsets}/{name}/scale   {"spec": {"replicas": N}}  (strategic merge)
    rollout_restart  PATCH …/{deployments|statefulsets}/{name}         template annotation
                                                                       kubectl.kubernetes.io/restartedAt
    rollback         PATCH …/deployments/{name}    JSON patch: test the current revision, replace spec.template
                                                   with the previous ReplicaSet's template
                     PATCH …/statefulsets/{name}   JSON patch: test the generation read, replace spec.template with
                                                   the previous ControllerRevision's (what `kubectl rollout undo` does)

No shell, no kubectl: the kubectl line in an approval is only rendered for humans to read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from agent.remediation.actuator import target_missing
from agent.remediation.approvals import ExecutionClaim
from agent.remediation.errors import ExecutionFailed, RemediationError
from agent.remediation.models import ActuatorResult, TargetState
from agent.verdict import Action
from tools.settings import ConfigError, Settings
from tools.timerange import Clock, system_clock

logger = logging.getLogger(__name__)

REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
FIELD_MANAGER = "sre-agent"


def _api_message(exc: ApiException) -> str:
    try:
        body = json.loads(exc.body or "")
        message = body.get("message") if isinstance(body, dict) else None
    except ValueError:
        message = None
    return f"{exc.status} {exc.reason}: {message}" if message else f"{exc.status} {exc.reason}"


class KubeActuator:
    def __init__(self, api_client: k8s.ApiClient | None = None, *, clock: Clock = system_clock,
                 field_manager: str = FIELD_MANAGER, timeout_s: float = 15.0, context: str | None = None) -> None:
        self._api = api_client or k8s.ApiClient()
        self._apps = k8s.AppsV1Api(self._api)
        self.clock = clock
        self.field_manager = field_manager
        self.timeout_s = timeout_s
        # The cluster this actuator writes to; an approval records the one it was proposed on.
        where = f"{context}@" if context else ""
        self.label = f"kubernetes:{where}{self._api.configuration.host}"

    @classmethod
    def from_settings(cls, settings: Settings) -> KubeActuator:
        """The cluster the tools read: the same kubeconfig file and context (or service account), resolved once
        by the same function, so an investigation and its fix can never land on different clusters."""
        from tools.kubernetes.credentials import kubernetes_client

        try:
            api = kubernetes_client(settings)
        except ConfigError as exc:
            raise RemediationError(f"no Kubernetes credentials: {exc}",
                                   hints=["set KUBECONFIG (and KUBE_CONTEXT or --context), or run inside the "
                                          "cluster"]) from None
        return cls(api, context=context_name(settings))

    @classmethod
    def from_kubeconfig(cls, context: str | None = None) -> KubeActuator:
        return cls.from_settings(Settings(kube_context=context) if context else Settings())

    # ---- reading ----------------------------------------------------------------------------------------

    def _calls(self, action: Action) -> _KindCalls:
        if action.kind == "StatefulSet":
            return _KindCalls(self._apps.read_namespaced_stateful_set, self._apps.patch_namespaced_stateful_set,
                              self._apps.patch_namespaced_stateful_set_scale)
        return _KindCalls(self._apps.read_namespaced_deployment, self._apps.patch_namespaced_deployment,
                          self._apps.patch_namespaced_deployment_scale)

    def _read(self, action: Action) -> Any:
        try:
            return self._calls(action).read(action.name, action.namespace, _request_timeout=self.timeout_s)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise ExecutionFailed(f"cannot read {action.target_ref()}: {_api_message(exc)}") from None
        except HTTPError as exc:
            raise ExecutionFailed(f"cannot reach the Kubernetes API at {self._api.configuration.host}: {exc}"
                                  ) from None

    @staticmethod
    def _state(workload: Any) -> TargetState:
        """A Deployment's revision is its annotation's number; a StatefulSet's, its update ControllerRevision's
        name (it changes with every template change, which is what the stale-target check needs)."""
        if workload is None:
            return TargetState(exists=False)
        annotations = (workload.metadata.annotations if workload.metadata else None) or {}
        spec = workload.spec
        containers = spec.template.spec.containers if spec and spec.template and spec.template.spec else []
        revision = (workload.status.update_revision if workload.status else None) \
            if isinstance(workload, k8s.V1StatefulSet) else annotations.get(REVISION)
        return TargetState(exists=True, replicas=spec.replicas if spec else None, revision=revision,
                           images=[c.image for c in containers if c.image],
                           uid=workload.metadata.uid if workload.metadata else None)

    def current_state(self, action: Action) -> TargetState:
        return self._state(self._read(action))

    # ---- changing ---------------------------------------------------------------------------------------

    def dry_run(self, action: Action) -> ActuatorResult:
        return self._patch(action, dry_run=True)

    def apply(self, claim: ExecutionClaim) -> ActuatorResult:
        return self._patch(claim.action, dry_run=False)

    def _patch(self, action: Action, *, dry_run: bool) -> ActuatorResult:
        options: dict[str, Any] = {"field_manager": self.field_manager, "_request_timeout": self.timeout_s}
        if dry_run:
            options["dry_run"] = "All"
        verb = "server accepted (dry run):" if dry_run else "applied:"
        target = f"{action.resource()} in {action.namespace}"
        calls = self._calls(action)
        try:
            if action.action == "scale":
                scale = calls.patch_scale(
                    action.name, action.namespace, {"spec": {"replicas": action.replicas}}, **options)
                replicas = scale.spec.replicas if scale.spec else None
                return ActuatorResult(ok=True, dry_run=dry_run, after={"replicas": replicas},
                                      summary=f"{verb} scale {target} to {replicas} replicas")
            if action.action == "rollout_restart":
                stamp = self.clock().astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
                body = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}
                workload = calls.patch(action.name, action.namespace, body, **options)
                return ActuatorResult(ok=True, dry_run=dry_run, after={RESTARTED_AT: stamp, **_brief(workload)},
                                      summary=f"{verb} restart every pod of {target} (restartedAt {stamp})")
            if action.action == "rollback" and action.kind == "StatefulSet":
                return self._rollback_stateful_set(action, options, dry_run, verb, target)
            if action.action == "rollback":
                return self._rollback(action, options, dry_run, verb, target)
        except ApiException as exc:
            return ActuatorResult(ok=False, dry_run=dry_run, status_code=exc.status,
                                  summary=f"{'dry run' if dry_run else 'change'} refused for {target}: "
                                          f"{_api_message(exc)}")
        except HTTPError as exc:
            return ActuatorResult(ok=False, dry_run=dry_run,
                                  summary=f"cannot reach the Kubernetes API at {self._api.configuration.host}: {exc}")
        return ActuatorResult(ok=False, dry_run=dry_run, summary=f"cannot run action {action.action!r}")

    def _rollback(self, action: Action, options: dict[str, Any], dry_run: bool, verb: str,
                  target: str) -> ActuatorResult:
        deployment = self._read(action)
        if deployment is None:
            return target_missing(action, dry_run=dry_run)
        current = self._state(deployment)
        previous = self._previous_replica_set(action, deployment, current.revision)
        if previous is None:
            return ActuatorResult(ok=False, dry_run=dry_run, before=current,
                                  summary=f"{target} has no previous revision to roll back to "
                                          f"(current revision {current.revision})")
        revision, replica_set = previous
        template = self._api.sanitize_for_serialization(replica_set.spec.template if replica_set.spec else None)
        template.get("metadata", {}).get("labels", {}).pop("pod-template-hash", None)
        body = [
            {"op": "test", "path": "/metadata/annotations/" + REVISION.replace("/", "~1"), "value": current.revision},
            {"op": "replace", "path": "/spec/template", "value": template},
        ]
        patched = self._apps.patch_namespaced_deployment(action.name, action.namespace, body, **options)
        brief = _brief(patched)
        return ActuatorResult(ok=True, dry_run=dry_run, before=current, after={"to_revision": revision, **brief},
                              summary=f"{verb} roll {target} back from revision {current.revision} to {revision} "
                                      f"({', '.join(brief['images'])})")

    def _rollback_stateful_set(self, action: Action, options: dict[str, Any], dry_run: bool, verb: str,
                               target: str) -> ActuatorResult:
        stateful_set = self._read(action)
        if stateful_set is None:
            return target_missing(action, dry_run=dry_run)
        current = self._state(stateful_set)
        revisions = self._controller_revisions(action, stateful_set)
        number = next((r.revision for r in revisions if r.metadata.name == current.revision), None)
        older = [r for r in revisions if number is not None and r.revision < number]
        if not older:
            return ActuatorResult(ok=False, dry_run=dry_run, before=current,
                                  summary=f"{target} has no previous revision to roll back to "
                                          f"(current revision {current.revision})")
        previous = max(older, key=lambda r: r.revision)
        template = (previous.data or {}).get("spec", {}).get("template")
        if not isinstance(template, dict):
            return ActuatorResult(ok=False, dry_run=dry_run, before=current,
                                  summary=f"ControllerRevision {previous.metadata.name} holds no pod template")
        template = {key: value for key, value in template.items() if key != "$patch"}  # a merge-patch directive
        body = [{"op": "test", "path": "/metadata/generation", "value": stateful_set.metadata.generation},
                {"op": "replace", "path": "/spec/template", "value": template}]
        patched = self._apps.patch_namespaced_stateful_set(action.name, action.namespace, body, **options)
        brief = _brief(patched)
        return ActuatorResult(ok=True, dry_run=dry_run, before=current,
                              after={"to_revision": str(previous.revision), **brief},
                              summary=f"{verb} roll {target} back from revision {number} to {previous.revision} "
                                      f"({', '.join(brief['images'])})")

    def _controller_revisions(self, action: Action, stateful_set: k8s.V1StatefulSet) -> list[Any]:
        """The StatefulSet's own ControllerRevisions (the selector may match another owner's too)."""
        spec = stateful_set.spec
        owner_uid = stateful_set.metadata.uid if stateful_set.metadata else None
        labels = (spec.selector.match_labels if spec and spec.selector else None) or {}
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        found = self._apps.list_namespaced_controller_revision(action.namespace, label_selector=selector,
                                                               _request_timeout=self.timeout_s).items
        return [r for r in found if r.metadata and r.revision is not None
                and any(owner.uid == owner_uid for owner in r.metadata.owner_references or [])]

    def _previous_replica_set(self, action: Action, deployment: k8s.V1Deployment,
                              current: str | None) -> tuple[str, k8s.V1ReplicaSet] | None:
        if current is None or not current.isdigit():
            return None
        spec, meta = deployment.spec, deployment.metadata
        labels = (spec.selector.match_labels if spec and spec.selector else None) or {}
        owner_uid = meta.uid if meta else None
        selector = ",".join(f"{key}={value}" for key, value in sorted(labels.items()))
        replica_sets = self._apps.list_namespaced_replica_set(action.namespace, label_selector=selector,
                                                              _request_timeout=self.timeout_s).items
        candidates: list[tuple[int, k8s.V1ReplicaSet]] = []
        for rs in replica_sets:
            rs_meta = rs.metadata
            if rs_meta is None or rs.spec is None or rs.spec.template is None:
                continue
            if not any(owner.uid == owner_uid for owner in rs_meta.owner_references or []):
                continue
            revision = (rs_meta.annotations or {}).get(REVISION, "")
            if revision.isdigit() and int(revision) < int(current):
                candidates.append((int(revision), rs))
        if not candidates:
            return None
        number, replica_set = max(candidates, key=lambda item: item[0])
        return str(number), replica_set


@dataclass(frozen=True)
class _KindCalls:
    """The apps/v1 client calls for one workload kind."""

    read: Callable[..., Any]
    patch: Callable[..., Any]
    patch_scale: Callable[..., Any]


def context_name(settings: Settings) -> str | None:
    """The kubeconfig context the settings select (KUBE_CONTEXT, else the file's current-context); None in a pod."""
    if settings.kube_context:
        return settings.kube_context
    if settings.kube_in_cluster:
        return None
    from kubernetes import config

    try:
        _contexts, active = config.list_kube_config_contexts(config_file=settings.kubeconfig)
    except (config.ConfigException, OSError):
        return None
    return str(active["name"]) if active else None


def _brief(workload: Any) -> dict[str, Any]:
    spec = workload.spec
    containers = spec.template.spec.containers if spec and spec.template and spec.template.spec else []
    return {"replicas": spec.replicas if spec else None, "images": [c.image for c in containers if c.image]}
