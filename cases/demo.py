"""Demo reports for `seed_demo`: realistic messages in the formats the desk reads, sent
through the real intake (receive, parse, resolve, group), so the demo queue has work in it."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from django.test import override_settings
from django.utils import timezone

from cases.services.intake import receive
from customers.models import Allocation

RFC2822 = "%a, %d %b %Y %H:%M:%S +0000"


def _arf(n: int, ip: str, at: datetime) -> bytes:
    date = at.strftime(RFC2822)
    return (
        f"From: Feedback Loop <fbl@feedback.mailbox.example>\r\nTo: abuse@isp.example\r\nDate: {date}\r\n"
        f"Message-ID: <demo-fbl-{n}@feedback.mailbox.example>\r\nSubject: Email Feedback Report for IP {ip}\r\n"
        'MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=feedback-report; boundary="fbl"\r\n\r\n'
        "--fbl\r\nContent-Type: text/plain\r\n\r\nA user of ours marked this message as spam.\r\n\r\n"
        "--fbl\r\nContent-Type: message/feedback-report\r\n\r\n"
        f"Feedback-Type: abuse\r\nUser-Agent: DemoFBL/1.0\r\nVersion: 1\r\nSource-IP: {ip}\r\n"
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
    messages.append(_garbled(1, now - timedelta(hours=2)))
    # DNS look-ups are left to the running desk: a demo machine may have no resolver.
    with override_settings(ENRICHMENT_ENABLED=False):
        for raw in messages:
            receive(raw, "email")
    return len(messages)
