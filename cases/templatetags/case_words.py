"""Case history in words: a CaseEvent (machine keys) becomes a sentence a person reads.

Audit rows store machine keys ("warning", "waiting", an ISO time); pages never show them raw.
Each known kind has a small function; an unknown kind still reads as a sentence (the kind's
words, the old and new values, the note), so a new event written by another module is never
shown as a code. Sentences are plain text: the template escapes them, so a hostile note or
reason is shown, never rendered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

from django import template
from django.utils.dateparse import parse_datetime
from django.utils.html import format_html
from django.utils.safestring import SafeString

from abusedesk.roles import MANAGER, has_role
from cases.models import (
    ActorKind,
    Approval,
    CaseEvent,
    CaseStatus,
    NoticeKind,
    ProvisioningAction,
    ReplyChannel,
    Rung,
)

register = template.Library()

UTC_FORMAT = "%Y-%m-%d %H:%M UTC"


def in_utc(at: datetime | None) -> str:
    """'2026-12-03 00:00 UTC': ISO 8601 date and time, in UTC, with the zone said."""
    if at is None:
        return ""
    if at.tzinfo is None:  # never stored, but a naive value must not be shown as if UTC by accident
        return at.isoformat(sep=" ", timespec="minutes")
    return at.astimezone(UTC).strftime(UTC_FORMAT)


@register.filter
def utc(at: datetime | None) -> SafeString | str:
    """A <time> element: machine-readable ISO 8601 in the attribute, '2026-12-03 00:00 UTC' shown."""
    if at is None:
        return ""
    iso = at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return format_html('<time datetime="{}">{}</time>', iso, in_utc(at))


def _label(choices, key: str) -> str:
    """The words for a machine key ("first_notice" -> "first notice"), whatever the choices."""
    for value, label in choices:
        if str(value) == key:
            return str(label).lower()
    return key.replace("_", " ")


def rung_words(key: str) -> str:
    """A rung's machine key ("warning", as rung_key() writes it) in words."""
    for rung in Rung:
        if rung.name.lower() == key:
            return rung.label.lower()
    return key.replace("_", " ")


def _time_words(value: str) -> str:
    at = parse_datetime(value) if value else None
    return in_utc(at) if at is not None else value


def _with(text: str, note: str) -> str:
    note = (note or "").strip()
    return f"{text}: {note}" if note else text


def _by(event: CaseEvent) -> str:
    if event.actor_kind == ActorKind.USER and event.actor_id:
        return event.actor.get_username() if event.actor else "a former user"
    if event.actor_kind == ActorKind.CUSTOMER:
        return "the customer"
    return "the system"


# Report formats (Report.format, InboundMessage.format) in words: the page shows no machine keys.
FORMAT_WORDS = {
    "arf": "ARF feedback report",
    "xarf": "X-ARF report",
    "xarf4": "X-ARF report",
    "spamcop": "SpamCop report",
    "acns": "ACNS copyright notice",
    "safebrowsing": "Safe Browsing notice",
    "shadowserver": "Shadowserver report",
    "csv": "CSV feed",
    "keyvalue": "fields in a mail",
    "freetext": "free text",
    "manual": "entered by hand",
    "api": "API",
}
# Case.restricted and provisioning details: what was restricted, in words.
RESTRICTION_WORDS = {"port25": "outgoing mail (port 25) blocked", "walled_garden": "walled garden"}


@register.filter
def format_words(key: str | None) -> str:
    """A report format's machine key in words ("arf" -> "ARF feedback report")."""
    if not key:
        return "unknown format"
    return FORMAT_WORDS.get(key, key.replace("_", " "))


@register.filter
def restriction_words(key: str | None) -> str:
    if not key:
        return ""
    return RESTRICTION_WORDS.get(key, key.replace("_", " "))


_FORMAT_IN_NOTE = re.compile(r"\(([a-z0-9_]+)\)$")


def _reports_added(e: CaseEvent) -> str:
    # Filing writes new=count and note="3 reports from message 12 (arf)": the format is a key.
    note = _FORMAT_IN_NOTE.sub(lambda m: f"({format_words(m.group(1))})", e.note or "")
    count = e.new or "?"
    head = f"{count} report{'' if count == '1' else 's'}"
    rest = note[len(head) :] if note.startswith(head) else (f" ({note})" if note else "")
    return f"{head} added{rest}"


def _rung(e: CaseEvent) -> str:
    new = e.new
    if new in ("first_notice", "warning"):
        text = f"{rung_words(new)} sent"
    elif new in ("suspension", "termination"):
        text = f"{rung_words(new)} carried out"
    else:
        text = f"rung: {rung_words(e.old)} → {rung_words(new)}"
    return _with(text, e.note)


def _approved(e: CaseEvent) -> str:
    scheduled = " (scheduled)" if e.new == "scheduled" else ""
    return _with(f"approved by {_by(e)}{scheduled}", e.note)


def _hold(e: CaseEvent) -> str:
    return _with(f"held until {_time_words(e.new)}", e.note)


def _provisioning(e: CaseEvent) -> str:
    # provisioning: old=the action, new=the outcome (requested, manual, retrying, done, failed),
    # note=the outcome in words ("to be done by hand: suspend").
    who = f", by {_by(e)}" if e.actor_kind == ActorKind.USER else ""
    if e.note:
        return f"provisioning{who}: {e.note}"
    return f"provisioning{who}: {_label(ProvisioningAction.choices, e.old)} {e.new.replace('_', ' ')}".rstrip()


def _notice_kind(e: CaseEvent) -> str:
    return _label(NoticeKind.choices, e.new) if e.new else "notice"


SENTENCES: dict[str, Callable[[CaseEvent], str]] = {
    "opened": lambda e: "case opened",
    "reports_added": _reports_added,
    "status": lambda e: _with(
        f"status: {_label(CaseStatus.choices, e.old) or 'new'} → {_label(CaseStatus.choices, e.new)}, by {_by(e)}",
        e.note,
    ),
    "assignee": lambda e: f"assigned to {e.new}, by {_by(e)}" if e.new else f"unassigned, by {_by(e)}",
    "note": lambda e: _with(f"note by {_by(e)}", e.note),
    "rung": _rung,
    "proposed": lambda e: _with(f"{rung_words(e.new)} proposed, for a NOC member to send", e.note),
    "approval_requested": lambda e: _with(f"{rung_words(e.new)} proposed", e.note),
    "approved": _approved,
    "refused": lambda e: _with(f"refused by {_by(e)}", e.note),
    "approval_cancelled": lambda e: _with(f"scheduled step cancelled, by {_by(e)}", e.note),
    "reinstated": lambda e: _with(f"reinstated by {_by(e)} (back to {rung_words(e.new)})", e.note),
    "hold": _hold,
    "hold_released": lambda e: f"hold released, by {_by(e)}",
    "hold_expired": lambda e: _with(f"hold ended ({_time_words(e.old)})", e.note),
    "de_escalated": lambda e: _with(f"de-escalated: {rung_words(e.old)} → {rung_words(e.new)}, by {_by(e)}", e.note),
    "report_confirmed": lambda e: f"report {e.new} confirmed, by {_by(e)}",
    "report_rejected": lambda e: _with(f"report {e.new} rejected as false, by {_by(e)}", e.note),
    "merged_into": lambda e: _with(f"merged into AD-{e.new}, by {_by(e)}", e.note),
    "merged_from": lambda e: _with(f"case AD-{e.new} merged into this one, by {_by(e)}", e.note),
    "links_revoked": lambda e: _with(f"customer links withdrawn, by {_by(e)}", e.note),
    # replies: new=the channel, note=an excerpt of the reply (shown in full in the replies panel).
    "customer_reply": lambda e: "customer replied" + (f" ({_label(ReplyChannel.choices, e.new)})" if e.new else ""),
    "reply_reviewed": lambda e: _with(f"customer's reply reviewed, by {_by(e)}", e.note),
    # notices.issue_notice: new=the notice kind; its note repeats the decision's reason, told above it.
    "notice": lambda e: f"{_notice_kind(e)} written, queued for sending",
    "notice_failed": lambda e: _with(f"notice failed ({_notice_kind(e)})", e.note),
    "provisioning": _provisioning,
}


def _generic(e: CaseEvent) -> str:
    text = e.kind.replace("_", " ").strip() or "change"
    if e.old or e.new:
        text += f": {(e.old or '—').replace('_', ' ')} → {(e.new or '—').replace('_', ' ')}"
    if e.actor_kind == ActorKind.USER:
        text += f", by {_by(e)}"
    return _with(text, e.note)


@register.filter
def event_sentence(event: CaseEvent) -> str:
    """One CaseEvent as a sentence ("approved by manager1: reason"). Plain text; escape it."""
    return SENTENCES.get(event.kind, _generic)(event)


# Evidence written by parsers that keep a person's own sentences, and where those start.
REPORTER_WORDS_HEADING = "The reporter wrote:"  # cases.intake.feeds (key:value fields in a complaint)
REPORTER_WORDS_SHOWN = 300


@register.filter
def reporter_words(report) -> str:
    """The reporter's own sentences from a report's evidence, shortened for the reports table
    (the whole evidence is one click away). Empty for machine feeds, which have no sentences."""
    evidence = report.evidence or ""
    if REPORTER_WORDS_HEADING in evidence:
        words = evidence.split(REPORTER_WORDS_HEADING, 1)[1]
    elif report.format == "freetext":
        # freetext: "[candidate: ...]" lines, a blank line, then "Subject: ...", a blank line, the text.
        parts = evidence.split("\n\n", 2)
        words = parts[2] if len(parts) == 3 else ""
    elif report.format == "manual":
        words = evidence
    else:
        return ""
    words = " ".join(words.split())
    return words if len(words) <= REPORTER_WORDS_SHOWN else words[: REPORTER_WORDS_SHOWN - 1] + "…"


@register.filter
def rung_badge(rung: int | None) -> str:
    """The Bootstrap colour for a rung's badge: calm to alarming as the ladder climbs."""
    return {
        Rung.NONE: "text-bg-light",
        Rung.FIRST_NOTICE: "text-bg-info",
        Rung.WARNING: "text-bg-warning",
        Rung.SUSPENSION: "text-bg-danger",
        Rung.TERMINATION: "text-bg-dark",
    }.get(rung, "text-bg-light")


@register.simple_tag(takes_context=True)
def pending_approval_count(context) -> int | None:
    """Pending approvals, for the managers' nav badge (one indexed count, for managers only)."""
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not has_role(user, MANAGER):
        return None
    if not hasattr(request, "_pending_approval_count"):
        request._pending_approval_count = Approval.objects.pending().count()  # approval_queue_idx
    return request._pending_approval_count
