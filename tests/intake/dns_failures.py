"""Resolvers on 127.0.0.1 that fail the two ways a real one does: SERVFAIL, and no answer at all.

(NXDOMAIN is the dns_server fixture's answer for every name it was not given.)
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator

from abusedesk.lib import dns as adns
from tests.fixtures_services import free_port


class _ServFail:
    def resolve(self, request, handler):
        from dnslib import RCODE

        reply = request.reply()
        reply.header.rcode = RCODE.SERVFAIL
        return reply


def _point_at(settings, port: int, timeout: float) -> None:
    settings.DNS_NAMESERVERS = ["127.0.0.1"]
    settings.DNS_PORT = port
    settings.DNS_TIMEOUT = timeout
    adns.clear_cache()


@contextlib.contextmanager
def servfail_resolver(settings) -> Iterator[None]:
    """A resolver that answers SERVFAIL to every question (its upstream is broken)."""
    from dnslib.server import DNSLogger, DNSServer

    port = free_port(udp_too=True)
    server = DNSServer(_ServFail(), address="127.0.0.1", port=port, logger=DNSLogger(logf=lambda _m: None))
    thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    _point_at(settings, port, 2.0)
    try:
        yield
    finally:
        server.server.shutdown()
        server.server.server_close()
        adns.clear_cache()


@contextlib.contextmanager
def silent_resolver(settings, timeout: float = 0.3) -> Iterator[None]:
    """A resolver that takes the questions and never answers (a timeout)."""
    silent = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    silent.bind(("127.0.0.1", 0))
    _point_at(settings, silent.getsockname()[1], timeout)
    try:
        yield
    finally:
        silent.close()
        adns.clear_cache()
