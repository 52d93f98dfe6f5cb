"""The SMTP sink the notice tests use: mail sent by Django's SMTP backend arrives in it."""

from __future__ import annotations

import pytest
from django.core.mail import EmailMessage, get_connection

from tests import fixtures_services

# Until tests/conftest.py loads tests.fixtures_services as a plugin (harmless after).
smtp_server = fixtures_services.smtp_server

pytestmark = pytest.mark.integration


def test_mail_sent_over_smtp_is_collected(smtp_server, settings):
    settings.EMAIL_TIMEOUT = 5
    connection = get_connection("django.core.mail.backends.smtp.EmailBackend")
    EmailMessage(
        "First notice: spam from 198.51.100.7",
        "Please look at the attached evidence.",
        "abuse@isp.example",
        ["noc@customer.example"],
        connection=connection,
        headers={"Message-ID": "<notice-1@isp.example>"},
    ).send()
    received = smtp_server.wait_for(1)
    assert received[0].mail_from == "abuse@isp.example"
    assert received[0].rcpt_tos == ["noc@customer.example"]
    assert received[0].message["Subject"] == "First notice: spam from 198.51.100.7"
    assert received[0].message["Message-ID"] == "<notice-1@isp.example>"
