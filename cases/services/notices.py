"""The notices outbox: write a notice with the decision, render it once, claim it, send it.

A notice is a row first and an e-mail second (DESIGN.md). `issue_notice()` runs inside the
caller's transaction (the ladder's decision): it renders the subject, text and HTML bodies as
they will be sent, fixes the Message-ID, and queues the sending after commit. `send_notice()`
runs in a worker: it claims the row with one conditional UPDATE, sends over SMTP outside any
transaction, and marks the row sent only if its claim still stands. So a retried task, two
workers or a worker killed mid-send never send a second copy, with one exception: a kill after
the SMTP server accepted the message and before the row was marked. The sweeper then takes the
claim back and the copy goes out again, with the same Message-ID, so mail clients show one.

Templates: an admin's NoticeTemplate row for the kind, else the built-in one under
templates/notices/. Templates see plain values only (no model instances): strings, numbers
and lists of them; in HTML every value is escaped before the template sees it, so neither
`|safe` nor `{% autoescape off %}` can put evidence into the page as markup.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import smtplib
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import formataddr, getaddresses, make_msgid, parseaddr
from functools import cache
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives, get_connection
from django.core.mail.backends.smtp import EmailBackend as SmtpBackend
from django.db import IntegrityError, transaction
from django.db import connection as db
from django.db.models import BinaryField, Q
from django.db.models.functions import Substr
from django.template import Context, Engine, TemplateSyntaxError
from django.utils import timezone
from django.utils.html import escape
from django.utils.safestring import SafeString

from abusedesk.lib.redaction import redact
from cases import queue
from cases.models import (
    ActorKind,
    Case,
    CaseEvent,
    Category,
    InboundMessage,
    Notice,
    NoticeKind,
    NoticeStatus,
    NoticeTemplate,
    Policy,
    Report,
    ReporterSource,
)
from cases.services.common import actor_kwargs, storable
from cases.services.filing import MACHINE_FORMATS, source_trust
from cases.services.links import customer_url

log = logging.getLogger(__name__)

SEND_TASK = "cases.tasks_notices.send_notice_task"

# What send_notice() says happened.
SENT = "sent"
RETRY = "retry"  # a temporary failure: back to pending with next_attempt_at; the task retries
FAILED = "failed"
SKIPPED = "skipped"  # not ours to send: already sent, failed, claimed by another worker, or not due

NO_RECIPIENT_ERROR = (
    "The customer has no contact that receives notices. Add one (or tick 'receives notices' on a "
    "contact), then send the notice again."
)

# The evidence excerpt a notice quotes, after redaction.
EXCERPT_MAX_CHARS = 2000
# Reports listed in a notice ("what was seen"); the count says how many there are in all.
REPORTS_LISTED = 10
ADDRESSES_LISTED = 20

# Senders nobody answers: bounces, postmasters, robots.
ROBOT_LOCAL_PARTS = frozenset(
    {
        "mailer-daemon",
        "postmaster",
        "noreply",
        "no-reply",
        "donotreply",
        "do-not-reply",
        "bounce",
        "bounces",
        "daemon",
        "root",
        "nobody",
    }
)
# Enough of a message to read its headers; the body can be megabytes.
HEADER_BYTES = 64 * 1024

WHAT_TO_DO = {
    Category.SPAM: (
        "Check the computers and devices on your connection for malware that sends mail, make sure no "
        "mail server, web form or proxy on your network sends mail for others, and change the passwords "
        "of mail accounts that may have been taken over."
    ),
    Category.PHISHING: (
        "Remove the phishing pages from your web server, find out how they got there (an outdated "
        "content management system or plug-in, a stolen password) and close that hole."
    ),
    Category.MALWARE: (
        "Remove the malicious files from your server or devices, scan every computer on your connection "
        "with up-to-date security software, and update the software that let them in."
    ),
    Category.BOTNET: (
        "A device on your connection is infected and controlled by others. Scan and clean every computer, "
        "phone and smart device, update their software, and change the router's password."
    ),
    Category.SCANNING: (
        "A device on your connection is scanning other networks. Find it (often an infected computer or "
        "a compromised server), clean it, and stop the scanning."
    ),
    Category.DDOS: (
        "A device on your connection takes part in denial-of-service attacks. Look for infected devices, "
        "and for services open to the whole internet that can be abused (DNS, NTP, memcached, SSDP); "
        "close or restrict them."
    ),
    Category.LOGIN_ATTACK: (
        "A device on your connection is trying to guess passwords on other people's servers. Find it, "
        "clean it, and change the passwords on your own systems."
    ),
    Category.VULNERABLE_SERVICE: (
        "A service on your connection is open to the internet and vulnerable or misconfigured. Update it, "
        "or restrict it to the networks that need it."
    ),
    Category.COPYRIGHT: "Stop sharing the work named in the report, and remove it from any sharing software.",
    Category.OTHER: "Read the report below and stop the activity it describes.",
}

DEFAULT_NEXT_STEP = {
    NoticeKind.FIRST_NOTICE: "If we receive further reports after the grace period, we will send a formal warning.",
    NoticeKind.WARNING: "If we receive further reports after the grace period, your service may be suspended.",
    NoticeKind.RESTRICTION: (
        "The restriction is lifted when the case is resolved. If we receive further reports after the grace "
        "period, your service may be suspended."
    ),
    NoticeKind.SUSPENSION: (
        "Your service stays suspended until the problem is fixed and we have reinstated it. Tell us what you did."
    ),
    NoticeKind.TERMINATION: "Your contract has been terminated. Contact us if you believe this is a mistake.",
    NoticeKind.REINSTATEMENT: "Your service is restored. Further reports may lead to termination.",
}

RESTRICTION_TEXT = {
    "port25": "Outgoing connections to mail servers (port 25) from your connection are blocked.",
    "walled_garden": (
        "Your connection is in a walled garden: web pages show our instructions instead of the sites "
        "you ask for, until the problem is fixed."
    ),
}

# The variables a notice template sees, shown to admins next to the template editor.
TEMPLATE_VARIABLES = {
    "reference": "the case reference (AD-123); quote it in every reply",
    "kind, kind_label": "the notice's kind (warning) and its name (Warning)",
    "customer_name, customer_account": "who the notice is for (not in the reporter's acknowledgement)",
    "category, category_label": "what was reported (spam, Spam)",
    "addresses": "the reported addresses on the case (at most 20); more_addresses: how many more",
    "first_seen, last_seen": "first and last report, UTC, ISO 8601 (2026-11-20T14:02:00Z)",
    "report_count": "reports on the case",
    "reports": "the latest reports: each has ip, port, at (UTC ISO 8601), category_label",
    "evidence": "an excerpt of the evidence, third parties' addresses [redacted]; always escaped in HTML",
    "what_to_do": "what the customer must do, by category",
    "next_step, deadline": "what happens next, and when (UTC ISO 8601; may be empty)",
    "restriction, restriction_text": "the restriction in force (port25, walled_garden) and what it means",
    "customer_url": "the customer's signed link to the case page (customer notices only)",
    "reply_to": "the address replies go to (threaded onto the case)",
    "reason": "why the notice was sent, as the ladder or staff said it",
    "reporter, reported_ip, reported_at": "reporter's acknowledgement: who reported what, and when",
}


class NoticeTemplateError(ValueError):
    """A notice template does not compile or render; the message is fit to show an admin."""


# --- small helpers ---------------------------------------------------------------------------------


def iso_utc(at: datetime | None) -> str:
    """'2026-11-20T14:02:00Z': what a notice says a time is."""
    if at is None:
        return ""
    return at.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _domain_of(address: str) -> str:
    return parseaddr(address)[1].rpartition("@")[2].lower()


def own_domains() -> set[str]:
    """The domains the desk sends from: mail from them is our own, never acknowledged."""
    names = (settings.NOTICE_FROM_EMAIL, settings.NOTICE_REPLY_TO, settings.DEFAULT_FROM_EMAIL, settings.SERVER_EMAIL)
    return {d for d in (_domain_of(a) for a in names) if d}


def reply_to_address(case_id: int) -> str:
    """NOTICE_REPLY_TO plus-addressed with the case reference (abuse+AD-12@isp.example), so a reply
    by mail is threaded onto its case even when the client drops In-Reply-To."""
    name, address = parseaddr(settings.NOTICE_REPLY_TO)
    local, _, domain = address.rpartition("@")
    local = local.split("+", 1)[0]
    return formataddr((name, f"{local}+AD-{case_id}@{domain}"))


def _message_id() -> str:
    return make_msgid(idstring="notice", domain=_domain_of(settings.NOTICE_FROM_EMAIL) or "abusedesk.invalid")


def _dedupe_addresses(addresses: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    out = []
    for address in addresses:
        address = (address or "").strip()
        if address and "@" in address and address.lower() not in seen:
            seen.add(address.lower())
            out.append(address)
    return out


# --- rendering --------------------------------------------------------------------------------------


@cache
def _engine() -> Engine:
    # An engine of our own: notice templates load only from templates/ (the filesystem loader
    # refuses paths outside it), and whether output is escaped is the Context's choice below.
    # debug: a syntax error says its line, for the admin who wrote it.
    return Engine(dirs=[str(settings.BASE_DIR / "templates")], app_dirs=False, debug=True)


def builtin_sources(kind: str) -> dict[str, str]:
    """The built-in templates' source text for a kind: subject, body_text, body_html."""
    loader = _engine().template_loaders[0]
    out = {}
    for field, name in (
        ("subject", f"notices/{kind}.subject.txt"),
        ("body_text", f"notices/{kind}.txt"),
        ("body_html", f"notices/{kind}.html"),
    ):
        for origin in loader.get_template_sources(name):
            try:
                out[field] = loader.get_contents(origin)
                break
            except Exception:  # TemplateDoesNotExist at this origin: try the next
                continue
    return out


def compile_template(source: str):
    """Compile an admin's template. Raises NoticeTemplateError with the line and the problem."""
    try:
        return _engine().from_string(source)
    except TemplateSyntaxError as exc:
        raise NoticeTemplateError(_syntax_message(exc)) from None


def _syntax_message(exc: Exception) -> str:
    info = getattr(exc, "template_debug", None)
    where = f" (line {info['line']})" if info and info.get("line") else ""
    return f"Template error{where}: {exc}"


def _escaped(value: Any) -> Any:
    """The HTML context: every string escaped before any template sees it."""
    if isinstance(value, str):
        return SafeString(escape(value))
    if isinstance(value, dict):
        return {k: _escaped(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escaped(v) for v in value]
    return value


def _tidy_text(text: str) -> str:
    # Template tags leave trailing spaces and runs of blank lines; mail wants neither.
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip() + "\n"


def render_sources(sources: dict[str, str], context: dict[str, Any]) -> tuple[str, str, str]:
    """(subject, text, html) from template sources. Raises NoticeTemplateError."""
    try:
        # Text is not HTML: no escaping. HTML: escaped twice over (values beforehand, and autoescape).
        subject = compile_template(sources.get("subject", "")).render(Context(context, autoescape=False))
        text = compile_template(sources.get("body_text", "")).render(Context(context, autoescape=False))
        html_source = sources.get("body_html", "")
        html = ""
        if html_source.strip():
            html = compile_template(html_source).render(Context(_escaped(context), autoescape=True))
    except NoticeTemplateError:
        raise
    except Exception as exc:  # a filter that raises at render time: shown to the admin, never a 500
        raise NoticeTemplateError(f"Template error while rendering: {type(exc).__name__}: {exc}") from None
    subject = " ".join(subject.split())[:255]  # one line: no header injection through a template
    return subject, _tidy_text(text), html.strip() + "\n" if html.strip() else ""


def render_notice(
    kind: str, context: dict[str, Any], *, template: NoticeTemplate | None = None
) -> tuple[str, str, str]:
    """(subject, text, html) for a kind: the admin's template, or the built-in one if the admin's
    fails (a notice must still go out; the admin sees the error in the preview)."""
    if template is not None:
        try:
            return render_sources(
                {"subject": template.subject, "body_text": template.body_text, "body_html": template.body_html},
                context,
            )
        except NoticeTemplateError as exc:
            log.error("notice template %s failed, using the built-in one: %s", kind, exc)
    return render_sources(builtin_sources(kind), context)


def notice_context(
    case: Case, kind: str, *, report: Report | None = None, reason: str = "", context: dict | None = None
) -> dict[str, Any]:
    """The plain values a notice template sees (TEMPLATE_VARIABLES). Four queries."""
    extra = dict(context or {})
    reports = list(
        Report.objects.filter(case=case, duplicate_of__isnull=True, rejected_at__isnull=True)
        .order_by("-occurred_at", "-id")  # report_case_time_idx
        .only("ip", "port", "occurred_at", "category", "evidence")[:REPORTS_LISTED]
    )
    # Every address reported on the case stays readable in the evidence; the rest is redacted.
    addresses = list(Report.objects.filter(case=case).order_by("ip").values_list("ip", flat=True).distinct()[:1000])
    values: dict[str, Any] = {
        "reference": case.reference,
        "kind": kind,
        "kind_label": NoticeKind(kind).label,
        "category": case.category,
        "category_label": Category(case.category).label if case.category in Category.values else case.category,
        "reason": reason,
        "reply_to": reply_to_address(case.pk),
        "desk_address": settings.NOTICE_FROM_EMAIL,
    }
    if kind == NoticeKind.REPORTER_ACK:
        # The reporter learns that the report arrived, and its reference; nothing about the customer.
        values.update(
            reporter=report.reporter if report else "",
            reported_ip=report.ip if report else "",
            reported_at=iso_utc(report.occurred_at) if report else "",
        )
        return values
    source = report if report is not None and report.evidence else next((r for r in reports if r.evidence), None)
    deadline = extra.get("deadline")
    restriction = extra.get("restriction") or case.restricted or ""
    values.update(
        customer_name=case.customer.name,
        customer_account=case.customer.account,
        addresses=addresses[:ADDRESSES_LISTED],
        more_addresses=max(0, len(addresses) - ADDRESSES_LISTED),
        first_seen=iso_utc(case.first_report_at),
        last_seen=iso_utc(case.last_report_at),
        report_count=case.report_count,
        reports=[
            {
                "ip": r.ip,
                "port": r.port or "",
                "at": iso_utc(r.occurred_at),
                "category_label": Category(r.category).label if r.category in Category.values else r.category,
            }
            for r in reports
        ],
        evidence=redact(source.evidence, addresses, limit=EXCERPT_MAX_CHARS) if source else "",
        what_to_do=WHAT_TO_DO.get(case.category, WHAT_TO_DO[Category.OTHER]),
        next_step=str(extra.get("next_step") or DEFAULT_NEXT_STEP.get(kind, "")),
        deadline=iso_utc(deadline) if isinstance(deadline, datetime) else str(deadline or ""),
        restriction=restriction,
        restriction_text=RESTRICTION_TEXT.get(restriction, ""),
        customer_url=customer_url(case),
    )
    # Whatever else the caller passed (scheduled_for, ...), as plain values.
    for name, value in extra.items():
        if name not in values:
            values[name] = iso_utc(value) if isinstance(value, datetime) else _plain(value)
    return values


def _plain(value: Any) -> Any:
    return value if value is None or isinstance(value, str | int | float | bool) else str(value)


# --- writing a notice ----------------------------------------------------------------------------------


@transaction.atomic
def issue_notice(
    case: Case,
    kind: str,
    *,
    key: str,
    actor,
    reason: str = "",
    report: Report | None = None,
    recipients: list[str] | None = None,
    context: dict | None = None,
) -> Notice:
    """Write a notice in the caller's transaction, rendered as it will be sent, and queue its
    sending for after the commit. A second call with the same key returns the first notice and
    writes nothing (a retried decision). With nobody to send to, the notice is written failed,
    with the reason, so staff see it; nothing is queued."""
    existing = Notice.objects.filter(key=key).first()
    if existing is not None:
        return existing
    if recipients is None:
        if kind == NoticeKind.REPORTER_ACK:
            recipients = [report.reporter] if report is not None and report.reporter else []
        else:
            recipients = case.customer.notice_recipients()
    recipients = _dedupe_addresses(recipients)
    template = NoticeTemplate.objects.filter(kind=kind).first()
    subject, body, html = render_notice(
        kind, notice_context(case, kind, report=report, reason=reason, context=context), template=template
    )
    failed = not recipients
    try:
        # A savepoint: a concurrent decision writing the same key loses here and reads the winner's row.
        with transaction.atomic():
            notice = Notice.objects.create(
                case=case,
                kind=kind,
                key=key,
                report=report,
                recipients=recipients,
                subject=storable(subject),
                body=storable(body),
                html_body=storable(html),
                message_id=_message_id(),
                status=NoticeStatus.FAILED if failed else NoticeStatus.PENDING,
                last_error=NO_RECIPIENT_ERROR if failed else "",
            )
    except IntegrityError:
        existing = Notice.objects.filter(key=key).first()
        if existing is None:
            raise
        return existing
    who = actor_kwargs(actor)
    CaseEvent.objects.create(case=case, kind="notice", new=kind, note=reason[:10000], report=report, **who)
    if failed:
        CaseEvent.objects.create(case=case, kind="notice_failed", new=kind, note=NO_RECIPIENT_ERROR, **who)
    else:
        queue.enqueue_on_commit(SEND_TASK, notice.pk)
    return notice


# --- reporters' acknowledgements ----------------------------------------------------------------------


def _local_and_domain(address: str) -> tuple[str, str]:
    local, _, domain = parseaddr(address or "")[1].lower().rpartition("@")
    return local, domain


def robot_sender(address: str) -> str:
    """Why an address must never get an automatic answer ('' when it may): empty, a robot, or ours."""
    local, domain = _local_and_domain(address)
    if not local or not domain:
        return "no sender address"
    if local.split("+", 1)[0] in ROBOT_LOCAL_PARTS or local.startswith("owner-") or local.endswith("-request"):
        return f"robot sender {local}@"
    ours = own_domains()
    if any(domain == d or domain.endswith("." + d) for d in ours):
        return "our own domain"
    return ""


def auto_submitted(raw_headers: bytes) -> str:
    """Why a message must not be answered, from its headers (RFC 3834 and common practice), or ''."""
    headers = BytesHeaderParser(policy=compat32).parsebytes(raw_headers)

    def value(name: str) -> str:
        return str(headers.get(name, "") or "").strip().lower()

    auto = value("Auto-Submitted").split(";", 1)[0].strip()
    if auto and auto != "no":
        return f"Auto-Submitted: {auto}"
    if value("Precedence") in ("bulk", "junk", "list"):
        return f"Precedence: {value('Precedence')}"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "List-Id", "List-Unsubscribe"):
        if name in headers:
            return f"{name} header"
    if "Return-Path" in headers and value("Return-Path").strip("<> ") == "":
        return "empty Return-Path (a bounce)"
    for name in ("Return-Path", "Sender", "From"):
        for _, address in getaddresses(headers.get_all(name) or []):
            why = robot_sender(address) if address else ""
            if why:
                return f"{name}: {why}"
    return ""


def _automated_patterns() -> dict[str, str]:
    return {p: "auto" if automated else "person" for p, (_, automated) in ReporterSource.cached().items()}


def ack_key(case_id: int, reporter: str) -> str:
    digest = hashlib.sha256(reporter.strip().lower().encode()).hexdigest()[:32]
    return f"ack:{case_id}:{digest}"


def acknowledge_reporters(report_ids: Iterable[int], *, actor=None) -> int:
    """Thank the people who reported: one acknowledgement per case and reporter address, ever.

    Never for automated feeds (a machine format, or a ReporterSource marked automated), never to
    auto-submitted mail, robots or our own domains (so it can never loop), and only where the
    customer's policy says so. Returns how many acknowledgements were written.
    """
    ids = sorted(set(report_ids))
    if not ids:
        return 0
    rows = list(
        Report.objects.filter(pk__in=ids, case__isnull=False, duplicate_of__isnull=True)
        .exclude(reporter="")
        .exclude(format__in=MACHINE_FORMATS)
        .exclude(format__startswith="xarf")
        .values_list("pk", "case_id", "reporter", "message_id", "case__customer__kind")
    )
    if not rows:
        return 0
    policies = {kind: Policy.for_kind(kind).acknowledge_reporters for kind in {row[4] for row in rows}}
    automated = _automated_patterns()
    candidates: dict[str, tuple[int, int, str, int | None]] = {}
    for pk, case_id, reporter, message_id, customer_kind in rows:
        if not policies[customer_kind] or robot_sender(reporter):
            continue
        if source_trust(reporter, automated) == "auto":
            continue
        candidates.setdefault(ack_key(case_id, reporter), (pk, case_id, reporter, message_id))
    if not candidates:
        return 0
    done = set(Notice.objects.filter(key__in=list(candidates)).values_list("key", flat=True))
    todo = {key: c for key, c in candidates.items() if key not in done}
    heads = _message_headers({c[3] for c in todo.values() if c[3]})
    written = 0
    for key, (pk, _case_id, reporter, message_id) in todo.items():
        why = auto_submitted(heads.get(message_id, b"")) if message_id else ""
        if why:
            log.info("no acknowledgement for report %s: %s", pk, why)
            continue
        try:
            report = Report.objects.select_related("case__customer").get(pk=pk)
            issue_notice(
                report.case,
                NoticeKind.REPORTER_ACK,
                key=key,
                actor=actor,
                reason=f"Acknowledgement to {reporter}",
                report=report,
                recipients=[reporter],
            )
        except Exception:  # one reporter's trouble must not stop the others; logged for staff
            log.exception("could not acknowledge report %s", pk)
            continue
        written += 1
    return written


def _message_headers(message_ids: set[int]) -> dict[int, bytes]:
    """The first HEADER_BYTES of each message, read in the database (a message can be 40 MB)."""
    if not message_ids:
        return {}
    head = Substr("raw", 1, HEADER_BYTES, output_field=BinaryField())
    rows = InboundMessage.objects.filter(pk__in=message_ids).annotate(head=head).values_list("pk", "head")
    return {pk: bytes(data or b"") for pk, data in rows}


# --- sending ---------------------------------------------------------------------------------------------


def retry_delay(attempts: int) -> int:
    """Seconds before the next try after `attempts` failed ones: doubling, capped at an hour."""
    base = max(1, int(getattr(settings, "NOTICE_RETRY_BASE_SECONDS", 60)))
    return min(3600, base * 2 ** max(0, attempts - 1))


def _due(now: datetime) -> Q:
    return Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now)


def claim_notice(notice_id: int, *, now: datetime | None = None) -> Notice | None:
    """Take a pending, due notice for sending: one conditional UPDATE, committed at once, which
    also returns the row (RETURNING: no second query). None when it was not ours to take. The
    row's claimed_at is the claim's token, which later updates check."""
    now = now or timezone.now()
    at = db.ops.adapt_datetimefield_value(now)
    columns = ", ".join(db.ops.quote_name(f.column) for f in Notice._meta.concrete_fields)
    q = db.ops.quote_name
    sql = (
        f"UPDATE {q(Notice._meta.db_table)} SET {q('status')} = %s, {q('claimed_at')} = %s, "
        f"{q('attempts')} = {q('attempts')} + 1 "
        f"WHERE {q('id')} = %s AND {q('status')} = %s "
        f"AND ({q('next_attempt_at')} IS NULL OR {q('next_attempt_at')} <= %s) RETURNING {columns}"
    )
    rows = list(Notice.objects.raw(sql, [NoticeStatus.SENDING, at, notice_id, NoticeStatus.PENDING, at]))
    if not rows:
        return None
    notice = rows[0]
    notice.claimed_at = now  # the token, exactly as written
    return notice


def _permanent(exc: BaseException) -> bool:
    """A refusal that trying again will not change: 5xx for every recipient or for the message, or
    a message that cannot be built (a bad header)."""
    if isinstance(exc, ValueError | UnicodeError):
        return True
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(500 <= int(code) < 600 for code in codes)
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return False  # our configuration, not the message: it will work once fixed
    if isinstance(exc, smtplib.SMTPResponseException):
        return 500 <= int(exc.smtp_code) < 600
    return False  # connection refused, timeouts, 4xx, anything unknown: try again later


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        parts = [
            f"{rcpt}: {code} {msg.decode(errors='replace') if isinstance(msg, bytes) else msg}"
            for rcpt, (code, msg) in exc.recipients.items()
        ]
        return "Recipients refused: " + "; ".join(parts)
    if isinstance(exc, smtplib.SMTPResponseException):
        msg = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else exc.smtp_error
        return f"SMTP {exc.smtp_code}: {msg}"
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def build_message(notice: Notice, connection=None) -> EmailMultiAlternatives:
    """The e-mail for a notice, exactly as rendered when it was written, with its fixed Message-ID."""
    headers = {
        "Message-ID": notice.message_id,
        "X-Abusedesk-Reference": f"AD-{notice.case_id}",
        # RFC 3834: an automatic message; auto-responders leave it alone.
        "Auto-Submitted": "auto-replied" if notice.kind == NoticeKind.REPORTER_ACK else "auto-generated",
    }
    reply_to = settings.NOTICE_REPLY_TO if notice.kind == NoticeKind.REPORTER_ACK else reply_to_address(notice.case_id)
    message = EmailMultiAlternatives(
        subject=notice.subject,
        body=notice.body,
        from_email=settings.NOTICE_FROM_EMAIL,
        to=list(notice.recipients),
        reply_to=[reply_to],
        headers=headers,
        connection=connection,
    )
    if notice.html_body:
        message.attach_alternative(notice.html_body, "text/html")
    return message


class _Connections(threading.local):
    """One SMTP connection per worker process, reused between notices: a new SMTP session per
    notice costs more than the notice. Dropped when the mail settings change or it sat idle.
    Other backends (the file backend of the demo, locmem in tests) get a fresh one per notice,
    so each notice is its own file."""

    IDLE_SECONDS = 30.0

    def __init__(self) -> None:
        self.key: tuple | None = None
        self.connection = None
        self.used_at = 0.0

    @staticmethod
    def _settings_key() -> tuple:
        return (
            settings.EMAIL_BACKEND,
            settings.EMAIL_HOST,
            settings.EMAIL_PORT,
            settings.EMAIL_HOST_USER,
            settings.EMAIL_USE_TLS,
            settings.EMAIL_USE_SSL,
        )

    def _open(self):
        if self.connection is not None and (
            self.key != self._settings_key() or time.monotonic() - self.used_at > self.IDLE_SECONDS
        ):
            self.drop()
        if self.connection is not None:
            return self.connection, True
        connection = get_connection(fail_silently=False, timeout=settings.EMAIL_TIMEOUT)
        if isinstance(connection, SmtpBackend):
            connection.open()
            self.connection, self.key = connection, self._settings_key()
        return connection, False

    def drop(self) -> None:
        if self.connection is not None:
            # A dead connection may fail to close; it is dropped either way.
            with contextlib.suppress(Exception):
                self.connection.close()
        self.connection = None

    def send(self, notice: Notice) -> None:
        for first in (True, False):
            try:
                connection, reused = self._open()
                build_message(notice, connection).send()
            except (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError):
                self.drop()
                if reused and first:
                    continue  # the server closed a connection we kept: nothing was accepted; once afresh
                raise
            except Exception:
                self.drop()
                raise
            self.used_at = time.monotonic()
            return


_connections = _Connections()


def send_notice(notice_id: int) -> str:
    """Claim a notice, send it, record the result: SENT, RETRY (temporary failure, back to pending
    with next_attempt_at), FAILED (permanent, or the last attempt), or SKIPPED (not ours to send).

    Runs in a worker, outside any transaction: the claim commits before the SMTP session starts,
    and nothing is rendered here; the row holds the notice as it is sent.
    """
    notice = claim_notice(notice_id)
    if notice is None:
        return SKIPPED
    claim = notice.claimed_at
    try:
        _connections.send(notice)
    except (smtplib.SMTPException, OSError, ValueError, UnicodeError) as exc:
        return _record_failure(notice, claim, exc)
    if not mark_sent(notice_id, claim=claim):
        log.warning("notice %s was sent, but another worker had claimed it again meanwhile", notice_id)
    return SENT


def mark_sent(notice_id: int, *, claim: datetime) -> bool:
    """Record that the SMTP server accepted the notice: only if the claim is still ours, or the
    sweeper took it back (we were slow, not dead) and nobody has claimed it again since."""
    return bool(
        Notice.objects.filter(pk=notice_id)
        .filter(Q(status=NoticeStatus.SENDING, claimed_at=claim) | Q(status=NoticeStatus.PENDING))
        .update(status=NoticeStatus.SENT, sent_at=timezone.now(), last_error="", next_attempt_at=None)
    )


def _record_failure(notice: Notice, claim: datetime, exc: BaseException) -> str:
    error = _describe(exc)[:2000]
    last = notice.attempts >= settings.NOTICE_MAX_ATTEMPTS
    if not _permanent(exc) and not last:
        delay = retry_delay(notice.attempts)
        Notice.objects.filter(pk=notice.pk, status=NoticeStatus.SENDING, claimed_at=claim).update(
            status=NoticeStatus.PENDING,
            claimed_at=None,
            last_error=f"Attempt {notice.attempts}: {error}",
            next_attempt_at=timezone.now() + timedelta(seconds=delay),
        )
        log.info("notice %s: temporary failure, next try in %s s: %s", notice.pk, delay, error)
        return RETRY
    why = error if _permanent(exc) else f"Gave up after {notice.attempts} attempts. Last error: {error}"
    fail_notice(notice.pk, error=why, claim=claim)
    return FAILED


@transaction.atomic
def fail_notice(notice_id: int, *, error: str, claim: datetime | None = None) -> bool:
    """Mark a notice failed, with the error, and say so on its case (staff see it on the case page)."""
    rows = Notice.objects.filter(pk=notice_id, status=NoticeStatus.SENDING)
    if claim is not None:
        rows = rows.filter(claimed_at=claim)
    if not rows.update(status=NoticeStatus.FAILED, last_error=error, next_attempt_at=None):
        return False
    case_id, kind = Notice.objects.filter(pk=notice_id).values_list("case_id", "kind").get()
    CaseEvent.objects.create(
        case_id=case_id, kind="notice_failed", new=kind, note=error, actor_kind=ActorKind.SYSTEM, actor=None
    )
    log.warning("notice %s failed: %s", notice_id, error)
    return True


def seconds_until_due(notice_id: int) -> int:
    """For the task's retry countdown: when the notice may be tried again."""
    due = Notice.objects.filter(pk=notice_id).values_list("next_attempt_at", flat=True).first()
    if due is None:
        return 0
    return max(0, int((due - timezone.now()).total_seconds()) + 1)


def sweep_outbox(*, now: datetime | None = None, limit: int = 1000) -> int:
    """The beat's pass over the outbox: take back claims of workers that died mid-send, and queue
    the pending notices whose task was lost (a Redis outage, a killed worker). Returns how many
    notices were queued.

    A notice counts as lost when nothing claimed it for NOTICE_CLAIM_TIMEOUT_SECONDS after it was
    written, became due, or was last swept; sweeping sets next_attempt_at to the sweep's time so
    the next pass does not queue it again while its task waits in a long queue.
    """
    now = now or timezone.now()
    stale_before = now - timedelta(seconds=settings.NOTICE_CLAIM_TIMEOUT_SECONDS)
    taken_back = []
    for pk, attempts, claimed_at in (
        Notice.objects.filter(status=NoticeStatus.SENDING, claimed_at__lt=stale_before)  # notice_sending_idx
        .order_by("claimed_at")
        .values_list("pk", "attempts", "claimed_at")[:limit]
    ):
        error = f"The worker sending attempt {attempts} stopped (claimed {iso_utc(claimed_at)})."
        if attempts >= settings.NOTICE_MAX_ATTEMPTS:
            fail_notice(pk, error=f"Gave up after {attempts} attempts. {error}", claim=claimed_at)
            continue
        if Notice.objects.filter(pk=pk, status=NoticeStatus.SENDING, claimed_at=claimed_at).update(
            status=NoticeStatus.PENDING, claimed_at=None, next_attempt_at=now, last_error=error
        ):
            taken_back.append(pk)
            log.warning("notice %s: claim taken back from a stopped worker", pk)
    lost = Q(next_attempt_at__isnull=True, created_at__lt=stale_before) | Q(
        next_attempt_at__isnull=False, next_attempt_at__lt=stale_before
    )
    ids = list(
        Notice.objects.filter(status=NoticeStatus.PENDING)  # notice_outbox_idx
        .filter(lost)
        .order_by("created_at")
        .values_list("pk", flat=True)[:limit]
    )
    if ids:
        Notice.objects.filter(pk__in=ids, status=NoticeStatus.PENDING).update(next_attempt_at=now)
    # Claims taken back just now carry next_attempt_at=now, so they are not among ids.
    ids = taken_back + ids
    for pk in ids:
        queue.enqueue_on_commit(SEND_TASK, pk)
    return len(ids)
