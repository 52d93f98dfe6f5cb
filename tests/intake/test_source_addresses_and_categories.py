"""Which addresses in a report are the source: not traceroute hops, not the victim's range; and the
category a key:value report's prose names."""

from __future__ import annotations

from cases.intake import feeds, freetext, mime, parse

from . import RECEIVED_AT, fixture


def test_traceroute_hops_and_target_lines_are_not_sources():
    result = parse(fixture("fix_traceroute_and_target.eml"), received_at=RECEIVED_AT)
    assert result.format == "freetext"
    assert [e.ip for e in result.events] == ["203.0.113.80"]
    assert result.events[0].category == "phishing"


def test_a_hop_list_without_a_traceroute_heading_is_still_read():
    raw = fixture("fix_traceroute_and_target.eml").replace(b"A sample traceroute of the domain follows:", b"Hosts:")
    ips = {e.ip for e in parse(raw, received_at=RECEIVED_AT).events}
    assert {"192.0.2.1", "192.0.2.130", "192.0.2.254", "203.0.113.80"} <= ips
    assert "198.51.100.9" not in ips  # still a destination line


def test_the_traceroute_section_ends_at_the_first_line_that_is_not_a_hop():
    raw = fixture("fix_traceroute_and_target.eml").replace(
        b"Please remove this fraudulent content", b"Second host 192.0.2.200 serves the same kit. Please remove it"
    )
    ips = {e.ip for e in parse(raw, received_at=RECEIVED_AT).events}
    assert ips == {"203.0.113.80", "192.0.2.200"}


def test_victim_line_pattern():
    for line in ("- Targeted Range: 198.51.100.0/24", "Destination IP: 1.2.3.4", "  dst_ip = 1.2.3.4", "Victim: x"):
        assert freetext._VICTIM_LINE.match(line), line
    for line in ("Offending/Source IP: 1.2.3.4", "Source: 1.2.3.4", "The target was hit from 1.2.3.4:"):
        assert not freetext._VICTIM_LINE.match(line), line


def test_key_value_report_takes_its_category_from_the_mail_prose():
    result = parse(fixture("fix_keyvalue_prose_category.eml"), received_at=RECEIVED_AT)
    assert result.format == "keyvalue"
    [event] = result.events
    assert event.ip == "203.0.113.5"
    assert event.category == "botnet"
    assert event.confidence == 0.6  # a hint, not a field


def test_text_category_says_nothing_when_the_words_name_nothing():
    assert freetext.text_category("", "Hello, please see the attached file.") is None
    assert freetext.text_category("", "known botware (IE: botnets)") == "botnet"


def test_stated_offset_reads_only_an_event_time_with_an_offset():
    assert feeds._stated_offset("from 192.0.2.77 (event time 2024-01-10 09:30:00 +01:00).") == "+01:00"
    assert feeds._stated_offset("Event-Time: 2024-01-10T09:30:00-0500") == "-05:00"
    assert feeds._stated_offset("(event time 2024-01-10 09:30:00)") == ""
    assert feeds._stated_offset(mime.body_text(mime.parse_message(fixture("freetext_plain.eml")))) == ""
