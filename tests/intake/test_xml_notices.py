"""ACNS copyright notices and Safe Browsing lists: XML inside mail, read with declarations refused."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from cases.intake import acns, mime, parse, safebrowsing, safexml
from cases.intake.base import ParseError

from . import RECEIVED_AT, fixture

BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + str(i - 1 if i > 2 else "") + ";") * 10}">' for i in range(2, 10))
    + "]>\n<Infringement><Source><Port>&lol9;</Port></Source></Infringement>"
)


def test_acns_notice_gives_the_infringers_address_port_and_time_once():
    # The same document sits in the clear-signed body and in the .xml attachment: one event.
    result = parse(fixture("fix_acns_notice.eml"), received_at=RECEIVED_AT)
    assert result.format == "acns"
    [event] = result.events
    assert (event.ip, event.port) == ("203.0.113.45", 51234)
    assert event.occurred_at == datetime(2024, 1, 20, 8, 15, 30, tzinfo=UTC)
    assert event.category == "copyright"
    assert event.external_id == "FIX-2024-0001"
    assert event.reporter == "notices@rights.example"
    assert event.reporter_org == "Example Rights Agency"
    assert "Example Film" in event.evidence


def test_acns_in_a_base64_body_with_a_namespace_prefix_and_only_the_items_timestamp():
    result = parse(fixture("fix_acns_base64_ipv6.eml"), received_at=RECEIVED_AT)
    assert result.format == "acns"
    [event] = result.events
    assert (event.ip, event.port) == ("2001:db8::2a", 6881)
    assert event.occurred_at == datetime(2024, 1, 18, 23, 59, 1, 250000, tzinfo=UTC)
    assert event.external_id == "FIX-V6-7"


def test_acns_detect_ignores_mail_without_an_infringement_document():
    msg = mime.parse_message(fixture("freetext_plain.eml"))
    assert not acns.detect(msg, fixture("freetext_plain.eml"))


def test_an_acns_document_with_entity_declarations_is_refused_not_expanded():
    started = time.perf_counter()
    result = parse(fixture("fix_acns_entity_bomb.eml"), received_at=RECEIVED_AT)
    assert time.perf_counter() - started < 1.0
    # The notice's prose still names the address; the free-text guess carries the refusal.
    assert result.format == "freetext"
    assert [e.ip for e in result.events] == ["203.0.113.9"]
    assert "DOCTYPE" in result.events[0].evidence
    assert result.events[0].port is None


def test_safexml_refuses_declarations_and_oversized_documents():
    with pytest.raises(ParseError, match="DOCTYPE"):
        safexml.parse(BILLION_LAUGHS)
    with pytest.raises(ParseError, match="DOCTYPE"):
        safexml.parse('<!DOCTYPE x SYSTEM "file:///etc/passwd"><x/>')
    with pytest.raises(ParseError, match="KB"):
        safexml.parse("<x>" + "a" * safexml.MAX_XML_CHARS + "</x>")
    with pytest.raises(ParseError, match="unreadable XML"):
        safexml.parse("<Infringement><Source></Infringement>")


def test_safexml_finds_documents_in_prose_and_keeps_a_preceding_doctype_for_the_guard():
    text = "Dear ISP,\n<Infringement><Source/></Infringement>\nthanks\n" + BILLION_LAUGHS
    first, second = safexml.documents(text, "Infringement")
    assert first == "<Infringement><Source/></Infringement>"
    assert second.startswith("<?xml")
    with pytest.raises(ParseError, match="DOCTYPE"):
        safexml.parse(second)


def test_safe_browsing_takes_the_notification_date_and_the_list_category():
    result = parse(fixture("fix_safebrowsing.eml"), received_at=RECEIVED_AT)
    assert result.format == "safebrowsing"
    by_ip = {e.ip: e for e in result.events}
    # A URL whose host is a name and that has no ip attribute names no address: left out.
    assert sorted(by_ip) == ["198.51.100.23", "198.51.100.26", "2001:db8::26", "2001:db8::27"]
    assert {e.occurred_at for e in result.events} == {datetime(2024, 1, 14, tzinfo=UTC)}
    assert by_ip["198.51.100.23"].category == "malware"
    assert by_ip["198.51.100.23"].port is None
    assert "http://shop.example/cart/" in by_ip["198.51.100.23"].evidence  # two URLs, one event
    assert {by_ip[ip].category for ip in ("198.51.100.26", "2001:db8::26", "2001:db8::27")} == {"phishing"}
    assert (by_ip["198.51.100.26"].port, by_ip["2001:db8::26"].port, by_ip["2001:db8::27"].port) == (8080, 8443, 2222)


def test_safe_browsing_url_hosts():
    assert safebrowsing._url_host("http://192.0.2.5/") == ("192.0.2.5", None)
    assert safebrowsing._url_host("https://user@192.0.2.5:81/x") == ("192.0.2.5", 81)
    assert safebrowsing._url_host("http://[2001:db8::1]/") == ("2001:db8::1", None)
    assert safebrowsing._url_host("http://2001:db8::1/") == ("2001:db8::1", None)
    assert safebrowsing._url_host("http://example.com:8080/") == (None, None)
    assert safebrowsing._url_host("not a url") == (None, None)


def test_safe_browsing_with_a_future_date_is_no_report():
    raw = fixture("fix_safebrowsing.eml").replace(b'date="2024-01-14"', b'date="2099-01-14"')
    result = parse(raw, received_at=RECEIVED_AT)
    # Free text still sees the addresses, at lower confidence and with the reason attached.
    assert result.format == "freetext"
    assert result.events and all(e.confidence < 0.5 for e in result.events)
    assert "time in the future" in result.events[0].evidence
