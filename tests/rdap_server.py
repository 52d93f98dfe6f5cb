"""An RDAP server on 127.0.0.1 for tests: http.server in a thread, answering /ip/<addr> from a
table the test fills, and counting what it was asked. The `rdap_server` fixture points
RDAP_BASE_URL at it. Import the fixture by name in the test module that uses it."""

from __future__ import annotations

import ipaddress
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass
class Answer:
    status: int = 200
    body: Any = None  # a dict is sent as JSON; bytes as they are
    delay: float = 0.0


@dataclass
class RdapTestServer:
    base_url: str = ""
    # network (CIDR) -> Answer; the narrowest network holding the address answers, else 404.
    # /registry/ip/<addr> answers from `registry` (the server a redirect points to).
    networks: dict[str, Answer] = field(default_factory=dict)
    registry: dict[str, Answer] = field(default_factory=dict)
    requests: list[str] = field(default_factory=list)

    def answer(self, network: str, body: Any = None, *, status: int = 200, delay: float = 0.0) -> None:
        self.networks[network] = Answer(status, body, delay)

    def find(self, addr: str, table: dict[str, Answer] | None = None) -> Answer | None:
        table = self.networks if table is None else table
        ip = ipaddress.ip_address(addr)
        holding = [ipaddress.ip_network(n) for n in table if ip in ipaddress.ip_network(n)]
        if not holding:
            return None
        return table[str(max(holding, key=lambda n: n.prefixlen))]


def vcard(name: str, email: str | None) -> list:
    props: list = [["version", {}, "text", "4.0"], ["fn", {}, "text", name]]
    if email:
        props.append(["email", {"type": "work"}, "text", email])
    return ["vcard", props]


def ip_network_object(
    cidr: str, *, abuse_email: str | None = None, nested: bool = False, name: str = "EXAMPLE-NET", use_cidr0=False
) -> dict:
    """An RDAP ip network object (RFC 9083 5.4) the way registries answer: the abuse entity at
    the top level, or nested under the registrant (as RIPE and ARIN do)."""
    net = ipaddress.ip_network(cidr)
    data: dict[str, Any] = {
        "objectClassName": "ip network",
        "rdapConformance": ["rdap_level_0", "cidr0"],
        "handle": f"NET-{net.network_address}",
        "name": name,
        "ipVersion": f"v{net.version}",
    }
    if use_cidr0:
        key = "v4prefix" if net.version == 4 else "v6prefix"
        data["cidr0_cidrs"] = [{key: str(net.network_address), "length": net.prefixlen}]
    else:
        data["startAddress"] = str(net.network_address)
        data["endAddress"] = str(net.broadcast_address)
    abuse = {
        "objectClassName": "entity",
        "handle": "ABUSE-1",
        "roles": ["abuse"],
        "vcardArray": vcard("Abuse", abuse_email),
    }
    tech = {
        "objectClassName": "entity",
        "handle": "TECH-1",
        "roles": ["technical"],
        "vcardArray": vcard("Tech", "noc@other.example"),
    }
    if abuse_email is None:
        data["entities"] = [tech]
    elif nested:
        registrant = {
            "objectClassName": "entity",
            "handle": "ORG-1",
            "roles": ["registrant"],
            "entities": [tech, abuse],
        }
        data["entities"] = [registrant]
    else:
        data["entities"] = [tech, abuse]
    return data


@pytest.fixture
def rdap_server(settings) -> Iterator[RdapTestServer]:
    server_state = RdapTestServer()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's hook name
            server_state.requests.append(self.path)
            prefix = "/registry/ip/" if self.path.startswith("/registry/") else "/ip/"
            answer = None
            if self.path.startswith(prefix):
                try:
                    table = server_state.registry if prefix.startswith("/registry") else None
                    answer = server_state.find(self.path[len(prefix) :], table)
                except ValueError:
                    answer = Answer(400, {"errorCode": 400, "title": "bad address"})
            if answer is None:
                answer = Answer(404, {"errorCode": 404, "title": "not found"})
            if answer.delay:
                time.sleep(answer.delay)
            if answer.status in (301, 302, 303, 307, 308):  # rdap.org's way: off to the registry's server
                self.send_response(answer.status)
                self.send_header("Location", str(answer.body).replace("{addr}", self.path[len(prefix) :]))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body or {}).encode()
            try:
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/rdap+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a timeout test)
                pass

        def log_message(self, format: str, *args) -> None:  # noqa: A002 - quiet test output
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    server_state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}/"
    settings.RDAP_BASE_URL = server_state.base_url
    settings.RDAP_TIMEOUT = 0.5
    try:
        yield server_state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)
