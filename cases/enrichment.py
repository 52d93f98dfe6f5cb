"""Enrichment: the PTR name and DNSBL listings of a reported IP, stored on the report.

DNS happens outside any transaction (it can take seconds); the answers are written with one
short UPDATE. Running it twice is harmless: a report enriched recently is left alone.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from abusedesk.lib import dns as adns
from cases.models import Report

log = logging.getLogger(__name__)

# A report enriched (without error) this recently is not looked up again.
DEFAULT_REFRESH_HOURS = 24


def _refresh_after() -> timedelta:
    return timedelta(hours=float(getattr(settings, "ENRICHMENT_REFRESH_HOURS", DEFAULT_REFRESH_HOURS)))


def look_up(ip: str, zones: list[str]) -> tuple[str, dict[str, list[str]], list[str]]:
    """(ptr, dnsbl, errors) for ip. Never raises: each failed look-up becomes an error line."""
    errors: list[str] = []
    ptr = ""
    try:
        ptr = adns.reverse_name(ip) or ""
    except ValueError:
        return "", {}, [f"not an IP address: {ip!r}"[:200]]
    except adns.DnsError as exc:
        errors.append(f"PTR: {exc}")
    dnsbl: dict[str, list[str]] = {}
    # One zone at a time, so a list that times out does not lose the answers of the others.
    for zone in zones:
        try:
            dnsbl.update(adns.dnsbl_listings(ip, [zone]))
        except adns.DnsError as exc:
            errors.append(f"{zone}: {exc}")
    return ptr, dnsbl, errors


def enrich_report(report_id: int, *, force: bool = False) -> None:
    """Look up the report's IP and store ptr, dnsbl, enrichment_error and enriched_at.

    Reports about the same IP created in the same window that are not enriched yet get the
    same answers: intake queues one task per distinct IP of a batch.
    """
    row = Report.objects.filter(pk=report_id).values("ip", "enriched_at", "enrichment_error").first()
    if row is None:
        return
    now = timezone.now()
    refresh = _refresh_after()
    if (
        not force
        and row["enriched_at"] is not None
        and not row["enrichment_error"]
        and row["enriched_at"] > now - refresh
    ):
        return
    zones = [zone for zone in getattr(settings, "DNSBL_ZONES", []) if zone.strip()]
    ptr, dnsbl, errors = look_up(row["ip"], zones)
    if errors:
        log.warning("enrichment of report %s (%s) incomplete: %s", report_id, row["ip"], "; ".join(errors))
    same_ip_pending = Q(ip=row["ip"], enriched_at__isnull=True, created_at__gte=now - refresh)
    Report.objects.filter(Q(pk=report_id) | same_ip_pending).update(
        ptr=ptr[:255],
        dnsbl=dnsbl,
        enrichment_error="; ".join(errors)[:255],
        enriched_at=timezone.now(),
    )
