"""One redaction for every text built from a setting, an exception or an HTTP exchange.

`redact(text)` masks, wherever they appear:
- the password in a URL's userinfo (`http://admin:s3cret@host` becomes `http://admin:***@host`);
- the value of every credential variable set in the environment: the SecretStr settings (DD_API_KEY, DD_APP_KEY,
  RABBITMQ_PASSWORD), any variable named like *_KEY, *_TOKEN, *_SECRET or *_PASSWORD, and the password in the
  userinfo of any URL-valued variable (RABBITMQ_URL), each raw and percent-encoded;
- bearer tokens and the values of Authorization / DD-API-KEY / DD-APPLICATION-KEY headers;
- `api_key=…`, `password: …`, `token=…` style pairs in query strings, JSON and YAML, which covers a kubeconfig's
  `token`, `client-key-data`, `password` and `client-secret`, and PEM private-key blocks.

Values shorter than MIN_SECRET characters are not masked by value: they would erase ordinary words, and a pattern
above still catches them where they sit next to their name.
"""

from __future__ import annotations

import logging
import os
import re
from functools import cache
from typing import get_args
from urllib.parse import quote, unquote, urlsplit

MASK = "***"
MIN_SECRET = 4

_SECRET_NAME = re.compile(r"(?:^|_)(?:API_?KEY|APP_?KEY|KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIALS?)$", re.I)
_URL_PASSWORD = re.compile(r"(?P<keep>\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/?#@]*:)[^\s/?#]*@")
_HEADER = re.compile(r"(?i)(?P<keep>\b(?:proxy-)?authorization|\bdd-api-key|\bdd-application-key|\bx-api-key|\bcookie)"
                     r"(?P<sep>[\"']?\s*[:=]\s*[\"']?)(?:(?:bearer|basic|token)\s+)?[^\s\"',;}]+")
_BEARER = re.compile(r"(?i)\b(?P<keep>bearer\s+)[A-Za-z0-9._~+/=-]+")
_PAIR = re.compile(r"(?i)(?P<keep>\b[\w.-]*?(?:api[_-]?key|app(?:lication)?[_-]?key|key[_-]data|password|passwd|"
                   r"secret|token)[\"']?\s*[=:]\s*[\"']?)(?!\*\*\*)[^\s\"'&,;}\]]+")
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S)


def redact(text: str) -> str:
    """`text` without the credentials it may carry (see the module's docstring)."""
    if not text:
        return text
    for secret in _secrets_in_environment():
        text = text.replace(secret, MASK)
    text = _PEM.sub(MASK, text)
    text = _URL_PASSWORD.sub(rf"\g<keep>{MASK}@", text)
    text = _HEADER.sub(rf"\g<keep>\g<sep>{MASK}", text)
    text = _BEARER.sub(rf"\g<keep>{MASK}", text)
    return _PAIR.sub(rf"\g<keep>{MASK}", text)


class RedactingFilter(logging.Filter):
    """A logging filter that redacts each record's message: add it to a handler to cover every log line."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = redact(record.getMessage()), None
        return True


def _secrets_in_environment() -> list[str]:
    """Every credential value the environment holds now, longest first so none is masked only in part."""
    names = set(_setting_variables())
    found: set[str] = set()
    for name, value in os.environ.items():
        if name in names or _SECRET_NAME.search(name):
            found.add(value)
        if "://" in value and "@" in value:
            found |= _userinfo_password(value)
    found |= {encoded for value in found if (encoded := quote(value, safe="")) != value}
    return sorted((value for value in found if len(value) >= MIN_SECRET), key=len, reverse=True)


def _userinfo_password(url: str) -> set[str]:
    try:
        password = urlsplit(url.strip()).password
    except ValueError:
        return set()
    return {password, unquote(password)} if password else set()


@cache
def _setting_variables() -> tuple[str, ...]:
    """The environment variables of the SecretStr settings."""
    from pydantic import SecretStr

    from tools.settings import Settings  # imported late: settings itself uses this module

    return tuple(str(field.validation_alias) for field in Settings.model_fields.values()
                 if field.annotation is SecretStr or SecretStr in get_args(field.annotation))
