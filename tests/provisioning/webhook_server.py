"""A provisioning endpoint on 127.0.0.1 for tests: http.server in a thread, answering from a script.

Each request is recorded (headers, body, time) and answered by the next entry of `script`; the last
entry repeats. An entry is a status code, or ("sleep", seconds, status) to answer late, which the
client sees as a timeout when seconds exceed PROVISIONING_WEBHOOK_TIMEOUT.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

SECRET = "test-provisioning-secret"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """Verified as a receiver would, independently of cases.services.provisioning."""
        timestamp = self.headers.get("X-Abusedesk-Timestamp", "")
        expected = hmac.new(secret.encode(), f"{timestamp}.".encode() + self.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(self.headers.get("X-Abusedesk-Signature", ""), f"sha256={expected}")


@dataclass
class WebhookServer:
    script: list = field(default_factory=lambda: [200])
    received: list[Received] = field(default_factory=list)
    # Called in the server thread with each request before answering (tests look at the database then).
    on_request: Callable[[Received], None] | None = None
    url: str = ""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def answer_for(self, index: int):
        return self.script[min(index, len(self.script) - 1)]

    def wait_for(self, count: int, timeout: float = 20.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        pytest.fail(f"timed out waiting for {count} request(s) at the webhook; got {len(self.received)}")


def _handler(server: WebhookServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's hook name
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            got = Received(self.path, dict(self.headers.items()), body, time.time())
            with server.lock:
                index = len(server.received)
                server.received.append(got)
            if server.on_request is not None:
                server.on_request(got)
            answer = server.answer_for(index)
            if isinstance(answer, tuple):
                _, seconds, answer = answer
                time.sleep(seconds)
            text = json.dumps({"ok": 200 <= answer < 300}).encode()
            try:
                self.send_response(answer)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(text)))
                self.end_headers()
                self.wfile.write(text)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up waiting (a timeout under test)

        def log_message(self, format, *args) -> None:  # noqa: A002 - http.server's signature
            pass

    return Handler


def start_webhook_server(script: list | None = None) -> tuple[WebhookServer, ThreadingHTTPServer]:
    server = WebhookServer(script=list(script or [200]))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    httpd.daemon_threads = True
    server.url = f"http://127.0.0.1:{httpd.server_address[1]}/hooks/abusedesk"
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return server, httpd


@pytest.fixture
def webhook(settings) -> Iterator[WebhookServer]:
    """A fresh endpoint per test, with the settings pointing at it (answers 200 until told otherwise)."""
    server, httpd = start_webhook_server()
    settings.PROVISIONING_WEBHOOK_URL = server.url
    settings.PROVISIONING_WEBHOOK_SECRET = SECRET
    settings.PROVISIONING_WEBHOOK_TIMEOUT = 2.0
    try:
        yield server
    finally:
        httpd.shutdown()
        httpd.server_close()
