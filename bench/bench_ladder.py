"""Escalation re-evaluation at scale on PostgreSQL: the beat's pass over every open case.

    DATABASE_URL=postgres://abusedesk:abusedesk@127.0.0.1:5432/abusedesk \
        .venv/bin/python bench/bench_ladder.py [--cases 100000] [--ready 0.01] [--rounds 3]

Creates its own database (<name>_bench_ladder), loads --cases open cases (one customer each,
two reports each; a --ready share of them at a first notice whose grace period ended with a
further report, so they climb to a warning and write a notice), all due now, and times
`ladder.reevaluate_open_cases()`: facts in bulk, a locked transaction per case that acts.
Prints `name: value unit` lines; the rounds reload the data so each one does the same work.
The notices it writes are queued on an in-memory broker, not sent (sending is bench_notices.py's figure).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["DJANGO_SETTINGS_MODULE"] = "abusedesk.settings"
os.environ.setdefault("DEBUG", "true")
os.environ["ENRICHMENT_ENABLED"] = "false"
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"
# An in-memory broker: the notices the pass writes are queued for the workers, as in production,
# and sent by bench_notices.py's workers there; this figure is the beat's own work.
os.environ["CELERY_BROKER_URL"] = "memory://localhost/"
os.environ.setdefault("LOG_LEVEL", "WARNING")

from bench.common import bench_database  # noqa: E402


def load_open_cases(n: int, ready_share: float) -> int:
    """n open cases with set-based SQL; returns how many should climb. Times are relative to now()."""
    from django.db import connection

    ready_every = max(1, round(1 / ready_share)) if ready_share > 0 else 0
    with connection.cursor() as cur:
        cur.execute(
            "TRUNCATE cases_report, cases_caseevent, cases_notice, cases_approval, cases_provisioningcall, "
            "cases_customerreply, cases_case, customers_standingchange, customers_contact, customers_allocation, "
            "customers_customer RESTART IDENTITY CASCADE"
        )
        cur.execute(
            "INSERT INTO customers_customer (account, name, kind, standing, notes, created_at, updated_at) "
            "SELECT 'R-' || g, 'Customer ' || g, 'residential', 'good', '', now(), now() "
            "FROM generate_series(1, %s) g",
            [n],
        )
        cur.execute(
            "INSERT INTO customers_contact (customer_id, email, name, receives_notices) "
            "SELECT id, 'c' || id || '@home.example', '', true FROM customers_customer"
        )
        # Every case sits at a first notice sent 4 days ago (its 72 h grace is over), due now.
        cur.execute(
            "INSERT INTO cases_case (customer_id, category, status, rung, rung_at, counted_from, escalation_due_at, "
            "awaiting_review, restricted, link_version, proposal_reason, hold_reason, opened_at, first_report_at, "
            "last_report_at, report_count, duplicate_count, updated_at) "
            "SELECT id, 'spam', 'waiting', 10, now() - interval '4 days', now() - interval '4 days', "
            "now() - interval '1 minute', false, '', 1, '', '', now() - interval '5 days', "
            "now() - interval '5 days', now() - interval '5 days', 2, 0, now() FROM customers_customer"
        )
        # The first report, before the notice; the ready share also has one after the grace period.
        cur.execute(
            "INSERT INTO cases_report (ip, occurred_at, category, reporter, reporter_org, format, external_id, "
            "evidence, confidence, needs_confirmation, rejected_reason, customer_id, case_id, unassigned_reason, "
            "dedupe_key, duplicate_count, ptr, dnsbl, enrichment_error, created_at) "
            "SELECT '10.0.0.1', now() - interval '5 days', 'spam', 'fbl@mail.example', '', 'arf', '', 'x', 1, "
            "false, '', customer_id, id, '', md5(id::text), 0, '', '{}', '', now() FROM cases_case"
        )
        if ready_every:
            cur.execute(
                "INSERT INTO cases_report (ip, occurred_at, category, reporter, reporter_org, format, external_id, "
                "evidence, confidence, needs_confirmation, rejected_reason, customer_id, case_id, "
                "unassigned_reason, dedupe_key, duplicate_count, ptr, dnsbl, enrichment_error, created_at) "
                "SELECT '10.0.0.1', now() - interval '1 hour', 'spam', 'fbl2@mail.example', '', 'arf', '', 'x', "
                "1, false, '', customer_id, id, '', md5(id::text || 'b'), 0, '', '{}', '', now() "
                "FROM cases_case WHERE id %% %s = 0",
                [ready_every],
            )
        cur.execute("ANALYZE")
    return n // ready_every if ready_every else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100_000)
    parser.add_argument("--ready", type=float, default=0.01, help="share of cases that climb (write a notice)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit("set DATABASE_URL to a PostgreSQL server (the bench makes its own database there)")
    os.environ["DATABASE_URL"] = bench_database(url, "_bench_ladder")

    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from cases.management.commands.seed_demo import ensure_policies
    from cases.models import Case, Notice, Rung
    from cases.services import ladder

    ensure_policies()
    seconds = []
    for _ in range(args.rounds):
        expected = load_open_cases(args.cases, args.ready)
        started = time.perf_counter()
        acted = ladder.reevaluate_open_cases()
        seconds.append(time.perf_counter() - started)
        warned = Case.objects.filter(rung=Rung.WARNING).count()
        notices = Notice.objects.count()
        if not (acted == warned == notices == expected):
            sys.exit(f"wrong result: acted {acted}, warnings {warned}, notices {notices}, expected {expected}")
        # A second pass finds nothing due: the quiet cases got their next due time (none).
        if ladder.reevaluate_open_cases() != 0:
            sys.exit("a second pass acted again")
    print(f"open_cases: {args.cases} cases")
    print(f"cases_climbing: {expected} cases")
    print(f"reevaluate_seconds_median: {statistics.median(seconds):.2f} s")
    print(f"reevaluate_seconds_rounds: {', '.join(f'{s:.2f}' for s in seconds)} s")
    print(f"reevaluate_cases_per_second_median: {args.cases / statistics.median(seconds):.0f} cases/s")


if __name__ == "__main__":
    main()
