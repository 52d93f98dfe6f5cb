"""Precision: a mail that names one offender yields exactly that one; the reporter's own servers and
the recipient's servers never appear. Each rule of issue 8 with several senders' styles, each mail
with its exact expected set (tests/fixtures/intake/precision/, written for these tests).

``test_the_precision_figure`` prints the figure over the whole set (run with -s to see it).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest

from cases.intake import attachments, feeds, mime, parse

from . import RECEIVED_AT, fixture


@dataclass(frozen=True)
class Exact:
    ips: frozenset[str]
    times: dict[str, datetime] | None = None  # ip -> its own incident time, where the mail gives one
    ports: dict[str, int] | None = None
    format: str | None = None


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


EXPECTED: dict[str, Exact] = {
    # Received-chain walk: the hop where the mail entered the receiving side, nothing else.
    "chain_gmail_attached.eml": Exact(frozenset({"198.51.100.23"}), format="freetext"),
    "chain_outlook_ipv6_hops.eml": Exact(frozenset({"203.0.113.77"})),
    "chain_quoted_own_relays.eml": Exact(frozenset({"198.51.100.140"})),
    "chain_filtering_service.eml": Exact(frozenset({"198.51.100.9"})),
    "chain_forwarded_by_mailbox_provider.eml": Exact(frozenset({"192.0.2.200"})),
    "chain_cgnat_and_ula_hops.eml": Exact(frozenset({"2001:db8:4:5::25"})),
    "chain_yahoo_exim_style.eml": Exact(frozenset({"203.0.113.210"})),
    # An explicit offender line wins over the chain and over everything else in the text.
    "explicit_source_ip_with_chain.eml": Exact(
        frozenset({"198.51.100.77"}), times={"198.51.100.77": _t("2024-01-19 15:21:44")}
    ),
    "explicit_offending_ip_prose.eml": Exact(frozenset({"203.0.113.45"})),
    "explicit_source_with_log_rows.eml": Exact(frozenset({"198.51.100.5"})),
    "explicit_table_column.eml": Exact(
        frozenset({"198.51.100.201"}), times={"198.51.100.201": _t("2024-01-21 02:44:17")}
    ),
    "explicit_ip_colon_with_port.eml": Exact(
        frozenset({"192.0.2.44"}), times={"192.0.2.44": _t("2024-01-20 03:14:00")}, ports={"192.0.2.44": 51234}
    ),
    # Pasted whois/RDAP names no offenders.
    "whois_ripe_paste.eml": Exact(frozenset({"198.51.100.99"})),
    "whois_arin_netrange.eml": Exact(frozenset({"203.0.113.140"}), times={"203.0.113.140": _t("2024-01-24 02:55:02")}),
    "rdap_json_paste.eml": Exact(frozenset({"192.0.2.17"}), times={"192.0.2.17": _t("2024-01-24 13:20:00")}),
    # Lists in the body: every address, each with its own time.
    "list_ssh_bruteforce_log.eml": Exact(
        frozenset({"198.51.100.10", "198.51.100.11", "203.0.113.12"}),
        times={
            "198.51.100.10": _t("2024-01-18 02:11:09"),
            "198.51.100.11": _t("2024-01-18 02:14:51"),
            "203.0.113.12": _t("2024-01-18 02:30:00"),
        },
    ),
    "list_html_table.eml": Exact(
        frozenset({"198.51.100.150", "198.51.100.151", "2001:db8:1::15"}),
        times={
            "198.51.100.150": _t("2024-01-23 18:01:00"),
            "198.51.100.151": _t("2024-01-23 19:12:30"),
            "2001:db8:1::15": _t("2024-01-24 01:05:00"),
        },
    ),
    "list_bulleted_with_victim.eml": Exact(
        frozenset({"192.0.2.50", "192.0.2.51"}),
        times={"192.0.2.50": _t("2024-01-15 09:00:01"), "192.0.2.51": _t("2024-01-15 09:03:40")},
    ),
    # Attachments: every address with its own time, port and category.
    "attach_json_cert_gz.eml": Exact(
        frozenset({"198.51.100.61", "198.51.100.62", "2001:db8:77::9"}),
        times={"198.51.100.62": _t("2024-01-19 05:22:13"), "2001:db8:77::9": _t("2024-01-19 06:00:59")},
        ports={"198.51.100.61": 50211, "198.51.100.62": 41001, "2001:db8:77::9": 443},
        format="attachment",
    ),
    "attach_xml_zip.eml": Exact(
        frozenset({"203.0.113.31", "203.0.113.32"}),
        times={"203.0.113.31": _t("2024-01-20 08:15:00"), "203.0.113.32": _t("2024-01-20 09:47:31")},
        ports={"203.0.113.31": 3306},
        format="attachment",
    ),
    "attach_text_list.eml": Exact(
        frozenset({"192.0.2.91", "192.0.2.92"}), times={"192.0.2.92": _t("2024-01-21 02:40:55")}, format="attachment"
    ),
    "attach_jsonl.eml": Exact(
        frozenset({"198.51.100.171", "198.51.100.172"}),
        times={"198.51.100.171": _t("2024-01-22 10:00:00"), "198.51.100.172": _t("2024-01-22 10:30:00")},
        ports={"198.51.100.171": 60211, "198.51.100.172": 60999},
        format="attachment",
    ),
    # DMARC aggregates: the sources whose mail failed authentication, nothing that passed.
    "dmarc_zip.eml": Exact(frozenset({"203.0.113.90", "198.51.100.91"}), format="dmarc"),
    "dmarc_gz.eml": Exact(frozenset({"198.51.100.44"}), format="dmarc"),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_mail_yields_exactly_its_offenders(name: str):
    expected = EXPECTED[name]
    result = parse(fixture(f"precision/{name}"), received_at=RECEIVED_AT)
    got = {e.ip for e in result.events}
    assert got == expected.ips, (
        f"{name}: {result.format} {result.error} {[(e.ip, e.occurred_at) for e in result.events]}"
    )
    if expected.format:
        assert result.format == expected.format
    for ip, at in (expected.times or {}).items():
        assert at in [e.occurred_at for e in result.events if e.ip == ip], f"{ip}: its own time {at}"
    for ip, port in (expected.ports or {}).items():
        assert {e.port for e in result.events if e.ip == ip} == {port}, f"{ip}: port {port}"


def test_every_address_of_a_list_keeps_its_own_time_not_the_first_rows():
    result = parse(fixture("precision/attach_text_list.eml"), received_at=RECEIVED_AT)
    times = sorted((e.ip, e.occurred_at) for e in result.events)
    # 192.0.2.91 appears twice in the list, at two times: two incidents.
    assert times == [
        ("192.0.2.91", _t("2024-01-21 00:14:03")),
        ("192.0.2.91", _t("2024-01-21 05:01:17")),
        ("192.0.2.92", _t("2024-01-21 02:40:55")),
    ]


def test_attachment_categories_come_from_each_record():
    result = parse(fixture("precision/attach_xml_zip.eml"), received_at=RECEIVED_AT)
    assert {e.ip: e.category for e in result.events} == {"203.0.113.31": "login_attack", "203.0.113.32": "scanning"}
    result = parse(fixture("precision/attach_json_cert_gz.eml"), received_at=RECEIVED_AT)
    assert {e.ip: e.category for e in result.events} == {
        "198.51.100.61": "botnet",
        "198.51.100.62": "botnet",
        "2001:db8:77::9": "scanning",
    }


def test_a_zone_id_row_is_refused_alone_and_the_rest_of_the_list_is_kept():
    raw = fixture("precision/attach_json_cert_gz.eml")
    events = attachments.parse(mime.parse_message(raw), raw, received_at=RECEIVED_AT)
    assert len(events) == 3
    assert events.skip_reasons == {"IPv6 zone id (an interface, not an address)": 1}


def test_a_zone_id_row_in_a_csv_feed_is_refused_alone():
    raw = (
        b"ip,timestamp,port\n"
        b"198.51.100.1,2024-01-10 10:00:00,22\n"
        b"fe80::1%eth0,2024-01-10 10:00:01,22\n"
        b"192.0.2.0/24,2024-01-10 10:00:02,22\n"
        b"198.51.100.2,2024-01-10 10:00:03,22\n"
    )
    events = feeds.parse(mime.parse_message(raw), raw, received_at=RECEIVED_AT)
    assert [e.ip for e in events] == ["198.51.100.1", "198.51.100.2"]
    assert events.skip_reasons == {
        "IPv6 zone id (an interface, not an address)": 1,
        "a network where one address is expected": 1,
    }


def test_dmarc_events_are_low_confidence_spam_that_never_counts_alone():
    result = parse(fixture("precision/dmarc_zip.eml"), received_at=RECEIVED_AT)
    assert result.format == "dmarc"
    assert {e.category for e in result.events} == {"spam"}
    assert all(e.needs_confirmation and e.confidence <= 0.3 for e in result.events)
    assert {e.reporter for e in result.events} == {"noreply-dmarc-support@mailprovider.example"}
    # The report's own period, not the mail's arrival.
    assert {e.occurred_at for e in result.events} == {datetime(2024, 1, 19, tzinfo=UTC)}
    [twice] = [e for e in result.events if e.ip == "203.0.113.90"]
    assert "count=14" in twice.evidence and "count=3" in twice.evidence


def test_a_dmarc_report_where_everything_passed_is_classified_with_nothing_to_file():
    result = parse(fixture("precision/dmarc_all_pass.eml"), received_at=RECEIVED_AT)
    assert result.format == "dmarc"
    assert result.events == []
    assert "every source passed" in result.error


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("refused_network_source_ip.eml", "network of 256 addresses where one address is expected"),
        ("refused_zone_id.eml", "zone id"),
    ],
)
def test_a_network_or_a_zone_id_where_one_address_is_expected_is_refused_with_the_reason(name: str, why: str):
    result = parse(fixture(f"precision/{name}"), received_at=RECEIVED_AT)
    assert result.events == []
    assert why in result.error


def test_the_precision_figure():
    """Exact-set precision over the whole set: mails whose offender set is exactly right, and
    addresses returned that are right. The figure the issue asks for, printed for the report."""
    exact = 0
    returned = right = 0
    for name, expected in EXPECTED.items():
        got = {e.ip for e in parse(fixture(f"precision/{name}"), received_at=RECEIVED_AT).events}
        exact += got == expected.ips
        returned += len(got)
        right += len(got & expected.ips)
    print(
        f"\nprecision set: {exact}/{len(EXPECTED)} mails with the exact offender set; "
        f"{right}/{returned} addresses returned are offenders"
    )
    assert exact == len(EXPECTED)
    assert right == returned
