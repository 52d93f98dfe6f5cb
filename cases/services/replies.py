"""Customers' answers: the signed link in every notice, and replies threaded onto a case.

The link needs no login. It carries the case id and the case's link_version, signed with
Django's signing (salted, timestamped): it expires after CUSTOMER_LINK_MAX_AGE_DAYS, and
bumping link_version (revoke_links) makes every link sent before unusable.

A reply, by the link's form or by mail, is stored on the case and holds escalation
(case.awaiting_review) until a NOC member has read it; it also cancels a suspension that
was approved "unless fixed" and is still waiting for its time.

Mail is a reply when its In-Reply-To/References name a customer notice's Message-ID, or when
it is addressed to the case's plus address. thread_reply() is the one hook
intake calls before the report parsers; anything that does not check out falls through to
them, so a reporter's mail is never swallowed by a typo'd reference.

The plus address is written by notices.reply_to_address (abuse+AD-42@isp.example); evidence
shown to customers is redacted by abusedesk.lib.redaction.redact.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from email.message import Message
from email.parser import BytesHeaderParser
from email.policy import compat32
from email.utils import parseaddr

from django.conf import settings
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from abusedesk.roles import NOC, has_role
from cases import queue
from cases.intake import mime
from cases.models import (
    ActorKind,
    ApprovalStatus,
    Case,
    CaseEvent,
    Channel,
    CustomerReply,
    InboundMessage,
    Notice,
    NoticeKind,
    ParseStatus,
    ReplyChannel,
)
from cases.services import ladder
from cases.services.common import TransitionError, actor_kwargs, storable

log = logging.getLogger(__name__)

# Signed tokens are ~60 characters; anything much longer is not one of ours.
# What a customer may write (the form enforces it; mail is cut to it).
REPLY_MAX_CHARS = 5000
# Replies by the link that may wait unread: past this the form refuses, so a leaked link
# cannot be used to flood the case. Mail is not limited here (the MTA's defences apply).
MAX_WAITING_REPLIES = 20
# The event format intake records for mail threaded onto a case.
REPLY_FORMAT = "customer_reply"
# Only mail can answer a notice; an API post or a bulk file never does.
THREADED_CHANNELS = (Channel.EMAIL, Channel.IMAP, Channel.UPLOAD)


@transaction.atomic
def revoke_links(case: Case, *, actor, note: str = "") -> Case:
    """Make every customer link sent for this case unusable (staff, or the system)."""
    if getattr(actor, "is_authenticated", False) and not has_role(actor, NOC):
        raise PermissionDenied("Only noc staff can withdraw a case's links.")
    case = Case.objects.select_for_update().get(pk=case.pk)
    old = case.link_version
    case.link_version = old + 1
    case.save(update_fields=["link_version", "updated_at"])
    CaseEvent.objects.create(
        case=case, kind="links_revoked", old=str(old), new=str(case.link_version), note=note, **actor_kwargs(actor)
    )
    return case


def current_case(case: Case) -> Case:
    """The case that now carries a merged case's reports: links and replies follow a merge."""
    seen = {case.pk}
    while case.merged_into_id and case.merged_into_id not in seen:  # a loop is never written; never trust it
        seen.add(case.merged_into_id)
        case = Case.objects.select_related("customer").get(pk=case.merged_into_id)
    return case


# --- replies -----------------------------------------------------------------------------------------


def _cap(text: str) -> str:
    if len(text) <= REPLY_MAX_CHARS:
        return text
    return text[: REPLY_MAX_CHARS - 20].rstrip() + "\n[… shortened]"


@transaction.atomic
def record_customer_reply(
    case: Case, text: str, *, channel: str, message: InboundMessage | None = None
) -> CustomerReply:
    """The customer answered ("fixed: here is what I did"). The actor is always the customer.

    Escalation waits until a NOC member reviews it; a suspension approved for later is cancelled.
    """
    if channel not in ReplyChannel.values:
        raise ValueError(f"unknown reply channel {channel!r}")
    text = _cap(storable(text or "").strip())
    if not text:
        raise TransitionError("A reply cannot be empty.")
    case = Case.objects.select_for_update(of=("self",)).get(pk=case.pk)
    if not case.is_open:
        state = case.get_status_display().lower()
        raise TransitionError(f"Case {case.reference} is closed ({state}); it takes no replies.")
    if channel == ReplyChannel.LINK and (
        CustomerReply.objects.filter(case=case, reviewed_at__isnull=True).count() >= MAX_WAITING_REPLIES
    ):
        raise TransitionError("We have your earlier replies; please wait until our abuse team has read them.")
    reply = CustomerReply.objects.create(case=case, channel=channel, text=text, message=message)
    CaseEvent.objects.create(
        case=case, kind="customer_reply", new=channel, note=text[:500], **actor_kwargs(ActorKind.CUSTOMER)
    )
    if not case.awaiting_review:
        case.awaiting_review = True
        case.save(update_fields=["awaiting_review", "updated_at"])
    # Anyone can write to the guessable plus address, so a mail reply cancels a scheduled step
    # only when it comes from one of the customer's contacts; the signed link proves itself.
    if case.approvals.filter(status=ApprovalStatus.SCHEDULED).exists() and _speaks_for(case, channel, message):
        ladder.cancel_scheduled(
            case, actor=ActorKind.CUSTOMER, reason="The customer replied before the scheduled time."
        )
    return reply


def _speaks_for(case: Case, channel: str, message: InboundMessage | None) -> bool:
    if channel == ReplyChannel.LINK:
        return True
    if message is None:
        return False
    sender = parseaddr(message.sender or "")[1].strip().lower()
    return bool(sender) and case.customer.contacts.filter(email__iexact=sender).exists()


@transaction.atomic
def review_reply(reply: CustomerReply, *, actor, note: str = "") -> CustomerReply:
    """A NOC member has read the reply. Once none is left unread, escalation may go on."""
    if not has_role(actor, NOC):
        raise PermissionDenied("Only noc staff can review a customer's reply.")
    # The case first, as record_customer_reply locks it: the same order, never a deadlock.
    case = Case.objects.select_for_update(of=("self",)).get(pk=reply.case_id)
    reply = CustomerReply.objects.select_for_update().get(pk=reply.pk)
    if reply.reviewed_at is not None:
        raise TransitionError("This reply has already been reviewed.")
    reply.reviewed_by = actor
    reply.reviewed_at = timezone.now()
    reply.save(update_fields=["reviewed_by", "reviewed_at"])
    CaseEvent.objects.create(
        case=case, kind="reply_reviewed", new=str(reply.pk), note=storable(note).strip()[:10000], **actor_kwargs(actor)
    )
    if case.awaiting_review and not CustomerReply.objects.filter(case=case, reviewed_at__isnull=True).exists():
        case.awaiting_review = False
        case.save(update_fields=["awaiting_review", "updated_at"])
        if case.is_open:
            # While the reply waited, the ladder set no due time; look again now rather than at
            # the next report.
            queue.enqueue_on_commit("cases.tasks_ladder.evaluate_cases_task", [case.pk])
    return reply


# --- mail threaded onto a case ---------------------------------------------------------------------

_MSGID = re.compile(r"<([^<>\s]{1,250})>")
_REFERENCE_HEADERS = ("In-Reply-To", "References")
_ADDRESS_HEADERS = ("To", "Cc", "Delivered-To", "X-Original-To", "Envelope-To")
# How many Message-IDs of a References chain are looked up (the newest, where ours would be).
MAX_REFERENCES = 50


def _reply_to_parts() -> tuple[str, str]:
    # As notices.reply_to_address writes it: NOTICE_REPLY_TO's local part up to any "+" of its own.
    address = parseaddr(settings.NOTICE_REPLY_TO)[1]
    local, _, domain = address.rpartition("@")
    return local.split("+", 1)[0], domain


def may_answer(channel: str, raw: bytes) -> bool:
    """Whether thread_reply could take this mail: it came by mail, and its header block could
    thread it to a notice (an In-Reply-To or References header, or our +AD-<case> reply address).
    Most mail is a report with none, and this spares it the header parse."""
    if channel not in THREADED_CHANNELS:
        return False
    head = _header_bytes(raw).lower()
    return b"in-reply-to" in head or b"references" in head or b"+ad-" in head


def _header_bytes(raw: bytes) -> bytes:
    """The header block's bytes (within the first 64 KiB)."""
    head = raw[:65536]
    end = head.find(b"\r\n\r\n")
    if end < 0:
        end = head.find(b"\n\n")
    return head[: end if end > 0 else None]


def _header_block(raw: bytes) -> Message:
    """The headers only: cheap enough to run on every message that may_answer lets through."""
    return BytesHeaderParser(policy=compat32).parsebytes(_header_bytes(raw))


def _values(headers: Message, names: Iterable[str]) -> str:
    return " ".join(str(v) for name in names for v in (headers.get_all(name) or []))[:20000]


def _notice_for(headers: Message) -> Notice | None:
    """The customer notice this mail answers, from In-Reply-To/References (newest first)."""
    ids = _MSGID.findall(_values(headers, ["In-Reply-To"]))
    ids += reversed(_MSGID.findall(_values(headers, ["References"])))
    ids = list(dict.fromkeys(i for i in ids if len(i) <= 250))[:MAX_REFERENCES]
    if not ids:
        return None
    # Stored with or without the angle brackets: match either.
    candidates = ids + [f"<{i}>" for i in ids]
    notices = {
        n.message_id.strip("<>"): n
        for n in Notice.objects.filter(message_id__in=candidates).exclude(kind=NoticeKind.REPORTER_ACK)
    }
    return next((notices[i] for i in ids if i in notices), None)


def _plus_case_id(headers: Message) -> int | None:
    local, domain = _reply_to_parts()
    if not (local and domain):
        return None
    pattern = re.compile(
        rf"(?<![\w.+-]){re.escape(local)}\+AD-(\d{{1,18}})@{re.escape(domain)}(?![\w-]|\.\w)", re.IGNORECASE
    )
    match = pattern.search(_values(headers, _ADDRESS_HEADERS))
    return int(match.group(1)) if match else None


def _case_for(headers: Message) -> Case | None:
    notice = _notice_for(headers)
    if notice is not None:
        return notice.case
    pk = _plus_case_id(headers)
    if pk is None:
        return None
    return Case.objects.select_related("customer").filter(pk=pk).first()


def _is_automatic(headers: Message) -> bool:
    """An out-of-office, a bounce or a list robot: it answers the notice, but nobody wrote it."""
    auto = str(headers.get("Auto-Submitted", "") or "").strip().lower()
    precedence = str(headers.get("Precedence", "") or "").strip().lower()
    ctype = str(headers.get("Content-Type", "") or "").lower()
    sender = parseaddr(str(headers.get("From", "") or ""))[1].lower()
    return (
        auto.split(";", 1)[0].strip() not in ("", "no")
        or precedence in ("bulk", "junk", "auto_reply")
        or any(headers.get(h) is not None for h in ("X-Autoreply", "X-Autorespond"))
        or ("multipart/report" in ctype and "delivery-status" in ctype)
        or sender.startswith(("mailer-daemon@", "postmaster@"))
    )


# "On Tue, 3 Nov 2026 at 14:02, Abuse desk <abuse@isp.example> wrote:" and its cousins ("Am ...
# schrieb Abuse desk:"), which may be wrapped over two lines; "-----Original Message-----" (Outlook).
_ATTRIBUTION = re.compile(
    r"^(on|am|le|el|il|op)\b.{0,300}\b(wrote|schrieb|a écrit|escribió|ha scritto|schreef)\b.{0,200}:$", re.IGNORECASE
)
_SEPARATOR = re.compile(
    r"^(-{2,}\s*(original message|ursprüngliche nachricht|forwarded message)\s*-{2,}|_{20,})$", re.IGNORECASE
)
_QUOTED_FROM = re.compile(r"^\*?(from|von|de)\*?:\s", re.IGNORECASE)
_QUOTED_SENT = re.compile(r"^\*?(sent|date|gesendet|envoyé)\*?:\s", re.IGNORECASE)


def new_text(text: str) -> str:
    """The part of a reply the customer wrote: quoted lines ("> ...") and the quoted tail dropped."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    for i, line in enumerate(lines):
        stripped = line.strip()
        two = f"{stripped} {lines[i + 1].strip()}" if i + 1 < len(lines) else stripped
        if _SEPARATOR.match(stripped) or _ATTRIBUTION.match(stripped) or _ATTRIBUTION.match(two):
            break
        if _QUOTED_FROM.match(stripped) and i + 1 < len(lines) and _QUOTED_SENT.match(lines[i + 1].strip()):
            break  # Outlook: "From: Abuse desk" / "Sent: ..." above the quoted notice
        if stripped.startswith(">"):
            continue
        out.append(line.rstrip())
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out)).strip()


# HTML clients quote the notice in a <blockquote> below the answer: read the answer only.
_BLOCKQUOTE = re.compile(r"<blockquote\b", re.IGNORECASE)


def mail_reply_text(raw: bytes) -> str:
    """What the customer wrote in a mail: its text/plain part (or its HTML as text), new part only."""
    message = mime.parse_message(raw)
    plain = html = None
    for part in mime.walk(message):
        if part.is_multipart() or mime.is_attachment(part):
            continue
        ctype = mime.content_type(part)
        if ctype == "text/plain" and plain is None:
            plain = mime.part_text(part)
        elif ctype == "text/html" and html is None:
            html = mime.part_text(part)
    if plain and plain.strip():
        text = plain
    else:
        text = mime.html_to_text(_BLOCKQUOTE.split(html, maxsplit=1)[0]) if html else ""
    return new_text(text) or "(The mail has no text of its own; see the message.)"


def _mark(message: InboundMessage, status: str, *, fmt: str, error: str = "") -> None:
    InboundMessage.objects.filter(pk=message.pk).update(
        status=status, format=fmt, parse_error=error, parsed_at=timezone.now(), claimed_at=None, event_count=0
    )


def thread_reply(message: InboundMessage, raw: bytes) -> bool:
    """If this inbound mail answers one of our notices, put it on its case and return True.

    Called by intake for each claimed message before the report parsers; False lets them run.
    Never raises: hostile headers are read as no reply, and a reply that cannot be recorded
    leaves the message "could not parse" for a person, with the reason.
    """
    if not may_answer(message.channel, raw):
        return False
    try:
        headers = _header_block(raw)
        case = _case_for(headers)
    except Exception:  # a hostile header block is not a reply; the parsers will say what it is
        log.warning("could not read the threading headers of message %s", message.pk, exc_info=True)
        return False
    if case is None:
        return False
    try:
        case = current_case(case)
        if _is_automatic(headers):
            _mark(
                message,
                ParseStatus.IGNORED,
                fmt=REPLY_FORMAT,
                error=f"An automatic answer (out of office or bounce) to a notice on {case.reference}; "
                "not counted as the customer's reply.",
            )
            return True
        text = mail_reply_text(raw)
        with transaction.atomic():
            if not CustomerReply.objects.filter(message=message).exists():  # taken again after a crash
                record_customer_reply(case, text, channel=ReplyChannel.EMAIL, message=message)
            _mark(message, ParseStatus.PARSED, fmt=REPLY_FORMAT)
    except TransitionError as exc:
        # A closed case: kept, set aside, and said why; never parsed as a report (it quotes the
        # notice, whose addresses would be filed against the customer).
        _mark(message, ParseStatus.IGNORED, fmt=REPLY_FORMAT, error=f"A reply to {case.reference}: {exc}")
    except Exception:
        log.exception("could not record message %s as a reply on case %s", message.pk, case.pk)
        _mark(
            message,
            ParseStatus.UNPARSED,
            fmt=REPLY_FORMAT,
            error=f"A reply to {case.reference} that could not be recorded (see the server log).",
        )
    return True
