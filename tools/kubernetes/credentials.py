"""Credentials for the Kubernetes API: the kubeconfig (KUBECONFIG, KUBE_CONTEXT), checked as untrusted input
before the client library reads it, or the pod's service account."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from tools.settings import ConfigError, Settings
from tools.yamlfile import Bounds, YAMLFileError, read_yaml

KUBECONFIG_BOUNDS = Bounds(bytes=16 * 2**20, depth=24, nodes=1_000_000, unique_keys=False)  # as kubectl reads it


def kubernetes_client(settings: Settings) -> client.ApiClient:
    """An ApiClient from the kubeconfig (KUBECONFIG, KUBE_CONTEXT) or the pod's service account."""
    configuration = client.Configuration()
    in_cluster = settings.kube_in_cluster
    if in_cluster is None:
        in_cluster = "KUBERNETES_SERVICE_HOST" in os.environ and not (
            settings.kubeconfig or os.path.exists(os.path.expanduser("~/.kube/config")))
    try:
        if in_cluster:
            config.load_incluster_config(client_configuration=configuration)
        else:
            _check_kubeconfig(settings)
            config.load_kube_config(config_file=settings.kubeconfig, context=settings.kube_context,
                                    client_configuration=configuration, persist_config=False)
    except (ConfigException, OSError, yaml.YAMLError, ValueError, TypeError, AttributeError, RecursionError) as exc:
        source = "the in-cluster service account" if in_cluster else "KUBECONFIG / KUBE_CONTEXT"
        raise ConfigError(f"cannot load Kubernetes credentials from {source}: {exc}") from None
    configuration.retries = False
    return client.ApiClient(configuration)


def _check_kubeconfig(settings: Settings) -> None:
    """Each kubeconfig file that exists (KUBECONFIG may list several) is YAML text within bounds, before the client
    library, which reads any size and recurses per level, parses it. A missing file is left to the library."""
    for name in (settings.kubeconfig or "~/.kube/config").split(os.pathsep):
        path = Path(name).expanduser()
        if name and path.is_file():
            try:
                read_yaml(path, what="kubeconfig", bounds=KUBECONFIG_BOUNDS)
            except YAMLFileError as exc:
                raise ConfigError(f"cannot load Kubernetes credentials from KUBECONFIG: {exc}") from None
