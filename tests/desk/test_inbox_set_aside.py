"""Inbox: mail that is not a report is set aside with a reason, and can be restored."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases.models import InboundMessage, ParseStatus, TriageEvent
from cases.services import triage
from cases.services.common import TransitionError

pytestmark = pytest.mark.django_db


def message(n: int, status: str = ParseStatus.UNPARSED, subject: str = "") -> InboundMessage:
    raw = f"From: someone{n}@example.org\r\nSubject: junk {n}\r\n\r\nbuy now {n}\r\n".encode()
    return InboundMessage.objects.create(
        raw=raw,
        size=len(raw),
        sha256=hashlib.sha256(raw).hexdigest(),
        channel="email",
        subject=subject or f"junk {n}",
        status=status,
        parse_error="no report found in the message" if status == ParseStatus.UNPARSED else "",
    )


def test_unparsed_mail_is_set_aside_with_the_reason_and_an_audit_row(noc_user):
    junk, other = message(1), message(2)
    assert triage.set_aside_messages([junk.pk], reason="  a newsletter ", actor=noc_user) == 1
    junk.refresh_from_db()
    other.refresh_from_db()
    assert junk.status == ParseStatus.IGNORED
    assert (junk.aside_reason, junk.aside_by) == ("a newsletter", noc_user)
    assert junk.aside_at is not None
    assert other.status == ParseStatus.UNPARSED
    event = TriageEvent.objects.get(message=junk)
    assert (event.kind, event.old, event.new, event.note, event.actor) == (
        "set_aside",
        "unparsed",
        "ignored",
        "a newsletter",
        noc_user,
    )


def test_setting_aside_needs_a_reason(noc_user):
    junk = message(1)
    with pytest.raises(TransitionError):
        triage.set_aside_messages([junk.pk], reason="   ", actor=noc_user)
    junk.refresh_from_db()
    assert junk.status == ParseStatus.UNPARSED
    assert not TriageEvent.objects.exists()


def test_parsed_or_waiting_mail_is_not_set_aside(noc_user):
    parsed, waiting = message(1, ParseStatus.PARSED), message(2, ParseStatus.NEW)
    assert triage.set_aside_messages([parsed.pk, waiting.pk], reason="junk", actor=noc_user) == 0
    with pytest.raises(TransitionError):
        triage.set_aside_message(parsed, reason="junk", actor=noc_user)
    assert set(InboundMessage.objects.values_list("status", flat=True)) == {ParseStatus.PARSED, ParseStatus.NEW}


def test_restoring_puts_the_message_back_among_the_unparsed_with_an_audit_row(noc_user):
    junk = message(1)
    triage.set_aside_messages([junk.pk], reason="spam to abuse@", actor=noc_user)
    assert triage.restore_messages([junk.pk], actor=noc_user) == 1
    assert triage.restore_messages([junk.pk], actor=noc_user) == 0  # already back
    junk.refresh_from_db()
    assert (junk.status, junk.aside_reason, junk.aside_at, junk.aside_by) == (ParseStatus.UNPARSED, "", None, None)
    assert list(TriageEvent.objects.filter(message=junk).values_list("kind", "old", "new")) == [
        ("set_aside", "unparsed", "ignored"),
        ("restored", "ignored", "unparsed"),
    ]


def test_the_inbox_page_sets_aside_the_ticked_mail(client, noc_user):
    a, b, c = message(1), message(2), message(3)
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:message_set_aside"), {"ids": [a.pk, b.pk], "reason": "newsletters", "tab": "unparsed"}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("cases:message_list") + "?status=unparsed"
    assert set(InboundMessage.objects.filter(status=ParseStatus.IGNORED).values_list("pk", flat=True)) == {a.pk, b.pk}
    page = client.get(reverse("cases:message_list") + "?status=ignored")
    assert "2 messages set aside." in page.text
    assert "newsletters" in page.text
    assert c.subject not in page.text
    # Restored from the "set aside" tab.
    client.post(reverse("cases:message_restore"), {"ids": [a.pk], "tab": "ignored"})
    assert InboundMessage.objects.get(pk=a.pk).status == ParseStatus.UNPARSED


def test_the_inbox_refuses_a_set_aside_without_reason_or_selection(client, noc_user):
    junk = message(1)
    client.force_login(noc_user)
    response = client.post(reverse("cases:message_set_aside"), {"ids": [junk.pk], "reason": ""}, follow=True)
    assert "This field is required." in response.text
    response = client.post(reverse("cases:message_set_aside"), {"reason": "junk"}, follow=True)
    assert "This field is required." in response.text
    response = client.post(reverse("cases:message_set_aside"), {"ids": ["1; drop"], "reason": "junk"}, follow=True)
    assert "The selection is not valid." in response.text
    assert InboundMessage.objects.get(pk=junk.pk).status == ParseStatus.UNPARSED


@pytest.mark.parametrize("name", ["cases:message_set_aside", "cases:message_restore"])
def test_inbox_actions_are_post_only_and_need_the_noc_role(client, noc_user, norole_user, name):
    junk = message(1)
    client.force_login(noc_user)
    assert client.get(reverse(name)).status_code == 405
    client.force_login(norole_user)
    assert client.post(reverse(name), {"ids": [junk.pk], "reason": "x"}).status_code == 403
    assert InboundMessage.objects.get(pk=junk.pk).status == ParseStatus.UNPARSED


def test_the_inbox_tabs_show_counts(client, noc_user):
    for n in range(3):
        message(n)
    message(10, ParseStatus.PARSED)
    triage.set_aside_messages([InboundMessage.objects.filter(status="unparsed").first().pk], reason="x", actor=None)
    client.force_login(noc_user)
    response = client.get(reverse("cases:message_list"))
    tabs = {value: count for value, _label, count in response.context["tabs"]}
    assert (tabs["unparsed"], tabs["ignored"], tabs["parsed"], tabs["new"]) == (2, 1, 1, 0)
    assert response.context["total"] == 4


@pytest.mark.parametrize("status", ["unparsed", "ignored", ""])
def test_the_inbox_list_takes_the_same_queries_for_3_or_40_rows(client, noc_user, status):
    client.force_login(noc_user)
    url = reverse("cases:message_list") + f"?status={status}"

    def queries_for(rows: int) -> int:
        start = InboundMessage.objects.count()
        ids = [message(start + n).pk for n in range(rows)]
        triage.set_aside_messages(ids, reason="junk", actor=noc_user) if status == "ignored" else None
        with CaptureQueriesContext(connection) as ctx:
            assert client.get(url).status_code == 200
        return len(ctx.captured_queries)

    few = queries_for(3)
    many = queries_for(37)
    assert few == many
    assert many <= 8
