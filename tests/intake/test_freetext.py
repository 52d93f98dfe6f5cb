from __future__ import annotations

from datetime import UTC, datetime

from cases.intake import mime, parse

from . import RECEIVED_AT, fixture


def test_plain_complaint_names_the_attacker_not_the_victims_server():
    result = parse(fixture("freetext_plain.eml"), received_at=RECEIVED_AT)
    assert result.format == "freetext"
    # "to our server 192.0.2.80" is the complainant's own machine: never an offender.
    assert [e.ip for e in result.events] == ["198.51.100.44"]
    best = result.events[0]
    assert best.category == "login_attack"
    assert best.reporter == "jane@hosting.example"
    assert best.reporter_org == "Jane Admin"
    assert best.external_id == "complaint-1@hosting.example"
    # The only date near the addresses is the "First attempt" line, two lines below.
    assert best.occurred_at == datetime(2024, 1, 21, 8, 15, 2, tzinfo=UTC)
    assert 0 < best.confidence < 1


def test_are_ours_puts_our_address_first():
    asked = []

    def are_ours(ips):
        asked.append(list(ips))
        return {ip for ip in asked[-1] if ip == "198.51.100.66"}

    result = parse(fixture("freetext_two_ips.eml"), received_at=RECEIVED_AT, are_ours=are_ours)
    assert len(asked) == 1, "one batched look-up per message, not one per candidate"
    assert set(asked[0]) == {"192.0.2.33", "198.51.100.66"}
    assert result.events[0].ip == "198.51.100.66"
    assert result.events[0].confidence > result.events[1].confidence


def test_a_failing_are_ours_hint_is_ignored():
    def broken(ips) -> set[str]:
        raise RuntimeError("database down")

    result = parse(fixture("freetext_plain.eml"), received_at=RECEIVED_AT, are_ours=broken)
    assert result.events[0].ip == "198.51.100.44"


def test_quoted_received_chain_is_walked_to_the_entry_hop():
    result = parse(fixture("freetext_forwarded_headers.eml"), received_at=RECEIVED_AT)
    best = result.events[0]
    assert best.ip == "203.0.113.9"
    assert best.occurred_at == datetime(2024, 1, 22, 8, 30, 1, tzinfo=UTC)
    assert best.category == "spam"
    # Exactly the entry hop: not the complainant's own relay (192.0.2.60), not the sender's LAN
    # host behind it (172.16.5.5, private: nobody outside can hold it).
    assert [e.ip for e in result.events] == ["203.0.113.9"]


def test_attached_message_entry_hop_beats_everything():
    result = parse(fixture("freetext_attached.eml"), received_at=RECEIVED_AT)
    best = result.events[0]
    assert best.ip == "198.51.100.120"
    assert best.occurred_at == datetime(2024, 1, 23, 11, 0, 2, tzinfo=UTC)
    assert "192.0.2.70" not in [e.ip for e in result.events]
    assert best.category == "spam"  # forwarded mail and no other hint
    assert best.confidence > 0.5


def test_html_only_mail_is_read_as_text_without_script_content():
    result = parse(fixture("freetext_html_only.eml"), received_at=RECEIVED_AT)
    assert [e.ip for e in result.events] == ["203.0.113.200"]
    [event] = result.events
    assert event.category == "scanning"
    assert event.occurred_at == datetime(2024, 1, 24, 15, 40, tzinfo=UTC)


def test_two_addresses_on_one_line_both_become_candidates_with_the_time_on_that_line():
    result = parse(fixture("freetext_two_ips.eml"), received_at=RECEIVED_AT)
    assert [e.ip for e in result.events] == ["192.0.2.33", "198.51.100.66"]
    assert {e.category for e in result.events} == {"ddos"}
    assert {e.occurred_at for e in result.events} == {datetime(2024, 1, 25, 9, 0, tzinfo=UTC)}


def test_received_chain_helpers_read_common_mta_forms():
    hop = mime.parse_received(
        "from 127.0.0.1 (EHLO mail.sender.example) (203.0.113.5) by mta.example.com with SMTPS;"
        " Tue, 19 Jan 2016 15:16:29 +0000"
    )
    assert hop.from_ip == "203.0.113.5"
    assert hop.by_host == "mta.example.com"
    hop = mime.parse_received("from [198.51.100.3] (helo=[10.0.0.1]) by mx.example.org with esmtp (Exim 4.96)")
    assert hop.from_ip == "198.51.100.3"
    hop = mime.parse_received("(qmail 24962 invoked from network); 19 Jan 2016 20:32:36 +0100")
    assert hop.from_ip is None


def test_no_address_at_all_is_an_error_reason():
    raw = b"From: a@b.example\nSubject: hello\nDate: Mon, 1 Jan 2024 00:00:00 +0000\n\nYou people are spamming me!\n"
    result = parse(raw, received_at=RECEIVED_AT)
    assert result.events == []
    assert "no valid IP address" in result.error
