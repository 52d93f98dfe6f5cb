"""Demo reports for `seed_demo`: realistic messages in the formats the desk reads, sent
through the real intake (receive, parse, resolve, group), so the demo queue has work in it."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import Q
from django.test import override_settings
from django.utils import timezone

from cases.services.intake import receive
from customers.models import Allocation, AllocationSource

RFC2822 = "%a, %d %b %Y %H:%M:%S +0000"


def _arf(n: int, ip: str, at: datetime, port: int | None = None) -> bytes:
    date = at.strftime(RFC2822)
    port_line = f"Source-Port: {port}\r\n" if port is not None else ""
    return (
        f"From: Feedback Loop <fbl@feedback.mailbox.example>\r\nTo: abuse@isp.example\r\nDate: {date}\r\n"
        f"Message-ID: <demo-fbl-{n}@feedback.mailbox.example>\r\nSubject: Email Feedback Report for IP {ip}\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="fbl"\r\n\r\n'
        "--fbl\r\nContent-Type: text/plain\r\n\r\nA user of ours marked this message as spam.\r\n\r\n"
        "--fbl\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: DemoFBL/1.0\r\nVersion: 1\r\nSource-IP: {ip}\r\n{port_line}"
        f"Arrival-Date: {date}\r\nReported-Domain: deals.example\r\n\r\n"
        "--fbl\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"Received: from [{ip}] by mx.feedback.mailbox.example; {date}\r\n"
        f"From: offers@deals.example\r\nTo: someone@mailbox.example\r\nSubject: Cheap watches\r\nDate: {date}\r\n"
        "\r\n--fbl--\r\n"
    ).encode()


def _shadowserver(rows: list[tuple[str, datetime]], day: datetime) -> bytes:
    lines = ['"timestamp","ip","protocol","port","hostname","tag","asn","geo","region","city","version"']
    lines += [f'"{at:%Y-%m-%d %H:%M:%S}","{ip}","udp",123,"","ntp",64500,"XX","Demo","Demo","4"' for ip, at in rows]
    body = "\r\n".join(lines) + "\r\n"
    return (
        f"From: Shadowserver <autoreports@shadowserver.example>\r\nTo: abuse@isp.example\r\n"
        f"Date: {day.strftime(RFC2822)}\r\nMessage-ID: <demo-ss-{day:%Y%m%d}@shadowserver.example>\r\n"
        f"Subject: [64500] Shadowserver Open NTP Report: {day:%Y-%m-%d}\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="ss"\r\n\r\n--ss\r\nContent-Type: text/plain\r\n\r\n'
        "Attached is the daily report for your network.\r\n--ss\r\nContent-Type: text/csv\r\n"
        f'Content-Disposition: attachment; filename="{day:%Y-%m-%d}-scan_ntp-asn64500.csv"\r\n\r\n'
        f"{body}--ss--\r\n"
    ).encode()


def _complaint(n: int, ip: str, at: datetime) -> bytes:
    return (
        f"From: Jan de Vries <jan@smallshop.example>\r\nTo: abuse@isp.example\r\nDate: {at.strftime(RFC2822)}\r\n"
        f"Message-ID: <demo-complaint-{n}@smallshop.example>\r\nSubject: SSH brute force from your network\r\n\r\n"
        "Hello,\r\n\r\nsomeone on your network keeps trying to log in to our server over SSH.\r\n"
        f"Source: {ip}\r\nTime: {at:%Y-%m-%d %H:%M:%S} UTC\r\nAbout 3,000 failed logins in an hour.\r\n\r\n"
        "Please make it stop.\r\nJan\r\n"
    ).encode()


def _garbled(n: int, at: datetime) -> bytes:
    return (
        f"From: someone@unknown.example\r\nTo: abuse@isp.example\r\nDate: {at.strftime(RFC2822)}\r\n"
        f"Message-ID: <demo-garbled-{n}@unknown.example>\r\nSubject: your customer is hacking me!!!\r\n\r\n"
        "They are hacking my computer since yesterday, do something now.\r\n"
    ).encode()


def seed_demo_reports(rng: random.Random) -> int:
    """Send a few dozen demo reports through intake; returns how many messages were stored."""
    now = timezone.now().replace(microsecond=0)
    allocations = list(
        Allocation.objects.filter(family=4, prefixlen__gte=29, valid_from__lt=now - timedelta(days=1))
        .exclude(source__in=(AllocationSource.PORT_BLOCK, AllocationSource.CGNAT_POOL))
        .select_related("customer")
        .order_by("pk")
    )
    if not allocations:
        return 0

    def held_ip(alloc: Allocation) -> tuple[str, datetime]:
        net = alloc.ip_network
        ip = net.network_address + (rng.randrange(net.num_addresses) if net.num_addresses > 1 else 0)
        end = min(alloc.valid_to or now, now) - timedelta(minutes=1)
        lo = max(alloc.valid_from, now - timedelta(days=20))
        at = lo + (end - lo) * rng.random() if end > lo else alloc.valid_from
        return str(ip), at.replace(microsecond=0)

    messages: list[bytes] = []
    offenders = rng.sample(allocations, min(12, len(allocations)))
    for n, alloc in enumerate(offenders * 2):
        messages.append(_arf(n, *held_ip(alloc)))
    for day in range(3):
        when = now - timedelta(days=day + 1)
        rows = [held_ip(a) for a in rng.sample(allocations, min(15, len(allocations)))]
        messages.append(_shadowserver(rows, when))
    for n, alloc in enumerate(rng.sample(allocations, min(4, len(allocations)))):
        messages.append(_complaint(n, *held_ip(alloc)))
    messages.append(_complaint(99, "192.0.2.250", now - timedelta(hours=5)))  # not ours (usually)
    # Behind CGNAT: with the source port the report finds the subscriber; without, it lands on the
    # pool, saying the port is needed.
    block = (
        Allocation.objects.filter(source=AllocationSource.PORT_BLOCK, valid_from__lt=now - timedelta(hours=3))
        .order_by("-valid_from")
        .first()
    )
    if block is not None:
        at = max(block.valid_from + timedelta(minutes=5), now - timedelta(hours=2))
        if block.valid_to is not None:
            at = block.valid_from + (block.valid_to - block.valid_from) / 2
        ip = str(block.ip_network.network_address)
        messages.append(_arf(90, ip, at.replace(microsecond=0), port=block.port_from + 17))
        messages.append(_complaint(98, ip, at.replace(microsecond=0)))
    messages.append(_garbled(1, now - timedelta(hours=2)))
    # DNS look-ups are left to the running desk: a demo machine may have no resolver.
    with override_settings(ENRICHMENT_ENABLED=False):
        for raw in messages:
            receive(raw, "email")
    return len(messages)


def _file_at(raw: bytes, at: datetime) -> list[int]:
    """Store and parse a demo message now, and let the ladder decide as it would have at `at`.

    The story below happened over the last weeks; the ladder's grace periods count from the
    time each step was taken, so each step is evaluated at its own time. What intake queues
    after commit (the same evaluation at the real now) then finds nothing more to do.
    """
    from cases.services import intake, ladder

    with transaction.atomic():
        message, _ = receive(raw, "email")
        intake.process_message(message.pk)
        case_ids = sorted({pk for pk in message.reports.values_list("case_id", flat=True) if pk})
        for pk in case_ids:
            ladder.evaluate_case(pk, now=at + timedelta(minutes=5))
    return case_ids


def seed_demo_ladder(rng: random.Random, manager) -> dict[str, int]:
    """Customers at every rung of the ladder, with the history that brought them there.

    A warning, a suspension waiting for a manager, a suspension carried out, a scheduled one,
    a customer who was suspended, reinstated and reported again (termination proposed), a
    business customer's first notice waiting for a NOC member, and customers' replies.
    """
    from cases.models import Approval, ApprovalStatus, Case, ReplyChannel
    from cases.services import ladder, replies

    now = timezone.now().replace(microsecond=0)
    day = timedelta(days=1)
    picked: set[int] = set()

    def line(kind: str) -> Allocation | None:
        candidates = [
            a
            # A line held all along (a static block, a residential line's IPv6 prefix): the story's
            # reports from weeks ago must resolve to the same customer.
            for a in Allocation.objects.filter(
                customer__kind=kind, valid_to__isnull=True, valid_from__lt=now - 60 * day
            )
            .filter(Q(family=6) | Q(prefixlen__gte=29))
            .exclude(source__in=(AllocationSource.PORT_BLOCK, AllocationSource.CGNAT_POOL))
            .select_related("customer")
            .order_by("pk")[:400]
            if a.customer_id not in picked and a.customer.contacts.exists()
        ]
        if not candidates:
            return None
        alloc = rng.choice(candidates)
        picked.add(alloc.customer_id)
        return alloc

    def report(n: int, alloc: Allocation, at: datetime) -> list[int]:
        ip = str(alloc.ip_network.network_address + (1 if alloc.ip_network.num_addresses > 1 else 0))
        return _file_at(_arf(1000 + n, ip, at), at)

    def pending(case_id: int) -> Approval:
        return Approval.objects.get(case_id=case_id, status=ApprovalStatus.PENDING)

    made: dict[str, int] = {}
    n = 0
    # (name, days ago of each report): the ladder climbs by itself where the policy says so.
    for name, days in (("warning", (10, 6)), ("suspension_proposed", (20, 16, 12)), ("suspended", (21, 17, 13))):
        alloc = line("residential")
        if alloc is None:
            continue
        for d in days:
            n += 1
            case_ids = report(n, alloc, now - d * day)
        made[name] = case_ids[0]
    if "suspended" in made:
        with transaction.atomic():
            ladder.approve(
                pending(made["suspended"]),
                actor=manager,
                reason="Three reports after a warning; no reply.",
                now=now - 12 * day,
            )
    alloc = line("residential")
    if alloc is not None:
        for d in (9, 5):
            n += 1
            case_ids = report(n, alloc, now - d * day)
        n += 1
        case_ids = report(n, alloc, now - 1 * day)
        case = Case.objects.get(pk=case_ids[0])
        approval = Approval.objects.filter(case=case, status=ApprovalStatus.PENDING).first()
        if approval is not None:
            ladder.approve(
                approval, actor=manager, reason="Give them two days to clean up.", scheduled_for=now + 2 * day
            )
        made["suspension_scheduled"] = case.pk
    # Suspended, reinstated, and reported again on probation: termination waits for a manager;
    # a second such customer's termination was approved.
    for name in ("termination_proposed", "terminated"):
        alloc = line("residential")
        if alloc is None:
            continue
        for d in (45, 41, 37):
            n += 1
            case_ids = report(n, alloc, now - d * day)
        ladder.approve(pending(case_ids[0]), actor=manager, reason="Repeated spam after a warning.", now=now - 36 * day)
        ladder.reinstate(
            Case.objects.get(pk=case_ids[0]), actor=manager, reason="Customer cleaned the machine.", now=now - 30 * day
        )
        n += 1
        report(n, alloc, now - 3 * day)
        if name == "terminated":
            ladder.approve(
                pending(case_ids[0]), actor=manager, reason="Spam again within weeks of reinstatement.", now=now - day
            )
        made[name] = case_ids[0]
    # A first notice the customer answered from the link: escalation waits for a NOC member's review.
    alloc = line("residential")
    if alloc is not None:
        n += 1
        case = Case.objects.get(pk=report(n, alloc, now - 2 * day)[0])
        replies.record_customer_reply(
            case,
            "Thanks for the notice. It was my son's laptop: we reinstalled it and changed the mail password.",
            channel=ReplyChannel.LINK,
        )
        made["customer_replied"] = case.pk
    # A business customer's first notice waits for a NOC member to confirm it.
    alloc = line("business")
    if alloc is not None:
        n += 1
        made["business_first_notice"] = report(n, alloc, now - 4 * 3600 * timedelta(seconds=1))[0]
    return made
