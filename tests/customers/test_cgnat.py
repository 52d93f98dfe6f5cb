"""Carrier-grade NAT: a public address, a source port and a time name one subscriber."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from io import StringIO

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from customers import services
from customers.imports import execute
from customers.models import Allocation, AllocationChange, AllocationSource, Customer, ImportRun
from customers.resolver import NO_PORT, no_block, resolve, resolve_events

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)
T1 = T0 + timedelta(hours=6)
T2 = T0 + timedelta(hours=12)


@pytest.fixture
def cgnat():
    isp = Customer.objects.create(account="ISP-CGNAT", name="CGNAT pool", kind="business")
    alice = Customer.objects.create(account="R-100", name="Alice", kind="residential")
    bob = Customer.objects.create(account="R-200", name="Bob", kind="residential")
    carol = Customer.objects.create(account="R-300", name="Carol", kind="residential")
    shop = Customer.objects.create(account="B-1", name="Shop", kind="business")
    services.create_allocation(
        customer=isp, network="203.0.113.0/24", valid_from=T0, source=AllocationSource.CGNAT_POOL
    )
    # A static business address carved out of the pool: more specific, and not shared.
    services.create_allocation(customer=shop, network="203.0.113.200/32", valid_from=T0)
    block = {"network": "203.0.113.7/32", "source": AllocationSource.PORT_BLOCK}
    services.create_allocation(customer=alice, valid_from=T0, valid_to=T1, ports=(1024, 1535), **block)
    services.create_allocation(customer=bob, valid_from=T0, ports=(1536, 2047), **block)
    # After Alice's block ended, Carol got the same ports.
    services.create_allocation(customer=carol, valid_from=T1, ports=(1024, 1535), **block)
    return {"isp": isp, "alice": alice, "bob": bob, "carol": carol, "shop": shop}


def test_with_the_port_the_block_names_the_subscriber(cgnat):
    at = T0 + timedelta(hours=1)
    assert resolve("203.0.113.7", at, 1024).customer == cgnat["alice"]
    assert resolve("203.0.113.7", at, 1535).customer == cgnat["alice"]
    assert resolve("203.0.113.7", at, 1536).customer == cgnat["bob"]
    held = resolve("203.0.113.7", at, 2047)
    assert held.customer == cgnat["bob"] and held.is_port_block and held.pool.customer == cgnat["isp"]
    # The time decides between two holders of the same ports.
    assert resolve("203.0.113.7", T1, 1100).customer == cgnat["carol"]
    assert resolve("203.0.113.7", T1 - timedelta(seconds=1), 1100).customer == cgnat["alice"]


def test_without_the_port_the_pool_answers_and_says_the_port_is_needed(cgnat):
    held = resolve("203.0.113.7", T0 + timedelta(hours=1))
    assert held.customer == cgnat["isp"] and held.source == AllocationSource.CGNAT_POOL
    assert held.resolution_note == NO_PORT
    # A port nobody held: still the pool, and the note names the port.
    unheld = resolve("203.0.113.7", T0 + timedelta(hours=1), 40000)
    assert unheld.customer == cgnat["isp"] and unheld.resolution_note == no_block(40000)


def test_outside_cgnat_the_port_changes_nothing(cgnat):
    at = T0 + timedelta(hours=1)
    assert resolve("203.0.113.200", at, 1024).customer == cgnat["shop"]
    assert resolve("203.0.113.200", at).resolution_note == ""


def test_in_bulk_the_same_answers_as_one_at_a_time(cgnat):
    at = T0 + timedelta(hours=1)
    items = [
        ("203.0.113.7", at, 1200),
        ("203.0.113.7", at, 1600),
        ("203.0.113.7", at, None),
        ("203.0.113.7", at, 40000),
        ("203.0.113.7", T2, 1200),
        ("203.0.113.200", at, 1200),
        ("198.51.100.1", at, 1200),
    ]
    bulk = resolve_events(items)
    for ip, when, port in items:
        one = resolve(ip, when, port)
        got = bulk[(ip, when, port)]
        assert (got.customer_id if got else None) == (one.customer_id if one else None), (ip, when, port)
        assert (got.note if got else "") == (one.resolution_note if one else "")


def test_a_port_block_is_on_one_address_and_blocks_of_one_address_do_not_overlap(cgnat):
    with pytest.raises(ValidationError, match="one public address"):
        services.create_allocation(
            customer=cgnat["bob"], network="203.0.113.0/30", valid_from=T0, ports=(1024, 2047), source="ports"
        )
    with pytest.raises(ValidationError, match="overlapping"):
        services.create_allocation(
            customer=cgnat["bob"], network="203.0.113.7/32", valid_from=T2, ports=(2000, 2100), source="ports"
        )
    with pytest.raises(ValidationError, match="Ports run"):
        services.create_allocation(
            customer=cgnat["bob"], network="203.0.113.8/32", valid_from=T0, ports=(3000, 2000), source="ports"
        )


def _run_import(tmp_path, text: str) -> tuple[ImportRun, list]:
    path = tmp_path / "blocks.csv"
    path.write_text(text)
    run = ImportRun.objects.create(kind=ImportRun.Kind.PORT_BLOCKS, filename=path.name)
    rejected = []
    execute(run, path, on_reject=lambda line, reason: rejected.append((line, reason)))
    run.refresh_from_db()
    return run, rejected


GOOD = (
    "ip,port_from,port_to,account,start,stop\n"
    "203.0.113.9,1024,1535,R-100,2026-11-02T00:00:00Z,2026-11-02T06:00:00Z\n"
    "203.0.113.9,1536,2047,R-200,2026-11-02T00:00:00Z,\n"
    "203.0.113.9,1024,1535,R-300,2026-11-02 06:00:00,\n"
)


def test_the_import_makes_blocks_that_resolve_and_a_second_run_changes_nothing(cgnat, tmp_path):
    run, rejected = _run_import(tmp_path, GOOD)
    assert (run.status, run.created, run.rejected, rejected) == ("done", 3, 0, [])
    assert resolve("203.0.113.9", T0 + timedelta(hours=7), 1300).customer == cgnat["carol"]
    assert resolve("203.0.113.9", T0 + timedelta(hours=1), 1300).customer == cgnat["alice"]
    again, _ = _run_import(tmp_path, GOOD)
    assert (again.created, again.updated, again.unchanged) == (0, 0, 3)
    # The log now has the end of Bob's block: updated, with an audit row.
    ended, _ = _run_import(
        tmp_path, GOOD.replace("R-200,2026-11-02T00:00:00Z,", "R-200,2026-11-02T00:00:00Z,2026-11-02T09:00:00Z")
    )
    assert (ended.updated, ended.unchanged) == (1, 2)
    change = AllocationChange.objects.get(network="203.0.113.9/32", action="updated")
    assert change.old["valid_to"] is None and change.new["valid_to"].startswith("2026-11-02T09:00")
    assert change.actor_label == f"port-block import #{ended.pk}"


def test_the_import_rejects_bad_rows_with_their_line_and_goes_on(cgnat, tmp_path):
    text = (
        "ip,port_from,port_to,account,start,stop\n"
        "203.0.113.10,1024,1535,R-100,2026-11-02T00:00:00Z,\n"  # 2: good
        "198.51.100.5,1024,1535,R-100,2026-11-02T00:00:00Z,\n"  # 3: not in a pool
        "203.0.113.10,1500,1600,R-200,2026-11-02T01:00:00Z,\n"  # 4: overlaps line 2
        "fe80::1%eth0,1024,1535,R-100,2026-11-02T00:00:00Z,\n"  # 5: zone id
        "203.0.113.0/24,1024,1535,R-100,2026-11-02T00:00:00Z,\n"  # 6: a network
        "203.0.113.11,2047,1024,R-100,2026-11-02T00:00:00Z,\n"  # 7: reversed ports
        "203.0.113.11,1024,70000,R-100,2026-11-02T00:00:00Z,\n"  # 8: no such port
        "203.0.113.11,1024,1535,NOBODY,2026-11-02T00:00:00Z,\n"  # 9: unknown account
        "203.0.113.11,1024,1535,R-1\x0000,2026-11-02T00:00:00Z,\n"  # 10: NUL byte
        "203.0.113.11,0,65535,R-100,2026-11-02T00:00:00Z,\n"  # 11: every port
        "203.0.113.11,1024,1535,R-100,0001-01-01T00:00:00+01:00,\n"  # 12: impossible time
        "203.0.113.12,1024,1535,R-100,2026-11-02T00:00:00Z,\n"  # 13: good
    )
    run, rejected = _run_import(tmp_path, text)
    assert run.created == 2
    reasons = dict(rejected)
    assert sorted(reasons) == list(range(3, 13))
    assert "not in a CGNAT pool" in reasons[3]
    assert "overlap the block 1024–1535" in reasons[4]
    assert "zone id" in reasons[5]
    assert "is a network" in reasons[6]
    assert "is after port_to" in reasons[7]
    assert "outside 0–65535" in reasons[8]
    assert "unknown account NOBODY" in reasons[9]
    assert "NUL" in reasons[10]
    assert "whole address" in reasons[11]
    assert "out of range" in reasons[12]
    assert sorted((e["line"], e["reason"]) for e in run.errors) == sorted(rejected)


def test_resolve_ip_takes_the_port(cgnat):
    def run(*args):
        out = StringIO()
        call_command("resolve_ip", *args, "--json", stdout=out)
        return json.loads(out.getvalue())

    at = (T0 + timedelta(hours=1)).isoformat()
    with_port = run("203.0.113.7", "--at", at, "--port", "1600")
    assert with_port["customer"]["account"] == "R-200" and with_port["port"] == 1600
    assert (with_port["allocation"]["port_from"], with_port["allocation"]["port_to"]) == (1536, 2047)
    assert with_port["allocation"]["source"] == "ports" and with_port["note"] == ""
    without = run("203.0.113.7", "--at", at)
    assert without["customer"]["account"] == "ISP-CGNAT" and without["note"] == NO_PORT
    assert Allocation.objects.filter(source="ports").count() == 3
