"""Configuration of the live sources, read from the environment, and the retry policy the live clients share.

Secrets come only from environment variables. A credential is required only when the live source that needs it
is built; a missing one raises ConfigError naming the variable to set.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_exponential

logger = logging.getLogger(__name__)

T = TypeVar("T")


def header_seconds(value: str | None) -> float | None:
    """A rate-limit reset / Retry-After header as seconds; None when absent or not a number."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ConfigError(Exception):
    """The live sources cannot be built: a setting is missing or unusable."""


class Settings(BaseSettings):
    """Everything the live Datadog, Kubernetes and RabbitMQ backends need."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    dd_api_key: SecretStr | None = Field(None, validation_alias="DD_API_KEY",
                                         description="Datadog API key (env DD_API_KEY).")
    dd_app_key: SecretStr | None = Field(None, validation_alias="DD_APP_KEY",
                                         description="Datadog application key (env DD_APP_KEY).")
    dd_site: str = Field("datadoghq.com", validation_alias="DD_SITE",
                         description="Datadog site, e.g. datadoghq.com or datadoghq.eu (env DD_SITE).")
    dd_host: str | None = Field(None, validation_alias="DD_HOST",
                                description="Full Datadog API base URL overriding DD_SITE (env DD_HOST).")
    kubeconfig: str | None = Field(None, validation_alias="KUBECONFIG",
                                   description="Path of the kubeconfig file; default ~/.kube/config (env KUBECONFIG).")
    kube_context: str | None = Field(None, validation_alias="KUBE_CONTEXT",
                                     description="kubeconfig context; default the current one (env KUBE_CONTEXT).")
    kube_in_cluster: bool | None = Field(
        None, validation_alias="KUBE_IN_CLUSTER",
        description="Use the pod's service account (env KUBE_IN_CLUSTER); unset: only when KUBERNETES_SERVICE_HOST "
                    "is set and no kubeconfig is found.")
    rabbitmq_url: str = Field("http://localhost:15672", validation_alias="RABBITMQ_URL",
                              description="Base URL of the RabbitMQ management API (env RABBITMQ_URL).")
    rabbitmq_user: str | None = Field(None, validation_alias="RABBITMQ_USER",
                                      description="RabbitMQ management user (env RABBITMQ_USER).")
    rabbitmq_password: SecretStr | None = Field(None, validation_alias="RABBITMQ_PASSWORD",
                                                description="RabbitMQ management password (env RABBITMQ_PASSWORD).")
    timeout_seconds: float = Field(10.0, gt=0, validation_alias="SRE_AGENT_TIMEOUT_SECONDS",
                                   description="Timeout of one HTTP call to a source (env SRE_AGENT_TIMEOUT_SECONDS).")
    max_attempts: int = Field(3, ge=1, le=10, validation_alias="SRE_AGENT_MAX_ATTEMPTS",
                              description="Attempts per call, retrying 429, 5xx and timeouts "
                                          "(env SRE_AGENT_MAX_ATTEMPTS).")
    max_wait_seconds: float = Field(
        20.0, ge=0, validation_alias="SRE_AGENT_MAX_WAIT_SECONDS",
        description="Cap on one wait between attempts, including a server's rate-limit reset "
                    "(env SRE_AGENT_MAX_WAIT_SECONDS).")

    def require(self, field: str) -> str:
        """The value of a credential field, or ConfigError naming its environment variable."""
        value = getattr(self, field)
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if not value:
            variable = str(type(self).model_fields[field].validation_alias or field.upper())
            raise ConfigError(f"{variable} is not set; export {variable} to use the live source that needs it")
        return str(value)

    def call(self, function: Callable[[], T], *, transient: Callable[[BaseException], bool],
             reset_after: Callable[[BaseException], float | None]) -> T:
        """Run `function`, retrying transient failures with capped exponential backoff or the server's reset time."""

        def wait(state: RetryCallState) -> float:
            error = state.outcome.exception() if state.outcome else None
            hinted = reset_after(error) if error else None
            delay = hinted if hinted is not None else wait_exponential(multiplier=0.5, max=self.max_wait_seconds)(state)
            return max(0.0, min(delay, self.max_wait_seconds))

        def log(state: RetryCallState) -> None:
            error = state.outcome.exception() if state.outcome else None
            logger.warning("attempt %d failed (%s); retrying", state.attempt_number, type(error).__name__)

        retrying = Retrying(stop=stop_after_attempt(self.max_attempts), retry=retry_if_exception(transient),
                            wait=wait, before_sleep=log, reraise=True)
        return retrying(function)
