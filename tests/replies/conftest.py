"""Cases with evidence, notices and links for the customer-side tests."""

from __future__ import annotations

import itertools

import pytest
from django.urls import reverse
from django.utils import timezone

from cases.models import Case, Notice, NoticeKind, NoticeStatus
from cases.services.filing import record_reports
from cases.services.links import make_link_token
from tests.cases.helpers import customer_with, event

REPORTED_IP = "198.51.100.7"
# Untrusted evidence: markup, and third parties' addresses next to the customer's own.
EVIDENCE = (
    "Received: from mx.victim.example (mx.victim.example [203.0.113.9]) by 2001:db8::25\n"
    "From: victim@victim.example\n"
    f"Spam sent from {REPORTED_IP} <script>alert('evidence')</script>\n"
)
_keys = itertools.count(1)


@pytest.fixture
def case(db) -> Case:
    customer_with("198.51.100.0/24", "R-7")
    record_reports([event(REPORTED_IP, evidence=EVIDENCE)])
    return Case.objects.select_related("customer").get()


def sent_notice(case: Case, *, kind: str = NoticeKind.FIRST_NOTICE, status: str = NoticeStatus.SENT, **kw) -> Notice:
    n = next(_keys)
    defaults = {
        "recipients": ["owner@customer.example"],
        "subject": f"Abuse report {case.reference}",
        "body": f"We received a report <b>about</b> {REPORTED_IP}. Notice {n}.",
        "message_id": f"<notice.{n}.test@isp.example>",
        "sent_at": timezone.now() if status == NoticeStatus.SENT else None,
    }
    return Notice.objects.create(case=case, kind=kind, key=f"test:{n}", status=status, **{**defaults, **kw})


def link(case: Case) -> str:
    return reverse("customer_case", args=[make_link_token(case)])
