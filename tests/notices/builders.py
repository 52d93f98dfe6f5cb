"""Builders for notice tests: a customer, a case filed through the real intake, a raw message.

Reports are filed with cases.services.filing (as intake files them) inside a captured commit,
so neither the ladder nor any sending runs unless a test asks for it.
"""

from __future__ import annotations

import hashlib
import itertools
from datetime import UTC, datetime

from cases.intake.base import ParsedEvent
from cases.models import Case, Channel, InboundMessage, ParseStatus, Report
from cases.services.filing import record_pairs
from customers.models import Contact, Customer
from tests.customers.factories import make_allocation, make_customer

T0 = datetime(2026, 11, 20, 14, 2, tzinfo=UTC)
_seq = itertools.count(1)


def customer_on(network: str, *, kind: str = "residential", contacts: tuple[str, ...] | None = None) -> Customer:
    """A customer holding `network`, with contacts that receive notices (one by default)."""
    customer = make_customer(kind=kind)
    make_allocation(network, customer=customer)
    for email in contacts if contacts is not None else (f"noc@{customer.account.lower()}.example",):
        Contact.objects.create(customer=customer, email=email)
    return customer


def raw_mail(sender: str = "alice@people.example", headers: str = "", body: str = "Spam from 198.51.100.7.") -> bytes:
    n = next(_seq)
    return (
        f"From: {sender}\r\nTo: abuse@isp.example\r\nSubject: complaint {n}\r\n"
        f"Message-ID: <complaint-{n}@people.example>\r\n{headers}\r\n{body}\r\n"
    ).encode()


def inbound(raw: bytes, sender: str = "") -> InboundMessage:
    return InboundMessage.objects.create(
        raw=raw,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        sender=sender,
        channel=Channel.EMAIL,
        status=ParseStatus.PARSED,
    )


def file_reports(capture, *events: ParsedEvent, message: InboundMessage | None = None) -> list[Report]:
    """File events as intake does; what it queues after commit (the ladder) is captured, not run."""
    with capture(execute=False):
        summary = record_pairs([(e, message) for e in events])
    return list(Report.objects.filter(pk__in=summary.new_report_ids).order_by("pk"))


def spam(ip: str = "198.51.100.7", *, at: datetime = T0, reporter: str = "fbl@mail.example", **kw) -> ParsedEvent:
    return ParsedEvent(
        ip=ip,
        occurred_at=at,
        category=kw.pop("category", "spam"),
        format=kw.pop("format", "arf"),
        reporter=reporter,
        **kw,
    )


def case_with_report(capture, *, evidence: str = "", **kw) -> Case:
    """A customer on 198.51.100.0/24 and a case with one report from 198.51.100.7."""
    customer = kw.pop("customer", None) or customer_on("198.51.100.0/24")
    file_reports(capture, spam(evidence=evidence, **kw))
    return Case.objects.select_related("customer").get(customer=customer)
