"""The admin side of imports: upload, background run (eager in tests), progress page, access."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

import customers.admin_imports  # noqa: F401 - registers ImportRunAdmin until customers/admin.py imports it
from customers.models import Allocation, Customer, ImportRun
from customers.tasks import run_import

pytestmark = pytest.mark.django_db

ADD_URL = "/admin/customers/importrun/"


def upload(client, kind: str, content: bytes, name: str = "leases.csv"):
    return client.post(
        reverse("admin:customers_importrun_add"), {"kind": kind, "file": SimpleUploadedFile(name, content)}
    )


@pytest.fixture
def admin_client(client, admin_user_role):
    client.force_login(admin_user_role)
    return client


def test_an_uploaded_lease_file_is_imported_in_the_background_and_shown(
    admin_client, admin_user_role, django_capture_on_commit_callbacks
):
    Customer.objects.create(account="A100", name="Alice")
    content = (
        b"ip,account,start,stop\n"
        b"198.51.100.7,A100,2024-03-01T10:00:00Z,\n"
        b"198.51.100.8,NOPE,2024-03-01T10:00:00Z,\n"
        b"198.51.100.9,A100,2024-03-01T10:00:00Z,<script>alert(1)</script>\n"
    )
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = upload(admin_client, "leases", content)
    assert len(callbacks) == 1  # the task is queued on commit, not before

    run = ImportRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("admin:customers_importrun_change", args=[run.pk])
    assert (run.kind, run.filename, run.started_by, run.status) == ("leases", "leases.csv", admin_user_role, "done")
    assert (run.created, run.rejected, run.processed_rows, run.total_rows) == (1, 2, 3, 3)
    assert Allocation.objects.get().network == "198.51.100.7/32"

    page = admin_client.get(response["Location"])
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-status="done"' in html
    assert '<progress max="100" value="100"' in html
    assert "unknown account NOPE" in html
    # Rejected rows are shown escaped, never as markup.
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "hx-trigger" not in html  # finished: no more polling


def test_a_pending_run_page_polls_its_progress_fragment(admin_client):
    run = ImportRun.objects.create(kind="leases", filename="big.csv", total_rows=200, processed_rows=50)
    page = admin_client.get(reverse("admin:customers_importrun_change", args=[run.pk])).content.decode()
    progress_url = reverse("admin:customers_importrun_progress", args=[run.pk])
    assert f'hx-get="{progress_url}"' in page and 'hx-trigger="every 1s"' in page
    assert "vendor/htmx/htmx.min.js" in page

    fragment = admin_client.get(progress_url, HTTP_HX_REQUEST="true")
    assert fragment.status_code == 200
    text = fragment.content.decode()
    assert '<progress max="100" value="25"' in text and "50 of 200 rows (25%)" in text
    assert "<html" not in text


def test_an_allocation_upload_creates_customers(admin_client, django_capture_on_commit_callbacks):
    content = b"account,name,kind,email,network,valid_from,valid_to\nC1,Alice,business,a@example.net,192.0.2.0/29,,\n"
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, "allocations", content, "customers.csv")
    run = ImportRun.objects.get()
    assert (run.status, run.created) == ("done", 1)
    assert Customer.objects.get(account="C1").kind == "business"


def test_an_unreadable_upload_fails_the_run_with_a_reason(admin_client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, "leases", b"this,is,not,the,header\n1,2,3,4,5\n")
    run = ImportRun.objects.get()
    assert run.status == "failed" and "The header must be ip,account,start,stop" in run.error
    page = admin_client.get(reverse("admin:customers_importrun_change", args=[run.pk])).content.decode()
    assert "The header must be" in page and 'data-status="failed"' in page


def test_the_task_runs_a_run_only_once(admin_client, django_capture_on_commit_callbacks):
    Customer.objects.create(account="A100", name="Alice")
    with django_capture_on_commit_callbacks(execute=True):
        upload(admin_client, "leases", b"ip,account,start,stop\n198.51.100.7,A100,2024-03-01T10:00:00Z,\n")
    run = ImportRun.objects.get()
    assert run.created == 1
    run_import(run.pk)  # a second delivery of the same task
    run.refresh_from_db()
    assert (run.status, run.created, run.unchanged) == ("done", 1, 0)
    run_import(987654)  # a run that does not exist: nothing happens


def test_the_upload_needs_a_file(admin_client):
    response = admin_client.post(reverse("admin:customers_importrun_add"), {"kind": "leases"})
    assert response.status_code == 200
    assert not ImportRun.objects.exists()


def test_the_changelist_lists_runs_with_their_progress(admin_client):
    ImportRun.objects.create(kind="leases", filename="big.csv", total_rows=200, processed_rows=50)
    response = admin_client.get(ADD_URL)
    assert response.status_code == 200
    assert "big.csv" in response.content.decode() and "25%" in response.content.decode()


def test_anonymous_users_are_sent_to_log_in(client):
    run = ImportRun.objects.create(kind="leases", filename="x.csv")
    for url in (
        ADD_URL,
        reverse("admin:customers_importrun_add"),
        reverse("admin:customers_importrun_change", args=[run.pk]),
        reverse("admin:customers_importrun_progress", args=[run.pk]),
    ):
        response = client.get(url)
        assert response.status_code == 302 and "login" in response["Location"]


@pytest.mark.parametrize("role_fixture", ["noc_user", "manager_user"])
def test_only_admins_reach_imports(client, request, role_fixture, django_capture_on_commit_callbacks):
    user = request.getfixturevalue(role_fixture)
    run = ImportRun.objects.create(kind="leases", filename="x.csv")
    urls = (
        ADD_URL,
        reverse("admin:customers_importrun_add"),
        reverse("admin:customers_importrun_change", args=[run.pk]),
        reverse("admin:customers_importrun_progress", args=[run.pk]),
    )
    client.force_login(user)
    for url in urls:
        assert client.get(url).status_code in (302, 403)
    # Even as staff (the manager role may view ImportRun), a non-admin gets 403, and cannot upload.
    user.is_staff = True
    user.save(update_fields=["is_staff"])
    client.force_login(user)
    for url in urls:
        assert client.get(url).status_code == 403, url
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, "leases", b"ip,account,start,stop\n")
    assert response.status_code == 403
    assert ImportRun.objects.count() == 1
