"""A small YAML file of name → value that people edit while the server runs (approver tokens, Slack approvers): read
at start, read again when its modification time changes, and kept as it was if it vanishes for a moment."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.server.settings import ServerConfigError
from tools.yamlfile import Bounds, YAMLFileError, read_yaml

Parse = Callable[[dict[Any, Any], str], dict[str, str]]
MAPPING_BOUNDS = Bounds(bytes=1_000_000)  # some ten thousand people


class MappingFile:
    """`parse(raw, where)` turns the file's mapping into the entries kept, raising ServerConfigError naming `where`;
    `expected` says what the file should hold, for the error when it is not a mapping."""

    def __init__(self, path: Path | None, where: str, expected: str, parse: Parse) -> None:
        self.path, self.where, self.expected, self.parse = path, where, expected, parse
        self._lock = threading.Lock()
        self._stamp: float | None = None
        self._entries: dict[str, str] = {}
        if path is not None:
            self._load()

    def _load(self) -> None:
        assert self.path is not None
        try:
            stamp = self.path.stat().st_mtime
        except FileNotFoundError:
            raise ServerConfigError(f"{self.where}: the file does not exist") from None
        except OSError as exc:
            raise ServerConfigError(f"{self.where}: cannot read: {exc.strerror or exc}") from None
        try:
            raw = read_yaml(self.path, what="mapping file", name=self.where, bounds=MAPPING_BOUNDS) or {}
        except YAMLFileError as exc:
            raise ServerConfigError(str(exc)) from None
        if not isinstance(raw, dict):
            raise ServerConfigError(f"{self.where}: expected a mapping of {self.expected}, got {type(raw).__name__}")
        self._entries, self._stamp = self.parse(raw, self.where), stamp

    def entries(self) -> dict[str, str]:
        """The current entries, the file read again first if it changed."""
        if self.path is None:
            return {}
        with self._lock:
            try:
                changed = self.path.stat().st_mtime != self._stamp
            except OSError:
                changed = False  # keep the last good file if it vanishes for a moment
            if changed:
                self._load()
            return self._entries
