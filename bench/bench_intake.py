"""Intake throughput on PostgreSQL: end to end (store, parse, resolve, group) and parse only.

    DATABASE_URL=postgres://abusedesk:abusedesk@127.0.0.1:5432/abusedesk \
        .venv/bin/python bench/bench_intake.py [--messages 2000] [--allocations 100000] [--rows 50000]

Creates its own database (<name>_bench_intake) on the server in DATABASE_URL, loads the
allocations, and prints `name: value unit` lines. Tasks run in-process (no broker), as one
worker process would run them; DNS enrichment is off so the figure is the desk's own work.
"""

from __future__ import annotations

import argparse
import os
import pickle
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Production settings: DEBUG off (DEBUG on records every SQL statement in memory).
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "bench-only-" + "x" * 50)
os.environ.setdefault("ALLOWED_HOSTS", "127.0.0.1")
os.environ["ENRICHMENT_ENABLED"] = "false"
# An in-memory broker: tasks are queued as a real deployment queues them, and this process
# plays the worker (eager for the one-at-a-time figure, draining the queue for the batch one).
os.environ["CELERY_BROKER_URL"] = "memory://localhost/"  # (a host: kombu warns without one)
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.common import bench_database  # noqa: E402


def arf_message(n: int, ip: str, at: datetime) -> bytes:
    date = at.strftime("%a, %d %b %Y %H:%M:%S +0000")
    return (
        "From: fbl@feedback.mail.example\r\n"
        "To: abuse@isp.example\r\n"
        f"Date: {date}\r\n"
        f"Message-ID: <fbl-{n}@feedback.mail.example>\r\n"
        "Subject: FW: complaint\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="part"\r\n'
        "\r\n"
        "--part\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n"
        "--part\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: FBL/1.0\r\nVersion: 1\r\n"
        f"Source-IP: {ip}\r\nArrival-Date: {date}\r\nReported-Domain: shop.example\r\n\r\n"
        "--part\r\nContent-Type: message/rfc822\r\n\r\n"
        f"Received: from mx.shop.example ([{ip}]) by mx.feedback.mail.example; {date}\r\n"
        f"From: offers@shop.example\r\nTo: user@feedback.mail.example\r\nSubject: deal {n}\r\nDate: {date}\r\n\r\n"
        "Buy now.\r\n--part--\r\n"
    ).encode()


def bench_ip(n: int, pool: int) -> str:
    """Message n's address: odd ones in the static /28 blocks, even ones in the lease pool."""
    if n % 2:
        return f"10.{(n % 2000) // 4096}.{((n % 2000) // 16) % 256}.{(n % 2000 % 16) * 16 + 3}"
    return f"100.64.{(n % pool) // 256}.{n % 256}"


def shadowserver_message(rows: list[tuple[str, datetime]]) -> bytes:
    import base64

    lines = ['"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"']
    for ip, at in rows:
        lines.append(f'"{at:%Y-%m-%d %H:%M:%S}","{ip}","tcp",22,"","ssh",64500,"NL","X","Y"')
    payload = base64.encodebytes(("\n".join(lines) + "\n").encode()).decode()
    return (
        "From: autoreports@shadowserver.org\r\nTo: abuse@isp.example\r\n"
        "Subject: [64500] Shadowserver NL Accessible SSH Report: 2026-11-20\r\n"
        "Message-ID: <shadow-1@shadowserver.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nReport attached.\r\n"
        '--b\r\nContent-Type: text/csv\r\nContent-Disposition: attachment; filename="2026-11-20-scan_ssh-nl.csv"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{payload}--b--\r\n"
    ).encode()


def shadowserver_zipped(rows: list[tuple[str, datetime]]) -> bytes:
    import base64
    import io
    import zipfile

    lines = ['"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city"']
    lines += [f'"{at:%Y-%m-%d %H:%M:%S}","{ip}","tcp",22,"","ssh",64500,"NL","X","Y"' for ip, at in rows]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("2026-11-20-scan_ssh-nl.csv", "\n".join(lines) + "\n")
    del lines
    payload = base64.encodebytes(buffer.getvalue()).decode()
    return (
        "From: autoreports@shadowserver.org\r\nTo: abuse@isp.example\r\n"
        "Subject: [64500] Shadowserver NL Accessible SSH Report: 2026-11-20\r\n"
        "Message-ID: <shadow-feed@shadowserver.org>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nReport attached.\r\n"
        "--b\r\nContent-Type: application/zip\r\n"
        'Content-Disposition: attachment; filename="2026-11-20-scan_ssh-nl.csv.zip"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{payload}--b--\r\n"
    ).encode()


class StatementCounter:
    """A connection.execute_wrapper that counts the SQL statements sent (and prints the first message's)."""

    def __init__(self, *, trace: bool = False) -> None:
        self.count = 0
        self.trace = trace
        self.timing: dict[str, float] = {"": 0.0} if os.environ.get("BENCH_SQL_TIMING") else {}

    def __call__(self, execute, sql, params, many, context):
        self.count += 1
        if self.trace:
            print(f"  sql {self.count}: {' '.join(str(sql).split())[:200]}")
        if not self.timing:
            return execute(sql, params, many, context)
        t = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            key = " ".join(str(sql).split())[:90]
            self.timing[key] = self.timing.get(key, 0.0) + time.perf_counter() - t

    def count_execute_values(self) -> None:
        """Filing writes its big INSERTs with psycopg2's execute_values on the raw cursor, which
        Django's wrappers do not see: count each page it sends as one statement too."""
        import psycopg2.extras

        original = psycopg2.extras.execute_values

        def counted(cur, sql, argslist, template=None, page_size=100, fetch=False):
            argslist = list(argslist)
            self.count += max(1, -(-len(argslist) // page_size))
            if self.trace:
                print(f"  sql {self.count} (execute_values): {' '.join(str(sql).split())[:200]}")
            if not self.timing:
                return original(cur, sql, argslist, template=template, page_size=page_size, fetch=fetch)
            t = time.perf_counter()
            try:
                return original(cur, sql, argslist, template=template, page_size=page_size, fetch=fetch)
            finally:
                key = "execute_values: " + " ".join(str(sql).split())[:74]
                self.timing[key] = self.timing.get(key, 0.0) + time.perf_counter() - t

        psycopg2.extras.execute_values = counted

    def take(self) -> int:
        count, self.count, self.trace = self.count, 0, False
        return count


CHILD_E2E = """
import pickle, sys, time
import django
django.setup()
from abusedesk.celery import app
from cases.services.intake import receive
app.conf.task_always_eager = True
with open(sys.argv[1], "rb") as f:
    warm, msgs = pickle.load(f)
receive(warm, "email")  # imports and caches: not timed
print("ready", flush=True)
sys.stdin.readline()
for raw in msgs:
    receive(raw, "email")
print(time.time(), flush=True)
"""


def two_worker_rate(batches: list[list[bytes]], warm: list[bytes]) -> float:
    """Messages/s when two processes (as two Celery worker processes, one per core) each take a
    stream of mail one message at a time: store, parse and file each as it comes. Start-up and a
    first message per process are not timed; the clock runs from "go" to the last one done."""
    procs, files = [], []
    for batch, first in zip(batches, warm, strict=True):
        with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as f:
            pickle.dump((first, batch), f)
        files.append(f.name)
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", CHILD_E2E, f.name],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
                cwd=Path(__file__).resolve().parents[1],
            )
        )
    try:
        for proc in procs:
            assert proc.stdout.readline().strip() == "ready"
        start = time.time()
        for proc in procs:
            proc.stdin.write("go\n")
            proc.stdin.flush()
        ends = [float(proc.stdout.readline()) for proc in procs]
        for proc in procs:
            proc.wait(timeout=60)
    finally:
        for name in files:
            os.unlink(name)
    return sum(len(b) for b in batches) / (max(ends) - start)


CHILD_PIPE = """
import pickle, sys, time
import django
django.setup()
from cases.services.intake import receive
with open(sys.argv[1], "rb") as f:
    warm, msgs = pickle.load(f)
rate = float(sys.argv[2])
first = receive(warm, "email")[0].pk
print("ready", first, flush=True)
sys.stdin.readline()
start = time.perf_counter()
for n, raw in enumerate(msgs):
    if rate:
        time.sleep(max(0.0, start + n / rate - time.perf_counter()))
    receive(raw, "email")
print(time.perf_counter() - start, flush=True)
"""


def pipe_and_worker(broker: str, database_url: str, warm: bytes, msgs: list[bytes], rate: float) -> dict[str, float]:
    """The production shape: a mail pipe stores each message and queues its parse on a real broker,
    and one worker process (solo pool: one process takes and runs the tasks) parses and files it.
    The pipe offers `rate` messages/s (0: as fast as it stores them). Returns the rate filed, how
    long each message waited from stored to filed (median and 95th percentile), the worker's CPU
    per message, and how many messages were still waiting when the pipe had sent the last. The rate
    the pipe achieved is returned too ("offered"): a pipe slower than `rate` bounds the rate filed."""
    from cases.models import InboundMessage

    root = Path(__file__).resolve().parents[1]
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "CELERY_BROKER_URL": broker,
        "CELERY_QUEUE": f"bench-intake-{os.getpid()}-{time.time_ns()}",
        "DJANGO_SETTINGS_MODULE": "abusedesk.settings",
        "PYTHONPATH": str(root),
    }
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "abusedesk", "worker", "-P", "solo", "--loglevel", "WARNING",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        env=env, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    with tempfile.NamedTemporaryFile(suffix=".pickle", delete=False) as f:
        pickle.dump((warm, msgs), f)
    pipe = subprocess.Popen(
        [sys.executable, "-c", CHILD_PIPE, f.name, str(rate)],
        env=env, cwd=root, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        ready, first = pipe.stdout.readline().split()  # the warm message's id
        assert ready == "ready"
        deadline = time.time() + 120
        while InboundMessage.objects.filter(pk=first).exclude(status="parsed").exists():
            assert time.time() < deadline and worker.poll() is None, "the worker did not take the first message"
            time.sleep(0.05)
        cpu0 = _process_cpu(worker.pid)
        pipe.stdin.write("go\n")
        pipe.stdin.flush()
        sent_seconds = float(pipe.stdout.readline())
        waiting = InboundMessage.objects.filter(pk__gt=first).exclude(status="parsed").count()
        deadline = time.time() + 600
        while InboundMessage.objects.filter(pk__gt=first).exclude(status="parsed").exists():
            assert time.time() < deadline and worker.poll() is None, "the worker stopped filing"
            time.sleep(0.05)
        cpu = _process_cpu(worker.pid) - cpu0
        rows = list(InboundMessage.objects.filter(pk__gt=first).values_list("received_at", "parsed_at"))
    finally:
        pipe.kill()
        worker.terminate()
        worker.wait(timeout=60)
        os.unlink(f.name)
    assert len(rows) == len(msgs), (len(rows), len(msgs))
    waits = sorted((parsed - received).total_seconds() * 1000 for received, parsed in rows)
    span = (max(p for _, p in rows) - min(r for r, _ in rows)).total_seconds()
    return {
        "offered": len(rows) / sent_seconds,
        "rate": len(rows) / span,
        "wait_median_ms": statistics.median(waits),
        "wait_p95_ms": waits[int(len(waits) * 0.95)],
        "worker_cpu_ms": cpu / len(rows) * 1000,
        "waiting_at_last": waiting,
    }


def _process_cpu(pid: int) -> float:
    """CPU seconds so far of another process on this machine, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


CHILD_PARSE = """
import django, sys
django.setup()
from cases.services.intake import process_pending
while process_pending(limit=200) is not None:
    pass
"""

CHILD_FEED = """
import django, sys
django.setup()
from pathlib import Path
from cases.services.intake import process_pending, receive
from cases.models import InboundMessage
raw = Path(sys.argv[1]).read_bytes()
pk = receive(raw, "email")[0].pk
del raw  # the mail pipe's part ends here; the worker reads the message back, as a worker does
process_pending(first=pk)
message = InboundMessage.objects.get(pk=pk)
print("feed_status:", message.status, message.events_filed, message.chunks_filed, message.parse_error[:200])
"""


def _cpu_seconds(backend_pid: int) -> tuple[float, float | None]:
    """CPU seconds so far: this process's, and the PostgreSQL backend's (None if /proc cannot tell)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    try:
        postgres = _process_cpu(backend_pid)
    except (OSError, IndexError, ValueError):
        postgres = None
    return usage.ru_utime + usage.ru_stime, postgres


def peak_rss_mb(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run command in a fresh helper process; (seconds, the command's peak resident memory in MB, its output)."""
    helper = (
        "import resource, subprocess, sys; "
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True); "
        "sys.stdout.write(r.stdout + r.stderr[-3000:]); "
        "print('PEAK_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", helper, *command], env=env, capture_output=True, text=True).stdout
    seconds = time.perf_counter() - t
    peak = next(int(line.split()[1]) for line in out.splitlines() if line.startswith("PEAK_KB"))
    return seconds, peak / 1024, out


def write_mbox(path: Path, megabytes: int) -> tuple[int, int]:
    """An mbox of about `megabytes` MB: ARF complaints, with a 30 MB message every 100 (a big feed's
    attachment, base64). Returns (messages, bytes)."""
    import base64

    base = datetime(2026, 8, 1, tzinfo=UTC)
    big_payload = base64.encodebytes(os.urandom(22 * 1024 * 1024)).decode()
    count = 0
    with path.open("wb") as fh:
        while fh.tell() < megabytes * 1024 * 1024:
            fh.write(b"From fbl@feedback.mail.example Sat Aug  1 00:00:00 2026\n")
            if count % 100 == 99:
                body = (
                    f"From: feeds@cert.example\nTo: abuse@isp.example\nSubject: big {count}\n"
                    f"Message-ID: <big-{count}@cert.example>\nMIME-Version: 1.0\n"
                    'Content-Type: multipart/mixed; boundary="b"\n\n--b\nContent-Type: text/plain\n\n'
                    f"See the attached data. Source-IP: 100.64.0.{count % 250 + 1}\n--b\n"
                    "Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\n\n"
                    f"{big_payload}--b--\n"
                ).encode()
            else:
                ip = f"100.64.{(count // 256) % 64}.{count % 256}"
                body = arf_message(count, ip, base + timedelta(days=10, minutes=count)).replace(b"\r\n", b"\n")
            fh.write(body.replace(b"\nFrom ", b"\n>From "))
            fh.write(b"\n")
            count += 1
        size = fh.tell()
    return count, size


def bench_memory(args, database_url: str) -> None:
    """Peak resident memory of ingest_email on a big mbox, of the worker parsing what it stored,
    and of one feed of --feed-rows rows received and filed."""
    from django.db import connection
    from django.db.models import Count

    from cases.models import InboundMessage, Report

    env = {
        **os.environ,
        # As in production: with DEBUG on, Django keeps every statement (and its 40 MB of bytea
        # text) in connection.queries, which is most of what a DEBUG process holds.
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", "bench-only-secret-key"),
        "ALLOWED_HOSTS": "localhost",
        "DATABASE_URL": database_url,
        "DJANGO_SETTINGS_MODULE": "abusedesk.settings",
        "CELERY_BROKER_URL": "memory://localhost/",
        "ENRICHMENT_ENABLED": "false",
        "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
    }
    workdir = Path(tempfile.mkdtemp(prefix="abusedesk-bench-memory-"))
    try:
        if args.mbox_mb:
            mbox = workdir / "big.mbox"
            count, size = write_mbox(mbox, args.mbox_mb)
            print(f"mbox_messages: {count} count")
            print(f"mbox_bytes: {size} bytes")
            manage = str(Path(__file__).resolve().parents[1] / "manage.py")
            seconds, peak, out = peak_rss_mb([sys.executable, manage, "ingest_email", str(mbox), "--no-progress"], env)
            stored = InboundMessage.objects.count()
            print(f"mbox_ingest_seconds: {seconds:.1f} s")
            print(f"mbox_ingest_stored: {stored} count")
            print(f"mbox_ingest_peak_rss: {peak:.0f} MB")
            mbox.unlink()
            # The worker: batches of 200 claimed messages, parsed one at a time.
            seconds, peak, out = peak_rss_mb([sys.executable, "-c", CHILD_PARSE], env)
            print(f"mbox_parse_seconds: {seconds:.1f} s")
            statuses = dict(InboundMessage.objects.order_by().values_list("status").annotate(n=Count("pk")))
            print(f"mbox_parse_statuses: {statuses}")
            print(f"mbox_parse_peak_rss: {peak:.0f} MB")
        if args.feed_rows:
            base = datetime(2026, 9, 1, tzinfo=UTC)
            rows = [(f"100.64.{(n // 256) % 64}.{n % 256}", base + timedelta(seconds=n)) for n in range(args.feed_rows)]
            feed = workdir / "feed.eml"
            # Zipped, as big feeds arrive (and under INTAKE_MAX_MESSAGE_BYTES): 1,000,000 rows are 70 MB of
            # CSV. --feed-plain sends the CSV itself (base64, about 100 MB of mail), the limit raised to fit.
            feed.write_bytes(shadowserver_message(rows) if args.feed_plain else shadowserver_zipped(rows))
            del rows
            env_feed = {**env, "INTAKE_MAX_MESSAGE_BYTES": str(feed.stat().st_size + 1)}
            before = Report.objects.count()
            seconds, peak, out = peak_rss_mb([sys.executable, "-c", CHILD_FEED, str(feed)], env_feed)
            print(f"feed_form: {'plain CSV' if args.feed_plain else 'zipped CSV'}")
            print(f"feed_rows: {args.feed_rows} count")
            print(f"feed_bytes: {feed.stat().st_size} bytes")
            print(f"feed_seconds: {seconds:.1f} s")
            print(f"feed_reports_filed: {Report.objects.count() - before} count")
            print(f"feed_peak_rss: {peak:.0f} MB")
            print(" ".join(line for line in out.splitlines() if line.startswith("feed_status")) or out[-1500:])
    finally:
        for child in workdir.iterdir():
            child.unlink()
        workdir.rmdir()
        connection.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=2000)
    parser.add_argument("--allocations", type=int, default=100_000)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shadow-rounds", type=int, default=3)
    parser.add_argument(
        "--shadow-chunks",
        default="",
        help="chunk sizes to compare, e.g. 1000,5000: the shadowserver rounds take them in turn "
        "(side by side, so the machine's load weighs on each alike); default INTAKE_CHUNK_EVENTS",
    )
    parser.add_argument("--trace", action="store_true", help="print the statements of the first message")
    parser.add_argument(
        "--memory", action="store_true", help="only the memory figures: a big mbox (--mbox-mb) and a big feed"
    )
    parser.add_argument("--mbox-mb", type=int, default=1024, help="size of the generated mbox; 0 skips it")
    parser.add_argument("--feed-rows", type=int, default=1_000_000, help="rows of the big feed; 0 skips it")
    parser.add_argument("--feed-plain", action="store_true", help="the big feed's CSV attached unzipped")
    parser.add_argument(
        "--broker",
        default=os.environ.get("BENCH_REDIS_URL", ""),
        help="a Redis broker URL (default: BENCH_REDIS_URL): also measure the production shape, a mail pipe "
        "process storing and queueing each message and one worker process (solo pool) filing it",
    )
    parser.add_argument(
        "--pipe-rates", default="200,0", help="messages/s the pipe offers in the --broker rounds (0: as fast as it can)"
    )
    args = parser.parse_args()

    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL server (the bench makes its own database there)")
    os.environ["DATABASE_URL"] = bench_database(url, "_bench_intake_memory" if args.memory else "_bench_intake")
    os.environ["DJANGO_SETTINGS_MODULE"] = "abusedesk.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from cases import intake
    from cases.models import Case, InboundMessage, Report
    from cases.services.intake import receive
    from customers.models import Allocation, Customer

    call_command("migrate", verbosity=0)
    if args.memory:
        Allocation.objects.bulk_create(
            [
                Allocation(
                    customer=Customer.objects.create(account="POOL", name="Pool"),
                    network="100.64.0.0/10",
                    family=4,
                    prefixlen=10,
                    valid_from=datetime(2026, 1, 1, tzinfo=UTC),
                    source="static",
                )
            ]
        )
        bench_memory(args, os.environ["DATABASE_URL"])
        return
    base = datetime(2026, 8, 1, tzinfo=UTC)
    t0 = time.perf_counter()
    # 100,000 allocations: 2,000 customers with a /28 each in 10.0.0.0/12 (static), the rest
    # /32 leases in 100.64.0.0/16 spread over 90 days, as a residential pool's history looks.
    customers = Customer.objects.bulk_create(
        [Customer(account=f"A{n:06d}", name=f"Customer {n}", kind="residential") for n in range(5000)]
    )
    allocs = []
    for n in range(2000):
        allocs.append(
            Allocation(
                customer=customers[n],
                network=f"10.{n // 4096}.{(n // 16) % 256}.{(n % 16) * 16}/28",
                family=4,
                prefixlen=28,
                valid_from=base,
                source="static",
            )
        )
    pool = 16384
    k = 0
    while len(allocs) < args.allocations:
        ip_index = k % pool
        session = k // pool
        start = base + timedelta(hours=session * 12 + (ip_index % 12))
        allocs.append(
            Allocation(
                customer=customers[2000 + (k * 7) % 3000],
                network=f"100.64.{ip_index // 256}.{ip_index % 256}/32",
                family=4,
                prefixlen=32,
                valid_from=start,
                valid_to=start + timedelta(hours=12),
                source="lease",
            )
        )
        k += 1
    Allocation.objects.bulk_create(allocs, batch_size=5000)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    print(f"allocations: {Allocation.objects.count()} count")
    print(f"load_seconds: {time.perf_counter() - t0:.1f} s")

    # Messages: IPs inside the static blocks and the lease pool, at times they were held.
    msgs = [
        arf_message(n, bench_ip(n, pool), base + timedelta(days=10, minutes=n))
        for n in range(args.messages * args.rounds * 2)
    ]

    from abusedesk.celery import app
    from cases.tasks import parse_message_task

    parse_rates, e2e_rates, batch_rates = [], [], []
    e2e_statements: list[float] = []
    # Where a message's time goes: this process's CPU, and its PostgreSQL backend's (read from /proc
    # when the server runs on this machine, as here; else not printed).
    e2e_python_ms: list[float] = []
    e2e_postgres_ms: list[float] = []
    with connection.cursor() as cur:
        cur.execute("SELECT pg_backend_pid()")
        backend = cur.fetchone()[0]
    counter = StatementCounter(trace=args.trace)
    counter.count_execute_values()
    for r in range(args.rounds):
        # A desk's tables have statistics (autovacuum keeps them); this database grows from empty
        # during the run, and plans made for empty tables slowed each round more than the last.
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        batch = msgs[r * 2 * args.messages : (r * 2 + 1) * args.messages]
        t = time.perf_counter()
        parsed = [intake.parse(raw) for raw in batch]
        parse_rates.append(len(batch) / (time.perf_counter() - t))
        assert all(p.events for p in parsed), [p.error for p in parsed if not p.events][:3]
        # One at a time: each message is parsed and filed as soon as it is stored.
        app.conf.task_always_eager = True
        python0, postgres0 = _cpu_seconds(backend)
        t = time.perf_counter()
        with connection.execute_wrapper(counter):
            for raw in batch:
                receive(raw, "email")
        e2e_rates.append(len(batch) / (time.perf_counter() - t))
        e2e_statements.append(counter.take() / len(batch))
        python1, postgres1 = _cpu_seconds(backend)
        e2e_python_ms.append((python1 - python0) / len(batch) * 1000)
        if postgres0 is not None and postgres1 is not None:
            e2e_postgres_ms.append((postgres1 - postgres0) / len(batch) * 1000)
        # Worker behind the mail server: messages are stored and queued, then the worker runs
        # the queued tasks in order; each task takes its message and whatever else waits.
        app.conf.task_always_eager = False
        batch = msgs[(r * 2 + 1) * args.messages : (r * 2 + 2) * args.messages]
        t = time.perf_counter()
        ids = [receive(raw, "email")[0].pk for raw in batch]
        for pk in ids:
            parse_message_task.run(pk)
        batch_rates.append(len(batch) / (time.perf_counter() - t))
    # Two worker processes (a worker's default concurrency on two cores), one message at a time each.
    two_rates = []
    for r in range(args.rounds):
        with connection.cursor() as cur:
            cur.execute("ANALYZE")
        first = len(msgs) + r * (args.messages + 2)
        fresh = [
            arf_message(n, bench_ip(n, pool), base + timedelta(days=10, minutes=n))
            for n in range(first, first + args.messages + 2)
        ]
        two_rates.append(two_worker_rate([fresh[2::2], fresh[3::2]], fresh[:2]))
    # The production shape (--broker): the pipe and one worker process, over a real broker.
    shaped: dict[float, list[dict[str, float]]] = {}
    if args.broker:
        rates = [float(x) for x in args.pipe_rates.split(",") if x.strip()]
        next_n = len(msgs) + args.rounds * (args.messages + 2)
        for _round in range(args.rounds):
            for rate in rates:
                with connection.cursor() as cur:
                    cur.execute("ANALYZE")
                fresh = [
                    arf_message(n, bench_ip(n, pool), base + timedelta(days=10, minutes=n))
                    for n in range(next_n, next_n + args.messages + 1)
                ]
                next_n += args.messages + 1
                shaped.setdefault(rate, []).append(
                    pipe_and_worker(args.broker, os.environ["DATABASE_URL"], fresh[0], fresh[1:], rate)
                )
    app.conf.task_always_eager = True
    waiting = InboundMessage.objects.exclude(status="parsed").count()
    reports = Report.objects.count()
    print(f"messages: {InboundMessage.objects.count()} count")
    print(f"reports_filed: {reports} count")
    print(f"cases: {Case.objects.count()} count")
    print(f"arf_parse_only_median: {statistics.median(parse_rates):.0f} messages/s")
    print(f"arf_end_to_end_median: {statistics.median(e2e_rates):.0f} messages/s")
    print(f"arf_end_to_end_rounds: {' '.join(f'{x:.0f}' for x in e2e_rates)} messages/s")
    for key, seconds in sorted(counter.timing.items(), key=lambda kv: -kv[1])[:25]:
        print(f"  {seconds:7.3f} s  {key}")
    print(f"arf_end_to_end_statements_per_message: {statistics.median(e2e_statements):.1f} statements")
    print(f"arf_end_to_end_python_cpu_per_message: {statistics.median(e2e_python_ms):.2f} ms")
    if e2e_postgres_ms:
        print(f"arf_end_to_end_postgres_cpu_per_message: {statistics.median(e2e_postgres_ms):.2f} ms")
    print(f"arf_end_to_end_two_workers_median: {statistics.median(two_rates):.0f} messages/s")
    print(f"arf_end_to_end_two_workers_rounds: {' '.join(f'{x:.0f}' for x in two_rates)} messages/s")
    print(f"arf_end_to_end_batched_median: {statistics.median(batch_rates):.0f} messages/s")
    print(f"arf_end_to_end_batched_rounds: {' '.join(f'{x:.0f}' for x in batch_rates)} messages/s")
    for rate, runs in shaped.items():
        name = f"pipe_{rate:.0f}_per_s" if rate else "pipe_unpaced"
        for field, unit in (
            ("offered", "messages/s"),
            ("rate", "messages/s"),
            ("wait_median_ms", "ms"),
            ("wait_p95_ms", "ms"),
            ("worker_cpu_ms", "ms"),
            ("waiting_at_last", "count"),
        ):
            values = [run[field] for run in runs]
            print(
                f"arf_{name}_one_worker_{field}: {statistics.median(values):.1f} {unit} "
                f"(rounds {' '.join(f'{v:.1f}' for v in values)})"
            )
    print(f"end_to_end_vs_parse_ratio: {statistics.median(e2e_rates) / statistics.median(parse_rates):.3f} x")
    print(f"batched_vs_parse_ratio: {statistics.median(batch_rates) / statistics.median(parse_rates):.3f} x")
    print(f"messages_not_parsed: {waiting} count")

    # The big feed end to end: each round one 50,000-row message, filed in chunks of
    # INTAKE_CHUNK_EVENTS (each its own transaction, with the message's progress and an audit row
    # per case), and the ladder run on the cases each chunk touched (eager here).
    from django.conf import settings

    from cases.models import CaseEvent

    shadow_seconds, parse_seconds_all, filed, statements, audit_rows = [], [], [], [], []
    counter.take()
    counter.timing = {"": 0.0} if os.environ.get("BENCH_SQL_TIMING") else {}
    chunk_sizes = [int(c) for c in args.shadow_chunks.split(",") if c.strip()] or [settings.INTAKE_CHUNK_EVENTS]
    by_size: dict[int, list[float]] = {size: [] for size in chunk_sizes}
    # Compared sizes get a first round of their own: the first feed opens the cases, and is slower.
    warm_up = int(len(chunk_sizes) > 1)
    for r in range(warm_up + args.shadow_rounds * len(chunk_sizes)):
        settings.INTAKE_CHUNK_EVENTS = chunk_sizes[(r - warm_up) % len(chunk_sizes)]
        day = base + timedelta(days=20 + r)  # a new day each round: nothing is a duplicate
        rows = [
            (
                f"100.64.{(n % pool) // 256}.{n % 256}" if n % 3 else f"10.0.{(n // 16) % 125}.{n % 16 * 16 + 1}",
                day + timedelta(seconds=n),
            )
            for n in range(args.rows)
        ]
        raw = shadowserver_message(rows)
        t = time.perf_counter()
        result = intake.parse(raw)
        parse_seconds_all.append(time.perf_counter() - t)
        assert len(result.events) == args.rows
        del result  # not held while the same rows are filed
        before, audit_before = Report.objects.count(), CaseEvent.objects.count()
        t = time.perf_counter()
        with connection.execute_wrapper(counter):
            message, _ = receive(raw, "email")
        shadow_seconds.append(time.perf_counter() - t)
        if r >= warm_up:
            by_size[settings.INTAKE_CHUNK_EVENTS].append(shadow_seconds[-1])
        statements.append(counter.take())
        message.refresh_from_db()
        assert message.status == "parsed", message.parse_error
        assert message.event_count == args.rows, message.event_count
        filed.append(Report.objects.count() - before)
        audit_rows.append(CaseEvent.objects.count() - audit_before)
    if not filed:
        connection.close()
        return
    print(f"shadowserver_rows: {args.rows} count")
    print(f"shadowserver_reports_filed: {' '.join(str(n) for n in filed)} count")
    print(f"shadowserver_parse_seconds_median: {statistics.median(parse_seconds_all):.2f} s")
    print(f"shadowserver_end_to_end_seconds_median: {statistics.median(shadow_seconds):.2f} s")
    print(f"shadowserver_end_to_end_rounds: {' '.join(f'{x:.2f}' for x in shadow_seconds)} s")
    print(f"shadowserver_chunk_events: {' '.join(str(size) for size in chunk_sizes)} events")
    if len(chunk_sizes) > 1:
        for size, seconds in by_size.items():
            print(f"shadowserver_end_to_end_seconds_median_chunk_{size}: {statistics.median(seconds):.2f} s")
            print(f"shadowserver_end_to_end_rounds_chunk_{size}: {' '.join(f'{x:.2f}' for x in seconds)} s")
    print(f"shadowserver_chunks_last: {message.chunks_filed} count")
    print(f"shadowserver_statements: {' '.join(str(n) for n in statements)} statements")
    print(f"shadowserver_audit_rows: {' '.join(str(n) for n in audit_rows)} rows")
    for key, seconds in sorted(counter.timing.items(), key=lambda kv: -kv[1])[:15]:
        print(f"  {seconds:7.3f} s  {key}")
    connection.close()


if __name__ == "__main__":
    main()
