"""Datadog holds every cluster's data: live queries name the investigated one (`kube_cluster_name`) when its name
is configured, so another cluster's same-named namespace never answers for it."""

from __future__ import annotations

import re

CLUSTER_TAG = "kube_cluster_name"
_SCOPE = re.compile(r"\{([^}]*)\}")


def scoped_logs(query: str, cluster: str | None) -> str:
    if not cluster:
        return query
    return f"({query}) {CLUSTER_TAG}:{cluster}" if query.strip() else f"{CLUSTER_TAG}:{cluster}"


def scoped_metric(query: str, cluster: str | None) -> str:
    """`avg:m{a:b} by {c}` → `avg:m{a:b,kube_cluster_name:x} by {c}`: the first brace is the scope, later ones
    group by."""
    if not cluster:
        return query
    tag = f"{CLUSTER_TAG}:{cluster}"

    def add(match: re.Match[str]) -> str:
        inner = match.group(1).strip()
        return "{" + (tag if inner in ("", "*") else f"{inner},{tag}") + "}"

    scoped, count = _SCOPE.subn(add, query, count=1)
    return scoped if count else f"{query}{{{tag}}}"
