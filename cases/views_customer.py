"""The customer's page: opened from the signed link in a notice, with no login.

Everything here is reached only through a valid token (cases.services.replies); a bad,
expired or revoked token gets a plain page that says so, never the case. The page shows
what was reported (third parties' addresses redacted), the notices sent and the replies,
and takes one thing: a new reply. Nothing else about the case can be changed from it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_not_required
from django.db.models import Count, Max, Min
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from abusedesk.lib.redaction import redact
from cases.models import Case, NoticeKind, NoticeStatus, ReplyChannel
from cases.services.common import TransitionError
from cases.services.links import LinkError, read_link_token
from cases.services.replies import MAX_WAITING_REPLIES, REPLY_MAX_CHARS, current_case, record_customer_reply

# What the page shows of a case with many reports: the newest, each evidence cut to an excerpt.
REPORTS_SHOWN = 50
EVIDENCE_EXCERPT_CHARS = 2000


class ReplyForm(forms.Form):
    text = forms.CharField(
        label="Fixed — here is what I did",
        max_length=REPLY_MAX_CHARS,
        widget=forms.Textarea(attrs={"rows": 6, "maxlength": REPLY_MAX_CHARS}),
        help_text="What you found and what you changed. Our abuse team reads every reply.",
    )


def _private(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The token is in the URL: keep it out of Referer headers, search engines and caches."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Referrer-Policy"] = "no-referrer"
        response["X-Robots-Tag"] = "noindex, nofollow"
        return response

    return wrapped


def _page_context(case: Case) -> dict:
    """Four queries: the addresses, the newest reports, the notices sent, the replies."""
    counted = case.reports.filter(duplicate_of__isnull=True, rejected_at__isnull=True)
    by_ip = counted.values("ip").annotate(count=Count("id"), first=Min("occurred_at"), last=Max("occurred_at"))
    addresses = list(by_ip.order_by("ip"))
    keep = {a["ip"] for a in addresses}
    reports = [
        {
            "at": r.occurred_at,
            "ip": r.ip,
            "port": r.port,
            "evidence": redact(r.evidence, keep, limit=EVIDENCE_EXCERPT_CHARS),
        }
        for r in counted.order_by("-occurred_at", "-id").only("occurred_at", "ip", "port", "evidence")[:REPORTS_SHOWN]
    ]
    # What went to the customer, as sent; acknowledgements went to reporters and are not theirs to read.
    notices = (
        case.notices.filter(status=NoticeStatus.SENT)
        .exclude(kind=NoticeKind.REPORTER_ACK)
        .only("kind", "subject", "body", "sent_at")
        .order_by("sent_at", "id")
    )
    replies = list(case.replies.only("channel", "text", "received_at", "reviewed_at").order_by("received_at", "id"))
    return {
        "case": case,
        "addresses": addresses,
        "reports": reports,
        "more_reports": max(0, sum(a["count"] for a in addresses) - len(reports)),
        "notices": notices,
        "replies": replies,
        "waiting_full": sum(1 for r in replies if r.reviewed_at is None) >= MAX_WAITING_REPLIES,
    }


# No CSRF token: the signed token in the path is the capability, and the view uses no session
# or cookie (request.user is never read), so a forged cross-site POST can do nothing that
# knowing the token would not let anyone do directly. It also has to be this way: under
# Referrer-Policy: no-referrer, browsers send "Origin: null" with the form's POST, which
# Django's CSRF check refuses.
@csrf_exempt
@login_not_required
@require_http_methods(["GET", "HEAD", "POST"])
@never_cache
@_private
def customer_case(request: HttpRequest, token: str) -> HttpResponse:
    try:
        case = current_case(read_link_token(token))
    except LinkError as exc:
        return render(request, "customer/link_error.html", {"error": str(exc)}, status=403)
    form = ReplyForm(request.POST if request.method == "POST" else None)
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                record_customer_reply(case, form.cleaned_data["text"], channel=ReplyChannel.LINK)
            except TransitionError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "Thank you: your reply is on the case. Our abuse team will read it.")
                return redirect(request.path)
        status = 400
    return render(request, "customer/case.html", {**_page_context(case), "form": form}, status=status)
