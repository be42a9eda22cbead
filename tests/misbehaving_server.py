"""A local HTTP server on 127.0.0.1 that misbehaves the way real APIs do: 500, 503 with an HTML page, 429 with a
reset an hour away, an answer slower than the client's timeout, a body trickled a byte at a time, truncated JSON,
an HTML page with status 200, and JSON of the wrong shape. Every request, whatever its path or method, gets the
fault the test set on `server.fault`; `server.requests` counts them and `server.seen` keeps each one's path and
headers."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

HTML = ("<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><h1>Bad Gateway</h1>"
        "<p>The proxy could not reach the upstream service.</p>" + "<!-- padding -->" * 24 + "</body></html>")
TRICKLE_BYTES = 100  # 20 s in all: longer than any test's hang guard
TRICKLE_GAP_S = 0.2
SLOW_S = 5.0
FAULTS = ("500", "503", "429", "slow", "trickle", "truncated", "html", "wrong_types")


@dataclass
class Fault:
    """What the server answers: `name` is one of FAULTS or "ok" (status 200 with `body` as JSON, or the body of the
    longest `routes` key the request's path starts with)."""

    name: str = "ok"
    body: Any = field(default_factory=dict)
    routes: dict[str, Any] = field(default_factory=dict)
    wrong: Any = field(default_factory=lambda: {"data": "not-a-list", "items": 7, "series": 3})


class MisbehavingServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.fault = Fault()
        self.requests = 0
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that gave up (broken pipe) is what the tests expect

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: MisbehavingServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        self._answer()

    def _send(self, status: int, body: bytes, content_type: str = "application/json",
              headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def _answer(self) -> None:
        self.server.requests += 1
        self.server.seen.append((self.path, {name.lower(): value for name, value in self.headers.items()}))
        fault = self.server.fault
        if fault.name == "500":
            self._send(500, b'{"error":"internal server error","reason":"boom"}')
        elif fault.name == "503":
            self._send(503, HTML.encode(), "text/html")
        elif fault.name == "429":
            self._send(429, b'{"errors":["Too many requests"]}',
                       headers={"Retry-After": "3600", "X-RateLimit-Reset": "3600", "X-RateLimit-Limit": "10"})
        elif fault.name == "slow":
            self.server.stopping.wait(SLOW_S)
            self._send(200, json.dumps(fault.body).encode())
        elif fault.name == "trickle":
            self._trickle(json.dumps(fault.body).encode().ljust(TRICKLE_BYTES))
        elif fault.name == "truncated":
            self._send(200, json.dumps(fault.body).encode()[:-7] or b'{"da')
        elif fault.name == "html":
            self._send(200, HTML.encode(), "text/html; charset=utf-8")
        elif fault.name == "wrong_types":
            self._send(200, json.dumps(fault.wrong).encode())
        else:
            path = self.path.split("?")[0]
            route = max((prefix for prefix in fault.routes if path.startswith(prefix)), key=len, default=None)
            self._send(200, json.dumps(fault.body if route is None else fault.routes[route]).encode())

    def _trickle(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.flush()
        try:
            for index in range(len(body)):
                if self.server.stopping.wait(TRICKLE_GAP_S):
                    return
                self.wfile.write(body[index:index + 1])
                self.wfile.flush()
        except OSError:
            return  # the client gave up


@pytest.fixture
def misbehaving() -> Iterator[MisbehavingServer]:
    server = MisbehavingServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def elapsed(began: float) -> float:
    return round(time.monotonic() - began, 2)
