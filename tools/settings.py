"""Configuration of the live sources, read from the environment, and the retry policy the live clients share.

Secrets come only from environment variables. A credential is required only when the live source that needs it
is built; a missing one raises ConfigError naming the variable to set.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from tools.errors import TimedOut
from tools.redaction import redact

logger = logging.getLogger(__name__)

T = TypeVar("T")


def header_seconds(value: str | None) -> float | None:
    """A rate-limit reset / Retry-After header as seconds; None when absent or not a number."""
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class ConfigError(Exception):
    """The live sources cannot be built: a setting is missing or unusable. The message is redacted."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))


HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")


class Settings(BaseSettings):
    """Everything the live Datadog, Kubernetes and RabbitMQ backends need."""

    model_config = SettingsConfigDict(populate_by_name=True, extra="ignore")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:  # a variable set to something unusable: say which, and what it must be
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}={e.get('input')!r}: {e['msg']}"
                                 for e in exc.errors())
            raise ConfigError(f"unusable setting: {problems}") from None

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
    kube_cluster_name: str | None = Field(
        None, validation_alias="SRE_AGENT_CLUSTER_NAME",
        description="The investigated cluster's kube_cluster_name tag in Datadog; when set, every live Datadog "
                    "query and the event history are scoped to it (env SRE_AGENT_CLUSTER_NAME).")
    rabbitmq_url: str = Field("http://localhost:15672", validation_alias="RABBITMQ_URL",
                              description="Base URL of the RabbitMQ management API (env RABBITMQ_URL).")
    rabbitmq_user: str | None = Field(None, validation_alias="RABBITMQ_USER",
                                      description="RabbitMQ management user (env RABBITMQ_USER).")
    rabbitmq_password: SecretStr | None = Field(None, validation_alias="RABBITMQ_PASSWORD",
                                                description="RabbitMQ management password (env RABBITMQ_PASSWORD).")
    timeout_seconds: float = Field(10.0, gt=0, le=600, validation_alias="SRE_AGENT_TIMEOUT_SECONDS",
                                   description="Timeout of one HTTP call to a source (env SRE_AGENT_TIMEOUT_SECONDS).")
    max_attempts: int = Field(3, ge=1, le=10, validation_alias="SRE_AGENT_MAX_ATTEMPTS",
                              description="Attempts per call, retrying 429, 5xx and timeouts "
                                          "(env SRE_AGENT_MAX_ATTEMPTS).")
    max_wait_seconds: float = Field(
        20.0, ge=0, le=3600, validation_alias="SRE_AGENT_MAX_WAIT_SECONDS",
        description="Cap on all the waiting between the attempts of one call, including a server's rate-limit "
                    "reset (env SRE_AGENT_MAX_WAIT_SECONDS).")
    call_deadline_seconds: float = Field(
        30.0, gt=0, le=3600, validation_alias="SRE_AGENT_CALL_DEADLINE_SECONDS",
        description="Wall-clock bound on one call to a source, its attempts and waits included, however slowly the "
                    "server sends its answer (env SRE_AGENT_CALL_DEADLINE_SECONDS).")

    @field_validator("dd_site")
    @classmethod
    def _a_host_name(cls, value: str) -> str:
        if len(value) > 253 or not HOSTNAME.match(value):
            raise ValueError("not a Datadog site: use its host name, such as datadoghq.com, datadoghq.eu or "
                             "us5.datadoghq.com (a full URL goes in DD_HOST)")
        return value

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
             reset_after: Callable[[BaseException], float | None], source: str = "the source") -> T:
        """Run `function` within `call_deadline_seconds`, retrying transient failures after exponential backoff or
        the server's reset time. All the waits of one call together stay within `max_wait_seconds`: the first wait
        is cut to fit, and once it is used up the last failure is raised, as it is when no attempt fits before the
        deadline any more. An attempt still running at the deadline is TimedOut naming `source`."""
        deadline = time.monotonic() + self.call_deadline_seconds
        waited = 0.0
        for attempt in range(1, self.max_attempts + 1):
            try:
                return self._before(deadline, function, source)
            except Exception as exc:
                if attempt == self.max_attempts or not transient(exc):
                    raise
                hinted = reset_after(exc)
                wanted = hinted if hinted is not None else 0.5 * 2 ** (attempt - 1)
                left = self.max_wait_seconds - waited
                if waited and wanted > left:  # this call's waiting is used up: a 429 resetting in an hour stops here
                    raise
                delay = max(0.0, min(wanted, left))
                if time.monotonic() + delay >= deadline:
                    raise
                logger.warning("%s: attempt %d failed (%s: %s); retrying in %.1f s", source, attempt,
                               type(exc).__name__, redact((str(exc).splitlines() or [""])[0])[:160], delay)
                time.sleep(delay)
                waited += delay
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _before(self, deadline: float, function: Callable[[], T], source: str) -> T:
        """`function()` in a daemon thread, or TimedOut once `deadline` passes: a per-read socket timeout does not
        bound a server that trickles its answer. A thread left behind ends with its own socket."""
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()

        def run() -> None:
            try:
                outcome.append((True, function()))
            except BaseException as exc:  # handed to the caller's thread below
                outcome.append((False, exc))
            finally:
                done.set()

        threading.Thread(target=run, name=f"call to {source}", daemon=True).start()
        if not done.wait(max(0.0, deadline - time.monotonic())):
            raise TimedOut(f"{source} did not finish answering within {self.call_deadline_seconds:g} s",
                           hints=["the server is overloaded or sends its answer very slowly",
                                  "SRE_AGENT_CALL_DEADLINE_SECONDS bounds one call"])
        ok, value = outcome[0]
        if ok:
            return cast(T, value)
        raise value
