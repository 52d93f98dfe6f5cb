"""Rows an import must refuse on their own, naming line and column, while the rest of the file goes on:
networks so broad they would hand the Internet to one customer, IPv6 zone ids, NUL bytes."""

from __future__ import annotations

import pytest
from django.test import override_settings

from customers.models import Allocation, AllocationChange, Customer
from customers.resolver import resolve
from tests.customers.test_imports import ALLOC_HEADER, LEASE_HEADER, run_command, utc, write

pytestmark = pytest.mark.django_db


def reasons(err: str) -> dict[int, str]:
    out = {}
    for line in err.splitlines():
        if line.startswith("line "):
            number, _, reason = line[5:].partition(": ")
            out[int(number)] = reason
    return out


def test_networks_broader_than_the_minimum_prefix_are_refused(tmp_path):
    rows = [
        "W1,World,,,0.0.0.0/0,2024-01-01T00:00:00Z,",  # 2
        "W2,World6,,,::/0,2024-01-01T00:00:00Z,",  # 3
        "W3,Mapped,,,::ffff:0.0.0.0/96,2024-01-01T00:00:00Z,",  # 4: IPv4-mapped, it is 0.0.0.0/0
        "W4,Seven,,,10.0.0.0/7,2024-01-01T00:00:00Z,",  # 5: one bit broader than /8
        "W5,Fifteen,,,2000::/15,2024-01-01T00:00:00Z,",  # 6
        "OK1,Eight,,,10.0.0.0/8,2024-01-01T00:00:00Z,",  # 7: exactly the minimum
        "OK2,Sixteen,,,2001::/16,2024-01-01T00:00:00Z,",  # 8
    ]
    out, err = run_command("import_allocations", write(tmp_path, ALLOC_HEADER + "\n".join(rows) + "\n"))

    assert "created: 2\nupdated: 0\nunchanged: 0\nrejected: 5" in out, err
    why = reasons(err)
    assert why[2] == "network 0.0.0.0/0 is broader than /8, the widest IPv4 allocation the desk accepts"
    assert why[3] == "network ::/0 is broader than /16, the widest IPv6 allocation the desk accepts"
    assert why[4].startswith("network 0.0.0.0/0 is broader than /8")
    assert why[5].startswith("network 10.0.0.0/7 is broader") and why[6].startswith("network 2000::/15 is broader")
    assert set(why) == {2, 3, 4, 5, 6}
    # Nothing of the refused rows is kept: no customer, no allocation, nobody holds the world.
    assert sorted(Customer.objects.values_list("account", flat=True)) == ["OK1", "OK2"]
    assert resolve("8.8.8.8", utc(2025, 1, 1)) is None
    assert resolve("10.1.2.3", utc(2025, 1, 1)).customer.account == "OK1"


@override_settings(ALLOCATION_MIN_PREFIX_V4=16, ALLOCATION_MIN_PREFIX_V6=32)
def test_the_minimum_prefix_is_a_setting(tmp_path):
    rows = ["A1,A,,,10.0.0.0/8,,", "A2,B,,,10.1.0.0/16,,", "A3,C,,,2001:db8::/31,,", "A4,D,,,2001:db8::/32,,"]
    out, err = run_command("import_allocations", write(tmp_path, ALLOC_HEADER + "\n".join(rows) + "\n"))

    assert "created: 2\nupdated: 0\nunchanged: 0\nrejected: 2" in out, err
    why = reasons(err)
    assert why[2].startswith("network 10.0.0.0/8 is broader than /16")
    assert why[4].startswith("network 2001:db8::/31 is broader than /32")
    assert sorted(Allocation.objects.values_list("network", flat=True)) == ["10.1.0.0/16", "2001:db8::/32"]


def test_an_ipv6_zone_id_is_refused_for_its_row(tmp_path):
    rows = [
        "Z1,Zone,,,fe80::%eth0/64,2024-01-01T00:00:00Z,",
        "Z2,Zone host,,,fe80::1%eth0,2024-01-01T00:00:00Z,",
        "OK,Fine,,,2001:db8:1::/48,2024-01-01T00:00:00Z,",
    ]
    out, err = run_command("import_allocations", write(tmp_path, ALLOC_HEADER + "\n".join(rows) + "\n"))

    assert "created: 1\nupdated: 0\nunchanged: 0\nrejected: 2" in out, err
    why = reasons(err)
    assert why[2] == "network 'fe80::%eth0/64' carries an IPv6 zone id, which names an interface, not a network"
    assert why[3].startswith("network 'fe80::1%eth0' carries an IPv6 zone id")
    assert list(Allocation.objects.values_list("network", flat=True)) == ["2001:db8:1::/48"]


def test_a_nul_byte_rejects_its_row_and_the_file_goes_on_every_time(tmp_path):
    raw = (
        ALLOC_HEADER.encode()
        + b"N1,Nul\x00name,,,,,\n"  # 2
        + b"N2,Fine,,ops\x00@example.net,,,\n"  # 3
        + b'N3,"Quoted\x00, Ltd",business,,,,\n'  # 4: inside a quoted field
        + b"N4,Net,,,192.0.2.0/29\x00,2024-01-01T00:00:00Z,\n"  # 5
        + b"OK,Good,,good@example.net,198.51.100.0/29,2024-01-01T00:00:00Z,\n"  # 6
    )
    path = write(tmp_path, raw)
    out, err = run_command("import_allocations", path)

    assert "created: 1\nupdated: 0\nunchanged: 0\nrejected: 4" in out, err
    assert reasons(err) == {
        2: "name contains a NUL byte",
        3: "email contains a NUL byte",
        4: "name contains a NUL byte",
        5: "network contains a NUL byte",
    }
    assert list(Customer.objects.values_list("account", flat=True)) == ["OK"]
    # The same file again: the same rows refused, the good one unchanged, no failed run.
    out, err = run_command("import_allocations", path)
    assert "created: 0\nupdated: 0\nunchanged: 1\nrejected: 4" in out, err
    assert AllocationChange.objects.count() == 1


def test_a_nul_byte_in_a_lease_row_rejects_only_that_row(tmp_path):
    Customer.objects.create(account="A100", name="Alice")
    raw = (
        LEASE_HEADER.encode()
        + b"198.51.100.7,A1\x0000,2024-03-01T10:00:00Z,\n"
        + b"198.51.100.8,A100,2024-03-01T10:00:00Z,\n"
    )
    out, err = run_command("import_leases", write(tmp_path, raw))

    assert "created: 1\nupdated: 0\nunchanged: 0\nrejected: 1" in out, err
    assert reasons(err) == {2: "account contains a NUL byte"}
    assert resolve("198.51.100.8", utc(2024, 3, 2)).customer.account == "A100"


@pytest.mark.parametrize(
    "email",
    [
        "alice@example.net",
        "Alice.O'Brien+abuse@Example.NET",
        "user@[192.0.2.1]",  # an IP literal: validate_email accepts it
        "user@[300.0.0.1]",
        "user@localhost",  # validate_email's allow-list
        '"quoted user"@example.net',
        "a..b@example.net",
        "@example.net",
        "user@",
        "user@example",
        "user@-example.net",
        "user@exa_mple.net",
        "üser@example.net",
        "user@bücher.example",
        "user@example.net\n",
    ],
)
def test_an_email_is_accepted_exactly_when_validate_email_accepts_it(email):
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    from customers.imports import RowError, _check_allocation_row

    try:
        validate_email(email)
        expected = True
    except ValidationError:
        expected = False
    try:
        _check_allocation_row(["A1", "Alice", "", email, "", "", ""], now=utc(2025, 1, 1))
        accepted = True
    except RowError as exc:
        assert str(exc) == f"email {email!r} is not a valid address"
        accepted = False
    assert accepted == expected


def test_an_ipv6_zone_id_in_a_lease_row_is_refused_for_that_row(tmp_path):
    Customer.objects.create(account="A100", name="Alice")
    rows = "fe80::1%eth0,A100,2024-03-01T10:00:00Z,\n2001:db8::8,A100,2024-03-01T10:00:00Z,\n"
    out, err = run_command("import_leases", write(tmp_path, LEASE_HEADER + rows))

    assert "created: 1\nupdated: 0\nunchanged: 0\nrejected: 1" in out, err
    assert reasons(err) == {2: "ip 'fe80::1%eth0' carries an IPv6 zone id, which names an interface, not an address"}
    assert list(Allocation.objects.values_list("network", flat=True)) == ["2001:db8::8/128"]
