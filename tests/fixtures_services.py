"""Real services for tests, on 127.0.0.1: a DNS server, dovecot (IMAP), an SMTP sink, Redis and a
Celery worker. Loaded as a pytest plugin from tests/conftest.py; a test module may also import
the fixtures it uses by name.

Nothing here talks to the internet: every server listens on loopback, and the worker's DNS
points at loopback too.
"""

from __future__ import annotations

import contextlib
import imaplib
import ipaddress
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any, NoReturn
from urllib.parse import quote

import pytest

DOVECOT = os.environ.get("DOVECOT_BIN", "/usr/sbin/dovecot")
REDIS_SERVER = shutil.which("redis-server") or "/usr/bin/redis-server"


# -- helpers -----------------------------------------------------------------------------------


def free_port(udp_too: bool = False) -> int:
    """A port free on 127.0.0.1 for TCP (and UDP when asked) at the time of asking."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
            tcp.bind(("127.0.0.1", 0))
            port = tcp.getsockname()[1]
            if not udp_too:
                return port
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
                try:
                    udp.bind(("127.0.0.1", port))
                except OSError:
                    continue
                return port
    raise RuntimeError("no free port on 127.0.0.1")


def wait_until(predicate: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "") -> Any:
    """Poll predicate until it returns something truthy; fail the test after timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:g} s waiting for {what or predicate!r}")
        time.sleep(interval)


def _stop_process(proc: subprocess.Popen, grace: float = 15.0) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


# -- DNS ---------------------------------------------------------------------------------------


def reversed_ip(ip: str) -> str:
    """The DNSBL labels for ip, written independently of abusedesk.lib.dns (stdlib reverse_pointer)."""
    pointer = ipaddress.ip_address(ip).reverse_pointer
    return pointer.rsplit(".in-addr.arpa", 1)[0].rsplit(".ip6.arpa", 1)[0]


class _ZoneResolver:
    """An authoritative answerer for every name: the records added, NXDOMAIN for the rest."""

    def __init__(self, negative_ttl: int) -> None:
        self.lock = threading.Lock()
        self.records: dict[str, list[tuple[str, Any, int]]] = {}
        self.queries: list[tuple[str, str]] = []
        self.negative_ttl = negative_ttl

    def _soa(self, qname: str):
        from dnslib import QTYPE, RR, SOA

        # The negative-caching TTL of RFC 2308 is the SOA minimum (and the SOA's own TTL).
        soa = SOA("ns.test.", "hostmaster.test.", (1, 3600, 600, 86400, self.negative_ttl))
        return RR(qname, QTYPE.SOA, rdata=soa, ttl=self.negative_ttl)

    def resolve(self, request, handler):
        from dnslib import QTYPE, RCODE, RR

        reply = request.reply()
        qname = str(request.q.qname).lower()
        qtype = QTYPE.get(request.q.qtype)
        with self.lock:
            self.queries.append((qname, str(qtype)))
            records = list(self.records.get(qname, ()))
        if not records:
            reply.header.rcode = RCODE.NXDOMAIN
            reply.add_auth(self._soa(qname))
            return reply
        for rtype, rdata, ttl in records:
            if rtype == qtype:
                reply.add_answer(RR(qname, getattr(QTYPE, rtype), rdata=rdata, ttl=ttl))
        if not reply.rr:
            reply.add_auth(self._soa(qname))  # the name exists, without this type (NODATA)
        return reply


class DnsTestServer:
    """dnslib on 127.0.0.1:port, UDP and TCP, answering from records the test adds."""

    def __init__(self, negative_ttl: int = 300) -> None:
        from dnslib.server import DNSLogger, DNSServer

        self.resolver = _ZoneResolver(negative_ttl)
        quiet = DNSLogger(logf=lambda _message: None)
        self.host = "127.0.0.1"
        self.port = free_port(udp_too=True)
        self._servers = [
            DNSServer(self.resolver, address=self.host, port=self.port, tcp=False, logger=quiet),
            DNSServer(self.resolver, address=self.host, port=self.port, tcp=True, logger=quiet),
        ]
        for server in self._servers:
            # A short poll interval: the default half second is paid again at every teardown.
            thread = threading.Thread(target=server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
            thread.start()

    def stop(self) -> None:
        for server in self._servers:
            with contextlib.suppress(Exception):
                server.server.shutdown()
                server.server.server_close()  # dnslib's stop() leaves the socket open

    def add(self, name: str, rtype: str, value: str, ttl: int = 300) -> None:
        """Add one record: rtype A, AAAA, PTR, TXT or CNAME; names are absolute (dot added)."""
        from dnslib import AAAA, CNAME, PTR, TXT, A

        makers = {"A": A, "AAAA": AAAA, "PTR": PTR, "TXT": TXT, "CNAME": CNAME}
        rtype = rtype.upper()
        name = name.lower().rstrip(".") + "."
        with self.resolver.lock:
            self.resolver.records.setdefault(name, []).append((rtype, makers[rtype](value), ttl))

    def add_ptr(self, ip: str, hostname: str, ttl: int = 300) -> None:
        self.add(ipaddress.ip_address(ip).reverse_pointer, "PTR", hostname.rstrip(".") + ".", ttl)

    def list_ip(self, ip: str, zone: str, code: str = "127.0.0.2", reason: str | None = None, ttl: int = 300) -> None:
        """List ip in a DNSBL zone: an A record with the return code, and a TXT reason if given."""
        name = f"{reversed_ip(ip)}.{zone.strip('.')}"
        self.add(name, "A", code, ttl)
        if reason is not None:
            self.add(name, "TXT", reason, ttl)

    @property
    def queries(self) -> list[tuple[str, str]]:
        with self.resolver.lock:
            return list(self.resolver.queries)

    def query_count(self, name: str | None = None, rtype: str | None = None) -> int:
        wanted = None if name is None else name.lower().rstrip(".") + "."
        return sum(
            1
            for qname, qtype in self.queries
            if (wanted is None or qname == wanted) and (rtype is None or qtype == rtype)
        )


@pytest.fixture
def dns_server(settings) -> Iterator[DnsTestServer]:
    """A DNS server on 127.0.0.1 with settings pointing the resolver at it (and an empty cache)."""
    from abusedesk.lib import dns as adns

    server = DnsTestServer()
    settings.DNS_NAMESERVERS = [server.host]
    settings.DNS_PORT = server.port
    settings.DNS_TIMEOUT = 2.0
    adns.clear_cache()
    try:
        yield server
    finally:
        server.stop()
        adns.clear_cache()


# -- IMAP (dovecot) ----------------------------------------------------------------------------


def _quoted(folder: str) -> str:
    # imaplib sends mailbox names as given: "Abuse Done" must go quoted.
    return '"' + folder.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass
class DovecotServer:
    host: str
    port: int
    user: str
    password: str
    root: Path
    process: subprocess.Popen
    log_path: Path

    def client(self) -> imaplib.IMAP4:
        conn = imaplib.IMAP4(self.host, self.port, timeout=10)
        conn.login(self.user, self.password)
        return conn

    def append(self, raw: bytes, folder: str = "INBOX", flags: str | None = None) -> None:
        """Put a message in a folder through IMAP APPEND, as a mail server would deliver it."""
        conn = self.client()
        try:
            typ, data = conn.append(_quoted(folder), flags, None, raw)
            assert typ == "OK", f"APPEND failed: {data}"
        finally:
            conn.logout()

    def create_folder(self, folder: str) -> None:
        conn = self.client()
        try:
            conn.create(_quoted(folder))
        finally:
            conn.logout()

    def messages(self, folder: str = "INBOX") -> list[tuple[bytes, set[str]]]:
        """(raw bytes, flags) of every message in folder, read without changing any flag."""
        conn = self.client()
        try:
            typ, _ = conn.select(_quoted(folder), readonly=True)
            if typ != "OK":
                return []
            typ, data = conn.uid("SEARCH", None, "ALL")
            result = []
            for uid in data[0].split():
                typ, parts = conn.uid("FETCH", uid.decode(), "(FLAGS BODY.PEEK[])")
                for part in parts:
                    if isinstance(part, tuple):
                        head = part[0].decode()
                        flags_text = head.split("FLAGS (", 1)[1].split(")", 1)[0] if "FLAGS (" in head else ""
                        result.append((part[1], set(flags_text.split())))
            return result
        finally:
            conn.logout()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        _stop_process(self.process, grace=10)


def missing_service(message: str) -> NoReturn:
    """A real service a test needs (dovecot, redis-server, Chromium) is not installed: on a developer's
    machine the test skips and says what to install; under CI, which installs them all and sets
    ABUSEDESK_REQUIRE_SERVICES=1, that is a failure."""
    if os.environ.get("ABUSEDESK_REQUIRE_SERVICES") == "1":
        pytest.fail(message)
    pytest.skip(message)


def _dovecot_users() -> tuple[str, str, str, int, int]:
    """(internal user, login user, mail user name, mail uid, mail gid) dovecot may run as."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_name, me.pw_name, me.pw_uid, me.pw_gid
    # As root, dovecot refuses to run its login processes as root and to open mail as uid 0:
    # the unprivileged users the Debian package creates do that part.
    try:
        internal = pwd.getpwnam("dovecot")
        login = pwd.getpwnam("dovenull")
    except KeyError:
        missing_service(
            "dovecot runs as root here but the 'dovecot'/'dovenull' users are missing: apt-get install dovecot-imapd"
        )
    return internal.pw_name, login.pw_name, internal.pw_name, internal.pw_uid, internal.pw_gid


def start_dovecot(extra_config: str = "", user: str = "abuse") -> DovecotServer:
    """Start dovecot in the foreground with its own config, mail and sockets in a fresh directory."""
    if not os.path.exists(DOVECOT):
        missing_service(f"dovecot is not installed ({DOVECOT} missing): apt-get install dovecot-imapd")
    internal_user, login_user, mail_user, mail_uid, mail_gid = _dovecot_users()
    # Not tmp_path: pytest's temp root is mode 0700, and dovecot's mail processes run as an
    # unprivileged user that must reach the mail directory.
    root = Path(tempfile.mkdtemp(prefix="abusedesk-dovecot-"))
    root.chmod(0o755)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir()
    os.chown(root / "mail", mail_uid, mail_gid)
    password = secrets.token_hex(12)
    passwd = root / "passwd"
    passwd.write_text(f"{user}:{{PLAIN}}{password}::::::\n")
    passwd.chmod(0o600)  # read by the auth process, which runs as root (or as us)
    port = free_port()
    log_path = root / "dovecot.log"
    auth_service = "service auth {\n  user = root\n}\n" if os.geteuid() == 0 else ""
    config = f"""
protocols = imap
listen = 127.0.0.1
base_dir = {root}/run
state_dir = {root}/state
instance_name = abusedesk-test-{port}
log_path = {log_path}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests try wrong passwords on purpose; the default 2 s penalty would only slow them.
auth_failure_delay = 0
default_internal_user = {internal_user}
default_login_user = {login_user}
first_valid_uid = {mail_uid}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {passwd}
}}
userdb {{
  driver = static
  args = uid={mail_user} gid={mail_gid} home={root}/mail/%u
}}
service imap-login {{
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
{auth_service}
{extra_config}
"""
    config_path = root / "dovecot.conf"
    config_path.write_text(config)
    output = open(root / "dovecot.out", "wb")  # noqa: SIM115 - closed when the process is stopped
    process = subprocess.Popen([DOVECOT, "-F", "-c", str(config_path)], stdout=output, stderr=subprocess.STDOUT)
    output.close()
    server = DovecotServer("127.0.0.1", port, user, password, root, process, log_path)

    def greets() -> bool:
        if process.poll() is not None:
            out = (root / "dovecot.out").read_text(errors="replace")
            shutil.rmtree(root, ignore_errors=True)
            pytest.fail(f"dovecot exited with {process.returncode}:\n{out}\n{server.log_text()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                return sock.recv(64).startswith(b"* OK")
        except OSError:
            return False

    wait_until(greets, timeout=20, what="dovecot to accept IMAP connections")
    return server


def stop_dovecot(server: DovecotServer) -> None:
    server.stop()
    shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def imap_server() -> Iterator[DovecotServer]:
    """A real dovecot on 127.0.0.1 with one mailbox (.user/.password), empty INBOX, plaintext login."""
    server = start_dovecot()
    try:
        yield server
    finally:
        stop_dovecot(server)


@pytest.fixture
def dovecot_factory() -> Iterator[Callable[..., DovecotServer]]:
    """start_dovecot(extra_config=...) for tests that need a differently configured server."""
    started: list[DovecotServer] = []

    def start(extra_config: str = "", user: str = "abuse") -> DovecotServer:
        server = start_dovecot(extra_config, user)
        started.append(server)
        return server

    yield start
    for server in started:
        stop_dovecot(server)


# -- SMTP --------------------------------------------------------------------------------------


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes

    @property
    def message(self) -> Message:
        return message_from_bytes(self.content)


@dataclass
class SmtpTestServer:
    host: str
    port: int
    messages: list[ReceivedMail] = field(default_factory=list)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[ReceivedMail]:
        wait_until(lambda: len(self.messages) >= count, timeout=timeout, what=f"{count} mail(s) at the SMTP server")
        return list(self.messages)


class _Collector:
    def __init__(self, server: SmtpTestServer) -> None:
        self.server = server

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        content = envelope.original_content or envelope.content
        if isinstance(content, str):
            content = content.encode("utf-8")
        self.server.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server(settings) -> Iterator[SmtpTestServer]:
    """aiosmtpd on 127.0.0.1 collecting what it receives; EMAIL_HOST/EMAIL_PORT point at it.

    EMAIL_BACKEND is left alone: a test that sends for real sets it to the SMTP backend.
    """
    from aiosmtpd.controller import Controller

    server = SmtpTestServer("127.0.0.1", free_port())
    controller = Controller(_Collector(server), hostname=server.host, port=server.port)
    controller.start()
    settings.EMAIL_HOST = server.host
    settings.EMAIL_PORT = server.port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    try:
        yield server
    finally:
        controller.stop()


# -- Redis and a Celery worker -----------------------------------------------------------------


def _redis_answers(url: str) -> bool:
    import redis

    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1).ping())
    except Exception:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """TEST_REDIS_URL (default redis://127.0.0.1:6379/15), or a redis-server started for the session."""
    url = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
    if _redis_answers(url):
        yield url
        return
    if not os.path.exists(REDIS_SERVER):
        missing_service(f"no Redis answers at {url} and redis-server is not installed: apt-get install redis-server")
    port = free_port()
    workdir = Path(tempfile.mkdtemp(prefix="abusedesk-redis-"))
    process = subprocess.Popen(
        [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        + ["--daemonize", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/15"
    try:
        wait_until(lambda: _redis_answers(url), timeout=15, what="redis-server to answer")
        yield url
    finally:
        _stop_process(process)
        shutil.rmtree(workdir, ignore_errors=True)


def database_url_for_worker() -> str:
    """The test database (test_<name>) as a DATABASE_URL another process can open."""
    from django.db import connection

    db = connection.settings_dict
    engine = db["ENGINE"]
    if "postgresql" in engine:
        user = quote(db.get("USER") or "", safe="")
        password = quote(db.get("PASSWORD") or "", safe="")
        auth = f"{user}:{password}@" if password else (f"{user}@" if user else "")
        host = db.get("HOST") or "localhost"
        port = db.get("PORT") or 5432
        return f"postgres://{auth}{host}:{port}/{quote(db['NAME'], safe='')}"
    if "sqlite" in engine:
        name = str(db["NAME"])
        if name == ":memory:" or "mode=memory" in name:
            pytest.skip(
                "a Celery worker cannot open the in-memory SQLite test database: run on PostgreSQL "
                "(DATABASE_URL=postgres://...) or give the SQLite test database a file name (DATABASES TEST NAME)"
            )
        return f"sqlite:///{Path(name).resolve()}"
    pytest.fail(f"no DATABASE_URL form known for {engine}")


@dataclass
class WorkerProcess:
    queue: str
    broker_url: str
    process: subprocess.Popen
    log_path: Path
    sender: Any = None

    def send(self, task_name: str, *args: Any, **kwargs: Any) -> None:
        """Queue a task by name on the worker's queue, through the real broker."""
        self.sender.send_task(task_name, args=list(args), kwargs=kwargs, queue=self.queue)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture
def celery_worker_env() -> dict[str, str]:
    """Extra environment for the worker; override this fixture in a test module to add some."""
    return {}


@pytest.fixture
def celery_worker_process(transactional_db, redis_url, tmp_path, request, celery_worker_env) -> Iterator[WorkerProcess]:
    """A real `celery worker -P solo` on its own queue, on the test database and the test broker.

    The test data must be committed for the worker to see it, hence transactional_db. If the
    test also uses dns_server or smtp_server, the worker is pointed at them.
    """
    from celery import Celery
    from django.conf import settings

    database_url = database_url_for_worker()
    queue = f"test-{uuid.uuid4().hex[:12]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "abusedesk.settings",
            "DEBUG": "false",
            "SECRET_KEY": "worker-test-secret-key",
            "ALLOWED_HOSTS": "localhost,127.0.0.1",
            "STATIC_MANIFEST": "false",
            "DATABASE_URL": database_url,
            "CELERY_BROKER_URL": redis_url,
            "CELERY_QUEUE": queue,
            "MEDIA_ROOT": str(settings.MEDIA_ROOT),
            "IMAP_HOST": "",
            # Never a real resolver or mail server from a test: loopback only.
            "DNS_NAMESERVERS": "127.0.0.1",
            "DNS_PORT": "1",
            "DNS_TIMEOUT": "0.5",
            "EMAIL_BACKEND": "django.core.mail.backends.locmem.EmailBackend",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if "dns_server" in request.fixturenames:
        dns = request.getfixturevalue("dns_server")
        env.update({"DNS_NAMESERVERS": dns.host, "DNS_PORT": str(dns.port), "DNS_TIMEOUT": "2.0"})
    if "smtp_server" in request.fixturenames:
        smtp = request.getfixturevalue("smtp_server")
        env.update(
            {
                "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
                "EMAIL_HOST": smtp.host,
                "EMAIL_PORT": str(smtp.port),
                "EMAIL_USE_TLS": "false",
                "EMAIL_USE_SSL": "false",
            }
        )
    env.update(celery_worker_env)
    log_path = tmp_path / "celery-worker.log"
    output = open(log_path, "wb")  # noqa: SIM115 - the child keeps its own descriptor
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "abusedesk", "worker", "-P", "solo", "-Q", queue]
        + ["--loglevel=INFO", "-n", f"{queue}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=str(settings.BASE_DIR),
        env=env,
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    output.close()
    # Not the current app: shared tasks in this process must stay bound to the project's (eager) app.
    sender = Celery("abusedesk-test-sender", broker=redis_url, set_as_current=False)
    worker = WorkerProcess(queue, redis_url, process, log_path, sender)

    def ready() -> bool:
        if process.poll() is not None:
            pytest.fail(f"the Celery worker exited with {process.returncode}:\n{worker.log_text()}")
        return " ready." in worker.log_text()

    try:
        wait_until(ready, timeout=60, interval=0.2, what="the Celery worker to be ready")
        yield worker
    finally:
        _stop_process(process)
        sender.close()
        import redis

        with contextlib.suppress(Exception):
            client = redis.Redis.from_url(redis_url, socket_connect_timeout=1)
            client.delete(queue, f"_kombu.binding.{queue}")
