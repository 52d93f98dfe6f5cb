"""One address where one is expected: zone ids and networks are refused with a reason, and
routable_reason() says which addresses nobody on the Internet can hold (the filing side keeps
such reports with that reason)."""

from __future__ import annotations

import pytest

from abusedesk.lib.addresses import NOT_ROUTABLE, is_internal, parse_host, routable_reason
from cases.intake import parse

from . import RECEIVED_AT, fixture


@pytest.mark.parametrize(
    ("text", "ip"),
    [
        ("198.51.100.7", "198.51.100.7"),
        ("[198.51.100.7]", "198.51.100.7"),
        ("IPv6:2001:DB8::1", "2001:db8::1"),
        ("::ffff:198.51.100.7", "198.51.100.7"),
        ("198.51.100.7/32", "198.51.100.7"),
    ],
)
def test_one_address_is_read_in_the_forms_reports_write(text: str, ip: str):
    assert parse_host(text) == (ip, None)


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("fe80::1%eth0", "zone id"),
        ("192.0.2.0/24", "a network of 256 addresses where one address is expected"),
        ("2001:db8::/64", "where one address is expected"),
        ("198.51.100.300", "not an IP address"),
        ("", "no address given"),
    ],
)
def test_zone_ids_networks_and_junk_are_refused_with_a_reason(text: str, why: str):
    ip, reason = parse_host(text)
    assert ip is None
    assert why in reason


@pytest.mark.parametrize(
    ("ip", "kind"),
    [
        ("0.0.0.0", "unspecified"),
        ("255.255.255.255", "broadcast"),
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("224.0.0.251", "multicast"),
        ("ff02::1", "multicast"),
        ("169.254.10.1", "link-local"),
        ("fe80::1", "link-local"),
        ("10.1.2.3", "private network"),
        ("172.16.5.5", "private network"),
        ("192.168.1.1", "private network"),
        ("fd00:1:2::3", "private network"),
        ("240.0.0.1", "reserved"),
    ],
)
def test_addresses_nobody_can_hold_are_not_routable(ip: str, kind: str):
    assert routable_reason(ip) == f"{NOT_ROUTABLE} ({kind})"


@pytest.mark.parametrize("ip", ["198.51.100.7", "192.0.2.1", "203.0.113.9", "2001:db8::1", "8.8.8.8", "100.64.0.1"])
def test_public_and_documentation_addresses_are_routable(ip: str):
    # The documentation ranges stand in for public addresses in tests, samples and the demo. The
    # CGNAT shared space is routable inside the ISP (its own pool), but never a Received hop's sender.
    assert routable_reason(ip) is None


def test_cgnat_shared_space_is_internal_for_the_chain_walk():
    assert is_internal("100.64.20.9")
    assert not is_internal("198.51.100.7")


def test_an_arf_source_ip_that_is_a_network_falls_back_to_the_originals_chain_with_the_reason():
    raw = fixture("arf_rfc5965.eml").replace(b"Source-IP: 198.51.100.7", b"Source-IP: 198.51.100.0/24")
    result = parse(raw, received_at=RECEIVED_AT)
    [event] = result.events
    # Not 198.51.100.0: the original's entry hop, with the refusal said in the evidence.
    assert event.ip == "198.51.100.7"
    assert event.confidence < 1
    assert "Source-IP 198.51.100.0/24 refused" in event.evidence


def test_an_arf_source_ip_with_a_zone_id_is_never_read_as_the_address_before_it():
    raw = fixture("arf_rfc5965.eml").replace(b"Source-IP: 198.51.100.7", b"Source-IP: fe80::1%eth0")
    result = parse(raw, received_at=RECEIVED_AT)
    [event] = result.events
    assert event.ip == "198.51.100.7"  # the original's entry hop
    assert "Source-IP fe80::1%eth0 refused" in event.evidence and "zone id" in event.evidence
