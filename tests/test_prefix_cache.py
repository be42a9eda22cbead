"""The persistent prompt-prefix cache against a stand-in for llama.cpp's slot API: built once, restored after,
a corrupted or refused file rebuilt, two processes at once never corrupting it."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from agent.llm.prefix_cache import PrefixCache

PREFIX = "You are an on-call SRE agent.\n\nThe time now is "
MAGIC = b"llama-kv-state:"


class FakeLlama(ThreadingHTTPServer):
    """What the cache uses of llama.cpp's server: a completion fills the slot; save and restore its state."""

    def __init__(self, folder: Path) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.folder = folder
        self.calls: list[str] = []
        self.lock = threading.Lock()

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    server: FakeLlama

    def log_message(self, *_args: Any) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        path = self.path
        with self.server.lock:
            self.server.calls.append(path.split("?")[0] + (f"?{path.split('?')[1]}" if "?" in path else ""))
        if path.startswith("/v1/chat/completions"):
            return self.reply(200, {"choices": [{"message": {"content": "x"}}]})
        target = self.server.folder / body["filename"]
        if path.endswith("action=save"):
            target.write_bytes(MAGIC + b"\x01" * 4096)
            return self.reply(200, {"id_slot": 0, "filename": body["filename"], "n_saved": 412})
        if path.endswith("action=restore"):
            if not target.read_bytes().startswith(MAGIC):
                return self.reply(400, {"error": {"message": "failed to restore slot state"}})
            return self.reply(200, {"id_slot": 0, "filename": body["filename"], "n_restored": 412})
        return self.reply(404, {})

    def reply(self, code: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def llama(tmp_path: Path) -> Iterator[FakeLlama]:
    server = FakeLlama(tmp_path)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def cache(llama: FakeLlama) -> PrefixCache:
    return PrefixCache(llama.root, llama.folder, model_sha256="cc32" * 16, n_ctx=16384, model="m")


def only_file(folder: Path) -> Path:
    [path] = [p for p in folder.glob("prefix-*.bin")]
    return path


def test_built_once_then_restored_by_the_next_process(llama: FakeLlama) -> None:
    first = cache(llama).prime(PREFIX)
    assert (first.outcome, first.tokens) == ("built", 412)
    assert llama.calls == ["/v1/chat/completions", "/slots/0?action=save"]
    llama.calls.clear()
    again = cache(llama).prime(PREFIX)
    assert (again.outcome, again.tokens) == ("restored", 412)
    assert llama.calls == ["/slots/0?action=restore"], "no prompt is computed again"
    assert not list(llama.folder.glob("partial-*")), "no partial file is left behind"


def test_another_prefix_or_model_is_another_file(llama: FakeLlama) -> None:
    cache(llama).prime(PREFIX)
    assert cache(llama).prime(PREFIX + "x").outcome == "built"
    other = PrefixCache(llama.root, llama.folder, model_sha256="ab" * 32, n_ctx=16384, model="m")
    assert other.prime(PREFIX).outcome == "built"
    assert len(list(llama.folder.glob("prefix-*.bin"))) == 3


def test_a_corrupted_file_is_detected_before_use_and_rebuilt(llama: FakeLlama) -> None:
    cache(llama).prime(PREFIX)
    path = only_file(llama.folder)
    path.write_bytes(path.read_bytes()[:100])  # truncated: a crash mid-copy, a full disk
    llama.calls.clear()
    rebuilt = cache(llama).prime(PREFIX)
    assert rebuilt.outcome == "rebuilt"
    assert "/slots/0?action=restore" not in llama.calls, "a file failing its check never reaches llama.cpp"
    assert cache(llama).prime(PREFIX).outcome == "restored"


def test_a_file_llama_cpp_refuses_is_rebuilt(llama: FakeLlama) -> None:
    cache(llama).prime(PREFIX)
    path = only_file(llama.folder)
    path.write_bytes(b"garbage from another llama.cpp version" * 10)
    marker = path.with_name(path.name + ".json")  # a marker that matches: the file is intact but unusable
    facts = json.loads(marker.read_text())
    marker.write_text(json.dumps({**facts, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                  "size": path.stat().st_size}))
    assert cache(llama).prime(PREFIX).outcome == "rebuilt"
    assert cache(llama).prime(PREFIX).outcome == "restored"


def test_an_unreachable_server_only_costs_the_cache(tmp_path: Path) -> None:
    primed = PrefixCache("http://127.0.0.1:9", tmp_path, model_sha256="0" * 64, n_ctx=1, model="m").prime(PREFIX)
    assert primed.outcome == "failed" and primed.tokens == 0


def _prime_in_a_process(root: str, folder: str, results: Any) -> None:
    primed = PrefixCache(root, Path(folder), model_sha256="cc32" * 16, n_ctx=16384, model="m").prime(PREFIX)
    results.put(primed.outcome)


def test_two_processes_starting_at_once_leave_one_valid_file(llama: FakeLlama) -> None:
    context = multiprocessing.get_context("fork")
    results: Any = context.Queue()
    workers = [context.Process(target=_prime_in_a_process, args=(llama.root, str(llama.folder), results))
               for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(30)
    outcomes = sorted(results.get(timeout=5) for _ in workers)
    assert outcomes == ["built", "restored"], "the second waited for the first's file instead of racing it"
    assert llama.calls.count("/slots/0?action=save") == 1
    assert cache(llama).prime(PREFIX).outcome == "restored"


def test_only_the_newest_few_prefix_files_are_kept(llama: FakeLlama) -> None:
    for index in range(6):
        assert cache(llama).prime(f"{PREFIX}{index}").outcome == "built"
    assert len(list(llama.folder.glob("prefix-*.bin"))) == 4
    assert len(list(llama.folder.glob("prefix-*.bin.json"))) == 4
    assert cache(llama).prime(f"{PREFIX}5").outcome == "restored", "the newest is kept"
