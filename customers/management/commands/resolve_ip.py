"""Who held an IP address at a moment: `manage.py resolve_ip 198.51.100.7 --at 2025-03-01T14:02:00Z [--json]`."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from abusedesk.lib import dates
from customers.resolver import normalize_ip, resolution_json, resolve


def parse_instant(text: str) -> datetime:
    """An ISO 8601 time; without a zone it is UTC (abusedesk.lib.dates). Raises CommandError."""
    try:
        return dates.parse_iso(text)
    except ValueError as exc:
        raise CommandError(f"--at {exc}.") from None


class Command(BaseCommand):
    help = "Print the customer that held an IP address at a moment (default: now)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("ip", help="IPv4 or IPv6 address; ::ffff:a.b.c.d counts as the IPv4 address.")
        parser.add_argument("--at", help="ISO 8601 time; no zone means UTC. Default: now.")
        parser.add_argument(
            "--port", type=int, help="The source port, for an address of a CGNAT pool (shared by many subscribers)."
        )
        parser.add_argument("--json", action="store_true", help="Print exactly one JSON object.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            addr = normalize_ip(options["ip"])
        except ValueError:
            raise CommandError(f"{options['ip']!r} is not an IPv4 or IPv6 address.") from None
        at = parse_instant(options["at"]) if options["at"] else timezone.now()
        port = options["port"]
        if port is not None and not 0 <= port <= 65535:
            raise CommandError(f"--port {port} is not a port number (0–65535).")
        allocation = resolve(addr, at, port)
        if options["json"]:
            self.stdout.write(json.dumps(resolution_json(str(addr), at, allocation, port)))
            return
        if allocation is None:
            self.stdout.write(f"{addr} at {at.isoformat()}: nobody held it.")
            return
        customer = allocation.customer
        until = allocation.valid_to.isoformat() if allocation.valid_to else "open"
        self.stdout.write(
            f"{addr} at {at.isoformat()}: {customer.account} {customer.name} ({customer.get_kind_display()})\n"
            f"  allocation {allocation.network}"
            + (f" ports {allocation.port_from}–{allocation.port_to}" if allocation.is_port_block else "")
            + f", {allocation.valid_from.isoformat()} – {until}, source {allocation.source}"
            + (f"\n  {allocation.resolution_note}" if allocation.resolution_note else "")
        )
