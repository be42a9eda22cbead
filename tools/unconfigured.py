"""The stand-in for a live source this process has no configuration for: it implements the source's protocol, and
every call raises NotConfigured naming what to set, so a tool reports the gap as a typed error instead of the
whole run failing."""

from __future__ import annotations

from collections.abc import Callable
from typing import NoReturn

from tools.errors import NotConfigured

HINT = "this source cannot be read in this deployment; do not retry it, and treat what it would show as unchecked"


class Unconfigured:
    """Any method of `protocol` raises NotConfigured(`message`); other attributes do not exist."""

    def __init__(self, protocol: type, message: str) -> None:
        self._protocol = protocol
        self.message = message

    def __getattr__(self, name: str) -> Callable[..., NoReturn]:
        if name.startswith("_") or not callable(getattr(self._protocol, name, None)):
            raise AttributeError(name)

        def not_configured(*args: object, **kwargs: object) -> NoReturn:
            raise NotConfigured(self.message, hints=[HINT])

        not_configured.__name__ = name
        return not_configured

    def __repr__(self) -> str:
        return f"Unconfigured({self._protocol.__name__}: {self.message})"
