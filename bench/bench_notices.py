"""Notice delivery on PostgreSQL: two Celery worker processes send 10,000 pending notices over SMTP.

    DATABASE_URL=postgres://abusedesk:abusedesk@127.0.0.1:5432/abusedesk \
    BENCH_REDIS_URL=redis://127.0.0.1:6379/13 \
        .venv/bin/python bench/bench_notices.py [--notices 10000] [--workers 2] [--rounds 3] [--no-ladder]

Creates its own database (<name>_bench_notices) on the server in DATABASE_URL, writes one notice
through issue_notice() and copies it into --notices pending rows (each with its own key and
Message-ID), starts an SMTP server (aiosmtpd) on 127.0.0.1 in this process and --workers
`celery worker -P solo` processes on a fresh queue of the Redis in BENCH_REDIS_URL, then queues
one send task per notice (as issue_notice does at commit) and times until every row is marked
sent. Each round resets the rows to pending and counts again:

    notices_per_second   from the first task queued to the last row marked sent
    duplicates           Message-IDs the server received more than once (must be 0)
    lost                 notices the server never received, or rows not marked sent (must be 0)

Then, unless --no-ladder: the escalation re-evaluation of 100,000 open cases, measured by
bench/bench_ladder.py (ladder.reevaluate_open_cases), whose lines are printed here too.
Prints `name: value unit` lines.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ["DJANGO_SETTINGS_MODULE"] = "abusedesk.settings"
os.environ.setdefault("DEBUG", "true")
os.environ["ENRICHMENT_ENABLED"] = "false"
# This process writes the notices; the workers send them. The one notice issue_notice() sends
# here (no broker: in-process) goes nowhere.
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"
os.environ.pop("CELERY_BROKER_URL", None)
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.common import bench_database  # noqa: E402

SEND_TASK = "cases.tasks_notices.send_notice_task"
MESSAGE_ID = re.compile(rb"^Message-ID:\s*(<[^>\r\n]+>)", re.MULTILINE | re.IGNORECASE)


class Sink:
    """aiosmtpd on 127.0.0.1 counting the Message-IDs it accepts."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        from tests.fixtures_services import free_port

        self.lock = threading.Lock()
        self.ids: Counter = Counter()
        self.sessions = 0
        self.port = free_port()
        self.controller = Controller(self, hostname="127.0.0.1", port=self.port)

    async def handle_DATA(self, server, session, envelope) -> str:  # noqa: N802 - aiosmtpd's hook name
        found = MESSAGE_ID.search(envelope.original_content or b"")
        with self.lock:
            self.ids[found.group(1).decode() if found else "<none>"] += 1
        return "250 Message accepted for delivery"

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802 - aiosmtpd's hook name
        self.sessions += 1
        session.host_name = hostname
        return responses

    def reset(self) -> None:
        with self.lock:
            self.ids = Counter()

    def distinct(self) -> int:
        with self.lock:
            return len(self.ids)

    def snapshot(self) -> Counter:
        with self.lock:
            return Counter(self.ids)


def write_notices(count: int) -> list[str]:
    """One notice rendered by issue_notice(), copied into `count` pending rows; their Message-IDs."""
    from datetime import UTC, datetime

    from django.db import transaction

    from cases.models import Case, Notice, NoticeKind, NoticeStatus, Report
    from cases.services import notices
    from customers.models import Contact, Customer

    at = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)
    customer = Customer.objects.create(account="R-BENCH", name="Bench Customer")
    Contact.objects.create(customer=customer, email="noc@bench.example")
    case = Case.objects.create(
        customer=customer, category="spam", first_report_at=at, last_report_at=at, report_count=1
    )
    Report.objects.create(
        ip="198.51.100.7", occurred_at=at, category="spam", format="arf", customer=customer, case=case,
        dedupe_key="bench", evidence="Received: from 198.51.100.7 by mx.victim.example (203.0.113.9)",
    )  # fmt: skip
    with transaction.atomic():
        model = notices.issue_notice(case, NoticeKind.FIRST_NOTICE, key="bench:model", actor=None)
    rows = [
        Notice(
            case=case,
            kind=model.kind,
            key=f"bench:{i}",
            recipients=model.recipients,
            subject=model.subject,
            body=model.body,
            html_body=model.html_body,
            message_id=notices._message_id(),
            status=NoticeStatus.PENDING,
        )
        for i in range(count)
    ]
    Notice.objects.bulk_create(rows, batch_size=2000)
    return [r.message_id for r in rows]


def reset_notices() -> None:
    from cases.models import Notice, NoticeStatus

    Notice.objects.filter(key__startswith="bench:").exclude(key="bench:model").update(
        status=NoticeStatus.PENDING, attempts=0, claimed_at=None, sent_at=None, next_attempt_at=None, last_error=""
    )


def one_round(sink: Sink, sender, queue: str, ids: list[int], expected: set[str], timeout: float) -> dict:
    from cases.models import Notice, NoticeStatus

    reset_notices()
    sink.reset()
    started = time.perf_counter()
    with sender.producer_or_acquire() as producer:
        for pk in ids:
            sender.send_task(SEND_TASK, args=[pk], queue=queue, producer=producer)
    queued = time.perf_counter() - started
    deadline = time.monotonic() + timeout
    # The rows are one id range; polling stays cheap for the server and this process.
    pending = Notice.objects.filter(pk__gte=min(ids), pk__lte=max(ids)).exclude(status=NoticeStatus.SENT)
    while sink.distinct() < len(expected) or pending.exists():
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    elapsed = time.perf_counter() - started
    time.sleep(1.0)  # a late second copy would arrive now
    received = sink.snapshot()
    unsent = pending.count()
    return {
        "seconds": elapsed,
        "queued_seconds": queued,
        "duplicates": sum(1 for mid, n in received.items() if n > 1),
        "lost": len(expected - set(received)) + unsent,
        "strangers": len(set(received) - expected),
    }


def run_ladder_bench(cases: int) -> None:
    """HOOK: escalation re-evaluation of 100,000 open cases (ladder.reevaluate_open_cases), as
    measured by the lead's bench/bench_ladder.py; its lines are printed as they are."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "bench_ladder.py"), "--cases", str(cases), "--rounds", "1"],
        env={**os.environ, "DATABASE_URL": os.environ["BENCH_ORIGINAL_DATABASE_URL"]},
        capture_output=True,
        text=True,
    )
    sys.stdout.write(result.stdout)
    if result.returncode:
        sys.exit(f"bench_ladder.py failed ({result.returncode}):\n{result.stderr[-3000:]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notices", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600, help="seconds a round may take")
    parser.add_argument("--no-ladder", action="store_true", help="skip the re-evaluation of 100,000 cases")
    parser.add_argument("--ladder-cases", type=int, default=100_000)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL server (the bench makes its own database there)")
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
    os.environ["BENCH_ORIGINAL_DATABASE_URL"] = url
    os.environ["DATABASE_URL"] = bench_database(url, "_bench_notices")

    import django

    django.setup()
    from celery import Celery
    from django.core.management import call_command
    from django.db import connection

    from cases.models import Notice
    from tests.notices.workers import start_worker

    call_command("migrate", verbosity=0)
    expected = set(write_notices(args.notices))
    ids = list(Notice.objects.filter(message_id__in=expected).values_list("pk", flat=True))
    with connection.cursor() as cur:
        cur.execute("ANALYZE")

    sink = Sink()
    sink.controller.start()
    queue = f"bench-notices-{uuid.uuid4().hex[:8]}"
    log_dir = Path(tempfile.mkdtemp(prefix="bench-notices-"))
    env = {
        "EMAIL_BACKEND": "django.core.mail.backends.smtp.EmailBackend",
        "EMAIL_HOST": "127.0.0.1",
        "EMAIL_PORT": str(sink.port),
        "EMAIL_USE_TLS": "false",
        "EMAIL_USE_SSL": "false",
        "EMAIL_TIMEOUT": "10",
    }
    workers = [
        start_worker(
            name=f"{queue}-{i}",
            queue=queue,
            database_url=os.environ["DATABASE_URL"],
            broker_url=redis_url,
            log_dir=log_dir,
            env=env,
        )
        for i in range(args.workers)
    ]
    sender = Celery("bench-sender", broker=redis_url, set_as_current=False)
    rounds = []
    try:
        for worker in workers:
            worker.wait_ready()
        for _ in range(args.rounds):
            rounds.append(one_round(sink, sender, queue, ids, expected, args.timeout))
    finally:
        for worker in workers:
            worker.stop()
        sender.close()
        sink.controller.stop()

    rates = [args.notices / r["seconds"] for r in rounds]
    print(f"notices: {args.notices} notices")
    print(f"worker_processes: {args.workers} processes")
    print(f"notices_per_second_median: {statistics.median(rates):.0f} notices/s")
    print(f"notices_per_second_rounds: {', '.join(f'{r:.0f}' for r in rates)} notices/s")
    print(f"queueing_seconds_median: {statistics.median(r['queued_seconds'] for r in rounds):.2f} s")
    print(f"duplicates: {max(r['duplicates'] for r in rounds)} messages")
    print(f"lost: {max(r['lost'] for r in rounds)} notices")
    print(f"smtp_sessions: {sink.sessions} sessions")
    if any(r["strangers"] for r in rounds):
        print(f"unexpected_messages: {max(r['strangers'] for r in rounds)} messages")
    sys.stdout.flush()

    # --- escalation re-evaluation of 100,000 open cases -------------------------------------------
    if not args.no_ladder:
        run_ladder_bench(args.ladder_cases)


if __name__ == "__main__":
    main()
