"""Case actions and customer changes through the API: the desk's and the admin's services, checks and audit."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from django.contrib.admin.models import LogEntry
from django.utils import timezone

from cases.models import ApprovalStatus, CaseEvent, CaseStatus, Rung
from customers.models import Allocation, AllocationChange, Contact, Customer
from tests.cases.ladder_builders import make_case, pending_approval
from tests.conftest import make_user
from tests.customers.factories import make_allocation, make_customer

pytestmark = pytest.mark.django_db


def post(client, url: str, body: dict):
    return client.post(url, data=json.dumps(body), content_type="application/json")


def patch(client, url: str, body: dict):
    return client.patch(url, data=json.dumps(body), content_type="application/json")


def test_a_note_is_written_as_the_tokens_user(api):
    case = make_case()
    response = post(api("write", role="noc"), f"/api/v1/cases/{case.pk}/note/", {"note": "Phoned the customer."})
    assert response.status_code == 200
    event = CaseEvent.objects.filter(case=case, kind="note").get()
    assert event.note == "Phoned the customer." and event.actor.username.startswith("api-noc")
    assert response.json()["events"][-1]["note"] == "Phoned the customer."


def test_assign_takes_a_desk_users_name_or_null(api, noc_user, norole_user):
    case = make_case()
    client = api("write", role="noc")
    assert post(client, f"/api/v1/cases/{case.pk}/assign/", {"assignee": "noc1"}).json()["assignee"] == "noc1"
    bad = post(client, f"/api/v1/cases/{case.pk}/assign/", {"assignee": "nobody"})
    assert bad.status_code == 400 and "assignee" in bad.json()["error"]["fields"]
    assert post(client, f"/api/v1/cases/{case.pk}/assign/", {"assignee": None}).json()["assignee"] is None
    assert list(CaseEvent.objects.filter(case=case, kind="assignee").values_list("new", flat=True)) == ["noc1", ""]


def test_hold_goes_through_the_ladders_checks(api):
    case = make_case()
    client = api("write", role="noc")
    past = post(client, f"/api/v1/cases/{case.pk}/hold/", {"until": "2020-01-01T00:00:00Z", "reason": "x"})
    assert past.status_code == 409 and "future" in past.json()["error"]["message"]
    until = (timezone.now() + timedelta(days=2)).isoformat()
    response = post(client, f"/api/v1/cases/{case.pk}/hold/", {"until": until, "reason": "Customer is cleaning up."})
    assert response.status_code == 200 and response.json()["hold_reason"] == "Customer is cleaning up."
    assert CaseEvent.objects.filter(case=case, kind="hold").exists()


def test_resolve_and_reject_close_the_case_and_a_closed_case_cannot_be_closed_again(api):
    client = api("write", role="noc")
    case, other = make_case(), make_case()
    assert post(client, f"/api/v1/cases/{case.pk}/resolve/", {"note": "fixed"}).json()["status"] == "resolved"
    again = post(client, f"/api/v1/cases/{case.pk}/reject/", {})
    assert again.status_code == 409
    assert again.json()["error"] == {
        "status": 409,
        "code": "conflict",
        "message": "A case cannot go from resolved to rejected.",
    }
    assert post(client, f"/api/v1/cases/{other.pk}/reject/", {}).json()["status"] == CaseStatus.REJECTED
    assert CaseEvent.objects.filter(kind="status", new="resolved", note="fixed").count() == 1


def test_only_a_managers_token_approves(api):
    case = make_case(rung=Rung.WARNING)
    approval = pending_approval(case)
    noc = post(api("write", role="noc"), f"/api/v1/cases/{case.pk}/approve/", {"reason": "enough"})
    assert noc.status_code == 403 and "manager" in noc.json()["error"]["message"]
    done = post(api("write", role="manager"), f"/api/v1/cases/{case.pk}/approve/", {"reason": "third warning"})
    assert done.status_code == 200 and done.json()["rung"] == "suspension"
    approval.refresh_from_db()
    assert approval.status == ApprovalStatus.DONE
    nothing = post(api("write", role="manager"), f"/api/v1/cases/{case.pk}/approve/", {"reason": "again"})
    assert nothing.status_code == 409


def test_a_write_token_whose_user_has_no_role_or_no_user_is_refused(api):
    case = make_case()
    for client in (api("write", user=make_user("outsider", None)), api("write")):
        response = post(client, f"/api/v1/cases/{case.pk}/note/", {"note": "hi"})
        assert response.status_code == 403
        assert "noc role" in response.json()["error"]["message"]
    assert not CaseEvent.objects.filter(case=case, kind="note").exists()


def test_actions_validate_their_bodies(api):
    case = make_case()
    client = api("write", role="noc")
    assert post(client, f"/api/v1/cases/{case.pk}/note/", {}).json()["error"]["fields"] == {
        "note": ["This field is required."]
    }
    assert (
        "until"
        in post(client, f"/api/v1/cases/{case.pk}/hold/", {"until": "soon", "reason": "r"}).json()["error"]["fields"]
    )
    assert post(client, "/api/v1/cases/999999/note/", {"note": "x"}).status_code == 404


# --- customers, contacts, allocations (admin) ------------------------------------------------------


def test_an_admin_token_creates_and_changes_a_customer_with_the_admin_log(api):
    client = api("admin", role="admin")
    created = post(client, "/api/v1/customers/", {"account": "B-1", "name": "Corner Shop", "kind": "business"})
    assert created.status_code == 201 and created.json()["standing"] == "good"
    customer = Customer.objects.get(account="B-1")
    changed = patch(client, "/api/v1/customers/B-1/", {"name": "Corner Shop Ltd"})
    assert changed.status_code == 200 and changed.json()["name"] == "Corner Shop Ltd"
    assert LogEntry.objects.filter(object_id=str(customer.pk)).count() == 2
    duplicate = post(client, "/api/v1/customers/", {"account": "B-1", "name": "Again"})
    assert duplicate.status_code == 400 and "account" in duplicate.json()["error"]["fields"]
    assert patch(client, "/api/v1/customers/B-1/", {"standing": "terminated"}).status_code == 400


def test_contacts_are_added_changed_and_removed(api):
    customer = make_customer("R-5")
    client = api("admin", role="admin")
    added = post(client, "/api/v1/customers/R-5/contacts/", {"email": "me@home.example"})
    assert added.status_code == 201
    assert post(client, "/api/v1/customers/R-5/contacts/", {"email": "not-an-address"}).status_code == 400
    assert post(client, "/api/v1/customers/R-5/contacts/", {"email": "ME@home.example"}).status_code == 400
    contact_id = added.json()["id"]
    assert (
        patch(client, f"/api/v1/contacts/{contact_id}/", {"receives_notices": False}).json()["receives_notices"]
        is False
    )
    assert client.delete(f"/api/v1/contacts/{contact_id}/").status_code == 204
    assert not Contact.objects.filter(customer=customer).exists()
    assert LogEntry.objects.filter(object_id=str(customer.pk)).count() == 3


def test_allocations_go_through_the_services_with_their_history(api):
    customer = make_customer("R-6")
    make_allocation("198.51.100.0/29", customer=make_customer("R-7"))
    client = api("admin", role="admin")
    body = {"network": "203.0.113.0/30", "valid_from": "2026-01-01T00:00:00Z"}
    created = post(client, "/api/v1/customers/R-6/allocations/", body)
    assert created.status_code == 201
    allocation = Allocation.objects.get(pk=created.json()["id"])
    assert allocation.customer == customer
    overlap = post(
        client,
        "/api/v1/customers/R-6/allocations/",
        {"network": "198.51.100.0/29", "valid_from": "2026-01-01T00:00:00Z"},
    )
    assert overlap.status_code == 400 and overlap.json()["error"]["message"]
    host_bits = post(client, "/api/v1/customers/R-6/allocations/", {"network": "203.0.113.77/24"})
    assert host_bits.status_code == 400
    assert patch(client, f"/api/v1/allocations/{allocation.pk}/", {"note": "router"}).json()["note"] == "router"
    assert client.delete(f"/api/v1/allocations/{allocation.pk}/").status_code == 204
    actions = list(
        AllocationChange.objects.filter(network="203.0.113.0/30")
        .order_by("at", "id")
        .values_list("action", "actor__username")
    )
    assert [a for a, _ in actions] == ["created", "updated", "deleted"]
    assert all(user.startswith("api-admin") for _, user in actions)


def test_an_admin_scope_token_of_a_noc_user_cannot_change_customers(api):
    make_customer("R-8")
    client = api("admin", role="noc")
    response = post(client, "/api/v1/customers/", {"account": "B-2", "name": "Shop"})
    assert response.status_code == 403 and "admin role" in response.json()["error"]["message"]
    assert patch(client, "/api/v1/customers/R-8/", {"name": "x"}).status_code == 403
    assert not Customer.objects.filter(account="B-2").exists()
