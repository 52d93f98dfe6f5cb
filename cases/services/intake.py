"""Intake: store what arrives, claim it, parse it, and hand its events to filing.

receive() stores the raw bytes first (idempotent by sha256) and queues the parse; a worker
claims waiting messages in batches, parses them outside any transaction, and files their
events (cases.services.filing) in one transaction with the messages' new status.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import logging
from collections import defaultdict
from datetime import datetime
from email.parser import BytesHeaderParser
from email.policy import compat32

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F
from django.utils import timezone

from cases import queue
from cases.intake.base import ParsedEvent, ParseResult
from cases.models import InboundMessage, ParseStatus
from cases.services.common import TransitionError, storable
from cases.services.filing import IntakeSummary, record_pairs, record_reports
from customers.resolver import are_ours

log = logging.getLogger(__name__)


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
    queue.enqueue_on_commit("cases.tasks.parse_message_task", message_id)


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
        return intake.parse(raw, received_at=message.received_at, are_ours=are_ours)
    except Exception as exc:  # the dispatcher should not raise; if it does, the message waits for a person
        log.exception("parser crashed on message %s", message.pk)
        return ParseResult(format="", events=[], error=f"parser error: {type(exc).__name__}: {exc}"[:1000])


def _process_claimed(ids: list[int], *, actor=None) -> IntakeSummary:
    pairs: list[tuple[ParsedEvent, InboundMessage]] = []
    outcome: dict[tuple[str, int], list[int]] = defaultdict(list)
    for message in InboundMessage.objects.filter(pk__in=ids, status=ParseStatus.PARSING).order_by("pk"):
        # A customer's answer to one of our notices goes on its case (in its own transaction, with
        # the message's status) and never through the report parsers: it quotes the notice, whose
        # addresses would be filed against the customer. Header-only and cheap when it is not one.
        from cases.services.replies import thread_reply

        if thread_reply(message, bytes(message.raw)):
            continue
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
        summary = record_pairs(pairs, actor=actor)
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
