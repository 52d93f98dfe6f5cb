"""A real service a test needs (dovecot, redis-server, Chromium) that is not installed: the test skips
on a developer's machine, saying what to install, and fails under CI, which installs them all."""

from __future__ import annotations

import pytest

from tests.fixtures_services import missing_service


def test_a_missing_service_skips_here_and_fails_under_ci(monkeypatch):
    monkeypatch.delenv("ABUSEDESK_REQUIRE_SERVICES", raising=False)
    with pytest.raises(pytest.skip.Exception, match="apt-get install dovecot-imapd"):
        missing_service("dovecot is not installed: apt-get install dovecot-imapd")
    monkeypatch.setenv("ABUSEDESK_REQUIRE_SERVICES", "1")
    with pytest.raises(pytest.fail.Exception, match="apt-get install dovecot-imapd"):
        missing_service("dovecot is not installed: apt-get install dovecot-imapd")
