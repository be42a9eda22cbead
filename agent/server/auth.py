"""Who is asking: approvers by personal bearer token or a trusted proxy's identity header; webhooks by secret.

The approver tokens file maps a name to the SHA-256 of that person's token, never the token itself:

    # sre-agent serve token NAME prints a new token once, and the line to add here
    alice@example.com: sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae

The file is read again when it changes, so adding or removing an approver needs no restart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from agent.remediation.policy import valid_person
from agent.server.mapping_file import MappingFile
from agent.server.settings import ServerConfigError, ServerSettings

_HASH = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
SIGNATURE_HEADER = "X-SRE-Agent-Signature"


def _token_hashes(raw: dict[Any, Any], where: str) -> dict[str, str]:
    hashes: dict[str, str] = {}
    for name, value in raw.items():
        try:
            person = valid_person(str(name))
        except ValueError as exc:
            raise ServerConfigError(f"{where}: {exc}") from None
        match = _HASH.match(str(value).strip().lower()) if isinstance(value, str) else None
        if match is None:
            raise ServerConfigError(f"{where}: {person}: expected sha256:<64 hex digits> (the hash of the "
                                    "token, never the token); make one with `sre-agent serve token NAME`")
        hashes[person] = match.group(1)
    return hashes


def new_token() -> str:
    """A fresh approver token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return "sha256:" + hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Identity:
    """An authenticated person: `via` says how (a personal token, the trusted proxy's header, or Slack)."""

    name: str
    via: Literal["token", "proxy", "slack"]


class ApproverTokens:
    """The approver tokens file (name → sha256 of the token), reloaded when its modification time changes."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._file = MappingFile(path, f"{path} (approver tokens)", "name → sha256:<hex>", _token_hashes)

    def _fresh(self) -> dict[str, str]:
        return self._file.entries()

    def who(self, token: str) -> str | None:
        """The person whose token this is, or None. Compares every entry in constant time."""
        presented = hashlib.sha256(token.encode("utf-8")).hexdigest()
        found = None
        for name, expected in self._fresh().items():
            if hmac.compare_digest(presented, expected):
                found = name
        return found

    @property
    def configured(self) -> bool:
        return self.path is not None


class Unauthenticated(Exception):
    """No usable credentials; the message says what to send."""


def authenticate(settings: ServerSettings, tokens: ApproverTokens, bearer: str | None, headers: dict[str, str],
                 client: str | None) -> Identity:
    """The person behind a request: a valid personal bearer token, else the trusted proxy's identity header
    (only when configured, and only from a trusted proxy address). Raises Unauthenticated."""
    if bearer and (name := tokens.who(bearer)) is not None:
        return Identity(name, "token")
    header = settings.identity_header
    if header and (value := headers.get(header.lower())):  # a proxy may pass its own Authorization along
        trusted = "*" in settings.trusted_proxies or (client is not None and client in settings.trusted_proxies)
        if not trusted:
            raise Unauthenticated(f"{header} is only believed from a trusted proxy ({client} is not one)")
        try:
            return Identity(valid_person(value), "proxy")
        except ValueError as exc:
            raise Unauthenticated(f"{header}: {exc}") from None
    if bearer:
        raise Unauthenticated("the bearer token is not one of the approver tokens")
    ways = ["Authorization: Bearer <your approver token>"] if tokens.configured else []
    if header:
        ways.append(f"the {header} header from the auth proxy")
    if not ways:
        raise Unauthenticated("no approver can authenticate: the server has no approver tokens file "
                              "(SRE_AGENT_SERVE_APPROVER_TOKENS) and no trusted identity header "
                              "(SRE_AGENT_SERVE_IDENTITY_HEADER)")
    raise Unauthenticated("authentication needed: send " + " or ".join(ways))


def webhook_problem(settings: ServerSettings, body: bytes, authorization: str | None,
                    signature: str | None) -> str | None:
    """Why a webhook delivery is not from a sender that knows the shared secret, or None (also with no secret)."""
    if settings.webhook_secret is None:
        return None
    secret = settings.webhook_secret.get_secret_value().encode("utf-8")
    if signature:
        scheme, _, digest = signature.strip().partition("=")
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if scheme.lower() == "sha256" and hmac.compare_digest(digest.strip().lower(), expected):
            return None
        return f"{SIGNATURE_HEADER} does not match the body (expected sha256=<hex HMAC-SHA256 of the body>)"
    scheme, _, credentials = (authorization or "").partition(" ")
    if scheme.lower() == "bearer" and credentials:
        if hmac.compare_digest(credentials.strip().encode("utf-8"), secret):
            return None
        return "the bearer token is not the webhook secret"
    return f"unsigned: send Authorization: Bearer <webhook secret> or {SIGNATURE_HEADER}: sha256=<HMAC of the body>"
