"""Server time of the desk's pages on PostgreSQL with a million reports.

    DATABASE_URL=postgres://abusedesk:abusedesk@127.0.0.1:5432/abusedesk \
        .venv/bin/python bench/bench_pages.py [--runs 30] [--rebuild] [--only queue]

Builds, once, a database <name>_bench_pages beside the one in DATABASE_URL: 50,000 customers,
100,000 cases (30% open), 1,000,000 reports, notices, approvals, replies and events; one case has
1,000 reports all from one 30 MB feed message. Later runs find it and reuse it (--rebuild makes it
again; migrations are applied either way). Each page is then requested in-process through Django's
test Client as a signed-in manager, with production settings (DEBUG off, cached templates):
a few warm-up requests, then --runs timed ones. Prints the median and 95th percentile per page,
and the queries one request makes. Target: 150 ms median each, aim 50 ms.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode, urlparse, urlunparse

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["DJANGO_SETTINGS_MODULE"] = "abusedesk.settings"
# Production's shape: DEBUG off (cached templates, no query log), a broker that is never reached.
os.environ["DEBUG"] = "false"
os.environ.setdefault("SECRET_KEY", "bench-pages-not-secret")
os.environ["ALLOWED_HOSTS"] = "testserver"
os.environ["CELERY_BROKER_URL"] = "memory://localhost/"
os.environ["ENRICHMENT_ENABLED"] = "false"
os.environ["STATIC_MANIFEST"] = "false"
os.environ["SECURE_COOKIES"] = "false"
os.environ["EMAIL_BACKEND"] = "django.core.mail.backends.dummy.EmailBackend"
os.environ.setdefault("LOG_LEVEL", "WARNING")

CUSTOMERS = 50_000
CASES = 100_000
REPORTS = 1_000_000
BIG_CASE_REPORTS = 1_000
BIG_FEED_BYTES = 30 * 1024 * 1024
BIG_SUBJECT = "bench_pages: one 30 MB feed"
LEASES = 3_000  # the customer page's customer: a residential line with thousands of leases
TARGET_MS = 150
BUILD_LOCK = 7_744_117


def bench_url(url: str, suffix: str, *, rebuild: bool) -> tuple[str, bool]:
    """The bench database's URL, and whether it already existed (it is made if not)."""
    import psycopg2

    parts = urlparse(url)
    name = parts.path.lstrip("/") + suffix
    admin = psycopg2.connect(urlunparse(parts._replace(path="/postgres")))
    admin.autocommit = True
    with admin.cursor() as cur:
        if rebuild:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name])
        existed = cur.fetchone() is not None
        if not existed:
            cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    return urlunparse(parts._replace(path="/" + name)), existed


# --- building the data ------------------------------------------------------------------------------


def insert_select(model, exprs: dict[str, str], source: str, params: tuple = ()) -> int:
    """INSERT INTO model's table (every concrete column) SELECT exprs FROM source.

    Columns not named take the model's default (NULL where nullable), so a column another
    change adds with a default does not break the bench."""
    from django.db import connection

    columns, values, args = [], [], []
    for field in model._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(connection.ops.quote_name(field.column))
        if field.attname in exprs or field.name in exprs:
            values.append(exprs.get(field.attname, exprs.get(field.name)))
        elif field.has_default():
            values.append("%s")
            args.append(field.get_db_prep_save(field.get_default(), connection))
        elif field.null:
            values.append("NULL")
        elif getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
            values.append("now()")
        elif field.empty_strings_allowed and field.get_default() == "":
            values.append("''")
        else:
            raise SystemExit(f"bench_pages: no value for {model.__name__}.{field.name}")
    unknown = set(exprs) - {f.attname for f in model._meta.concrete_fields} - {f.name for f in model._meta.fields}
    if unknown:
        raise SystemExit(f"bench_pages: {model.__name__} has no {sorted(unknown)}")
    sql = f"INSERT INTO {model._meta.db_table} ({', '.join(columns)}) SELECT {', '.join(values)} FROM {source}"
    sql = re.sub(r"%(?!s)", "%%", sql)  # SQL's modulo, not a placeholder
    with connection.cursor() as cur:
        cur.execute(sql, [*args, *params])
        return cur.rowcount


def big_feed() -> bytes:
    """A 30 MB CSV feed: the first 1,000 lines are the big case's reports, the rest padding lines
    about addresses elsewhere (a feed lists the whole world; one ISP's share is small)."""
    lines = [b"ip,timestamp,type,detail\r\n"]
    size = len(lines[0])
    n = 0
    while size < BIG_FEED_BYTES:
        line = f"203.0.113.{n % 250},2026-11-0{1 + n % 9}T{n % 24:02d}:00:00Z,scan,port 23 telnet brute force {n}\r\n"
        lines.append(line.encode())
        size += len(line)
        n += 1
    return b"".join(lines)[:BIG_FEED_BYTES]


def build() -> None:
    import hashlib

    from django.contrib.auth.models import Group, User
    from django.db import connection, transaction

    from cases.models import (
        Approval,
        Case,
        CaseEvent,
        CustomerReply,
        InboundMessage,
        Notice,
        Report,
    )
    from customers.models import Allocation, Contact, Customer

    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cur:
        cur.execute(
            "TRUNCATE cases_report, cases_caseevent, cases_notice, cases_approval, cases_provisioningcall, "
            "cases_customerreply, cases_case, cases_inboundmessage, customers_standingchange, customers_contact, "
            "customers_allocation, customers_customer RESTART IDENTITY CASCADE"
        )
    people = []
    for name, role in [("noc-a", "noc"), ("noc-b", "noc"), ("noc-c", "noc"), ("boss", "manager")]:
        user, _ = User.objects.get_or_create(username=name, defaults={"is_staff": True})
        user.groups.add(Group.objects.get(name=role))
        people.append(user.pk)
    with transaction.atomic():
        insert_select(
            Customer,
            {
                "account": "'B-' || lpad(g::text, 6, '0')",
                "name": "'Customer ' || g || ' ' || (ARRAY['Bakery','Garage','Home','Studio','Farm'])[1 + g % 5]",
                "kind": "CASE WHEN g % 5 = 0 THEN 'business' ELSE 'residential' END",
                "created_at": "now() - interval '3 years'",
                "updated_at": "now()",
            },
            "generate_series(1, %s) g",
            (CUSTOMERS,),
        )
        insert_select(
            Contact,
            {"customer": "id", "email": "'noc' || id || '@cust' || id || '.example'", "name": "''"},
            "customers_customer",
        )
        # Each customer a static /28 in 100.64.0.0/10, in customer order: a /16 holds 4,096 of them.
        insert_select(
            Allocation,
            {
                "customer": "id",
                "network": "host('100.64.0.0'::inet + (id - 1) * 16) || '/28'",
                "family": "4",
                "prefixlen": "28",
                "valid_from": "'2020-01-01T00:00:00Z'::timestamptz",
                "source": "'static'",
            },
            "customers_customer",
        )
        # Customer 2 (residential): a line with thousands of one-day leases from a pool.
        insert_select(
            Allocation,
            {
                "customer": "2",
                "network": "host('100.127.0.0'::inet + g) || '/32'",
                "family": "4",
                "prefixlen": "32",
                "valid_from": "now() - (g || ' days')::interval",
                "valid_to": "now() - ((g - 1) || ' days')::interval",
                "source": "'lease'",
            },
            "generate_series(1, %s) g",
            (LEASES,),
        )
        categories = "(ARRAY['phishing','malware','botnet','scanning','ddos','login_attack','copyright','other'])"
        # Two cases per customer (spam, and one other category); 30% open, the rest resolved.
        insert_select(
            Case,
            {
                "customer": "1 + (k - 1) % 50000",
                "category": f"CASE WHEN k <= 50000 THEN 'spam' ELSE {categories}[1 + k % 8] END",
                "status": "CASE WHEN k % 10 >= 3 THEN 'resolved' WHEN k % 4 = 0 THEN 'open' ELSE 'waiting' END",
                "rung": "(k % 4) * 10",
                "rung_at": "CASE WHEN k % 4 > 0 THEN now() - ((k % 300) || ' days')::interval END",
                "awaiting_review": "k % 10 < 3 AND k % 97 = 0",
                "proposed_rung": "CASE WHEN k % 10 < 3 AND k % 4 = 0 AND k % 89 = 0 THEN 10 END",
                "proposal_reason": "''",
                "hold_until": "CASE WHEN k % 10 < 3 AND k % 83 = 0 THEN now() - interval '1 hour' END",
                "hold_reason": "''",
                "restricted": "''",
                "assignee": f"(ARRAY[{', '.join(map(str, people))}, NULL, NULL, NULL])[1 + k % 7]",
                "opened_at": "now() - ((k % 365) || ' days')::interval - ((k % 24) || ' hours')::interval",
                "first_report_at": "now() - ((k % 365) || ' days')::interval - ((k % 24) || ' hours')::interval",
                "last_report_at": "now() - ((k % 365) || ' days')::interval + ((k % 10) || ' hours')::interval",
                "report_count": f"CASE WHEN k = 1 THEN {BIG_CASE_REPORTS} ELSE 10 END",
                "closed_at": "CASE WHEN k % 10 >= 3 THEN now() - ((k % 300) || ' days')::interval END",
                "updated_at": "now()",
            },
            "generate_series(1, %s) k",
            (CASES,),
        )
        raw = big_feed()
        message = InboundMessage.objects.create(
            raw=raw,
            size=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
            channel="email",
            subject=BIG_SUBJECT,
            sender="feed@shadow.example",
            status="parsed",
            format="csv",
            event_count=BIG_CASE_REPORTS,
        )
        report_common = {
            "port": "NULL",
            "reporter_org": "''",
            "external_id": "''",
            "confidence": "1.0",
            "needs_confirmation": "false",
            "rejected_reason": "''",
            "unassigned_reason": "''",
            "dedupe_key": "md5(g::text)",
            "duplicate_count": "0",
            "ptr": "''",
            "dnsbl": "'{}'::jsonb",
            "enrichment_error": "''",
            "created_at": "now()",
        }
        # The big case (case 1, customer 1): 1,000 reports from the one feed message.
        insert_select(
            Report,
            {
                **report_common,
                "message": str(message.pk),
                "ip": "'100.64.0.0'::inet + 1 + g % 14",
                "occurred_at": "now() - interval '2 days' + (g || ' minutes')::interval",
                "category": "'spam'",
                "reporter": "'feed@shadow.example'",
                "format": "'csv'",
                "evidence": "'100.64.0.' || (1 + g % 14) || ',2026-11-0' || (1 + g % 9) || 'T10:00:00Z,spam,"
                "sent 40 messages to spamtrap ' || g",
                "customer": "1",
                "case": "1",
            },
            "generate_series(1, %s) g",
            (BIG_CASE_REPORTS,),
        )
        # Every other case ~10 reports, from its customer's /28; words vary so full-text search has
        # rare and common terms ("failed logins" in 1 report of 100).
        evidence = (
            "CASE WHEN g % 100 = 0 THEN 'About ' || (g % 5000) || ' failed logins on sshd from ' || host(ip) "
            "WHEN g % 3 = 0 THEN 'Spam run: ' || (g % 90) || ' messages to spamtrap, subject ' || "
            "(ARRAY['invoice','pharmacy','lottery','crypto','shipping'])[1 + g % 5] "
            "WHEN g % 3 = 1 THEN 'Port scan of ' || (g % 1024) || '/tcp seen by sensor ' || (g % 40) "
            "ELSE 'Host listed: botnet sinkhole contact, family ' || "
            "(ARRAY['mirai','emotet','qakbot','gafgyt'])[1 + g % 4] END"
        )
        insert_select(
            Report,
            {
                **report_common,
                "ip": "ip",
                "occurred_at": "c.first_report_at + ((g % 240) || ' minutes')::interval",
                "category": "c.category",
                "reporter": "'reports' || (g % 50) || '@feed' || (g % 50) || '.example'",
                "format": "'arf'",
                "evidence": evidence,
                "customer": "c.customer_id",
                "case": "c.id",
            },
            "(SELECT g, 2 + (g - 1) % (%s - 1) AS case_id FROM generate_series(1, %s) g) s "
            "JOIN cases_case c ON c.id = s.case_id "
            "CROSS JOIN LATERAL (SELECT '100.64.0.0'::inet + (c.customer_id - 1) * 16 + 1 + g % 14 AS ip) a",
            (CASES, REPORTS - BIG_CASE_REPORTS),
        )
        insert_select(
            Notice,
            {
                "case": "id",
                "kind": "(ARRAY['first_notice','warning','suspension'])[rung / 10]",
                "key": "'bench:' || id",
                "recipients": "'[]'::jsonb",
                "subject": "'[AD-' || id || '] About your connection'",
                "body": "'We received reports about your connection.'",
                "status": "CASE WHEN id % 500 = 0 AND status IN ('open', 'waiting') THEN 'failed' ELSE 'sent' END",
                "message_id": "'<bench-' || id || '@abusedesk.test>'",
                "created_at": "rung_at",
                "sent_at": "rung_at",
            },
            "cases_case WHERE rung > 0",
        )
        insert_select(
            Approval,
            {
                "case": "id",
                "rung": "30",
                "status": "'pending'",
                "reason": "'3 further reports since the warning'",
                "proposed_at": "now() - interval '5 hours'",
                "decision_reason": "''",
            },
            "cases_case WHERE status IN ('open', 'waiting') AND rung = 20 AND id % 13 = 0",
        )
        insert_select(
            CustomerReply,
            {"case": "id", "channel": "'link'", "text": "'Fixed: the router is replaced.'", "received_at": "now()"},
            "cases_case WHERE awaiting_review",
        )
        insert_select(
            CaseEvent,
            {
                "case": "id",
                "actor_kind": "'system'",
                "kind": "'opened'",
                "old": "''",
                "new": "'open'",
                "note": "''",
                "at": "opened_at",
            },
            "cases_case",
        )
    with connection.cursor() as cur:
        # As autovacuum would leave it: statistics, and the visibility map index-only scans need.
        cur.execute("VACUUM ANALYZE")
    print(f"built: {time.perf_counter() - started:.0f} s", flush=True)


def schema_is_current() -> bool:
    """Whether every model column exists in the bench database: a reserved migration edited after
    the database was built (this round's owners fill theirs in place) leaves it behind."""
    from django.apps import apps
    from django.db import connection

    with connection.cursor() as cur:
        tables = set(connection.introspection.table_names(cur))
        for model in apps.get_models():
            if model._meta.db_table not in tables:
                return False
            columns = {c.name for c in connection.introspection.get_table_description(cur, model._meta.db_table)}
            if {f.column for f in model._meta.concrete_fields} - columns:
                return False
            indexes = set(connection.introspection.get_constraints(cur, model._meta.db_table))
            if {i.name for i in model._meta.indexes} - indexes:
                return False
    return True


def is_built() -> bool:
    from cases.models import InboundMessage, Report

    if not InboundMessage.objects.filter(subject=BIG_SUBJECT).exists():
        return False
    return Report.objects.count() >= REPORTS


# --- timing ---------------------------------------------------------------------------------------------


def pages() -> list[tuple[str, str | None]]:
    """(name, URL or None when the page is not built yet) for every page timed."""
    from django.urls import NoReverseMatch, reverse

    from cases.models import Case

    def url(name: str, *args, query: dict | None = None) -> str | None:
        try:
            found = reverse(name, args=args)
        except NoReverseMatch:
            return None
        return found + (f"?{urlencode(query)}" if query else "")

    big = Case.objects.filter(report_count=BIG_CASE_REPORTS).values_list("pk", flat=True).first()
    return [
        ("queue (default)", url("cases:home")),
        ("queue (needs action, spam)", url("cases:home", query={"status": "action", "category": "spam"})),
        (
            "queue (waiting, warning, business, unassigned)",
            url("cases:home", query={"status": "waiting", "rung": 20, "kind": "business", "assignee": "none"}),
        ),
        ("queue sorted by customer", url("cases:home", query={"sort": "customer"})),
        ("case with 1,000 reports from a 30 MB feed", url("cases:case_detail", big)),
        ("customer page (3,000 leases)", url("customers:customer_detail", 2)),
        ("CIDR search over a /16", url("cases:home", query={"q": "100.64.0.0/16"})),
        ("CIDR search over a /16, every status", url("cases:home", query={"q": "100.64.0.0/16", "status": "all"})),
        ("full-text search", url("cases:home", query={"q": '"failed logins"'})),
        ("full-text search, every status", url("cases:home", query={"q": "sshd", "status": "all"})),
        ("managers' numbers", url("cases:manager_numbers")),
    ]


def time_page(client, url: str, runs: int) -> tuple[list[float], int, int]:
    from django.db import connection

    for _ in range(3):
        response = client.get(url, secure=True)
    queries = []

    def count(execute, sql, params, many, context):
        queries.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(count):
        response = client.get(url, secure=True)
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        response = client.get(url, secure=True)
        seconds.append(time.perf_counter() - started)
    return seconds, response.status_code, len(queries)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed requests per page")
    parser.add_argument("--rebuild", action="store_true", help="drop and build the bench database again")
    parser.add_argument("--only", default="", help="time only pages whose name contains this")
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        sys.exit(
            "bench_pages runs on PostgreSQL only (the figures are production's): set DATABASE_URL to a "
            "PostgreSQL server; the bench makes its own database there. SQLite is refused."
        )
    os.environ["DATABASE_URL"], existed = bench_url(url, "_bench_pages", rebuild=args.rebuild)

    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    if existed and not schema_is_current():
        print("the bench database is behind the models (a migration was edited): making it again", flush=True)
        connection.close()
        _, existed = bench_url(url, "_bench_pages", rebuild=True)  # same name: Django reconnects to it
        call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        # Two runs at once: the second waits for the first one's build instead of truncating it.
        cur.execute("SELECT pg_advisory_lock(%s)", [BUILD_LOCK])
        try:
            if existed and is_built():
                print("bench database found: reusing it (--rebuild to make it again)", flush=True)
            else:
                print(f"building {REPORTS:,} reports in {CASES:,} cases of {CUSTOMERS:,} customers ...", flush=True)
                build()
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK])
    client = Client()
    client.force_login(User.objects.get(username="boss"))
    width = 48
    print(f"{'page':<{width}} {'median':>9} {'p95':>9} {'queries':>8}  status")
    for name, page_url in pages():
        if args.only and args.only not in name:
            continue
        if page_url is None:
            print(f"{name:<{width}} not built yet")
            continue
        seconds, status, queries = time_page(client, page_url, args.runs)
        median = statistics.median(seconds) * 1000
        flag = "" if median <= TARGET_MS else f"  OVER {TARGET_MS} ms"
        print(
            f"{name:<{width}} {median:>6.1f} ms {p95(seconds) * 1000:>6.1f} ms {queries:>8}  {status}{flag}",
            flush=True,
        )


if __name__ == "__main__":
    main()
