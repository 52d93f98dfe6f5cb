"""An SMTP server on 127.0.0.1 that does what a test tells it: refuse the next recipients with a
given reply (451 for "try later", 550 for "no"), take its time over DATA, and collect the rest.

aiosmtpd, like tests.fixtures_services.smtp_server, with a script. `scripted_smtp` points
Django's mail settings at it, with the SMTP backend, for sending from the test process; the
worker tests pass `worker_env()` to their Celery workers.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from tests.fixtures_services import ReceivedMail, _Collector, free_port, wait_until


@dataclass
class ScriptedSmtp:
    host: str
    port: int
    # Replies to the next RCPT commands, in order; once used up every recipient is accepted.
    rcpt_replies: list[str] = field(default_factory=list)
    # Seconds DATA takes before the server says 250 (the message is stored first: accepted).
    data_delay: float = 0.0
    messages: list[ReceivedMail] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def refuse_next(self, *replies: str) -> None:
        with self.lock:
            self.rcpt_replies.extend(replies)

    def received(self) -> list[ReceivedMail]:
        with self.lock:
            return list(self.messages)

    def message_ids(self) -> Counter:
        return Counter(m.message["Message-ID"] for m in self.received())

    def wait_for(self, count: int, timeout: float = 20.0) -> list[ReceivedMail]:
        wait_until(lambda: len(self.received()) >= count, timeout=timeout, what=f"{count} mail(s) at the SMTP server")
        return self.received()

    def worker_env(self) -> dict[str, str]:
        return {
            "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
            "EMAIL_HOST": self.host,
            "EMAIL_PORT": str(self.port),
            "EMAIL_USE_TLS": "false",
            "EMAIL_USE_SSL": "false",
            "EMAIL_TIMEOUT": "5",
        }


class _Handler(_Collector):
    """The fixture's collector, with a script for RCPT and a pause before answering DATA."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options) -> str:  # noqa: N802 - aiosmtpd's name
        with self.server.lock:
            reply = self.server.rcpt_replies.pop(0) if self.server.rcpt_replies else ""
        if reply and not reply.startswith("250"):
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's name
        reply = await super().handle_DATA(server, session, envelope)  # stored: accepted
        if self.server.data_delay:
            await asyncio.sleep(self.server.data_delay)
        return reply


def start_scripted_smtp() -> tuple[ScriptedSmtp, object]:
    from aiosmtpd.controller import Controller

    server = ScriptedSmtp("127.0.0.1", free_port())
    controller = Controller(_Handler(server), hostname=server.host, port=server.port)
    controller.start()
    return server, controller


@pytest.fixture
def scripted_smtp(settings) -> Iterator[ScriptedSmtp]:
    """A scripted SMTP server, with this process's mail settings pointing at it (SMTP backend)."""
    server, controller = start_scripted_smtp()
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_TIMEOUT = 5
    try:
        yield server
    finally:
        controller.stop()
