"""The notice template editor: admins change the wording; everyone else reads it; a broken
template is refused with its line; the preview renders on a real case, escaped, never a 500."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group, User
from django.test import Client

from cases.models import NoticeKind, NoticeTemplate
from cases.services import notices
from tests.notices.builders import case_with_report

pytestmark = pytest.mark.django_db

LIST_URL = "/admin/cases/noticetemplate/"
ADD_URL = LIST_URL + "add/"
PREVIEW_URL = LIST_URL + "preview/"


def staff_client(role: str) -> Client:
    user = User.objects.create_user(username=f"{role}-t", password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def case(django_capture_on_commit_callbacks):
    return case_with_report(django_capture_on_commit_callbacks, evidence='<script>alert("x")</script> 198.51.100.7')


def form_data(**overrides) -> dict:
    data = {"kind": NoticeKind.WARNING, **notices.builtin_sources(NoticeKind.WARNING)}
    return {**data, **overrides}


def test_anonymous_users_are_sent_to_the_login_page():
    for url in (LIST_URL, ADD_URL, PREVIEW_URL):
        response = Client().get(url)
        assert response.status_code == 302 and "/login/" in response["Location"]


def test_noc_staff_read_templates_but_cannot_change_them(case):
    client = staff_client("noc")
    assert client.get(LIST_URL).status_code == 200
    assert client.get(ADD_URL).status_code == 403
    assert client.post(ADD_URL, form_data()).status_code == 403
    assert client.post(PREVIEW_URL + "?kind=warning", form_data(preview_case=case.pk)).status_code == 403
    response = client.get(PREVIEW_URL, {"kind": "warning", "preview_case": case.pk})
    assert response.status_code == 200
    assert f"[{case.reference}] Warning" in response.content.decode()
    assert not NoticeTemplate.objects.exists()


def test_a_new_template_starts_from_the_built_in_wording():
    response = staff_client("admin").get(ADD_URL, {"kind": "suspension"})
    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.initial["kind"] == "suspension"
    assert form.initial["body_text"] == notices.builtin_sources("suspension")["body_text"]
    assert "Preview on a real case" in response.content.decode()


def test_an_admin_saves_a_template_and_notices_use_it(case, django_capture_on_commit_callbacks):
    client = staff_client("admin")
    response = client.post(ADD_URL, form_data(subject="{{ reference }}: warning about {{ category_label }}"))
    assert response.status_code == 302
    with django_capture_on_commit_callbacks(execute=False):
        notice = notices.issue_notice(case, NoticeKind.WARNING, key="k", actor=None)
    assert notice.subject == f"{case.reference}: warning about Spam"


def test_a_template_that_does_not_compile_is_refused_with_its_line():
    response = staff_client("admin").post(ADD_URL, form_data(body_text="Hello\n{% if %}\n"))
    assert response.status_code == 200
    [error] = response.context["adminform"].form.errors["body_text"]
    assert error.startswith("Template error (line 2): ")
    assert not NoticeTemplate.objects.exists()


def test_the_preview_renders_the_edited_template_on_a_real_case_escaped(case):
    response = staff_client("admin").post(
        PREVIEW_URL,
        form_data(subject="Edited {{ reference }}", body_html="<p>{{ evidence|safe }}</p>", preview_case=case.pk),
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert f"Edited {case.reference}" in page
    assert "not saved" in page
    assert '<iframe class="notice-html" sandbox=""' in page
    assert "<script>alert" not in page  # neither from the text nor from the HTML
    assert "&amp;lt;script&amp;gt;" in page  # the HTML body's escaped evidence, escaped again into srcdoc
    assert not NoticeTemplate.objects.exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"body_text": "{% for %}"}, "Template error"),
        ({"body_html": "{{ evidence|no_such_filter }}"}, "Invalid filter"),
        ({"preview_case": "999999"}, "There is no case 999999."),
        ({"preview_case": "1; drop"}, "is not a case number"),
        ({"kind": "nonsense"}, "Choose a kind of notice."),
    ],
)
def test_the_preview_shows_problems_as_a_message_not_a_500(case, change, message):
    response = staff_client("admin").post(PREVIEW_URL, form_data(**{"preview_case": case.pk, **change}))
    assert response.status_code == 200
    assert message in response.content.decode()
