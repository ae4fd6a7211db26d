"""A loopback proxy in front of the local backend that loses answers, throttles and fails on cue.

It forwards each request byte for byte (Host header included, so SigV4 signatures stay valid)
and rewrites the backend's address in ``/_local/status`` so Livy traffic goes through it too.
Rules are consumed in order: ``(method, path_regex, action)`` with action ``"lose_answer"``
(forward, then answer 503 as if the reply was lost), ``"503"`` or ``"throttle"`` (not forwarded).
"""

from __future__ import annotations

import http.client
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit


class FaultyNetwork:
    """The proxy: ``.endpoint`` to point clients at, ``.fail(...)`` to plan faults, ``.seen``."""

    def __init__(self, backend_endpoint: str):
        self.backend = urlsplit(backend_endpoint)
        self.rules: list[tuple[str, re.Pattern[str], str]] = []
        self.seen: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                return None

            def _any(self) -> None:
                proxy._handle(self)

            do_GET = do_POST = do_DELETE = do_PUT = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def fail(self, method: str, path: str, action: str, times: int = 1) -> None:
        with self._lock:
            self.rules += [(method, re.compile(path), action)] * times

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _take(self, method: str, path: str) -> str | None:
        with self._lock:
            for i, (m, pattern, action) in enumerate(self.rules):
                if m == method and pattern.search(path):
                    del self.rules[i]
                    return action
        return None

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        body = request.rfile.read(int(request.headers.get("Content-Length") or 0))
        action = self._take(request.command, request.path)
        if action == "throttle":
            status, headers, payload = (
                400,
                {"x-amzn-ErrorType": "ThrottlingException"},
                {"message": "Rate exceeded"},
            )
            return self._answer(request, status, headers, json.dumps(payload).encode())
        if action == "503":
            return self._answer(request, 503, {}, b'{"message": "Service Unavailable"}')
        connection = http.client.HTTPConnection(self.backend.hostname, self.backend.port)
        connection.request(request.command, request.path, body, dict(request.headers.items()))
        answer = connection.getresponse()
        payload = answer.read()
        connection.close()
        if action == "lose_answer":
            return self._answer(request, 503, {}, b'{"message": "Service Unavailable"}')
        if request.path == "/_local/status":
            backend = f"http://{self.backend.netloc}"
            payload = payload.replace(backend.encode(), self.endpoint.encode())
        headers = {k: v for k, v in answer.getheaders() if k.lower() not in ("content-length",)}
        self._answer(request, answer.status, headers, payload)

    def _answer(self, request, status: int, headers: dict[str, str], payload: bytes) -> None:
        with self._lock:
            self.seen.append((request.command, request.path, status))
        request.send_response(status)
        for name, value in headers.items():
            if name.lower() not in ("transfer-encoding", "connection", "date", "server"):
                request.send_header(name, value)
        request.send_header("Content-Length", str(len(payload)))
        request.end_headers()
        request.wfile.write(payload)
