"""The case page as a desk operator works it: links to the customer, the customer's other cases and
the matched allocation; assigning to a colleague; a status control that preselects nothing; the
"I am sure" confirm step; history in words; the reporter's own words in the evidence; a query count
that does not grow with the reports shown."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from cases.demo import _complaint
from cases.models import Case, CaseEvent, CaseStatus, NoticeKind, Report, Rung
from cases.services import intake
from tests.cases.ladder_builders import make_case, make_notice
from tests.conftest import make_user
from tests.customers.factories import make_allocation, make_customer

pytestmark = pytest.mark.django_db

HELD_FROM = datetime(2025, 1, 1, tzinfo=UTC)


def text_of(response) -> str:
    """The page's visible text: tags dropped, whitespace folded."""
    html = re.sub(r"<(script|style)\b.*?</\1>", "", response.content.decode(), flags=re.S)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def messages_of(response) -> list[str]:
    return [str(m) for m in response.wsgi_request._messages]


def _filed_case(noc_user, *, ip: str = "198.51.100.9") -> Case:
    """A case filed through intake, so its report stores the allocation that matched."""
    customer = make_customer("B-7001", name="Copper Print Shop", kind="business")
    make_allocation("198.51.100.0/28", customer=customer, valid_from=HELD_FROM)
    intake.enter_report(
        ip=ip,
        occurred_at=timezone.now() - timedelta(hours=3),
        category="scanning",
        reporter_org="Example GmbH",
        text="Port scans all night against our web servers.",
        actor=noc_user,
    )
    return Case.objects.get(customer=customer)


def test_it_links_the_customer_page_other_cases_and_the_matched_allocation(client, noc_user):
    case = _filed_case(noc_user)
    warned = make_case(customer=case.customer, category="spam", rung=Rung.WARNING)
    make_notice(warned, kind=NoticeKind.WARNING)
    acked_only = make_case(customer=case.customer, category="malware", rung=Rung.NONE)
    make_notice(acked_only, kind=NoticeKind.REPORTER_ACK)
    Case.objects.filter(pk=acked_only.pk).update(status=CaseStatus.RESOLVED)
    client.force_login(noc_user)
    response = client.get(case.get_absolute_url())
    assert response.status_code == 200
    page = response.content.decode()
    assert reverse("customers:customer_detail", args=[case.customer_id]) in page
    others = {c.pk: c for c in response.context["other_cases"]}
    assert set(others) == {warned.pk, acked_only.pk}
    assert others[warned.pk].led_to_notice is True
    assert others[acked_only.pk].led_to_notice is False  # an acknowledgement to a reporter is not a notice
    assert [c.pk for c in response.context["other_cases"]] == [warned.pk, acked_only.pk]  # open first
    section = page[page.index('id="case-other-cases"') :]
    assert "led to notices: warning" in section and warned.reference in section
    matched = response.context["matched_allocations"]
    assert [(m.allocation.network, m.ips, m.stored) for m in matched] == [("198.51.100.0/28", ["198.51.100.9"], True)]
    allocations = text_of(response)
    assert "198.51.100.0/28 held 2025-01-01 00:00 UTC – now (no end)" in allocations


def test_an_allocation_not_stored_on_the_report_is_resolved_again_for_display(client, noc_user):
    customer = make_customer("R-7002")
    make_allocation("198.51.100.0/29", customer=customer, valid_from=HELD_FROM)
    case = make_case(customer=customer)  # reports without a stored allocation, all from 198.51.100.7
    assert not Report.objects.filter(case=case, allocation__isnull=False).exists()
    client.force_login(noc_user)
    response = client.get(case.get_absolute_url())
    [matched] = response.context["matched_allocations"]
    assert (matched.allocation.network, matched.ips, matched.stored) == ("198.51.100.0/29", ["198.51.100.7"], False)
    assert "resolved again now, not stored on the report" in text_of(response)


def _add_reports(case: Case, n: int, *, start: int) -> None:
    now = timezone.now()
    Report.objects.bulk_create(
        Report(
            case=case,
            customer=case.customer,
            ip=f"203.0.113.{start + i}",
            occurred_at=now - timedelta(minutes=start + i),
            category=case.category,
            format="arf",
            evidence=f"evidence {start + i}",
            dedupe_key=f"qc{start + i}",
        )
        for i in range(n)
    )


def test_the_case_page_query_count_does_not_grow_with_reports_addresses_or_other_cases(
    client, noc_user, django_assert_num_queries
):
    case = _filed_case(noc_user)
    make_case(customer=case.customer, category="spam")
    # Addresses with no stored allocation are resolved for display, at most RESOLVE_FOR_DISPLAY of them.
    _add_reports(case, 6, start=1)
    client.force_login(noc_user)
    client.get(case.get_absolute_url())  # warm the policy cache and the session
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as small:
        client.get(case.get_absolute_url())
    _add_reports(case, 150, start=10)
    for category in ("malware", "botnet", "phishing", "ddos", "copyright"):
        make_notice(make_case(customer=case.customer, category=category), kind=NoticeKind.FIRST_NOTICE)
    for i in range(5):
        make_user(f"noc-extra{i}", "noc")
    with django_assert_num_queries(len(small)):
        response = client.get(case.get_absolute_url())
    assert len(response.context["reports"].rows) == 50 and response.context["reports"].has_next
    assert len(response.context["other_cases"]) == 6


def test_reports_are_paged_newest_first_and_the_matched_allocations_cover_every_page(client, noc_user):
    case = _filed_case(noc_user)
    _add_reports(case, 120, start=1)
    client.force_login(noc_user)
    pages = [client.get(case.get_absolute_url(), {"rp": n}).context for n in (1, 2, 3)]
    rows = [r for context in pages for r in context["reports"].rows]
    assert [len(c["reports"].rows) for c in pages] == [50, 50, 21]
    assert [c["reports"].has_next for c in pages] == [True, True, False]
    assert len({r.pk for r in rows}) == 121
    assert [r.occurred_at for r in rows] == sorted((r.occurred_at for r in rows), reverse=True)
    # The filed report is the oldest, on page 3; its allocation is named on page 1 all the same.
    assert [m.allocation.network for m in pages[0]["matched_allocations"]] == ["198.51.100.0/28"]
    page = client.get(case.get_absolute_url(), {"rp": 2}).content.decode()
    assert 'rel="prev"' in page and 'hx-select="#case-reports-section"' in page
    assert client.get(case.get_absolute_url(), {"rp": "x"}).status_code == 200


# --- assigning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["noc", "manager", "admin"])
def test_each_desk_role_assigns_the_case_to_a_colleague(client, noc_user, role):
    case = make_case()
    colleague = make_user("noc2", "noc")
    actor = make_user(f"{role}-actor", role)
    client.force_login(actor)
    page = client.get(case.get_absolute_url()).content.decode()
    assert f'<option value="{colleague.pk}">noc2</option>' in page
    response = client.post(reverse("cases:case_assign", args=[case.pk]), {"assignee": colleague.pk})
    assert response.status_code == 302 and response["Location"] == case.get_absolute_url()
    assert messages_of(response) == ["Assigned to noc2."]
    case.refresh_from_db()
    assert case.assignee == colleague
    event = CaseEvent.objects.get(case=case, kind="assignee")
    assert (event.new, event.actor) == ("noc2", actor)
    assert f"assigned to noc2, by {role}-actor" in text_of(client.get(case.get_absolute_url()))


def test_a_case_cannot_be_given_to_someone_without_the_noc_role(client, noc_user):
    case = make_case()
    outsider = make_user("visitor", None)
    client.force_login(noc_user)
    assert f'value="{outsider.pk}"' not in client.get(case.get_absolute_url()).content.decode()
    response = client.post(reverse("cases:case_assign", args=[case.pk]), {"assignee": outsider.pk})
    assert messages_of(response) == ["Choose a colleague with the noc role."]
    case.refresh_from_db()
    assert case.assignee is None and not CaseEvent.objects.filter(case=case, kind="assignee").exists()


def test_assigning_to_nobody_unassigns(client, noc_user):
    case = make_case()
    case.assignee = noc_user
    case.save()
    client.force_login(noc_user)
    response = client.post(reverse("cases:case_assign", args=[case.pk]), {"assignee": ""})
    assert messages_of(response) == ["Nobody is assigned now."]
    case.refresh_from_db()
    assert case.assignee is None


def test_assigning_is_post_only_and_refused_without_a_role(client, norole_user):
    case = make_case()
    url = reverse("cases:case_assign", args=[case.pk])
    anonymous = client.post(url, {"assignee": ""})
    assert anonymous.status_code == 302 and anonymous["Location"].startswith(reverse("login"))
    client.force_login(norole_user)
    assert client.post(url, {"assignee": ""}).status_code == 403
    client.force_login(make_user("noc3", "noc"))
    assert client.get(url).status_code == 405
    assert client.post(reverse("cases:case_assign", args=[999999]), {"assignee": ""}).status_code == 404


# --- status and the confirm step ------------------------------------------------------------------


def test_the_status_control_preselects_nothing(client, noc_user):
    case = make_case(rung=Rung.NONE)
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    select = re.search(r'<select name="status".*?</select>', page, re.S).group(0)
    options = re.findall(r'<option value="([^"]*)"([^>]*)>', select)
    assert [value for value, _ in options] == ["", "waiting", "resolved", "rejected"]
    assert all("selected" not in attrs for value, attrs in options if value)
    response = client.post(reverse("cases:case_status", args=[case.pk]), {"status": ""})
    assert messages_of(response) == ["That status change is not possible."]
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN


@pytest.mark.parametrize("status", ["resolved", "rejected"])
def test_closing_a_case_needs_i_am_sure(client, noc_user, status):
    case = make_case(rung=Rung.NONE)
    client.force_login(noc_user)
    url = reverse("cases:case_status", args=[case.pk])
    response = client.post(url, {"status": status, "note": "fixed"})
    assert messages_of(response) == ["Tick “I am sure” to resolve or reject a case."]
    case.refresh_from_db()
    assert case.status == CaseStatus.OPEN
    client.post(url, {"status": status, "note": "fixed", "sure": "on"})
    case.refresh_from_db()
    assert case.status == status


def test_a_reversible_status_change_needs_no_confirmation(client, noc_user):
    case = make_case(rung=Rung.NONE)
    client.force_login(noc_user)
    client.post(reverse("cases:case_status", args=[case.pk]), {"status": "waiting"})
    case.refresh_from_db()
    assert case.status == CaseStatus.WAITING


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("cases:case_de_escalate", {"reason": "sent in error"}),
        ("cases:case_merge", {"target": "AD-1", "reason": "same run"}),
    ],
)
def test_irreversible_ladder_actions_are_refused_without_i_am_sure(client, noc_user, name, data):
    case = make_case()
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    form = page[page.index(f'action="{reverse(name, args=[case.pk])}"') :]
    form = form[: form.index("</form>")]
    assert re.search(r'<input[^>]*name="sure"[^>]*required', form)
    response = client.post(reverse(name, args=[case.pk]), data)
    assert "I am sure: This field is required." in messages_of(response)[0]
    case.refresh_from_db()
    assert case.rung == Rung.WARNING and case.status == CaseStatus.WAITING


# --- history in words, no machine codes ---------------------------------------------------------


def test_history_reads_as_sentences_with_no_machine_codes(client, noc_user):
    case = _filed_case(noc_user)
    client.force_login(noc_user)
    client.post(reverse("cases:case_status", args=[case.pk]), {"status": "waiting", "note": "asked them"})
    response = client.get(case.get_absolute_url())
    history = text_of(response)[text_of(response).index("History") :]
    assert "1 report added from message" in history and "(entered by hand)" in history
    assert "status: open → waiting on customer, by noc1: asked them" in history
    assert "case opened" in history
    visible = text_of(response)
    # No snake_case keys (reports_added, first_notice, login_attack, keyvalue...) anywhere on the page.
    assert not re.findall(r"\b[a-z]+_[a-z_]+\b", visible), re.findall(r"\b[a-z]+_[a-z_]+\b", visible)
    for code in ("(manual)", "(arf)", "reports_added", "keyvalue"):
        assert code not in visible


def test_three_reports_added_reads_as_words(client, noc_user):
    case = make_case()
    CaseEvent.objects.create(case=case, kind="reports_added", new="3", note="3 reports from message 12 (keyvalue)")
    client.force_login(noc_user)
    history = text_of(client.get(case.get_absolute_url()))
    assert "3 reports added from message 12 (fields in a mail)" in history


# --- the reporter's own words -------------------------------------------------------------------


def test_a_complaint_with_source_and_time_lines_keeps_the_reporters_sentences(client, noc_user):
    customer = make_customer("R-7003")
    make_allocation("198.51.100.32/29", customer=customer, valid_from=HELD_FROM)
    at = timezone.now().replace(microsecond=0) - timedelta(hours=5)
    message, _ = intake.receive(_complaint(1, "198.51.100.33", at), "email")
    intake.process_message(message.pk)
    report = Report.objects.get(message=message)
    assert report.format == "keyvalue"
    assert "source: 198.51.100.33" in report.evidence
    assert "About 3,000 failed logins in an hour." in report.evidence
    assert "someone on your network keeps trying to log in to our server over SSH." in report.evidence
    client.force_login(noc_user)
    response = client.get(report.case.get_absolute_url())
    words = re.search(r'<q class="reporter-words[^"]*">(.*?)</q>', response.content.decode(), re.S).group(1)
    assert "About 3,000 failed logins in an hour." in words
    assert "source:" not in words


def test_the_reporters_words_are_bounded(noc_user):
    from cases.intake.feeds import REPORTER_WORDS_MAX, reporter_words

    prose = "Source: 198.51.100.7\nTime: 2026-11-24 14:02 UTC\n" + "They keep at it. " * 5000
    kept = reporter_words(prose)
    assert len(kept) <= REPORTER_WORDS_MAX and kept.startswith("They keep at it.")
    assert "Source:" not in kept


def test_evidence_stays_escaped(client, noc_user):
    case = make_case()
    Report.objects.filter(case=case).update(format="manual", evidence="<img src=x onerror=alert(1)> scans")
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    assert "<img src=x" not in page and "&lt;img src=x onerror=alert(1)&gt; scans" in page


def test_a_free_text_complaint_shows_the_reporters_sentences_not_the_parsers_notes(client, noc_user):
    from cases import intake as parsers

    raw = (
        b"From: a@b.example\r\nSubject: hacking\r\n\r\n"
        b"Hello, the host 198.51.100.7 attacked our server at 2026-11-24 14:02 UTC.\r\nAbout 3,000 failed logins.\r\n"
    )
    [event, *_] = parsers.parse(raw, received_at=datetime(2026, 11, 25, tzinfo=UTC)).events
    assert event.format == "freetext"
    case = make_case()
    Report.objects.filter(case=case).update(format="freetext", evidence=event.evidence)
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    words = re.findall(r'<q class="reporter-words[^"]*">(.*?)</q>', page, re.S)
    assert words and all(w.startswith("Hello, the host 198.51.100.7") for w in words)
    assert all("About 3,000 failed logins." in w and "[candidate" not in w for w in words)
