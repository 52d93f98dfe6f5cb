"""Staff side of replies: the case page shows them, a NOC member reviews them, links are withdrawn."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.urls import reverse

from cases.models import CaseEvent, CustomerReply
from cases.services.common import TransitionError
from cases.services.replies import record_customer_reply, review_reply
from tests.replies.conftest import link

pytestmark = pytest.mark.django_db


@pytest.fixture
def reply(case) -> CustomerReply:
    return record_customer_reply(case, "Reinstalled it <img src=x onerror=alert(1)>", channel="link")


def test_the_case_page_shows_the_reply_escaped_with_a_review_button(client, noc_user, case, reply):
    client.force_login(noc_user)
    page = client.get(case.get_absolute_url()).content.decode()
    assert "Reinstalled it &lt;img src=x onerror=alert(1)&gt;" in page
    assert "<img src=x" not in page
    assert reverse("cases:reply_review", args=[reply.pk]) in page
    assert 'id="awaiting-review"' in page


def test_reviewing_the_last_reply_lets_escalation_go_on(
    client, noc_user, case, reply, django_capture_on_commit_callbacks
):
    second = record_customer_reply(case, "and changed the password", channel="link")
    client.force_login(noc_user)
    client.post(reverse("cases:reply_review", args=[reply.pk]), {"note": "looks plausible"})
    case.refresh_from_db()
    assert case.awaiting_review is True  # one still unread
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(reverse("cases:reply_review", args=[second.pk]))
    assert response.status_code == 302 and response["Location"] == case.get_absolute_url()
    case.refresh_from_db()
    assert case.awaiting_review is False
    assert len(callbacks) == 1  # the ladder looks at the case again, after the commit
    second.refresh_from_db()
    assert (second.reviewed_by, second.reviewed_at is not None) == (noc_user, True)
    events = CaseEvent.objects.filter(kind="reply_reviewed").order_by("id")
    assert [(e.new, e.note, e.actor) for e in events] == [
        (str(reply.pk), "looks plausible", noc_user),
        (str(second.pk), "", noc_user),
    ]
    page = client.get(case.get_absolute_url()).content.decode()
    assert "reviewed by noc1" in page and 'id="awaiting-review"' not in page


def test_a_reply_is_reviewed_once(noc_user, reply):
    review_reply(reply, actor=noc_user)
    with pytest.raises(TransitionError):
        review_reply(reply, actor=noc_user)


def test_only_noc_staff_review(norole_user, reply):
    with pytest.raises(PermissionDenied):
        review_reply(reply, actor=norole_user)


def test_the_staff_actions_need_a_login_the_role_and_a_post(client, norole_user, noc_user, case, reply):
    urls = [reverse("cases:reply_review", args=[reply.pk]), reverse("cases:case_revoke_links", args=[case.pk])]
    for url in urls:
        response = client.post(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    client.force_login(norole_user)
    for url in urls:
        assert client.post(url).status_code == 403
    client.force_login(noc_user)
    for url in urls:
        assert client.get(url).status_code == 405
    assert client.post(reverse("cases:reply_review", args=[999999])).status_code == 404
    assert client.post(reverse("cases:case_revoke_links", args=[999999])).status_code == 404
    reply.refresh_from_db()
    case.refresh_from_db()
    assert reply.reviewed_at is None and case.link_version == 1


def test_noc_staff_withdraw_a_cases_links(client, noc_user, case):
    old = link(case)
    client.force_login(noc_user)
    response = client.post(reverse("cases:case_revoke_links", args=[case.pk]), {"note": "forwarded to a stranger"})
    assert response.status_code == 302
    case.refresh_from_db()
    assert case.link_version == 2
    assert CaseEvent.objects.get(kind="links_revoked").note == "forwarded to a stranger"
    client.logout()
    assert client.get(old).status_code == 403
