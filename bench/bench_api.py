"""Submission of single JSON events through the HTTP API: gunicorn (2 workers) on 127.0.0.1, PostgreSQL.

    DATABASE_URL=postgres://abusedesk:abusedesk@127.0.0.1:5432/abusedesk \\
    BENCH_REDIS_URL=redis://127.0.0.1:6379/1 \\
        .venv/bin/python bench/bench_api.py [--runs 5] [--seconds 5] [--concurrency 8] [--workers 2] [--threads 4]

Creates its own database (<name>_bench_api) on the server in DATABASE_URL, migrates it, makes a
submit token (with a rate no run reaches), and starts `gunicorn abusedesk.wsgi` with --workers
workers on a free port of 127.0.0.1, with DEBUG off: of the gthread class with --threads threads
each (default 4), or of the sync class with --threads 1. Each submission waits for its message's
commit to reach the disk (~4 ms of fdatasync here, the price of never losing a report answered
202); a sync worker sits idle through that wait, a gthread worker serves its other threads' calls,
so two sync workers cannot pass 2 / (that wait + the CPU) calls a second on any machine.

Parsing is queued on a fresh Celery queue of the Redis in BENCH_REDIS_URL (no worker runs: this
measures the submission, not the parse), and the rate counts live in that Redis too, as in
production. The load generator is another process: --concurrency
threads, each posting one new event (a different address each time, so no submission is a duplicate)
per request, for --seconds, --runs times. Prints `name: value unit` lines:

    statements_per_submission   SQL statements one submission costs (measured in this process), with the
                                token in the process's cache (API_TOKEN_CACHE_SECONDS) and its last use recorded
                                this minute, as on all but the first call; statements_first_call: the first
    requests_per_second         202 answers per second, median of the runs
    p99_latency                 99th percentile of the request times, median of the runs
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def load(port: int, key: str, seconds: float, concurrency: int, run: int, out) -> None:
    """The load generator (its own process): threads posting single events until the time is up."""
    deadline = time.monotonic() + seconds
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json"}

    def worker(n: int) -> None:
        i = 0
        # Kept open between requests where the server allows it (gthread workers); http.client
        # reconnects by itself after the server closed it.
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        while time.monotonic() < deadline:
            i += 1
            # 100.64.0.0/10: a fresh address and time for every request, so none is a duplicate.
            body = json.dumps(
                {
                    "ip": f"100.{64 + run % 60}.{n}.{i % 250 + 1}",
                    "port": 25,
                    "time": f"2026-11-03T14:{i // 60 % 60:02d}:{i % 60:02d}Z",
                    "category": "spam",
                    "evidence": f"run {run} thread {n} request {i}",
                    "reporter": "feed@partner.example",
                }
            )
            started = time.perf_counter()
            try:
                conn.request("POST", "/api/v1/reports/", body=body, headers=headers)
                response = conn.getresponse()
                response.read()
                ok = response.status == 202
                if response.getheader("Connection", "").lower() == "close":  # sync workers close each one
                    conn.close()
            except (OSError, http.client.HTTPException):
                ok = False
                conn.close()
            if ok:
                latencies[n].append(time.perf_counter() - started)
            else:
                errors[n] += 1

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - began
    out.send(([x for per in latencies for x in per], sum(errors), elapsed, time.process_time()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument(
        "--threads",
        type=int,
        default=4,
        help="threads per worker (gunicorn's gthread class); 1 = the sync class",
    )
    args = parser.parse_args()

    database_url = os.environ.get("DATABASE_URL", "")
    if not database_url.startswith("postgres"):
        sys.exit("bench_api runs on PostgreSQL: set DATABASE_URL=postgres://...")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")

    from bench.common import bench_database

    queue = f"bench_api_{uuid.uuid4().hex[:8]}"
    db_url = bench_database(database_url, "_bench_api")
    db_name = db_url.rsplit("/", 1)[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "abusedesk.settings",
        "DATABASE_URL": db_url,
        "DEBUG": "false",
        "SECRET_KEY": "bench-only",
        "ALLOWED_HOSTS": "127.0.0.1",
        "STATIC_MANIFEST": "false",
        "SECURE_COOKIES": "false",
        "SECURE_SSL_REDIRECT": "false",  # plain HTTP on 127.0.0.1; TLS ends at the proxy in production
        "CELERY_BROKER_URL": redis_url,
        "CELERY_QUEUE": queue,
        "API_CACHE_URL": redis_url,
        "LOG_LEVEL": "WARNING",
        "ENRICHMENT_ENABLED": "false",
    }
    os.environ.update(env)
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from api.models import ApiKey

    _key_obj, key = ApiKey.objects.create_key(name="bench", scopes=["submit"], rate="1000000/s")
    first, then = statements_per_submission(key)
    print(f"statements_first_call: {first} statements (reads the token, records its use)")
    print(f"statements_per_submission: {then} statements")
    print(f"load_average_before: {os.getloadavg()[0]:.1f} (2 cores; other work on the machine slows every figure)")
    wait = durable_commit_ms()
    print(f"durable_commit: {wait:.1f} ms (median; each submission waits this long for its message to reach the disk)")

    worker_class = f"gthread ({args.threads} threads each)" if args.threads > 1 else "sync"
    kept = "kept alive" if args.threads > 1 else "one per call: sync workers close them"
    print(f"server: gunicorn, {args.workers} {worker_class} workers; load: {args.concurrency} connections ({kept})")
    port = free_port()
    server = subprocess.Popen(
        [
            str(ROOT / ".venv" / "bin" / "gunicorn"),
            "abusedesk.wsgi",
            "--workers",
            str(args.workers),
            "--bind",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
            *(["--worker-class", "gthread", "--threads", str(args.threads)] if args.threads > 1 else []),
        ],
        cwd=ROOT,
        env=env,
    )
    try:
        wait_for(port, key, args.workers * 3)
        rates, p99s, p50s, cpu_costs = [], [], [], []
        for run in range(args.runs):
            receiver, sender = multiprocessing.Pipe(duplex=False)
            proc = multiprocessing.Process(target=load, args=(port, key, args.seconds, args.concurrency, run, sender))
            proc.start()
            web_before, db_before = cpu_seconds(server.pid, "server"), cpu_seconds(db_name, "db")
            latencies, errors, elapsed, load_cpu = receiver.recv()
            proc.join()
            web_cpu = cpu_seconds(server.pid, "server") - web_before
            db_cpu = cpu_seconds(db_name, "db") - db_before
            latencies.sort()
            rate = len(latencies) / elapsed
            p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000 if latencies else float("nan")
            p50 = statistics.median(latencies) * 1000 if latencies else float("nan")
            done = max(len(latencies), 1)
            cpu_costs.append((web_cpu / done * 1000, db_cpu / done * 1000, load_cpu / done * 1000))
            rates.append(rate)
            p99s.append(p99)
            p50s.append(p50)
            print(f"run {run + 1}: {rate:.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, {errors} errors")
    finally:
        server.terminate()
        server.wait(timeout=30)
        purge(redis_url, queue)
    print(f"load_average_after: {os.getloadavg()[0]:.1f}")
    print(f"requests_per_second: {statistics.median(rates):.0f} req/s")
    print(f"p50_latency: {statistics.median(p50s):.1f} ms")
    print(f"p99_latency: {statistics.median(p99s):.1f} ms")
    web, db, gen = (statistics.median(c[i] for c in cpu_costs) for i in range(3))
    # What one submission costs in CPU, whatever else the machine runs: the capacity of 2 idle cores.
    print(f"cpu_per_request_web: {web:.2f} ms (gunicorn workers)")
    print(f"cpu_per_request_db: {db:.2f} ms (PostgreSQL backends)")
    print(f"cpu_per_request_loadgen: {gen:.2f} ms")
    print(f"capacity_two_idle_cores: {2000 / (web + db + gen):.0f} req/s (2 cores / CPU per request, all three)")
    from cases.models import InboundMessage

    print(f"messages_stored: {InboundMessage.objects.count()} messages")


def statements_per_submission(key: str) -> tuple[int, int]:
    """SQL statements of a token's first submission and of the next, in-process (the same middleware
    and views as gunicorn's). Prints the second one's."""
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    client = Client(HTTP_AUTHORIZATION=f"Api-Key {key}", HTTP_HOST="127.0.0.1")
    counts = []
    for ip in ("192.0.2.1", "192.0.2.2"):
        body = {"ip": ip, "time": "2026-11-03T14:02:00Z", "category": "spam"}
        with CaptureQueriesContext(connection) as queries:
            response = client.post("/api/v1/reports/", data=body, content_type="application/json")
        assert response.status_code == 202, response.content
        counts.append(len(queries))
    for q in queries.captured_queries:
        print(f"  sql: {q['sql'][:110]}")
    return counts[0], counts[1]


def durable_commit_ms(times: int = 50) -> float:
    """How long a one-row commit waits for the disk on this server: a sync worker idles through it
    on every submission, so two of them cannot pass 2 / (this + the CPU per call) calls a second."""
    from django.db import connection

    took = []
    with connection.cursor() as cursor:
        # Not a temporary table: PostgreSQL writes no WAL for one, and its commit waits for nothing.
        cursor.execute("CREATE TABLE bench_commit (x int)")
        for _ in range(times):
            started = time.perf_counter()
            cursor.execute("INSERT INTO bench_commit VALUES (1)")  # autocommit: one durable commit
            took.append((time.perf_counter() - started) * 1000)
        cursor.execute("DROP TABLE bench_commit")
    return statistics.median(took)


def cpu_seconds(which, kind: str) -> float:
    """CPU seconds used so far by gunicorn's workers (children of the master pid), or by the
    PostgreSQL backends connected to the bench database (read from /proc: same machine, as root)."""
    if kind == "server":
        pids = []
        for task in Path(f"/proc/{which}/task").iterdir():
            pids += (task / "children").read_text().split()
    else:
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()", [which])
            pids = [str(row[0]) for row in cursor.fetchall()]
    total = 0
    tick = os.sysconf("SC_CLK_TCK")
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick  # utime + stime
    return total


def wait_for(port: int, key: str, answers: int) -> None:
    """Until `answers` submissions went through: a worker still importing Django would slow the first run."""
    body = json.dumps({"ip": "192.0.2.9", "time": "2026-11-03T14:02:00Z", "category": "spam"})
    headers = {"Authorization": f"Api-Key {key}", "Content-Type": "application/json", "Connection": "close"}
    answered = 0
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and answered < answers:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conn.request("POST", "/api/v1/reports/", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            answered += response.status == 202
        except OSError:
            time.sleep(0.2)
    if not answered:
        raise SystemExit("gunicorn did not start")
    time.sleep(1.0)


def purge(redis_url: str, queue: str) -> None:
    import redis

    redis.Redis.from_url(redis_url).delete(queue)


if __name__ == "__main__":
    main()
