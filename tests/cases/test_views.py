from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from cases.models import Case, CaseEvent, CaseStatus, InboundMessage, ParseStatus, Report
from cases.services.filing import record_reports
from tests.cases.helpers import T0, customer_with, event

pytestmark = pytest.mark.django_db

GET_PAGES = ["cases:home", "cases:message_list", "cases:unassigned", "cases:complaint_new", "cases:upload"]


@pytest.fixture
def case(db) -> Case:
    customer_with("198.51.100.0/24", "B-1")
    record_reports([event("198.51.100.7", evidence="<script>alert(1)</script>")])
    return Case.objects.get()


@pytest.fixture
def unparsed_message(db) -> InboundMessage:
    raw = b"From: someone@example.net\r\nSubject: help\r\n\r\n<b>your customer is bad</b>\r\n"
    return InboundMessage.objects.create(
        raw=raw,
        size=len(raw),
        sha256="a" * 64,
        channel="email",
        subject="help",
        status=ParseStatus.UNPARSED,
        parse_error="no IP address found",
    )


def _detail_urls(case, message):
    return [
        reverse("cases:case_detail", args=[case.pk]),
        reverse("cases:message_detail", args=[message.pk]),
        reverse("cases:message_raw", args=[message.pk]),
    ]


@pytest.mark.parametrize("name", GET_PAGES)
def test_anonymous_users_are_sent_to_login(client, name):
    response = client.get(reverse(name))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize("name", GET_PAGES)
def test_users_without_a_role_are_refused(client, norole_user, name):
    client.force_login(norole_user)
    assert client.get(reverse(name)).status_code == 403


@pytest.mark.parametrize("name", GET_PAGES)
def test_each_role_can_see_the_noc_pages(client, noc_user, manager_user, admin_user_role, name):
    for user in (noc_user, manager_user, admin_user_role):
        client.force_login(user)
        assert client.get(reverse(name)).status_code == 200


def test_detail_pages_by_role(client, case, unparsed_message, noc_user, norole_user):
    for url in _detail_urls(case, unparsed_message):
        assert client.get(url).status_code == 302
        client.force_login(norole_user)
        assert client.get(url).status_code == 403
        client.force_login(noc_user)
        assert client.get(url).status_code == 200
        client.logout()


@pytest.mark.parametrize("name", ["cases:case_note", "cases:case_status", "cases:case_take"])
def test_case_actions_refuse_get(client, case, noc_user, name):
    client.force_login(noc_user)
    assert client.get(reverse(name, args=[case.pk])).status_code == 405


def test_the_queue_lists_open_cases_in_a_fixed_number_of_queries(client, noc_user, django_assert_max_num_queries):
    for n in range(15):
        customer_with(f"203.0.113.{n * 16}/28", f"C-{n}")
    record_reports([event(f"203.0.113.{n * 16 + 1}") for n in range(15)])
    client.force_login(noc_user)
    with django_assert_max_num_queries(10):
        response = client.get(reverse("cases:home"))
    assert response.status_code == 200
    assert response.content.count(b'href="/cases/') == 15


def test_evidence_is_shown_escaped(client, case, noc_user):
    client.force_login(noc_user)
    response = client.get(reverse("cases:case_detail", args=[case.pk]))
    assert b"<script>alert(1)</script>" not in response.content
    assert b"&lt;script&gt;alert(1)&lt;/script&gt;" in response.content


def test_raw_message_is_shown_escaped(client, unparsed_message, noc_user):
    client.force_login(noc_user)
    response = client.get(reverse("cases:message_detail", args=[unparsed_message.pk]))
    assert b"<b>your customer is bad</b>" not in response.content
    assert b"no IP address found" in response.content


def test_a_note_status_change_and_taking_a_case_are_audited(client, case, noc_user):
    client.force_login(noc_user)
    client.post(reverse("cases:case_note", args=[case.pk]), {"note": "Called the customer."})
    client.post(reverse("cases:case_take", args=[case.pk]))
    client.post(reverse("cases:case_status", args=[case.pk]), {"status": "resolved", "note": "fixed", "sure": "on"})
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED
    assert case.assignee == noc_user
    kinds = list(CaseEvent.objects.filter(case=case, actor=noc_user).values_list("kind", "old", "new"))
    assert ("note", "", "") in kinds
    assert ("assignee", "", "noc1") in kinds
    assert ("status", "open", "resolved") in kinds


def test_a_status_change_not_in_the_table_is_refused(client, case, noc_user):
    client.force_login(noc_user)
    client.post(reverse("cases:case_status", args=[case.pk]), {"status": "resolved", "sure": "on"})
    response = client.post(reverse("cases:case_status", args=[case.pk]), {"status": "waiting"}, follow=True)
    case.refresh_from_db()
    assert case.status == CaseStatus.RESOLVED
    assert b"not possible" in response.content


def test_a_phone_complaint_is_stored_and_filed(client, noc_user):
    customer = customer_with("198.51.100.0/24", "B-1")
    client.force_login(noc_user)
    response = client.post(
        reverse("cases:complaint_new"),
        {
            "ip": "198.51.100.7",
            "occurred_at": "2026-11-20T14:02",
            "category": "scanning",
            "reporter_org": "Example GmbH",
            "text": "They scanned us all night <script>",
        },
    )
    case = Case.objects.get(customer=customer)
    assert response.status_code == 302
    assert response["Location"] == case.get_absolute_url()
    report = Report.objects.get()
    assert report.occurred_at == T0.replace(minute=2)
    message = report.message
    assert message.channel == "web" and message.received_by == noc_user
    assert b"They scanned us all night" in bytes(message.raw)


@pytest.mark.parametrize(
    ("ip", "says"),
    [
        ("198.51.100.200", "the address is outside our address space"),
        ("203.0.113.9", "no customer held that address then"),
        ("127.0.0.1", "not a routable address"),
    ],
)
def test_a_phone_complaint_nobody_holds_says_why(client, noc_user, ip, says):
    customer_with("203.0.113.0/28", "OLD", valid_to=T0 - timedelta(days=30))
    client.force_login(noc_user)
    data = {"ip": ip, "occurred_at": "2026-11-20T14:02", "category": "spam", "text": "spam from them"}
    response = client.post(reverse("cases:complaint_new"), data, follow=True)
    assert response.status_code == 200
    assert says in response.content.decode()
    assert Report.objects.get().customer is None


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [("ip", "148.81.111.11.12", b"not a valid"), ("occurred_at", "2099-01-01T00:00", b"in the future")],
)
def test_a_bad_complaint_shows_an_error(client, noc_user, field, value, error):
    data = {"ip": "198.51.100.7", "occurred_at": "2026-11-20T14:02", "category": "spam", field: value}
    client.force_login(noc_user)
    response = client.post(reverse("cases:complaint_new"), data)
    assert response.status_code == 400
    assert error in response.content
    assert InboundMessage.objects.count() == 0


def test_uploaded_files_are_stored_once(client, noc_user):
    client.force_login(noc_user)
    one = SimpleUploadedFile("a.eml", b"Subject: one\r\n\r\nhello 192.0.2.1\r\n", content_type="message/rfc822")
    two = SimpleUploadedFile("b.eml", b"Subject: two\r\n\r\nhello 192.0.2.2\r\n", content_type="message/rfc822")
    response = client.post(reverse("cases:upload"), {"files": [one, two]})
    assert response.status_code == 302
    again = SimpleUploadedFile("a.eml", b"Subject: one\r\n\r\nhello 192.0.2.1\r\n")
    client.post(reverse("cases:upload"), {"files": [again]})
    assert InboundMessage.objects.count() == 2
    assert set(InboundMessage.objects.values_list("channel", flat=True)) == {"upload"}
    assert InboundMessage.objects.get(subject="one").times_received == 2


def test_an_upload_without_files_is_an_error(client, noc_user):
    client.force_login(noc_user)
    response = client.post(reverse("cases:upload"), {})
    assert response.status_code == 400


def test_an_event_entered_for_an_unparsed_message_files_it(client, unparsed_message, noc_user):
    customer = customer_with("198.51.100.0/24", "B-1")
    client.force_login(noc_user)
    when = (timezone.now() - timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M")
    response = client.post(
        reverse("cases:message_add_event", args=[unparsed_message.pk]),
        {"ip": "198.51.100.7", "occurred_at": when, "category": "spam"},
    )
    assert response.status_code == 302
    unparsed_message.refresh_from_db()
    assert unparsed_message.status == ParseStatus.PARSED
    assert Report.objects.get().message == unparsed_message
    assert Case.objects.get().customer == customer


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("198.51.100.7", ["B-1"]),
        ("::ffff:198.51.100.7", ["B-1"]),
        ("B-2", ["B-2"]),
        ("customer b-", ["B-1", "B-2"]),
        ("192.0.2.99", []),
        ("#0", []),
    ],
)
def test_the_queue_finds_cases_by_ip_account_or_name(client, noc_user, query, expected):
    customer_with("198.51.100.0/24", "B-1")
    customer_with("203.0.113.0/24", "B-2")
    record_reports([event("198.51.100.7"), event("203.0.113.5")])
    client.force_login(noc_user)
    response = client.get(reverse("cases:home"), {"q": query})
    assert sorted(c.customer.account for c in response.context["page"]) == expected


def test_the_queue_filters_by_status(client, noc_user):
    from cases.services.workflow import change_case_status

    customer_with("198.51.100.0/24", "B-1")
    customer_with("203.0.113.0/24", "B-2")
    record_reports([event("198.51.100.7"), event("203.0.113.5")])
    change_case_status(Case.objects.get(customer__account="B-2"), CaseStatus.WAITING, actor=noc_user)
    client.force_login(noc_user)

    def accounts(**params):
        response = client.get(reverse("cases:home"), params)
        return sorted(c.customer.account for c in response.context["page"])

    assert accounts() == ["B-1", "B-2"]
    assert accounts(status="open") == ["B-1"]
    assert accounts(status="waiting") == ["B-2"]
    assert accounts(status="resolved") == []
    assert b'value="active" selected' in client.get(reverse("cases:home")).content
