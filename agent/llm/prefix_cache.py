"""A prompt-prefix cache that outlives the process: llama.cpp's KV state for the system prompt's unchanging part,
saved to the cache directory once and restored by every later process instead of being computed again.

The file is keyed by the model file's hash, the context size and the prefix's text. A marker beside it records
the file's SHA-256 and size, checked before every restore; a file that fails the check, or that llama.cpp
refuses, is removed and rebuilt. Building holds an exclusive lock and moves the file into place only when it is
complete, so two processes starting at once never read a half-written one. The cache can only save time: the
server still compares the restored tokens with each prompt and reuses just the common prefix.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

logger = logging.getLogger(__name__)

SLOT = 0  # the server runs one slot: the agent's one conversation
KEEP = 4  # prefix files kept
Outcome = Literal["restored", "built", "rebuilt", "failed"]


@dataclass(frozen=True)
class Primed:
    outcome: Outcome
    tokens: int
    seconds: float
    detail: str = ""


class PrefixCache:
    def __init__(self, server_root: str, folder: Path, *, model_sha256: str, n_ctx: int, model: str) -> None:
        self.root = server_root.rstrip("/")
        self.folder = folder
        self.model_sha256, self.n_ctx, self.model = model_sha256, n_ctx, model
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback only

    def key(self, prefix: str) -> str:
        return hashlib.sha256(f"{self.model_sha256}\n{self.n_ctx}\n{prefix}".encode()).hexdigest()[:32]

    def prime(self, prefix: str) -> Primed:
        """Load the prefix's KV state into the slot: restored from a verified file, else computed and saved."""
        began = time.monotonic()
        name = f"prefix-{self.key(prefix)}.bin"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            restored = self._restore(name)
            if restored is not None:
                return Primed("restored", restored, time.monotonic() - began)
            with self._lock(name):
                restored = self._restore(name)  # another process built it while we waited
                if restored is not None:
                    return Primed("restored", restored, time.monotonic() - began)
                stale = (self.folder / name).exists()
                tokens = self._build(prefix, name)
            return Primed("rebuilt" if stale else "built", tokens, time.monotonic() - began)
        except (OSError, ValueError, urllib.error.URLError) as exc:  # the cache only saves time: never fail a run
            logger.warning("prompt-prefix cache unavailable: %s", exc)
            return Primed("failed", 0, time.monotonic() - began, str(exc))

    # ---- the file and its marker --------------------------------------------------------------------------

    def _marker(self, name: str) -> Path:
        return self.folder / f"{name}.json"

    def _verified(self, name: str) -> bool:
        path = self.folder / name
        try:
            marker = json.loads(self._marker(name).read_text())
            size = path.stat().st_size
        except (OSError, ValueError):
            return False
        return (isinstance(marker, dict) and marker.get("size") == size and marker.get("model") == self.model_sha256
                and marker.get("sha256") == _sha256(path))

    def _discard(self, name: str) -> None:
        for path in (self.folder / name, self._marker(name)):
            path.unlink(missing_ok=True)

    @contextlib.contextmanager
    def _lock(self, name: str) -> Iterator[None]:
        with open(self.folder / f"{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def _restore(self, name: str) -> int | None:
        if not (self.folder / name).exists():
            return None
        if not self._verified(name):
            logger.info("prompt-prefix cache %s failed its check: rebuilding", name)
            return None
        try:
            answer = self._post(f"/slots/{SLOT}?action=restore", {"filename": name})
        except urllib.error.HTTPError as exc:
            logger.info("llama.cpp refused the prompt-prefix cache %s (%s): rebuilding", name, exc.code)
            return None
        return int(answer.get("n_restored") or 0)

    def _build(self, prefix: str, name: str) -> int:
        self._post("/v1/chat/completions", {"model": self.model, "max_tokens": 1, "temperature": 0,
                                            "cache_prompt": True,
                                            "messages": [{"role": "system", "content": prefix}]})
        partial = f"partial-{os.getpid()}-{name}"  # llama.cpp refuses names that start with a dot
        answer = self._post(f"/slots/{SLOT}?action=save", {"filename": partial})
        built = self.folder / partial
        marker = {"sha256": _sha256(built), "size": built.stat().st_size, "model": self.model_sha256,
                  "tokens": answer.get("n_saved"), "n_ctx": self.n_ctx}
        self._discard(name)
        os.replace(built, self.folder / name)
        self._marker(name).write_text(json.dumps(marker))
        self._forget_old()
        return int(answer.get("n_saved") or 0)

    def _forget_old(self) -> None:
        """Every prompt edit keys a new file (about 12 MB): keep the newest few, for other checkouts' prompts."""
        files = sorted(self.folder.glob("prefix-*.bin"), key=lambda path: path.stat().st_mtime, reverse=True)
        for old in files[KEEP:]:
            self._discard(old.name)

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        request = urllib.request.Request(f"{self.root}{path}", data=json.dumps(body).encode(), method="POST",
                                         headers={"Content-Type": "application/json"})
        with self._opener.open(request, timeout=300) as response:
            answer = json.loads(response.read() or b"{}")
        return answer if isinstance(answer, dict) else {}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
