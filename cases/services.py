"""State changes for intake and cases. Each one is atomic, takes an actor and leaves a CaseEvent.

The flow of one report (DESIGN.md): receive() stores the raw bytes; process_message() parses
them (outside any transaction) and hands the events to record_reports(), which resolves each
event's IP at its time, drops duplicates, and files the rest on the customer's open case for
the category (or opens one). Reports with no customer go to the unassigned queue.
"""

from __future__ import annotations

import functools
import hashlib
import ipaddress
import json
import logging
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import NamedTuple

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from cases.intake.base import ParsedEvent, ParseResult
from cases.models import (
    CASE_TRANSITIONS,
    ActorKind,
    Case,
    CaseEvent,
    CaseStatus,
    InboundMessage,
    ParseStatus,
    Policy,
    Report,
    UnassignedReason,
)
from customers.models import Allocation
from customers.resolver import candidate_networks, normalize_ip

log = logging.getLogger(__name__)

# Events are written in chunks, each its own short transaction, so a 50,000-row feed never
# holds locks for long and a crash part-way loses nothing already committed.
CHUNK = 1000


class TransitionError(ValueError):
    """The change asked for is not allowed from the current state."""


def _actor_kwargs(actor) -> dict:
    if getattr(actor, "is_authenticated", False):
        return {"actor_kind": ActorKind.USER, "actor": actor}
    if actor == ActorKind.CUSTOMER:
        return {"actor_kind": ActorKind.CUSTOMER, "actor": None}
    return {"actor_kind": ActorKind.SYSTEM, "actor": None}


_CONTROL = dict.fromkeys([*range(0, 9), 11, 12, *range(14, 32), 127])


def storable(text: str) -> str:
    """Text any database column accepts: undecodable bytes (surrogates) become U+FFFD, and NUL
    and other control characters (PostgreSQL refuses NUL in text) are dropped."""
    if not text:
        return text
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    return text.translate(_CONTROL)


def _header_summary(raw: bytes) -> tuple[str, str, str]:
    """Message-ID, Subject and From, read from the header block only; never raises."""
    try:
        head = raw[:65536]
        end = head.find(b"\r\n\r\n")
        if end < 0:
            end = head.find(b"\n\n")
        if end < 0 and b":" not in head[:200]:
            return "", "", ""
        headers = BytesHeaderParser(policy=compat32).parsebytes(head[: end if end > 0 else None])

        def text(name: str, limit: int) -> str:
            value = headers.get(name)
            if value is None:
                return ""
            return storable(" ".join(str(value).split()))[:limit]

        return text("Message-ID", 998), text("Subject", 500), text("From", 500)
    except Exception:  # a hostile header block must not stop the message being stored
        log.warning("could not read headers of an inbound message", exc_info=True)
        return "", "", ""


def receive(raw: bytes, channel: str, *, actor=None) -> tuple[InboundMessage, bool]:
    """Store raw bytes as an InboundMessage and queue its parsing. Idempotent by sha256.

    Returns (message, created). The row is committed before this returns (unless the caller
    holds a transaction), so the mail server's pipe may exit 0 as soon as it does.
    """
    if not isinstance(raw, bytes | bytearray | memoryview):
        raise TypeError("receive() takes bytes")
    raw = bytes(raw)
    digest = hashlib.sha256(raw).hexdigest()
    message_id, subject, sender = _header_summary(raw)
    user = actor if getattr(actor, "is_authenticated", False) else None
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                raw=raw,
                size=len(raw),
                sha256=digest,
                message_id=message_id,
                subject=subject,
                sender=sender,
                channel=channel,
                received_by=user,
            )
            _queue_parse(message.pk)
    except IntegrityError:
        # The same bytes were stored before (sha256 is unique): one message, received again.
        # Trying the insert first saves a look-up on the common path, where mail is new.
        message = InboundMessage.objects.get(sha256=digest)
        InboundMessage.objects.filter(pk=message.pk).update(times_received=F("times_received") + 1)
        return message, False
    return message, True


def _queue_parse(message_id: int) -> None:
    from cases.tasks import parse_message_task

    parse_message_task.delay_on_commit(message_id)


def is_ours(ip: str) -> bool:
    """Whether any allocation, at any time, covers ip. Used by parsers to rank candidate IPs."""
    try:
        return bool(_ever_ours([ip]))
    except ValueError:  # not an address
        return False


@dataclass
class IntakeSummary:
    created: int = 0
    duplicates: int = 0
    unassigned: int = 0
    cases_opened: int = 0
    cases_updated: set[int] = field(default_factory=set)
    new_report_ids: list[int] = field(default_factory=list)
    first_report_by_ip: dict[str, int] = field(default_factory=dict)  # one enrichment per address


# A worker takes up to this many waiting messages at once: when mail arrives faster than it
# is parsed, the per-transaction costs are shared by the whole batch.
BATCH = 200


def process_message(message_id: int, *, force: bool = False, actor=None) -> IntakeSummary | None:
    """Parse one stored message and file its events. Safe to run twice: only a waiting message is taken.

    force=True also takes a message that could not be parsed (re-parse after a parser fix).
    """
    statuses = [ParseStatus.NEW, ParseStatus.UNPARSED] if force else [ParseStatus.NEW]
    claimed = InboundMessage.objects.filter(pk=message_id, status__in=statuses).update(
        status=ParseStatus.PARSING, claimed_at=timezone.now()
    )
    if not claimed:
        return None
    return _process_claimed([message_id], actor=actor)


def process_pending(*, first: int | None = None, limit: int = BATCH, actor=None) -> IntakeSummary | None:
    """Parse waiting messages in one batch: `first` (if still waiting) and up to limit-1 more.

    Messages are claimed with a conditional UPDATE (PostgreSQL: FOR UPDATE SKIP LOCKED), so
    several workers never take the same message. Returns None when `first` was already taken.
    """
    now = timezone.now()
    with transaction.atomic():
        ids: list[int] = []
        waiting = InboundMessage.objects.filter(status=ParseStatus.NEW)
        if first is not None:
            ids = list(waiting.filter(pk=first).select_for_update(skip_locked=True).values_list("pk", flat=True))
            if not ids:
                return None
        if limit > len(ids):
            more = waiting.exclude(pk__in=ids).order_by("pk").select_for_update(skip_locked=True)
            ids += list(more.values_list("pk", flat=True)[: limit - len(ids)])
        if not ids:
            return None
        InboundMessage.objects.filter(pk__in=ids, status=ParseStatus.NEW).update(
            status=ParseStatus.PARSING, claimed_at=now
        )
    return _process_claimed(ids, actor=actor)


def release_stale_claims(*, older_than: datetime) -> int:
    """Give back messages claimed before older_than: the worker that took them died mid-batch."""
    return InboundMessage.objects.filter(status=ParseStatus.PARSING, claimed_at__lt=older_than).update(
        status=ParseStatus.NEW, claimed_at=None
    )


def _parse_stored(message: InboundMessage) -> ParseResult:
    from cases import intake

    raw = bytes(message.raw)
    max_bytes = settings.INTAKE_MAX_MESSAGE_BYTES
    if len(raw) > max_bytes:
        return ParseResult(format="", events=[], error=f"message is {len(raw):,} bytes; the limit is {max_bytes:,}")
    try:
        return intake.parse(raw, received_at=message.received_at, is_ours=is_ours)
    except Exception as exc:  # the dispatcher should not raise; if it does, the message waits for a person
        log.exception("parser crashed on message %s", message.pk)
        return ParseResult(format="", events=[], error=f"parser error: {type(exc).__name__}: {exc}"[:1000])


def _process_claimed(ids: list[int], *, actor=None) -> IntakeSummary:
    pairs: list[tuple[ParsedEvent, InboundMessage]] = []
    outcome: dict[tuple[str, int], list[int]] = defaultdict(list)
    for message in InboundMessage.objects.filter(pk__in=ids, status=ParseStatus.PARSING).order_by("pk"):
        result = _parse_stored(message)  # outside any transaction: parsing can take a while
        if not result.events:
            InboundMessage.objects.filter(pk=message.pk).update(
                status=ParseStatus.UNPARSED,
                format=result.format or "",
                parse_error=result.error or "no report found in the message",
                parsed_at=timezone.now(),
                claimed_at=None,
                event_count=0,
            )
            continue
        events = result.events
        if result.format == "freetext":
            # Free text gives every candidate address, best first; a person's complaint is about
            # one source, so only the best is filed (the others stay visible in the raw message).
            events = events[:1]
        pairs.extend((event, message) for event in events)
        outcome[(result.format or "", len(events))].append(message.pk)
    if not outcome:
        return IntakeSummary()
    try:
        return _file_batch(pairs, outcome, actor=actor)
    except Exception:
        if len(outcome) == 1 and len(next(iter(outcome.values()))) == 1:
            failed = next(iter(outcome.values()))[0]
            log.exception("could not file the events of message %s", failed)
            _mark_unfileable(failed)
            return IntakeSummary()
        # One message's events must not hold up the rest of the batch: file them one by one.
        log.warning("filing a batch of %d messages failed; filing them one by one", len(ids), exc_info=True)
    summary = IntakeSummary()
    for (fmt, count), message_ids in outcome.items():
        for pk in message_ids:
            own = [(e, m) for e, m in pairs if m.pk == pk]
            try:
                one = _file_batch(own, {(fmt, count): [pk]}, actor=actor)
            except Exception:
                log.exception("could not file the events of message %s", pk)
                _mark_unfileable(pk)
                continue
            summary.created += one.created
            summary.duplicates += one.duplicates
            summary.unassigned += one.unassigned
            summary.cases_opened += one.cases_opened
            summary.cases_updated |= one.cases_updated
            summary.new_report_ids += one.new_report_ids
            for ip, pk in one.first_report_by_ip.items():
                summary.first_report_by_ip.setdefault(ip, pk)
    return summary


def _mark_unfileable(pk: int) -> None:
    InboundMessage.objects.filter(pk=pk).update(
        status=ParseStatus.UNPARSED,
        parse_error="parsed, but its events could not be filed (see the server log); enter them by hand",
        parsed_at=timezone.now(),
        claimed_at=None,
        event_count=0,
    )


def _file_batch(
    pairs: list[tuple[ParsedEvent, InboundMessage]], outcome: dict[tuple[str, int], list[int]], *, actor
) -> IntakeSummary:
    # The reports and the messages' new status commit together. If that commit is lost in a
    # crash, the messages are still "parsing" and requeue_unparsed_messages hands them out
    # again, so PostgreSQL need not wait for the disk here (the raw bytes were stored durably).
    with transaction.atomic():
        _relax_commit()
        summary = _record_pairs(pairs, actor=actor)
        now = timezone.now()
        for (fmt, count), message_ids in outcome.items():
            InboundMessage.objects.filter(pk__in=message_ids).update(
                status=ParseStatus.PARSED, format=fmt, parse_error="", parsed_at=now, claimed_at=None, event_count=count
            )
    return summary


def _relax_commit() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # Django's foreign keys are DEFERRABLE INITIALLY DEFERRED: left to COMMIT, the
            # 50,000 checks of a big feed run after this transaction has updated the very
            # message and case rows they lock (FOR KEY SHARE), which PostgreSQL makes slow.
            # Checked as each INSERT ends, they take their locks before those updates.
            cursor.execute("SET LOCAL synchronous_commit TO OFF; SET CONSTRAINTS ALL IMMEDIATE")


# --- resolution in bulk -------------------------------------------------------------------


@functools.lru_cache(maxsize=65536)
def _candidates(ip: str) -> tuple[str, ...]:
    # A feed names the same addresses again and again; their prefixes never change.
    return tuple(candidate_networks(normalize_ip(ip)))


class Held(NamedTuple):
    """Who held an address: the allocation's id and its customer's, without loading models."""

    pk: int
    customer_id: int
    network: str
    valid_from: datetime
    valid_to: datetime | None


def resolve_many(pairs: Iterable[tuple[str, datetime]]) -> dict[tuple[str, datetime], Held | None]:
    """resolve() for many (ip, at) pairs with a few queries instead of one per pair."""
    pairs = list(dict.fromkeys(pairs))
    out: dict[tuple[str, datetime], Held | None] = {}
    by_ip: dict[str, list[datetime]] = defaultdict(list)
    for ip, at in pairs:
        by_ip[ip].append(at)
    ips = list(by_ip)
    for start in range(0, len(ips), 500):
        chunk = ips[start : start + 500]
        cands = {ip: _candidates(ip) for ip in chunk}
        times = [t for ip in chunk for t in by_ip[ip]]
        lo, hi = min(times), max(times)
        nets = {n for c in cands.values() for n in c}
        rows = (
            Allocation.objects.filter(network__in=nets, valid_from__lte=hi)
            .filter(Q(valid_to__isnull=True) | Q(valid_to__gt=lo))
            .order_by()
            .values_list("pk", "customer_id", "network", "valid_from", "valid_to")
        )
        by_net: dict[str, list[Held]] = defaultdict(list)
        for row in rows:
            by_net[row[2]].append(Held(*row))
        for ip in chunk:
            for at in by_ip[ip]:
                found = None
                for net in cands[ip]:  # most specific first
                    for row in by_net.get(net, ()):
                        if row.valid_from <= at and (row.valid_to is None or row.valid_to > at):
                            found = row
                            break
                    if found:
                        break
                out[(ip, at)] = found
    return out


def _ever_ours(ips: Iterable[str]) -> set[str]:
    ours = set()
    ips = list(ips)
    for start in range(0, len(ips), 200):
        chunk = ips[start : start + 200]
        cands = {ip: _candidates(ip) for ip in chunk}
        nets = set(
            Allocation.objects.filter(network__in={n for c in cands.values() for n in c})
            .order_by()
            .values_list("network", flat=True)
            .distinct()
        )
        ours.update(ip for ip in chunk if nets.intersection(cands[ip]))
    return ours


def dedupe_key(ip: str, category: str, reporter: str) -> str:
    return hashlib.sha256(f"{ip}|{category}|{reporter.lower()}".encode()).hexdigest()


def _clean_event(event: ParsedEvent) -> ParsedEvent:
    # The database never sees an unvalidated IP, a naive datetime or text it cannot store.
    addr = normalize_ip(event.ip)
    event.ip = str(addr)
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
    return _record_pairs([(event, message) for event in events], actor=actor)


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

    def load_known(self, events: list[ParsedEvent]) -> None:
        """Stored reports that events may repeat: the same ip, category and reporter within the window.

        Asked once, before the batch inserts anything: a table that grows inside the transaction
        while the planner's statistics still describe it as small must not be scanned per chunk.
        """
        self.window = _duplicate_window()
        self.event_keys = {id(e): dedupe_key(e.ip, e.category, e.reporter) for e in events}
        if not events:
            return
        lo = min(e.occurred_at for e in events) - self.window
        hi = max(e.occurred_at for e in events) + self.window
        keys = list(set(self.event_keys.values()))
        known: dict[str, list[tuple[datetime, int]]] = defaultdict(list)
        for start in range(0, len(keys), 1000):
            for key, at, pk in Report.objects.filter(
                dedupe_key__in=keys[start : start + 1000],
                occurred_at__gte=lo,
                occurred_at__lte=hi,
                duplicate_of__isnull=True,
            ).values_list("dedupe_key", "occurred_at", "pk"):
                known[key].append((at, pk))
        self.known = known


def _record_pairs(pairs: Sequence[tuple[ParsedEvent, InboundMessage | None]], *, actor=None) -> IntakeSummary:
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
    if summary.first_report_by_ip and settings.ENRICHMENT_ENABLED:
        _queue_enrichment(list(summary.first_report_by_ip.values()))
    return summary


def _queue_enrichment(report_ids: list[int]) -> None:
    from cases.tasks import enrich_report_task

    # One look-up per distinct IP is enough: the task fills in the other reports of that IP.
    for pk in report_ids:
        transaction.on_commit(lambda pk=pk: enrich_report_task.delay(pk))


_policy_cache: dict[str, tuple[float, int]] = {}


def _duplicate_window() -> timedelta:
    # Read on every chunk of every message; the policy changes rarely, so keep it a minute.
    cached = _policy_cache.get("window")
    if cached is None or cached[0] < time.monotonic():
        minutes = Policy.for_kind("residential").duplicate_window_minutes
        cached = (time.monotonic() + 60, minutes)
        _policy_cache["window"] = cached
    return timedelta(minutes=cached[1])


def _record_chunk_locked(pairs: list[tuple[ParsedEvent, InboundMessage | None]], *, actor, filing: _Filing) -> None:
    summary = filing.summary
    now = timezone.now()
    events = [event for event, _ in pairs]
    resolved = resolve_many((e.ip, e.occurred_at) for e in events)
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
        allocation = resolved.get((event.ip, event.occurred_at))
        report = Report(
            message=message,
            ip=event.ip,
            port=event.port,
            occurred_at=event.occurred_at,
            category=event.category,
            reporter=event.reporter[:254],
            reporter_org=event.reporter_org[:200],
            format=event.format[:32],
            external_id=event.external_id[:255],
            evidence=event.evidence[: settings.EVIDENCE_MAX_CHARS],
            confidence=event.confidence,
            customer_id=allocation.customer_id if allocation else None,
            allocation_id=allocation.pk if allocation else None,
            dedupe_key=key,
            created_at=now,
        )
        fresh.append((event, report))
        fresh_by_key[key].append(report)

    no_customer = [r for _, r in fresh if r.customer_id is None]
    if no_customer:
        ours = _ever_ours({r.ip for r in no_customer})
        for r in no_customer:
            r.unassigned_reason = UnassignedReason.NOT_HELD if r.ip in ours else UnassignedReason.OUTSIDE

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
    for _, r in fresh:
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
                **_actor_kwargs(actor),
            )
        )
    _write_case_counters(changed)
    CaseEvent.objects.bulk_create(audit, batch_size=1000)


def _insert_reports(reports: list[Report]) -> None:
    """bulk_create, without Django's per-field preparation on PostgreSQL.

    A 50,000-row feed spends most of its filing time preparing 23 values per row through the
    model fields; these values are already plain Python (validated above), so psycopg2 can
    adapt them directly. Other databases use bulk_create.
    """
    if not reports:
        return
    if connection.vendor != "postgresql":
        Report.objects.bulk_create(reports, batch_size=1000)
        return
    from psycopg2.extras import Json, execute_values

    fields = [f for f in Report._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    json_fields = {f.attname for f in fields if f.get_internal_type() == "JSONField"}
    rows = [
        tuple(Json(getattr(r, f.attname)) if f.attname in json_fields else getattr(r, f.attname) for f in fields)
        for r in reports
    ]
    table = connection.ops.quote_name(Report._meta.db_table)
    with connection.cursor() as cursor:
        ids = execute_values(
            cursor.cursor, f"INSERT INTO {table} ({columns}) VALUES %s RETURNING id", rows, page_size=1000, fetch=True
        )
    # RETURNING gives the rows in the order of the VALUES list, as Django's bulk_create relies on too.
    for report, (pk,) in zip(reports, ids, strict=True):
        report.pk = pk
        report._state.adding = False
        report._state.db = connection.alias


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
    groups: dict[tuple[int, str], list[Report]], *, now, actor
) -> tuple[dict[tuple[int, str], Case], set[int]]:
    """Each group's open case, locked; missing ones are opened (with their 'opened' event)."""
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
        CaseEvent.objects.bulk_create(
            [
                CaseEvent(case=case, kind="opened", old="", new=CaseStatus.OPEN, at=now, **_actor_kwargs(actor))
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


# --- hand-made reports -----------------------------------------------------------------------


@transaction.atomic
def enter_report(
    *,
    ip: str,
    occurred_at: datetime,
    category: str,
    reporter: str = "",
    reporter_org: str = "",
    text: str = "",
    port: int | None = None,
    message: InboundMessage | None = None,
    actor,
) -> tuple[InboundMessage, IntakeSummary]:
    """A complaint entered by NOC staff (a phone call, or an unparsed message read by a person).

    Without a message, what was typed is itself stored as an InboundMessage (channel web),
    so the complaint is kept exactly as received, like every other input.
    """
    ipaddress.ip_address(ip)  # raises ValueError for the form to show
    if timezone.is_naive(occurred_at):
        raise ValueError("occurred_at must be aware")
    event = ParsedEvent(
        ip=ip,
        occurred_at=occurred_at,
        category=category,
        format="manual",
        port=port,
        reporter=reporter,
        reporter_org=reporter_org,
        evidence=text,
        confidence=1.0,
    )
    if message is not None and message.status not in (ParseStatus.UNPARSED, ParseStatus.PARSED):
        # A message still waiting for (or in) its parse would never be parsed once marked done.
        raise TransitionError("This message is still being parsed; wait for it before adding events by hand.")
    if message is None:
        payload = {
            "entered_by": actor.get_username(),
            "entered_at": timezone.now().isoformat(),
            **{k: v for k, v in event.as_dict().items() if k != "confidence"},
            "text": text,
        }
        raw = json.dumps(payload, sort_keys=True, indent=1).encode()
        message = InboundMessage.objects.create(
            raw=raw,
            size=len(raw),
            sha256=hashlib.sha256(raw).hexdigest(),
            subject=f"Complaint entered by {actor.get_username()}"[:500],
            sender=(reporter or reporter_org)[:500],
            channel="web",
            received_by=actor,
            status=ParseStatus.PARSED,
            format="manual",
            parsed_at=timezone.now(),
        )
    summary = record_reports([event], message=message, actor=actor)
    InboundMessage.objects.filter(pk=message.pk).update(
        status=ParseStatus.PARSED,
        parse_error="",
        parsed_at=timezone.now(),
        event_count=F("event_count") + 1,
        format=F("format") if message.format else "manual",
    )
    return message, summary


def reparse_message(message: InboundMessage, *, actor) -> IntakeSummary | None:
    """Parse an unparsed message again (after a parser fix)."""
    if message.status not in (ParseStatus.UNPARSED, ParseStatus.NEW):
        raise TransitionError("Only a message that could not be parsed can be parsed again.")
    return process_message(message.pk, force=True, actor=actor)


# --- case changes ----------------------------------------------------------------------------


@transaction.atomic
def change_case_status(case: Case, new_status: str, *, actor, note: str = "") -> Case:
    case = Case.objects.select_for_update().get(pk=case.pk)
    if new_status not in CASE_TRANSITIONS.get(case.status, set()):
        raise TransitionError(f"A case cannot go from {case.status} to {new_status}.")
    reopening = new_status in (CaseStatus.OPEN, CaseStatus.WAITING) and not case.is_open
    if reopening and Case.objects.filter(customer_id=case.customer_id, category=case.category).open().exists():
        raise TransitionError("This customer already has an open case for that category.")
    old = case.status
    case.status = new_status
    case.closed_at = timezone.now() if new_status in (CaseStatus.RESOLVED, CaseStatus.REJECTED) else None
    case.save(update_fields=["status", "closed_at", "updated_at"])
    CaseEvent.objects.create(case=case, kind="status", old=old, new=new_status, note=note, **_actor_kwargs(actor))
    return case


@transaction.atomic
def assign_case(case: Case, assignee, *, actor) -> Case:
    case = Case.objects.select_for_update().get(pk=case.pk)
    old = case.assignee.get_username() if case.assignee else ""
    case.assignee = assignee
    case.save(update_fields=["assignee", "updated_at"])
    new = assignee.get_username() if assignee else ""
    CaseEvent.objects.create(case=case, kind="assignee", old=old, new=new, **_actor_kwargs(actor))
    return case


@transaction.atomic
def add_case_note(case: Case, note: str, *, actor) -> CaseEvent:
    if not note.strip():
        raise ValueError("A note cannot be empty.")
    case = Case.objects.select_for_update().get(pk=case.pk)
    return CaseEvent.objects.create(case=case, kind="note", note=note.strip()[:10000], **_actor_kwargs(actor))
