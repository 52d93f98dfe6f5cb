"""Parsed headers are reused (policy.default re-parses on every access); the reuse must stay
bounded and must not mix up header names or values."""

from __future__ import annotations

from cases.intake import mime, parse

from . import RECEIVED_AT, fixture


def test_equal_headers_share_one_parsed_object_and_keep_their_params():
    a = mime.parse_message(fixture("arf_rfc5965.eml"))
    b = mime.parse_message(fixture("arf_rfc5965.eml"))
    assert a["Content-Type"] is b["Content-Type"]
    assert a["Content-Type"].params.get("report-type") == "feedback-report"
    assert parse(fixture("arf_rfc5965.eml"), received_at=RECEIVED_AT).format == "arf"


def test_header_name_case_is_kept_per_name():
    registry = mime.POLICY.header_factory
    lower = registry("subject", "hello")
    upper = registry("Subject", "hello")
    assert (lower.name, upper.name) == ("subject", "Subject")
    assert str(lower) == str(upper) == "hello"


def test_the_reuse_cache_is_bounded():
    registry = mime.POLICY.header_factory
    for n in range(registry._MAX_ENTRIES + 10):
        registry("X-Fix-Counter", str(n))
    assert len(registry._parsed) <= registry._MAX_ENTRIES
    long_value = "x" * (registry._MAX_VALUE_CHARS + 1)
    registry("X-Fix-Long", long_value)
    assert ("X-Fix-Long", long_value) not in registry._parsed


def test_address_parses_are_remembered_but_not_a_hostile_headers():
    from email.message import EmailMessage

    def message(value: str) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = value
        return msg

    mime._parseaddr_cached.cache_clear()
    friendly = message('"Feedback Loop" <FBL@Feedback.Mail.example>')
    assert (mime.address(friendly), mime.display_name(friendly)) == ("fbl@feedback.mail.example", "Feedback Loop")
    assert mime.address(message('"Feedback Loop" <FBL@Feedback.Mail.example>')) == "fbl@feedback.mail.example"
    info = mime._parseaddr_cached.cache_info()
    assert (info.currsize, info.hits) == (1, 2)
    hostile = message("x" * 600 + " <abuse@isp.example>")
    assert mime.address(hostile) == "abuse@isp.example"
    assert mime._parseaddr_cached.cache_info().currsize == 1
