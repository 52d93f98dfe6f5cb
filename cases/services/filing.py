"""Filing: parsed events become reports on the customer's open case, in bulk.

Each event's address (and port) is resolved at its time (customers.resolver.resolve_events), duplicates
within the policy's window are counted on the original, and the rest join the customer's
open case for the category (or open one). Reports nobody held go to the unassigned queue.
A 50,000-row feed is written in chunks of plain SQL inside one transaction; each touched
case's counters and audit row are written once per batch.
"""

from __future__ import annotations

import hashlib
import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cache

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from abusedesk.lib.addresses import routable_reason
from cases import queue
from cases.intake.base import ParsedEvent
from cases.models import (
    Case,
    CaseEvent,
    CaseStatus,
    InboundMessage,
    Policy,
    Report,
    ReporterSource,
    Trust,
    UnassignedReason,
)
from cases.services.common import actor_kwargs, execute_prepared, insert_plan, insert_rows, storable
from customers.resolver import (
    BEST_MANY_PAIRS,
    are_ours,
    best_many_statement,
    covered_statement,
    held_from_rows,
    normalize_ip,
    resolve_events,
)

log = logging.getLogger(__name__)

# Formats a person writes (as opposed to feedback loops, SpamCop, Shadowserver, CERT feeds): from an
# unlisted reporter these count only once confirmed. "manual" is typed in by NOC staff and counts.
PERSON_FORMATS = {"freetext"}
# Formats machines send (feedback loops, SpamCop, feeds, CERT notices, the API's events): nobody
# there reads an acknowledgement.
MACHINE_FORMATS = frozenset(
    {"arf", "spamcop", "shadowserver", "xarf", "xarf4", "acns", "safebrowsing", "csv", "keyvalue", "api"}
)


def may_thank(report: Report) -> bool:
    """Whether a new report's reporter may get an acknowledgement (notices.acknowledge_reporters has
    the last word): filing passes only these on, so mail from machines costs no look-up."""
    fmt = report.format or ""
    return (
        bool(report.reporter)
        and report.case_id is not None
        and fmt not in MACHINE_FORMATS
        and not fmt.startswith("xarf")
    )


def source_trust(reporter: str, sources: dict[str, str]) -> str:
    """The trust of the ReporterSource matching reporter: its exact address, else its domain or a parent."""
    address = (reporter or "").strip().lower()
    if not address or not sources:
        return ""
    sources = {k.lower(): v for k, v in sources.items()}
    if address in sources:
        return sources[address]
    domain = address.rpartition("@")[2]
    while domain:
        if domain in sources:
            return sources[domain]
        domain = domain.partition(".")[2]
    return ""


# A chunk with at most this many keys, addresses and reports is a message's few events: its look-up
# runs with its generic plan (see execute_prepared) and also says which unheld addresses are ours,
# and its writes go in one statement (_write_together). A feed's bigger chunk is planned for its
# size and written in three statements.
GENERIC_PLAN_ROWS = 64
# Advisory lock ids for duplicate keys: DEDUPE_LOCK_SPACE + a bucket of the key (see _lock_and_look_up).
DEDUPE_LOCK_SPACE = 0x0AB05E_0000
DEDUPE_LOCK_BUCKETS = 256

# A chunk that touched at most this many cases has them evaluated by the ladder in this process.
LADDER_INLINE_CASES = 10

# Events are written in chunks, each its own short transaction, so a 50,000-row feed never
# holds locks for long and a crash part-way loses nothing already committed.
CHUNK = 1000


@dataclass
class IntakeSummary:
    created: int = 0
    duplicates: int = 0
    unassigned: int = 0
    cases_opened: int = 0
    cases_updated: set[int] = field(default_factory=set)
    new_report_ids: list[int] = field(default_factory=list)
    thank_report_ids: list[int] = field(default_factory=list)  # new reports whose reporter may be thanked
    first_report_by_ip: dict[str, int] = field(default_factory=dict)  # one enrichment per address


@dataclass
class Folded:
    """A caller's statement run in the same round trip as a chunk's duplicate look-up (PostgreSQL).

    `setup` (session settings, no parameters) goes first in the call; `update` (an UPDATE ...
    RETURNING one id column, with `params`) runs as a CTE of the look-up. `ids` is what it
    returned, or None when it did not run (a chunk with nothing to look up): the caller runs it.
    """

    setup: str
    update: str
    params: list
    ids: set[int] | None = None


def dedupe_key(ip: str, category: str, reporter: str) -> str:
    return hashlib.sha256(f"{ip}|{category}|{reporter.lower()}".encode()).hexdigest()


def unassigned_reason(ip: str | None, ours: set[str]) -> str:
    """Why a report with no customer has none. An address an allocation of ours covers is ours
    (private space included: the ISP may number customers in it); only one no allocation covers
    and nobody on the Internet can hold is "not routable", kept out of the working queue."""
    if not ip:
        return UnassignedReason.UNRESOLVED
    if ip in ours:
        return UnassignedReason.NOT_HELD
    return UnassignedReason.BOGON if routable_reason(ip) else UnassignedReason.OUTSIDE


def set_unassigned_reasons(reports: list[Report], *, ours: set[str] | None = None) -> None:
    """Each report's unassigned_reason (filing and re-resolve): one look-up for the lot, unless the
    caller knows which of their addresses are `ours` (are_ours's answer)."""
    if ours is None:
        ips = {r.ip for r in reports if r.ip}
        ours = are_ours(ips) if ips else set()
    for r in reports:
        r.unassigned_reason = unassigned_reason(r.ip, ours)
        if r.unassigned_reason == UnassignedReason.BOGON:
            r.resolution_note = routable_reason(r.ip) or ""  # which kind: "... (loopback)"


def _worth_enriching(report: Report) -> bool:
    # PTR and DNSBL look-ups of 127.0.0.1 or 10.0.0.1 say nothing about anybody (and DNSBLs answer
    # 127.0.0.x for their own test entries).
    return bool(report.ip) and report.unassigned_reason != UnassignedReason.BOGON


def _clean_event(event: ParsedEvent) -> ParsedEvent:
    # The database never sees an unvalidated IP, a naive datetime or text it cannot store.
    if event.ip or not (event.unresolved and event.url):
        event.ip = str(normalize_ip(event.ip))
    # else a URL-only report whose host gave no address: filed without one (UnassignedReason.UNRESOLVED).
    event.unresolved = storable(event.unresolved)
    event.url = storable(event.url)
    if event.occurred_at.tzinfo is None:
        raise ValueError("naive occurred_at")
    event.reporter = storable(event.reporter)
    event.reporter_org = storable(event.reporter_org)
    event.format = storable(event.format)
    event.external_id = storable(event.external_id)
    # Evidence keeps its line breaks and tabs; only what a text column refuses goes.
    event.evidence = event.evidence.encode("utf-8", "surrogateescape").decode("utf-8", "replace").replace("\x00", "")
    if event.port is not None and not 0 <= event.port <= 65535:
        event.port = None
    return event


def record_reports(
    events: Sequence[ParsedEvent], *, message: InboundMessage | None = None, actor=None
) -> IntakeSummary:
    """File events as Reports: resolve, de-duplicate, group into cases."""
    return record_pairs([(event, message) for event in events], actor=actor)


@dataclass
class _Filing:
    """What a batch of events has done so far: cases are written once, at the end.

    Updating the same case rows once per chunk would leave a new row version per chunk inside
    one transaction, and every later foreign-key check on those cases walks all of them.
    """

    summary: IntakeSummary = field(default_factory=IntakeSummary)
    cases: dict[tuple[int, str], Case] = field(default_factory=dict)
    reports: dict[int, list[Report]] = field(default_factory=lambda: defaultdict(list))
    window: timedelta = timedelta(0)
    event_keys: dict[int, str] = field(default_factory=dict)  # id(event) -> dedupe key
    known: dict[str, list[tuple[datetime, int]]] = field(default_factory=dict)  # stored before this batch
    fresh_by_key: dict[str, list[Report]] = field(default_factory=lambda: defaultdict(list))  # this batch

    sources: dict[str, str] | None = None  # ReporterSource pattern -> trust, read once per batch

    def trust(self, event: ParsedEvent) -> str:
        """How far an event's reporter is trusted: a listed source decides; otherwise machine feeds
        count at once, and people's free-text complaints wait for a NOC member or more reporters."""
        if self.sources is None:
            self.sources = {pattern: trust for pattern, (trust, _) in ReporterSource.cached().items()}
        found = source_trust(event.reporter, self.sources)
        if found:
            return found
        return Trust.CONFIRM if event.format in PERSON_FORMATS else Trust.COUNTS

    def load_known(self, events: list[ParsedEvent]) -> None:
        """Stored reports that events may repeat: the same ip, category and reporter within the window.

        Asked once, before the batch inserts anything: a table that grows inside the transaction
        while the planner's statistics still describe it as small must not be scanned per chunk.
        """
        self.window = _duplicate_window()
        self.event_keys = {id(e): dedupe_key(e.ip or e.url, e.category, e.reporter) for e in events}
        if not events:
            return
        self.known = _known_originals(set(self.event_keys.values()), [e.occurred_at for e in events], self.window)


def record_pairs(pairs: Sequence[tuple[ParsedEvent, InboundMessage | None]], *, actor=None) -> IntakeSummary:
    clean = []
    for event, message in pairs:
        try:
            clean.append((_clean_event(event), message))
        except ValueError:
            log.warning("dropping an event with an invalid ip/time from message %s", getattr(message, "pk", None))
    filing = _Filing()
    # Inside a caller's transaction a savepoint buys nothing: any error aborts the whole batch.
    with transaction.atomic(savepoint=False):
        filing.load_known([event for event, _ in clean])
        for start in range(0, len(clean), CHUNK):
            _record_chunk_locked(clean[start : start + CHUNK], actor=actor, filing=filing)
        _finish_cases(filing, actor=actor)
    summary = filing.summary
    if summary.cases_updated:
        # The ladder decides in its own transaction, after this one commits: a 50,000-row feed is
        # filed without waiting for notices, and the decision and its notice row commit together.
        queue.enqueue_on_commit(
            "cases.tasks_ladder.evaluate_cases_task", sorted(summary.cases_updated), summary.thank_report_ids[:5000]
        )
    if summary.first_report_by_ip and settings.ENRICHMENT_ENABLED:
        _queue_enrichment(list(summary.first_report_by_ip.values()))
    return summary


def _queue_enrichment(report_ids: list[int]) -> None:
    # One look-up per distinct IP is enough: the task fills in the other reports of that IP.
    for pk in report_ids:
        queue.enqueue_on_commit("cases.tasks.enrich_report_task", pk)


def _duplicate_window() -> timedelta:
    # Read for every batch; one window for all kinds (duplicates are about the reporter, not the customer).
    return timedelta(minutes=Policy.cached("residential").duplicate_window_minutes)


def _record_chunk_locked(pairs: list[tuple[ParsedEvent, InboundMessage | None]], *, actor, filing: _Filing) -> None:
    summary = filing.summary
    now = timezone.now()
    events = [event for event, _ in pairs]
    resolved = resolve_events((e.ip, e.occurred_at, e.port) for e in events if e.ip)
    event_keys = filing.event_keys
    window = filing.window
    known = filing.known

    fresh: list[tuple[ParsedEvent, Report]] = []
    fresh_by_key = filing.fresh_by_key
    dup_counts: dict[int, int] = defaultdict(int)
    pending_dups: list[tuple[ParsedEvent, Report]] = []
    for event, message in pairs:
        key = event_keys[id(event)]
        original = next((pk for at, pk in known.get(key, ()) if abs(at - event.occurred_at) <= window), None)
        if original is not None:
            dup_counts[original] += 1
            summary.duplicates += 1
            continue
        in_chunk = next(
            (r for r in fresh_by_key.get(key, ()) if abs(r.occurred_at - event.occurred_at) <= window), None
        )
        if in_chunk is not None:
            pending_dups.append((event, in_chunk))
            summary.duplicates += 1
            continue
        allocation = resolved.get((event.ip, event.occurred_at, event.port))
        report = _new_report(event, message.pk if message else None, allocation, key, now, filing)
        fresh.append((event, report))
        fresh_by_key[key].append(report)

    no_customer = [r for _, r in fresh if r.customer_id is None]
    set_unassigned_reasons(no_customer)

    # Group by (customer, category): one case each, however many rows the file had.
    groups: dict[tuple[int, str], list[Report]] = defaultdict(list)
    for _, r in fresh:
        if r.customer_id:
            groups[(r.customer_id, r.category)].append(r)
    new_keys = {key: reports for key, reports in groups.items() if key not in filing.cases}
    case_for, opened = _open_cases_for(new_keys, now=now, actor=actor)
    filing.cases.update(case_for)
    summary.cases_opened += len(opened)
    for key, reports in groups.items():
        case = filing.cases[key]
        for r in reports:
            r.case = case

    _insert_reports([r for _, r in fresh])
    summary.created += len(fresh)
    summary.unassigned += len(no_customer)
    summary.new_report_ids.extend(r.pk for _, r in fresh)
    summary.thank_report_ids.extend(r.pk for _, r in fresh if may_thank(r))
    for _, r in fresh:
        if _worth_enriching(r):
            summary.first_report_by_ip.setdefault(r.ip, r.pk)
    for key, reports in groups.items():
        filing.reports[filing.cases[key].pk].extend(reports)

    for _, original in pending_dups:
        dup_counts[original.pk] += 1
    for pk, count in dup_counts.items():
        Report.objects.filter(pk=pk).update(duplicate_count=F("duplicate_count") + count)


def _finish_cases(filing: _Filing, *, actor) -> None:
    """Write each touched case's counters once, and one audit row per case for the batch."""
    now = timezone.now()
    by_pk = {case.pk: case for case in filing.cases.values()}
    audit = []
    changed = []
    for pk, reports in filing.reports.items():
        # The cases are locked (select_for_update in _open_cases_for), so computing the new
        # counters here and writing them with one bulk UPDATE is safe.
        case = by_pk[pk]
        case.report_count += len(reports)
        case.first_report_at = min([case.first_report_at, *(r.occurred_at for r in reports)])
        case.last_report_at = max([case.last_report_at, *(r.occurred_at for r in reports)])
        case.updated_at = now
        changed.append(case)
        filing.summary.cases_updated.add(case.pk)
        note = f"{len(reports)} report{'s' if len(reports) != 1 else ''}"
        sources = {r.message_id for r in reports if r.message_id}
        if len(sources) == 1:
            note += f" from message {sources.pop()} ({reports[0].format or 'unknown format'})"
        elif sources:
            note += f" from {len(sources)} messages"
        audit.append(
            CaseEvent(
                case=case,
                kind="reports_added",
                old="",
                new=str(len(reports)),
                note=note,
                report=reports[0],
                at=now,
                **actor_kwargs(actor),
            )
        )
    _write_case_counters(changed)
    CaseEvent.objects.bulk_create(audit, batch_size=1000)


def _insert_reports(reports: list[Report]) -> None:
    insert_rows(Report, reports)


def _write_case_counters(cases: list[Case]) -> None:
    """Store report_count and the first/last report times of locked cases.

    Django's bulk_update builds one CASE expression per field, which is slow for the
    thousands of cases a big feed touches; an UPDATE from a VALUES list is one cheap statement.
    """
    if not cases:
        return
    if connection.vendor != "postgresql":
        for case in cases:
            Case.objects.filter(pk=case.pk).update(
                report_count=case.report_count,
                first_report_at=case.first_report_at,
                last_report_at=case.last_report_at,
                updated_at=case.updated_at,
            )
        return
    table = connection.ops.quote_name(Case._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(cases), 1000):
            chunk = cases[start : start + 1000]
            rows = ", ".join(["(%s, %s, %s::timestamptz, %s::timestamptz, %s::timestamptz)"] * len(chunk))
            params = [
                v for c in chunk for v in (c.pk, c.report_count, c.first_report_at, c.last_report_at, c.updated_at)
            ]
            cursor.execute(
                f"UPDATE {table} AS c SET report_count = v.n, first_report_at = v.f, last_report_at = v.l, "
                f"updated_at = v.u FROM (VALUES {rows}) AS v(id, n, f, l, u) WHERE c.id = v.id",
                params,
            )


def _lock_open_cases(keys: Iterable[tuple[int, str]]) -> dict[tuple[int, str], Case]:
    keys = list(keys)
    found: dict[tuple[int, str], Case] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        customers = {c for c, _ in chunk}
        categories = {k for _, k in chunk}
        wanted = set(chunk)
        for case in (
            Case.objects.select_for_update()
            .open()
            .filter(customer_id__in=customers, category__in=categories)
            .order_by("pk")
        ):
            if (case.customer_id, case.category) in wanted:
                found[(case.customer_id, case.category)] = case
    return found


def _open_cases_for(
    groups: dict[tuple[int, str], list[Report]], *, now, actor, audit: bool = True
) -> tuple[dict[tuple[int, str], Case], set[int]]:
    """Each group's open case, locked; missing ones are opened (with their 'opened' event unless
    audit=False: the caller writes it with its own audit rows)."""
    if not groups:
        return {}, set()
    found = _lock_open_cases(groups)
    missing = [key for key in groups if key not in found]
    opened: set[int] = set()
    if missing:
        new_cases = []
        for customer_id, category in missing:
            first = min(r.occurred_at for r in groups[(customer_id, category)])
            new_cases.append(
                Case(
                    customer_id=customer_id,
                    category=category,
                    opened_at=now,
                    first_report_at=first,
                    last_report_at=first,
                    updated_at=now,
                )
            )
        try:
            with transaction.atomic():
                Case.objects.bulk_create(new_cases, batch_size=500)
        except IntegrityError:
            # A concurrent intake opened some of them first (the partial unique constraint):
            # open the rest one by one and join the others.
            new_cases = []
            for customer_id, category in missing:
                case, was_opened = _open_case_for(customer_id, category, groups[(customer_id, category)], now=now)
                found[(customer_id, category)] = case
                if was_opened:
                    new_cases.append(case)
        for case in new_cases:
            found[(case.customer_id, case.category)] = case
            opened.add(case.pk)
        if not audit:
            return found, opened
        CaseEvent.objects.bulk_create(
            [
                CaseEvent(case=case, kind="opened", old="", new=CaseStatus.OPEN, at=now, **actor_kwargs(actor))
                for case in new_cases
            ],
            batch_size=1000,
        )
    return found, opened


def _open_case_for(customer_id: int, category: str, reports: list[Report], *, now) -> tuple[Case, bool]:
    """One group's open case, locked; or a new one. The slow path, for races only."""
    case = Case.objects.select_for_update().filter(customer_id=customer_id, category=category).open().first()
    if case is not None:
        return case, False
    first = min(r.occurred_at for r in reports)
    try:
        with transaction.atomic():
            case = Case.objects.create(
                customer_id=customer_id,
                category=category,
                opened_at=now,
                first_report_at=first,
                last_report_at=first,
            )
    except IntegrityError:
        case = Case.objects.select_for_update().filter(customer_id=customer_id, category=category).open().get()
        return case, False
    return case, True


# --- chunks: the intake path ------------------------------------------------------------------


def file_chunk(
    pairs: Sequence[tuple[ParsedEvent, int | None]], *, actor=None, fold: Folded | None = None
) -> IntakeSummary:
    """File one chunk of events (each with its message's id) inside the caller's transaction.

    The caller (intake) commits each chunk on its own, with the messages' progress, so a feed of a
    million rows never holds a transaction open for long and a restart files nothing twice. On
    PostgreSQL: the chunk's duplicate keys are locked first (transaction-level advisory locks), so two
    connections filing the same event wait for each other and the second sees the first's report;
    cases are opened or joined, with their counters, by one INSERT ... ON CONFLICT. The caller's
    `fold` (its messages' progress) rides in the look-up's round trip.
    """
    clean: list[tuple[ParsedEvent, int | None]] = []
    for event, message_id in pairs:
        try:
            clean.append((_clean_event(event), message_id))
        except ValueError:
            log.warning("dropping an event with an invalid ip/time from message %s", message_id)
    summary = IntakeSummary()
    if not clean:
        return summary
    postgres = connection.vendor == "postgresql"
    now = timezone.now()
    window = _duplicate_window()
    keys = {id(e): dedupe_key(e.ip or e.url, e.category, e.reporter) for e, _ in clean}
    times = [e.occurred_at for e, _ in clean]
    items = [(e.ip, e.occurred_at, e.port) for e, _ in clean if e.ip]
    held = ours = None
    if postgres:
        # A message's few addresses are looked up in the same round trip as its duplicates: who held
        # them, and (for the unassigned queue's reason, should nobody have) whether they are ours.
        pairs = list(dict.fromkeys((ip, at) for ip, at, _ in items))
        ips = list(dict.fromkeys(ip for ip, _ in pairs))
        known, held, ours = _lock_and_look_up(
            set(keys.values()),
            times,
            window,
            fold,
            pairs if len(pairs) <= BEST_MANY_PAIRS else None,
            ips if len(ips) <= GENERIC_PLAN_ROWS else None,
        )
    else:
        known = _known_originals(set(keys.values()), times, window)
    resolved = resolve_events(items, base=held)
    filing = _Filing(summary=summary)
    fresh: list[Report] = []
    fresh_by_key: dict[str, list[Report]] = defaultdict(list)
    dup_counts: dict[int, int] = defaultdict(int)
    for event, message_id in clean:
        key = keys[id(event)]
        original = next((pk for at, pk in known.get(key, ()) if abs(at - event.occurred_at) <= window), None)
        if original is not None:
            dup_counts[original] += 1
            summary.duplicates += 1
            continue
        twin = next((r for r in fresh_by_key.get(key, ()) if abs(r.occurred_at - event.occurred_at) <= window), None)
        if twin is not None:
            twin.duplicate_count += 1  # written with the twin itself
            summary.duplicates += 1
            continue
        report = _new_report(
            event, message_id, resolved.get((event.ip, event.occurred_at, event.port)), key, now, filing
        )
        fresh.append(report)
        fresh_by_key[key].append(report)

    no_customer = [r for r in fresh if r.customer_id is None]
    set_unassigned_reasons(no_customer, ours=ours)
    groups: dict[tuple[int, str], list[Report]] = defaultdict(list)
    for r in fresh:
        if r.customer_id:
            groups[(r.customer_id, r.category)].append(r)
    if postgres and groups and len(fresh) <= GENERIC_PLAN_ROWS:
        # A message's few reports: cases, reports and audit rows in one round trip.
        cases, opened = _write_together(groups, fresh, now=now, actor=actor)
    else:
        if postgres:
            cases, opened = _upsert_cases(groups, now=now)
        else:
            cases, opened = _open_cases_for(groups, now=now, actor=actor, audit=False)
        for key, reports in groups.items():
            for r in reports:
                r.case = cases[key]
        _insert_reports(fresh)
        if not postgres:
            _count_on_cases(cases, groups, now=now)
        audit = [
            CaseEvent(case=cases[key], kind="opened", old="", new=CaseStatus.OPEN, at=now, **actor_kwargs(actor))
            for key in sorted(groups)
            if cases[key].pk in opened
        ]
        audit += [_reports_added(cases[key], reports, now=now, actor=actor) for key, reports in sorted(groups.items())]
        insert_rows(CaseEvent, audit, set_ids=False)
    _add_duplicate_counts(dup_counts)

    summary.created = len(fresh)
    summary.unassigned = len(no_customer)
    summary.cases_opened = len(opened)
    summary.cases_updated = {case.pk for case in cases.values()}
    summary.new_report_ids = [r.pk for r in fresh]
    summary.thank_report_ids = [r.pk for r in fresh if may_thank(r)]
    for r in fresh:
        if _worth_enriching(r):
            summary.first_report_by_ip.setdefault(r.ip, r.pk)
    if summary.cases_updated:
        # Mail filed a message at a time touches a case or two: the ladder decides right after the
        # commit, in the worker that filed it, with the task as the fallback (one broker trip less
        # per message). A feed's chunk touches many: their task spreads them over the workers.
        args = (sorted(summary.cases_updated), summary.thank_report_ids[:5000])
        if len(summary.cases_updated) <= LADDER_INLINE_CASES:
            queue.run_after_commit("cases.tasks_ladder.evaluate_cases_task", *args)
        else:
            queue.enqueue_on_commit("cases.tasks_ladder.evaluate_cases_task", *args)
    if summary.first_report_by_ip and settings.ENRICHMENT_ENABLED:
        _queue_enrichment(list(summary.first_report_by_ip.values()))
    return summary


def _new_report(event: ParsedEvent, message_id: int | None, allocation, key: str, now, filing: _Filing) -> Report:
    report = Report(
        message_id=message_id,
        ip=event.ip or None,
        port=event.port,
        occurred_at=event.occurred_at,
        category=event.category,
        reporter=event.reporter[:254],
        reporter_org=event.reporter_org[:200],
        format=event.format[:32],
        external_id=event.external_id[:255],
        url=event.url[:2048],
        evidence=event.evidence[: settings.EVIDENCE_MAX_CHARS],
        confidence=event.confidence,
        customer_id=allocation.customer_id if allocation else None,
        allocation_id=allocation.pk if allocation else None,
        dedupe_key=key,
        created_at=now,
        resolution_note=event.unresolved[:200],
    )
    if allocation is not None and allocation.note:
        # A CGNAT pool's address without the subscriber's port: the case opens on the pool, saying
        # why, and the report waits for a NOC member (who asks the reporter for the port) instead of
        # starting notices to the ISP's own pool account.
        report.resolution_note = allocation.note[:200]
        report.needs_confirmation = True
    trust = filing.trust(event)
    if trust == Trust.CONFIRM or event.needs_confirmation:
        report.needs_confirmation = True
    elif trust == Trust.IGNORE:
        report.rejected_at = now
        report.rejected_reason = "the reporter is on the ignore list"
    return report


def _lock_and_look_up(
    keys: set[str],
    times: list[datetime],
    window: timedelta,
    fold: Folded | None = None,
    pairs: list[tuple[str, datetime]] | None = None,
    covered: list[str] | None = None,
) -> tuple[dict[str, list[tuple[datetime, int]]], dict | None, set[str] | None]:
    """PostgreSQL: lock the chunk's duplicate keys, then _known_originals, in one round trip; with
    `pairs`, the resolver's look-up of those (ip, at) pairs rides along (resolve_many's answer is
    returned, else None), with `covered`, are_ours's answer for those addresses (else None), and
    the caller's `fold`.

    Two complaints about one event that arrive at once must not both pass the duplicate check:
    each chunk takes a transaction-level advisory lock per bucket of its keys (in one order, so
    chunks never deadlock) before it looks. Buckets, not keys: PostgreSQL's lock table is shared
    and small (64 per connection by default), and a 1,000-event chunk with a lock per key filled
    it; two chunks whose keys share a bucket only wait for each other. The look-up is a second
    statement in the same call, so it runs with a snapshot taken after the locks were granted and
    sees what their previous holder committed.
    """
    known: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    if not keys:
        return known, None, None
    ids = sorted({DEDUPE_LOCK_SPACE + int(key[:15], 16) % DEDUPE_LOCK_BUCKETS for key in keys})
    table = connection.ops.quote_name(Report._meta.db_table)
    lo, hi = min(times) - window, max(times) + window
    ctes: list[str] = []
    cte_params: list = []
    # One row shape for the four answers: (key, at, id) for a stored original, (NULL, NULL, id) for
    # the fold's ids, (NULL, NULL, id, n, customer, network, from, to, source) for an address held,
    # (NULL, NULL, NULL, n) for an address of `covered` that is ours.
    selects = [
        "SELECT dedupe_key::text, occurred_at, id, NULL::bigint, NULL::bigint, NULL::text, "
        f"NULL::timestamptz, NULL::timestamptz, NULL::text FROM {table} WHERE dedupe_key = ANY(%s) "
        "AND occurred_at >= %s AND occurred_at <= %s AND duplicate_of_id IS NULL"
    ]
    select_params: list = [sorted(keys), lo, hi]
    if fold is not None:
        ctes.append(f"f AS ({fold.update})")
        cte_params += fold.params
        selects.append("SELECT NULL, NULL, f.id, NULL, NULL, NULL, NULL, NULL, NULL FROM f")
    if pairs:
        held_sql, held_params = best_many_statement(pairs)
        ctes.append(f"r AS ({held_sql})")
        cte_params += held_params
        selects.append(
            "SELECT NULL, NULL, r.id, r.n, r.customer_id, r.network::text, r.valid_from, r.valid_to, r.source FROM r"
        )
    if covered:
        ours_sql, ours_params = covered_statement(covered)
        ctes.append(f"o AS ({ours_sql})")
        cte_params += ours_params
        selects.append("SELECT NULL, NULL, NULL, o.n, NULL, NULL, NULL, NULL, NULL FROM o")
    head = "SELECT count(pg_advisory_xact_lock(k)) FROM unnest(%s::bigint[]) AS k; "
    if fold is not None:
        head = fold.setup + head
    sql = ("WITH " + ", ".join(ctes) + " " if ctes else "") + " UNION ALL ".join(selects)
    with connection.cursor() as cursor:
        # Prepared: this statement takes longer to plan than to run, once per message; a message's
        # few keys and addresses always get the same plan, so its generic one serves.
        small = max(len(keys), len(pairs or ()), len(covered or ())) <= GENERIC_PLAN_ROWS
        execute_prepared(cursor, sql, [*cte_params, *select_params], head=head, head_params=[ids], generic=small)
        rows = cursor.fetchall()
    if fold is not None:
        fold.ids = {row[2] for row in rows if row[0] is None and row[3] is None}
    for key, at, pk, *_ in rows:
        if key is not None:
            known[key].append((at, pk))
    held = None
    if pairs is not None:
        held = held_from_rows(
            pairs, [(row[3], row[2], *row[4:]) for row in rows if row[3] is not None and row[2] is not None]
        )
    ours = None
    if covered is not None:
        ours = {covered[row[3] - 1] for row in rows if row[3] is not None and row[2] is None}
    return known, held, ours


def _known_originals(keys: set[str], times: list[datetime], window: timedelta) -> dict[str, list[tuple[datetime, int]]]:
    known: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
    lo, hi = min(times) - window, max(times) + window
    key_list = sorted(keys)
    for start in range(0, len(key_list), 1000):
        for key, at, pk in Report.objects.filter(
            dedupe_key__in=key_list[start : start + 1000],
            occurred_at__gte=lo,
            occurred_at__lte=hi,
            duplicate_of__isnull=True,
        ).values_list("dedupe_key", "occurred_at", "pk"):
            known[key].append((at, pk))
    return known


def _upsert_cases(groups: dict[tuple[int, str], list[Report]], *, now) -> tuple[dict[tuple[int, str], Case], set[int]]:
    """Open or join each group's open case and add its reports to the counters: one statement.

    The partial unique index (one open case per customer and category) is the arbiter: a case
    another connection opens meanwhile is joined, never opened twice. The row stays locked until
    commit, as select_for_update would leave it.
    """
    if not groups:
        return {}, set()
    head, rows = _case_rows(groups, now=now)
    from psycopg2.extras import execute_values

    with connection.cursor() as cursor:
        returned = execute_values(cursor.cursor, head + "%s" + _CASE_UPSERT_TAIL, rows, page_size=1000, fetch=True)
    return _cases_returned(returned)


# How _upsert_cases and _write_together open or join a case: the partial unique index (one open case
# per customer and category) arbitrates; a joined case adds the new reports to its counters.
_CASE_UPSERT_TAIL = (
    " ON CONFLICT (customer_id, category) WHERE status IN ('open', 'waiting') DO UPDATE SET "
    "report_count = c.report_count + EXCLUDED.report_count, "
    "first_report_at = LEAST(c.first_report_at, EXCLUDED.first_report_at), "
    "last_report_at = GREATEST(c.last_report_at, EXCLUDED.last_report_at), updated_at = EXCLUDED.updated_at "
    "RETURNING id, customer_id, category, (xmax = 0) AS inserted"
)


@cache
def _case_template() -> tuple[str, tuple[str, ...], tuple]:
    """The upsert's head (up to VALUES), its columns' attnames, and each column's default as stored
    (None where it is computed per row): a new case's row is these defaults with the filing's own
    values put in."""
    fields = [f for f in Case._meta.concrete_fields if not f.primary_key]
    # (a field without a default has NOT_PROVIDED, a class: callable too)
    defaults = tuple(
        None if f.has_default() and callable(f.default) else f.get_db_prep_save(f.get_default(), connection)
        for f in fields
    )
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    head = f"INSERT INTO {quote(Case._meta.db_table)} AS c ({columns}) VALUES "
    return head, tuple(f.attname for f in fields), defaults


def _case_rows(groups: dict[tuple[int, str], list[Report]], *, now) -> tuple[str, list[tuple]]:
    """The upsert's head (up to VALUES) and one row of values per group, in the groups' order."""
    head, attnames, defaults = _case_template()
    rows = []
    for (customer_id, category), reports in sorted(groups.items()):
        given = {
            "customer_id": customer_id,
            "category": category,
            "opened_at": now,
            "first_report_at": min(r.occurred_at for r in reports),
            "last_report_at": max(r.occurred_at for r in reports),
            "report_count": len(reports),
            "updated_at": now,
        }
        rows.append(tuple(given.get(a, d) for a, d in zip(attnames, defaults, strict=True)))
    return head, rows


def _cases_returned(returned) -> tuple[dict[tuple[int, str], Case], set[int]]:
    """The upsert's RETURNING rows as ({(customer, category): case}, {ids of the cases it opened})."""
    cases: dict[tuple[int, str], Case] = {}
    opened: set[int] = set()
    for pk, customer_id, category, inserted in returned:
        case = Case(pk=pk, customer_id=customer_id, category=category)
        case._state.adding = False
        case._state.db = connection.alias
        cases[(customer_id, category)] = case
        if inserted:
            opened.add(pk)
    return cases, opened


def _write_together(
    groups: dict[tuple[int, str], list[Report]], fresh: list[Report], *, now, actor
) -> tuple[dict[tuple[int, str], Case], set[int]]:
    """PostgreSQL, a chunk of a few reports (mail filed a message at a time): what _upsert_cases,
    _insert_reports and the audit rows do in three round trips, in one statement.

    The case upsert is a CTE (c); each report finds its case's id there by a scalar subquery (a
    handful of rows), and the audit rows are written from c and the reports' ids (r): "opened" for
    each case the upsert opened, then "reports_added" naming the group's first report, in that order
    per case. The sibling CTEs see each other's RETURNING rows, not their tables; the foreign keys
    are checked when the statement ends, when all rows are there.
    """
    from psycopg2.extras import Json

    quote = connection.ops.quote_name
    case_head, case_rows = _case_rows(groups, now=now)
    params: list = [v for row in case_rows for v in row]
    marks = "(" + ", ".join(["%s"] * len(case_rows[0])) + ")"
    sql = "WITH c AS (" + case_head + ", ".join([marks] * len(case_rows)) + _CASE_UPSERT_TAIL + ")"

    report_head, attnames, json_fields = insert_plan(Report)
    case_slot = attnames.index("case_id")
    case_of = "(SELECT c.id FROM c WHERE c.customer_id = %s AND c.category = %s)"
    report_rows = []
    for r in fresh:
        row = [Json(getattr(r, a)) if a in json_fields else getattr(r, a) for a in attnames]
        marks = ["%s"] * len(attnames)
        if r.customer_id:
            marks[case_slot] = case_of
            row[case_slot : case_slot + 1] = [r.customer_id, r.category]
        report_rows.append("(" + ", ".join(marks) + ")")
        params += row
    sql += f", r AS ({report_head}{', '.join(report_rows)} RETURNING id, case_id)"

    event = actor_kwargs(actor)
    actor_kind, actor_id = event["actor_kind"], getattr(event["actor"], "pk", None)
    # The audit rows' values, in the order their placeholders come: each row's own, the "opened"
    # row's status, then one (customer, category, count, note) per group for "reports_added".
    params += [actor_kind, actor_id, now, CaseStatus.OPEN]
    added = []
    for (customer_id, category), reports in sorted(groups.items()):
        added.append("(%s::bigint, %s::text, %s::text, %s::text)")
        params += [customer_id, category, str(len(reports)), _reports_added_note(reports)]
    event_columns = ", ".join(
        quote(CaseEvent._meta.get_field(f).column)
        for f in ("case", "actor_kind", "actor", "kind", "old", "new", "note", "report", "at")
    )
    sql += (
        f", e AS (INSERT INTO {quote(CaseEvent._meta.db_table)} ({event_columns}) "
        "SELECT case_id, %s::text, %s::integer, kind, '', new, note, report_id, %s::timestamptz FROM ("
        "SELECT c.customer_id, c.category, 0 AS o, c.id AS case_id, 'opened' AS kind, %s::text AS new, "
        "''::text AS note, NULL::bigint AS report_id FROM c WHERE c.inserted "
        "UNION ALL SELECT c.customer_id, c.category, 1, c.id, 'reports_added', g.n, g.note, "
        "(SELECT min(r.id) FROM r WHERE r.case_id = c.id) "
        f"FROM c JOIN (VALUES {', '.join(added)}) AS g(customer_id, category, n, note) "
        "ON g.customer_id = c.customer_id AND g.category = c.category"
        ") AS x ORDER BY customer_id, category, o) "
        "SELECT id, customer_id, category, inserted FROM c UNION ALL SELECT id, NULL, NULL, NULL FROM r"
    )
    with connection.cursor() as cursor:
        # Prepared, with its generic plan: it took longer to plan than to run (a message's chunk has
        # a shape or two: one case, one report, most of the time).
        execute_prepared(cursor, sql, params, generic=True)
        returned = cursor.fetchall()
    cases, opened = _cases_returned([row for row in returned if row[1] is not None])
    ids = [row[0] for row in returned if row[1] is None]
    # RETURNING gives the rows in the order of the VALUES list, as bulk_create relies on too.
    for report, pk in zip(fresh, ids, strict=True):
        report.pk = pk
        report._state.adding = False
        report._state.db = connection.alias
        if report.customer_id:
            report.case = cases[(report.customer_id, report.category)]
    return cases, opened


def _count_on_cases(cases: dict[tuple[int, str], Case], groups: dict[tuple[int, str], list[Report]], *, now) -> None:
    # Not PostgreSQL: the cases are locked (SQLite serialises writers); counters read and written here.
    changed = []
    for key, reports in groups.items():
        case = cases[key]
        case.report_count += len(reports)
        case.first_report_at = min([case.first_report_at, *(r.occurred_at for r in reports)])
        case.last_report_at = max([case.last_report_at, *(r.occurred_at for r in reports)])
        case.updated_at = now
        changed.append(case)
    _write_case_counters(changed)


def _add_duplicate_counts(dup_counts: dict[int, int]) -> None:
    if not dup_counts:
        return
    if connection.vendor != "postgresql":
        for pk, count in dup_counts.items():
            Report.objects.filter(pk=pk).update(duplicate_count=F("duplicate_count") + count)
        return
    from psycopg2.extras import execute_values

    table = connection.ops.quote_name(Report._meta.db_table)
    with connection.cursor() as cursor:
        execute_values(
            cursor.cursor,
            f"UPDATE {table} AS r SET duplicate_count = r.duplicate_count + v.n FROM (VALUES %s) AS v(id, n) "
            "WHERE r.id = v.id",
            sorted(dup_counts.items()),
            page_size=1000,
        )


def _reports_added_note(reports: list[Report]) -> str:
    note = f"{len(reports)} report{'s' if len(reports) != 1 else ''}"
    sources = {r.message_id for r in reports if r.message_id}
    if len(sources) == 1:
        note += f" from message {sources.pop()} ({reports[0].format or 'unknown format'})"
    elif sources:
        note += f" from {len(sources)} messages"
    return note


def _reports_added(case: Case, reports: list[Report], *, now, actor) -> CaseEvent:
    return CaseEvent(
        case=case,
        kind="reports_added",
        old="",
        new=str(len(reports)),
        note=_reports_added_note(reports),
        report=reports[0],
        at=now,
        **actor_kwargs(actor),
    )
