"""Parse the kubectl lines a verdict proposes into typed actions, so `kubectl scale deploy x -n ns --replicas 1`
and `kubectl -n ns scale deployment/x --replicas=1` compare equal. Never executed: only read."""

from __future__ import annotations

import shlex

from agent.verdict import Action
from tools.kubernetes.protocol import WorkloadKind

_KIND_WORDS: dict[str, WorkloadKind] = {
    **{word: "Deployment" for word in ("deployment", "deployments", "deploy", "deployment.apps", "deployments.apps")},
    **{word: "StatefulSet" for word in ("statefulset", "statefulsets", "sts", "statefulset.apps",
                                        "statefulsets.apps")},
}


class KubectlParseError(ValueError):
    pass


def _target(words: list[str]) -> tuple[WorkloadKind, str]:
    if not words:
        raise KubectlParseError("no target workload")
    head = words[0]
    if "/" in head:
        kind, name = head.split("/", 1)
        if kind.lower() not in _KIND_WORDS:
            raise KubectlParseError(f"unsupported kind {kind!r}")
        return _KIND_WORDS[kind.lower()], name
    if head.lower() in _KIND_WORDS and len(words) > 1:
        return _KIND_WORDS[head.lower()], words[1]
    raise KubectlParseError(f"cannot read target from {' '.join(words)!r}")


def parse_kubectl(command: str) -> Action:
    try:
        words = shlex.split(command)
    except ValueError as exc:
        raise KubectlParseError(f"cannot split {command!r}: {exc}") from None
    if not words or words[0] != "kubectl":
        raise KubectlParseError(f"not a kubectl command: {command!r}")
    namespace, replicas, rest = "default", None, []
    index = 1
    while index < len(words):
        word = words[index]
        if word in ("-n", "--namespace") and index + 1 < len(words):
            namespace, index = words[index + 1], index + 2
            continue
        if word.startswith("--namespace="):
            namespace = word.split("=", 1)[1]
        elif word == "--replicas" and index + 1 < len(words):
            replicas, index = words[index + 1], index + 2
            continue
        elif word.startswith("--replicas="):
            replicas = word.split("=", 1)[1]
        else:
            rest.append(word)
        index += 1
    if rest[:1] == ["scale"]:
        if replicas is None or not replicas.isdigit():
            raise KubectlParseError(f"scale without a numeric --replicas: {command!r}")
        kind, name = _target(rest[1:])
        return Action(action="scale", kind=kind, namespace=namespace, name=name, replicas=int(replicas))
    for verb, action in ((["rollout", "restart"], "rollout_restart"), (["rollout", "undo"], "rollback")):
        if rest[:2] == verb:
            kind, name = _target(rest[2:])
            return Action.model_validate({"action": action, "kind": kind, "namespace": namespace, "name": name})
    raise KubectlParseError(f"unsupported kubectl verb in {command!r}")
