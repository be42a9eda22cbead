"""The server's settings: one typed object, each field documented, read from `SRE_AGENT_SERVE_*` variables."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from tools.redaction import redact

ENV_PREFIX = "SRE_AGENT_SERVE_"


class ServerConfigError(Exception):
    """The server cannot start with this configuration: the message names the setting and what is wrong."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))
        self.message = redact(message)


class ServerSettings(BaseSettings):
    """Everything `sre-agent serve` needs beyond the sources' own settings (DD_*, KUBECONFIG, RABBITMQ_URL)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems = "; ".join((f"{ENV_PREFIX}{'_'.join(map(str, e['loc'])).upper()}: " if e["loc"] else "")
                                 + str(e["msg"]).removeprefix("Value error, ") for e in exc.errors())
            raise ServerConfigError(f"unusable server setting: {problems}") from None

    data: Path | None = Field(None, description="where investigations, approvals, audit and checkpoints are kept "
                                                "(default: $SRE_AGENT_DATA, else ~/.local/share/sre-agent)")
    scenario: str | None = Field(None, description="the replayed world an investigation reads when its request "
                                                   "names neither a scenario nor live")
    live: bool = Field(False, description="read the live sources by default (DD_*, KUBECONFIG, RABBITMQ_URL)")
    context: str | None = Field(None, description="with live: the kubeconfig context (default $KUBE_CONTEXT)")
    model: str | None = Field(None, description="the model spec when a request names none (default as the CLI: "
                                                "openai:$OPENAI_MODEL when configured, else local)")
    concurrency: int = Field(2, ge=1, le=64, description="investigations run at once; more wait in a queue")
    approver_tokens: Path | None = Field(None, description="YAML file: approver name → sha256 of their token "
                                                           "(`sre-agent serve token NAME` makes one)")
    identity_header: str | None = Field(None, description="a header a trusted auth proxy sets to the signed-in "
                                                          "person (e.g. X-Forwarded-User); unset: not trusted")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="client addresses whose identity header is believed (comma-separated; * for any)")
    webhook_secret: SecretStr | None = Field(None, description="when set, alert webhooks must carry "
                                                               "`Authorization: Bearer <secret>` or an "
                                                               "X-SRE-Agent-Signature HMAC of the body")
    alerts_remediate: bool = Field(True, description="an alert's investigation proposes its fix for approval")
    approval_wait_s: float = Field(10.0, gt=0, le=120, description="how long an approve/reject request waits for "
                                                                   "the resumed run to record the decision")
    slack_signing_secret: SecretStr | None = Field(None, description="the Slack app's signing secret: with the bot "
                                                                     "token, serves the Slack app at /slack/events")
    slack_bot_token: SecretStr | None = Field(None, description="the Slack app's bot token (xoxb-...)")
    slack_approvers: Path | None = Field(None, description="YAML file: Slack user id → approver name as the policy "
                                                           "lists it; unset: nobody approves from Slack")
    slack_channel: str | None = Field(None, description="the channel id alert-started investigations post their "
                                                        "verdict to (e.g. C0123ABCD); unset: not posted")
    slack_api_url: str = Field("https://slack.com/api/", description="the Slack Web API base URL")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("identity_header")
    @classmethod
    def _header(cls, value: str | None) -> str | None:
        if value is not None and not value.replace("-", "").isalnum():
            raise ValueError(f"{value!r} is not a header name")
        return value or None

    @model_validator(mode="after")
    def _one_default_source(self) -> ServerSettings:
        if self.live and self.scenario:
            raise ValueError("choose a default scenario or live, not both")
        return self

    @model_validator(mode="after")
    def _slack_pair(self) -> ServerSettings:
        if (self.slack_signing_secret is None) != (self.slack_bot_token is None):
            missing = "SLACK_BOT_TOKEN" if self.slack_bot_token is None else "SLACK_SIGNING_SECRET"
            raise ValueError(f"{ENV_PREFIX}{missing} is not set: the Slack app needs the signing secret and the bot "
                             "token both")
        if not self.slack and (self.slack_approvers or self.slack_channel):
            raise ValueError(f"{ENV_PREFIX}SLACK_APPROVERS and SLACK_CHANNEL need the Slack app: set "
                             f"{ENV_PREFIX}SLACK_SIGNING_SECRET and {ENV_PREFIX}SLACK_BOT_TOKEN")
        return self

    @property
    def slack(self) -> bool:
        """The Slack app is served (its signing secret and bot token are set)."""
        return self.slack_signing_secret is not None and self.slack_bot_token is not None

    def default_source(self) -> str | None:
        """The source spec of a request that names none: "live", a scenario, or None (the request must say)."""
        from agent.remediation.flow import LIVE, scenario_spec

        if self.live:
            return LIVE
        return scenario_spec(self.scenario) if self.scenario else None

    def folder(self) -> Path:
        from agent.remediation.paths import data_dir

        if self.data is None:
            return data_dir()
        try:
            self.data.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ServerConfigError(f"{ENV_PREFIX}DATA: cannot create {self.data}: {exc.strerror}") from None
        return self.data
