"""Triage of what has no case yet: mail that is not a report, and reports nobody held.

Inbox: a message that is not a report is set aside with a reason (status "ignored"), and can be
restored to the unparsed queue. Unassigned queue: reports are re-resolved after an allocation is
fixed (they then join their customer's case through the filing code), dismissed with a reason,
or, for addresses outside our space, their reporter is told the network's abuse contact, found
over RDAP (abusedesk.lib.rdap) and cached by network range.

Every state change is atomic, takes actor= and writes a TriageEvent (a CaseEvent too where a
case changes). RDAP and SMTP happen outside any transaction.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from email.utils import make_msgid
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import EmailMessage, get_connection
from django.db import IntegrityError, transaction
from django.db.models import BinaryField, F
from django.db.models.functions import Substr
from django.utils import timezone

from abusedesk.lib import dns as adns
from abusedesk.lib import rdap
from abusedesk.lib.addresses import canonical
from cases import queue
from cases.models import (
    InboundMessage,
    NoticeStatus,
    ParseStatus,
    RdapNetwork,
    Report,
    ReporterReferral,
    TriageEvent,
    UnassignedReason,
)
from cases.services import filing, notices
from cases.services.common import TransitionError, actor_kwargs, storable
from customers.resolver import resolve_many

log = logging.getLogger(__name__)

SEND_TASK = "cases.tasks_triage.send_referral_task"
EVALUATE_TASK = "cases.tasks_ladder.evaluate_cases_task"
REFERRAL_TEMPLATE = "reporter_referral"  # templates/notices/reporter_referral.{subject.txt,txt}

# Only mail nobody could read as a report is set aside; parsed mail has its reports on cases.
ASIDE_FROM = (ParseStatus.UNPARSED,)
REASON_MAX = 500
# A host name that now resolves to more addresses than this files reports for the first ones only
# (cases.intake.urls files one report per address at intake too).
MAX_ADDRESSES = 8


def _reason(text: str, what: str) -> str:
    reason = " ".join(storable(text or "").split())[:REASON_MAX]
    if not reason:
        raise TransitionError(f"Say why the {what}.")
    return reason


def _event(kind: str, *, actor, message_id=None, report_id=None, old="", new="", note="", at=None) -> TriageEvent:
    return TriageEvent(
        kind=kind,
        message_id=message_id,
        report_id=report_id,
        old=str(old)[:64],
        new=str(new)[:64],
        note=note,
        at=at or timezone.now(),
        **actor_kwargs(actor),
    )


def _user(actor):
    return actor if getattr(actor, "is_authenticated", False) else None


# --- the inbox -------------------------------------------------------------------------------------


@transaction.atomic
def set_aside_messages(message_ids: Iterable[int], *, reason: str, actor) -> int:
    """Set aside unparsed messages that are not reports (junk, a newsletter, a question), with
    the reason. Returns how many were set aside; others (already parsed or set aside) are left."""
    reason = _reason(reason, "mail is set aside")
    now = timezone.now()
    rows = list(
        InboundMessage.objects.select_for_update()
        .filter(pk__in=list(message_ids), status__in=ASIDE_FROM)
        .order_by("pk")
        .values_list("pk", "status")
    )
    if not rows:
        return 0
    InboundMessage.objects.filter(pk__in=[pk for pk, _ in rows]).update(
        status=ParseStatus.IGNORED, aside_reason=reason, aside_at=now, aside_by=_user(actor), claimed_at=None
    )
    TriageEvent.objects.bulk_create(
        [
            _event("set_aside", actor=actor, message_id=pk, old=status, new=ParseStatus.IGNORED, note=reason, at=now)
            for pk, status in rows
        ]
    )
    return len(rows)


def set_aside_message(message: InboundMessage, *, reason: str, actor) -> None:
    """set_aside_messages() for one; raises TransitionError when the message cannot be set aside."""
    if not set_aside_messages([message.pk], reason=reason, actor=actor):
        raise TransitionError("Only a message that could not be parsed can be set aside.")


@transaction.atomic
def restore_messages(message_ids: Iterable[int], *, actor) -> int:
    """Put set-aside messages back among those that could not be parsed (to be parsed again or
    entered by hand). Returns how many were restored."""
    now = timezone.now()
    ids = list(
        InboundMessage.objects.select_for_update()
        .filter(pk__in=list(message_ids), status=ParseStatus.IGNORED)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    if not ids:
        return 0
    InboundMessage.objects.filter(pk__in=ids).update(
        status=ParseStatus.UNPARSED, aside_reason="", aside_at=None, aside_by=None
    )
    TriageEvent.objects.bulk_create(
        [
            _event("restored", actor=actor, message_id=pk, old=ParseStatus.IGNORED, new=ParseStatus.UNPARSED, at=now)
            for pk in ids
        ]
    )
    return len(ids)


# --- the unassigned queue ------------------------------------------------------------------------------


@dataclass
class ReresolveResult:
    filed: int = 0
    still_unassigned: int = 0
    cases: set[int] = field(default_factory=set)
    reason_changed: int = 0
    hosts_resolved: int = 0  # URL-only reports whose host name gave an address this time
    hosts_unresolved: int = 0  # ... and those whose host still gave none


HostAnswer = tuple[list[str], str]  # (addresses, why none) for one URL-only report


def reresolve_reports(
    report_ids: Iterable[int], *, actor, resolve_host: Callable[[str], list[str] | None] | None = None
) -> ReresolveResult:
    """Resolve unassigned reports again (after an allocation was added or fixed): those a customer
    held at their time join that customer's open case for the category, or open one, through the
    filing code's grouping, locking and audit; the others stay, their reason brought up to date.

    URL-only reports whose host name gave no address ask DNS again first, outside any transaction
    (resolve_host(name) -> addresses, or None for NXDOMAIN; default: the configured resolver). A
    host that resolves now gives the report its first address, and each further address a report
    of its own, as intake does; they are then resolved like the rest.
    """
    ids = sorted(set(report_ids))
    return _reresolve(ids, _ask_hosts(ids, resolve_host), actor=actor)


def _ask_hosts(report_ids: list[int], resolve_host) -> dict[int, HostAnswer]:
    """What DNS says now about the host of each selected report that has no address. No
    transaction: a slow resolver holds no locks (and after one timeout the rest fail fast, dns.py)."""
    rows = list(
        Report.objects.open_unassigned()
        .filter(pk__in=report_ids, ip__isnull=True)
        .exclude(url="")
        .values_list("pk", "url")
    )
    resolve = resolve_host or adns.host_addresses
    by_host: dict[str, HostAnswer] = {}
    answers: dict[int, HostAnswer] = {}
    for pk, url in rows:
        host = url_host(url)
        if not host:
            answers[pk] = ([], "the URL names no host")
            continue
        if host not in by_host:
            try:
                found = resolve(host)
            except adns.DnsError as exc:
                by_host[host] = ([], f"{host} could not be resolved ({exc})")
            else:
                if found is None:
                    by_host[host] = ([], f"the host name {host} does not exist (NXDOMAIN)")
                else:
                    addresses = list(dict.fromkeys(filter(None, (canonical(a) for a in found))))
                    by_host[host] = (addresses, "" if addresses else f"the host name {host} has no A or AAAA record")
        answers[pk] = by_host[host]
    return answers


def url_host(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower().rstrip(".")
    except ValueError:
        return ""


def _give_addresses(
    reports: list[Report],
    answers: dict[int, HostAnswer],
    result: ReresolveResult,
    audit: list[TriageEvent],
    *,
    actor,
    now,
) -> list[Report]:
    """The reports (locked) whose host resolved now get its addresses; returns the reports made
    for the further addresses. The others keep no address, their reason's detail brought up to date."""
    resolved: list[Report] = []
    extra: list[Report] = []
    still: list[Report] = []
    for r in reports:
        addresses, why = answers.get(r.pk, ([], r.resolution_note))
        if not addresses:
            result.hosts_unresolved += 1
            if why and why[:200] != r.resolution_note:
                r.resolution_note = why[:200]
                still.append(r)
            continue
        result.hosts_resolved += 1
        note = f"{url_host(r.url)} resolved on re-resolve ({now:%Y-%m-%d %H:%M} UTC) to {', '.join(addresses)}"
        for i, ip in enumerate(addresses[:MAX_ADDRESSES]):
            copy = r if i == 0 else Report(**{f.attname: getattr(r, f.attname) for f in Report._meta.concrete_fields})
            if i:
                copy.pk = None
                copy.created_at = now
                copy.duplicate_count = 0  # the duplicates were counted on the report that came in
                extra.append(copy)
            copy.ip = ip
            copy.dedupe_key = filing.dedupe_key(ip, r.category, r.reporter)
            copy.resolution_note = note[:200]
        resolved.append(r)
    Report.objects.bulk_update(resolved, ["ip", "dedupe_key", "resolution_note"], batch_size=500)
    Report.objects.bulk_update(still, ["resolution_note"], batch_size=500)
    Report.objects.bulk_create(extra, batch_size=500)
    for r in [*resolved, *extra]:
        audit.append(
            _event("host_resolved", actor=actor, report_id=r.pk, old="", new=r.ip, note=r.resolution_note, at=now)
        )
    return extra


@transaction.atomic
def _reresolve(report_ids: list[int], answers: dict[int, HostAnswer], *, actor) -> ReresolveResult:
    result = ReresolveResult()
    now = timezone.now()
    # open_unassigned: reports about an address nobody can hold are out of the working queue, but
    # an allocation added for it since (private space the ISP numbers customers in) files them too.
    reports = list(Report.objects.select_for_update().open_unassigned().filter(pk__in=report_ids).order_by("pk"))
    if not reports:
        return result
    audit: list[TriageEvent] = []
    hostless = [r for r in reports if not r.ip]
    given: list[Report] = []  # reports that have an address for the first time
    if hostless:
        extra = _give_addresses(hostless, answers, result, audit, actor=actor, now=now)
        given = [r for r in hostless if r.ip] + extra
        reports = [r for r in reports + extra if r.ip]
        result.still_unassigned += result.hosts_unresolved
    held = resolve_many((r.ip, r.occurred_at) for r in reports)
    found = [r for r in reports if held.get((r.ip, r.occurred_at)) is not None]
    left = [r for r in reports if held.get((r.ip, r.occurred_at)) is None]

    if left:
        before = {r.pk: r.unassigned_reason for r in left}
        filing.set_unassigned_reasons(left)
        changed = []
        for r in left:
            if before[r.pk] == UnassignedReason.BOGON and r.unassigned_reason != UnassignedReason.BOGON:
                r.resolution_note = ""  # it said which kind of unroutable address
            if r.unassigned_reason != before[r.pk]:
                audit.append(
                    _event("reason", actor=actor, report_id=r.pk, old=before[r.pk], new=r.unassigned_reason, at=now)
                )
                changed.append(r)
        Report.objects.bulk_update(changed, ["unassigned_reason", "resolution_note"], batch_size=500)
        result.still_unassigned += len(left)
        result.reason_changed = len(changed)

    if found:
        # The filing code's own grouping: one locked open case per (customer, category), opened
        # with its audit row if missing, and one "reports_added" row and counter write per case.
        batch = filing._Filing()
        groups: dict[tuple[int, str], list[Report]] = defaultdict(list)
        for r in found:
            allocation = held[(r.ip, r.occurred_at)]
            if r.unassigned_reason == UnassignedReason.BOGON:
                r.resolution_note = ""  # it said which kind of unroutable address
            r.customer_id, r.allocation_id, r.unassigned_reason = allocation.customer_id, allocation.pk, ""
            groups[(r.customer_id, r.category)].append(r)
        case_for, _opened = filing._open_cases_for(groups, now=now, actor=actor)
        batch.cases.update(case_for)
        for key, group in groups.items():
            case = case_for[key]
            for r in group:
                r.case = case
                audit.append(_event("reresolved", actor=actor, report_id=r.pk, old="", new=str(case.pk), at=now))
            batch.reports[case.pk].extend(group)
        Report.objects.bulk_update(
            found, ["customer", "allocation", "case", "unassigned_reason", "resolution_note"], batch_size=500
        )
        filing._finish_cases(batch, actor=actor)
        result.filed = len(found)
        result.cases = set(batch.summary.cases_updated)
        # The ladder decides after this commits, as for new reports (record_pairs).
        queue.enqueue_on_commit(EVALUATE_TASK, sorted(result.cases), [r.pk for r in found])
    TriageEvent.objects.bulk_create(audit, batch_size=1000)
    if given and settings.ENRICHMENT_ENABLED:
        # PTR and DNSBLs for the new addresses, once per address, as intake does (after the commit).
        first_by_ip: dict[str, int] = {}
        for r in given:
            if filing._worth_enriching(r):
                first_by_ip.setdefault(r.ip, r.pk)
        filing._queue_enrichment(list(first_by_ip.values()))
    return result


@transaction.atomic
def dismiss_reports(report_ids: Iterable[int], *, reason: str, actor) -> int:
    """Take unassigned reports out of the queue, with the reason; they are kept. Returns how many."""
    reason = _reason(reason, "reports are dismissed")
    return _dismiss(list(report_ids), reason=reason, actor=actor)


def _dismiss(report_ids: list[int], *, reason: str, actor, kind: str = "dismissed") -> int:
    now = timezone.now()
    rows = list(
        Report.objects.select_for_update()
        .unassigned()
        .filter(pk__in=report_ids)
        .order_by("pk")
        .values_list("pk", "unassigned_reason")
    )
    if not rows:
        return 0
    Report.objects.filter(pk__in=[pk for pk, _ in rows]).update(
        dismissed_at=now, dismissed_reason=reason, dismissed_by=_user(actor)
    )
    TriageEvent.objects.bulk_create(
        [_event(kind, actor=actor, report_id=pk, old=why, new="dismissed", note=reason, at=now) for pk, why in rows]
    )
    return len(rows)


# --- RDAP: the abuse contact of an address that is not ours ------------------------------------------------


@dataclass
class AbuseContact:
    ip: str
    email: str  # "" when the network names no abuse contact
    network: str
    name: str = ""
    cached: bool = False


def _hex(addr: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return f"{int(addr):0{8 if addr.version == 4 else 32}x}"


def find_abuse_contact(ip: str) -> AbuseContact:
    """The abuse contact of the network holding ip: from a cached range when one holds it, else
    over RDAP (the answered range is cached). No transaction: a slow server holds no locks.
    Raises rdap.RdapError (rdap.RdapNotFound for a 404) with a message fit to show."""
    addr = ipaddress.ip_address(ip)
    if addr.version == 6 and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    key = _hex(addr)
    fresh_after = timezone.now() - timedelta(seconds=settings.RDAP_CACHE_SECONDS)
    hit = (
        RdapNetwork.objects.filter(version=addr.version, start__lte=key, end__gte=key, fetched_at__gte=fresh_after)
        .order_by("-start", "end")  # rdapnetwork_range_idx; the narrowest range first
        .first()
    )
    if hit is not None:
        return AbuseContact(str(addr), hit.abuse_email, hit.cidr, hit.name, cached=True)
    answer = rdap.lookup_ip(str(addr))
    start, end = _hex(answer.first), _hex(answer.last)
    with transaction.atomic():
        RdapNetwork.objects.filter(version=addr.version, start=start, end=end).delete()
        RdapNetwork.objects.create(
            version=addr.version,
            start=start,
            end=end,
            cidr=storable(answer.cidr),
            handle=storable(answer.handle),
            name=storable(answer.name),
            abuse_email=storable(answer.abuse_email)[:254],
        )
    return AbuseContact(str(addr), answer.abuse_email, answer.cidr, answer.name)


def referral_key(reporter: str, ip: str) -> str:
    """One answer per reporter and address, ever: a reporter who sent five reports about one
    address hears once where to write."""
    digest = hashlib.sha256(f"{reporter.strip().lower()}|{ip}".encode()).hexdigest()[:40]
    return f"referral:{digest}"


def why_not_answered(report: Report) -> str:
    """Why a report's reporter must not get a referral ('' when they may): only people who wrote
    about an address outside our space, never feeds, robots, auto-submitted mail or ourselves."""
    if report.customer_id is not None or report.dismissed_at is not None:
        return "the report is no longer in the unassigned queue"
    if report.unassigned_reason != UnassignedReason.OUTSIDE:
        return "the address is ours: re-resolve the report instead"
    if not report.reporter:
        return "the report names no reporter"
    if report.format in notices.MACHINE_FORMATS or report.format.startswith("xarf"):
        return "an automated feed"
    robot = notices.robot_sender(report.reporter)
    if robot:
        return robot
    if report.message_id:
        head = (
            InboundMessage.objects.filter(pk=report.message_id)
            .annotate(head=Substr("raw", 1, notices.HEADER_BYTES, output_field=BinaryField()))
            .values_list("head", flat=True)
            .first()
        )
        auto = notices.auto_submitted(bytes(head or b""))
        if auto:
            return auto
    return ""


@transaction.atomic
def refer_reporter(report: Report, contact: AbuseContact, *, actor) -> ReporterReferral:
    """Answer a report's reporter with the abuse contact of the network the address belongs to,
    and take the report out of the queue. The answer is an outbox row, sent after commit by a
    worker; a second call for the same reporter and address returns the first row and sends
    nothing. Raises TransitionError when the reporter must not be answered."""
    report = Report.objects.select_for_update().get(pk=report.pk)
    why = why_not_answered(report)
    if why:
        raise TransitionError(f"Report {report.pk}: no answer sent ({why}).")
    if not contact.email:
        raise TransitionError(f"The network of {report.ip} names no abuse contact.")
    key = referral_key(report.reporter, report.ip)
    referral = ReporterReferral.objects.filter(key=key).first()
    if referral is None:
        context = {
            "reporter": report.reporter,
            "reported_ip": report.ip,
            "reported_at": notices.iso_utc(report.occurred_at),
            "abuse_email": contact.email,
            "network": contact.network,
            "network_name": contact.name,
            "desk_address": settings.NOTICE_FROM_EMAIL,
        }
        subject, body, _html = notices.render_sources(notices.builtin_sources(REFERRAL_TEMPLATE), context)
        domain = settings.NOTICE_FROM_EMAIL.rpartition("@")[2].strip("> ") or "abusedesk.invalid"
        try:
            with transaction.atomic():  # a concurrent answer with the same key loses here
                referral = ReporterReferral.objects.create(
                    report=report,
                    key=key,
                    abuse_email=contact.email[:254],
                    recipients=[report.reporter],
                    subject=storable(subject),
                    body=storable(body),
                    message_id=make_msgid(idstring="referral", domain=domain),
                )
        except IntegrityError:
            referral = ReporterReferral.objects.get(key=key)
        else:
            queue.enqueue_on_commit(SEND_TASK, referral.pk)
    _dismiss(
        [report.pk],
        reason=f"Not our address; the reporter was referred to {contact.email}.",
        actor=actor,
        kind="referred",
    )
    return referral


def send_referral(referral_id: int) -> str:
    """Claim a referral with one conditional UPDATE, send it outside any transaction, record the
    result: notices.SENT, notices.RETRY (back to pending), notices.FAILED or notices.SKIPPED."""
    now = timezone.now()
    claimed = ReporterReferral.objects.filter(pk=referral_id, status=NoticeStatus.PENDING).update(
        status=NoticeStatus.SENDING, claimed_at=now, attempts=F("attempts") + 1
    )
    if not claimed:
        return notices.SKIPPED
    referral = ReporterReferral.objects.select_related("report__message").get(pk=referral_id)
    original = referral.report.message.message_id if referral.report.message_id else ""
    headers = {"Message-ID": referral.message_id, "Auto-Submitted": "auto-replied"}
    if original:
        headers["In-Reply-To"] = original
        headers["References"] = original
    mail = EmailMessage(
        subject=referral.subject,
        body=referral.body,
        from_email=settings.NOTICE_FROM_EMAIL,
        to=list(referral.recipients),
        reply_to=[settings.NOTICE_REPLY_TO],
        headers=headers,
        connection=get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT),
    )
    try:
        mail.send()
    except Exception as exc:  # SMTP refusals, timeouts, a bad header: recorded on the row for staff
        error = f"{type(exc).__name__}: {exc}"[:2000]
        last = referral.attempts >= settings.NOTICE_MAX_ATTEMPTS
        ReporterReferral.objects.filter(pk=referral_id, status=NoticeStatus.SENDING, claimed_at=now).update(
            status=NoticeStatus.FAILED if last else NoticeStatus.PENDING, claimed_at=None, last_error=error
        )
        log.warning("referral %s: %s", referral_id, error)
        return notices.FAILED if last else notices.RETRY
    ReporterReferral.objects.filter(pk=referral_id, status=NoticeStatus.SENDING, claimed_at=now).update(
        status=NoticeStatus.SENT, sent_at=timezone.now(), last_error=""
    )
    return notices.SENT


def sweep_referrals(*, now=None, limit: int = 500) -> int:
    """The beat's pass over the referral outbox: claims of workers that died mid-send are taken
    back, and referrals still pending after NOTICE_CLAIM_TIMEOUT_SECONDS (a lost task, a Redis
    outage, a temporary SMTP failure) are queued again; the claim still sends each once."""
    now = now or timezone.now()
    stale = now - timedelta(seconds=settings.NOTICE_CLAIM_TIMEOUT_SECONDS)
    ReporterReferral.objects.filter(status=NoticeStatus.SENDING, claimed_at__lt=stale).update(
        status=NoticeStatus.PENDING, claimed_at=None, last_error="The worker sending it stopped."
    )
    ids = list(
        ReporterReferral.objects.filter(status=NoticeStatus.PENDING, created_at__lt=stale)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    for pk in ids:
        queue.enqueue_on_commit(SEND_TASK, pk)
    return len(ids)
