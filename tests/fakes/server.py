"""A small base for fake HTTP APIs: run a route function on 127.0.0.1:<free port> in a thread.

    def app(request: FakeRequest) -> FakeResponse: ...
    with FakeServer(app) as server:
        server.fail("/v1/search", Fault.status(429, headers={"Retry-After": "7"}))
        ... point the client at server.url ...
        assert server.count("/v1/search") == 1

Faults are matched by path prefix and take precedence over the app; every request is recorded (also the
faulted ones) so tests can count calls. A hanging fault holds the connection until the server stops.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class FakeRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[0] if values else default

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8", "replace")).items()}


@dataclass(frozen=True)
class FakeResponse:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json; charset=utf-8"

    @classmethod
    def json(cls, value: Any, status: int = 200, headers: dict[str, str] | None = None) -> FakeResponse:
        return cls(status, json.dumps(value).encode("utf-8"), headers or {})

    @classmethod
    def xml(cls, text: str, status: int = 200, headers: dict[str, str] | None = None) -> FakeResponse:
        return cls(status, text.encode("utf-8"), headers or {}, "application/xml; charset=utf-8")


@dataclass
class Fault:
    """What to do instead of the app for matching paths, for `times` requests (None: until cleared)."""

    response: FakeResponse | None = None
    hang: bool = False
    times: int | None = None
    # Do what was asked (the post is made), then hang instead of answering: a crash mid-call that "went out".
    hang_after: bool = False

    @classmethod
    def status(cls, code: int, body: bytes = b"", headers: dict[str, str] | None = None, **kw: Any) -> Fault:
        return cls(FakeResponse(code, body, headers or {}), **kw)

    @classmethod
    def malformed(cls, body: bytes = b'{"truncated": [1, 2', content_type: str = "application/json") -> Fault:
        return cls(FakeResponse(200, body, {}, content_type))

    @classmethod
    def hanging(cls) -> Fault:
        return cls(hang=True)


App = Callable[[FakeRequest], FakeResponse]


class FakeServer:
    def __init__(self, app: App) -> None:
        self.app = app
        self.requests: list[FakeRequest] = []
        self._faults: list[tuple[str, Fault]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeServer:
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # releases hanging requests
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail(self, path_prefix: str, fault: Fault) -> None:
        with self._lock:
            self._faults.append((path_prefix, fault))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, path_prefix: str = "/", method: str | None = None) -> int:
        with self._lock:
            return sum(
                1 for r in self.requests if r.path.startswith(path_prefix) and (method is None or r.method == method)
            )

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for index, (prefix, fault) in enumerate(self._faults):
                if path.startswith(prefix):
                    if fault.times is not None:
                        fault.times -= 1
                        if fault.times <= 0:
                            del self._faults[index]
                    return fault
        return None

    def _respond(self, request: FakeRequest) -> FakeResponse | None:
        with self._lock:
            self.requests.append(request)
        fault = self._fault_for(request.path)
        if fault is not None and fault.hang:
            self._stopping.wait()
            return None
        if fault is not None and fault.hang_after:
            self.app(request)
            self._stopping.wait()
            return None
        if fault is not None and fault.response is not None:
            return fault.response
        try:
            return self.app(request)
        except Exception as exc:  # a bug in a fake shows up as a 500 with the reason, not a hung test
            return FakeResponse(500, f"fake server error: {exc!r}".encode(), {}, "text/plain")

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                request = FakeRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qs(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length) if length else b"",
                )
                response = server._respond(request)
                if response is None:
                    self.close_connection = True
                    return
                self.send_response(response.status)
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
                for name, value in response.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(response.body)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _handle

            def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
                pass

        return Handler


class FakeAPI:
    """What every fake API shares: its FakeServer (set up in __init__ to run `handle`), started and stopped
    as a context manager."""

    server: FakeServer

    def handle(self, request: FakeRequest) -> FakeResponse:
        raise NotImplementedError

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url
