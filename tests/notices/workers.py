"""Celery workers, a Redis of one's own, and a route to the workers, for the outbox's outage tests
and bench/bench_notices.py.

tests.fixtures_services starts one worker per test; the outage tests need two on one queue (one
to kill), and a Redis they can stop and start. These helpers start the same `celery worker -P
solo` process with the same environment, and work outside pytest too (the bench).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction

from tests.fixtures_services import REDIS_SERVER, _redis_answers, _stop_process

BASE_DIR = Path(__file__).resolve().parents[2]


def _wait(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.1)


@dataclass
class Worker:
    name: str
    process: subprocess.Popen
    log_path: Path

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited with {self.process.returncode}:\n{self.log_text()}")
            return " ready." in self.log_text()

        _wait(ready, timeout, f"worker {self.name} to be ready")

    def kill(self) -> None:
        """SIGKILL: no clean-up, no acknowledgement, no marking of what it was sending."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        _stop_process(self.process)


def start_worker(
    *, name: str, queue: str, database_url: str, broker_url: str, log_dir: Path, env: dict[str, str] | None = None
) -> Worker:
    """`celery -A abusedesk worker -P solo` on `queue`, as tests.fixtures_services starts it."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "abusedesk.settings",
            "DEBUG": "false",
            "SECRET_KEY": "worker-test-secret-key",
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "STATIC_MANIFEST": "false",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": broker_url,
            "CELERY_QUEUE": queue,
            "IMAP_HOST": "",
            "ENRICHMENT_ENABLED": "false",
            "DNS_NAMESERVERS": "127.0.0.1",
            "DNS_PORT": "1",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
    )
    log_path = log_dir / f"worker-{name}.log"
    output = open(log_path, "wb")  # noqa: SIM115 - the child keeps its own descriptor
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "abusedesk", "worker", "-P", "solo", "-Q", queue]
        + ["--loglevel=INFO", "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=str(BASE_DIR),
        env=environ,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    output.close()
    return Worker(name, process, log_path)


class RedisServer:
    """A redis-server of our own on a fixed port, so that it can be stopped and started again."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"
        self.dir = Path(tempfile.mkdtemp(prefix="abusedesk-redis-"))
        self.process: subprocess.Popen | None = None

    @staticmethod
    def available() -> bool:
        return os.path.exists(REDIS_SERVER)

    def start(self) -> None:
        self.process = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
            + ["--daemonize", "no", "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait(lambda: _redis_answers(self.url), 15, f"redis-server on port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            _stop_process(self.process)
            self.process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def route_to_workers(monkeypatch, sender, queue: str, names: tuple[str, ...] = ("cases.tasks_notices.",)) -> list:
    """Hand tasks queued by services to the workers through the real broker, after commit, as
    cases.queue does in production; tasks not under `names` are recorded and dropped. A broker
    that is down fails the hand-over, not the committed decision (it is logged and recorded)."""
    from cases import queue as queue_module

    failed: list = []

    def enqueue_on_commit(name: str, *args) -> None:
        if not name.startswith(names):
            return

        def hand_over() -> None:
            try:
                sender.send_task(name, args=list(args), queue=queue, retry=False)
            except Exception as exc:  # the broker is down: the sweeper will find the row
                failed.append((name, args, exc))

        transaction.on_commit(hand_over)

    monkeypatch.setattr(queue_module, "enqueue_on_commit", enqueue_on_commit)
    return failed
