from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from io import StringIO

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command

from customers import services
from customers.models import Customer

pytestmark = pytest.mark.django_db

T0 = datetime(2025, 3, 1, 0, 0, tzinfo=UTC)
T1 = datetime(2025, 3, 2, 12, 0, tzinfo=UTC)


def resolve_json(*args: str) -> dict:
    out = StringIO()
    call_command("resolve_ip", *args, "--json", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1  # exactly one object
    return json.loads(lines[0])


@pytest.fixture
def plan():
    home = Customer.objects.create(account="R-1", name="Home Line", kind="residential")
    shop = Customer.objects.create(account="B-1", name="Corner Shop", kind="business")
    pool = Customer.objects.create(account="B-2", name="Reseller", kind="business")
    services.create_allocation(customer=home, network="198.51.100.7/32", valid_from=T0, valid_to=T1, source="lease")
    services.create_allocation(customer=pool, network="192.0.2.0/24", valid_from=T0)
    services.create_allocation(customer=shop, network="192.0.2.8/29", valid_from=T0)
    services.create_allocation(customer=shop, network="2001:db8:5::/48", valid_from=T0)
    return {"home": home, "shop": shop, "pool": pool}


def test_the_json_has_exactly_this_shape(plan):
    result = resolve_json("198.51.100.7", "--at", "2025-03-01T10:00:00Z")
    assert result == {
        "ip": "198.51.100.7",
        "at": "2025-03-01T10:00:00+00:00",
        "port": None,
        "note": "",
        "customer": {"account": "R-1", "name": "Home Line", "kind": "residential"},
        "allocation": {
            "network": "198.51.100.7/32",
            "valid_from": "2025-03-01T00:00:00+00:00",
            "valid_to": "2025-03-02T12:00:00+00:00",
            "source": "lease",
            "port_from": 0,
            "port_to": 65535,
        },
    }


def test_valid_from_is_inclusive_and_valid_to_exclusive(plan):
    assert resolve_json("198.51.100.7", "--at", "2025-03-01T00:00:00Z")["customer"]["account"] == "R-1"
    assert resolve_json("198.51.100.7", "--at", "2025-02-28T23:59:59Z")["customer"] is None
    assert resolve_json("198.51.100.7", "--at", "2025-03-02T11:59:59Z")["customer"]["account"] == "R-1"
    at_end = resolve_json("198.51.100.7", "--at", "2025-03-02T12:00:00Z")
    assert at_end["customer"] is None and at_end["allocation"] is None


def test_a_time_without_zone_is_utc_and_other_zones_are_converted(plan):
    assert resolve_json("198.51.100.7", "--at", "2025-03-02T11:30:00")["at"] == "2025-03-02T11:30:00+00:00"
    # 13:30 in UTC+02:00 is 11:30 UTC: still inside the lease.
    result = resolve_json("198.51.100.7", "--at", "2025-03-02T13:30:00+02:00")
    assert result["customer"]["account"] == "R-1"


def test_the_most_specific_network_wins(plan):
    assert resolve_json("192.0.2.9", "--at", "2025-04-01T00:00:00Z")["customer"]["account"] == "B-1"
    assert resolve_json("192.0.2.200", "--at", "2025-04-01T00:00:00Z")["customer"]["account"] == "B-2"


def test_ipv6_and_an_open_allocation(plan):
    result = resolve_json("2001:db8:5:ff::1", "--at", "2030-01-01T00:00:00Z")
    assert result["ip"] == "2001:db8:5:ff::1"
    assert result["customer"]["account"] == "B-1"
    assert result["allocation"]["network"] == "2001:db8:5::/48"
    assert result["allocation"]["valid_to"] is None


def test_an_ipv4_mapped_ipv6_address_resolves_as_ipv4(plan):
    result = resolve_json("::ffff:198.51.100.7", "--at", "2025-03-01T10:00:00Z")
    assert result["ip"] == "198.51.100.7"
    assert result["customer"]["account"] == "R-1"


def test_no_match_gives_nulls(plan):
    result = resolve_json("203.0.113.5", "--at", "2025-03-01T10:00:00Z")
    assert result == {
        "ip": "203.0.113.5",
        "at": "2025-03-01T10:00:00+00:00",
        "port": None,
        "note": "",
        "customer": None,
        "allocation": None,
    }


def test_without_at_it_answers_for_now(plan):
    result = resolve_json("192.0.2.9")
    assert result["customer"]["account"] == "B-1"
    assert datetime.fromisoformat(result["at"]).tzinfo is not None


def test_the_plain_output_names_the_customer(plan):
    out = StringIO()
    call_command("resolve_ip", "192.0.2.9", stdout=out)
    assert "B-1 Corner Shop" in out.getvalue() and "192.0.2.8/29" in out.getvalue()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["198.51.100.300"], "not an IPv4 or IPv6 address"),
        (["bogus"], "not an IPv4 or IPv6 address"),
        (["198.51.100.7", "--at", "yesterday"], "not an ISO 8601 time"),
        (["198.51.100.7", "--at", "2025-13-01T00:00:00"], "not an ISO 8601 time"),
    ],
)
def test_bad_input_is_a_command_error(plan, args, message):
    with pytest.raises(CommandError, match=message):
        call_command("resolve_ip", *args, "--json", stdout=StringIO())


def test_bad_input_exits_non_zero_with_the_reason_on_stderr(plan):
    proc = subprocess.run(
        [sys.executable, "manage.py", "resolve_ip", "not-an-ip", "--json"],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        env={"DEBUG": "true", "PATH": "/usr/bin:/bin", "DATABASE_URL": "sqlite:///:memory:"},
        timeout=60,
    )
    assert proc.returncode != 0
    assert "not an IPv4 or IPv6 address" in proc.stderr
    assert proc.stdout == ""
