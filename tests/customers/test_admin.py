from __future__ import annotations

from datetime import UTC, datetime

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from customers import services
from customers.models import Allocation, AllocationChange, Contact, Customer

T0 = datetime(2025, 1, 1, tzinfo=UTC)
T1 = datetime(2025, 2, 1, tzinfo=UTC)
T2 = datetime(2025, 3, 1, tzinfo=UTC)

CUSTOMERS_URL = "/admin/customers/customer/"
ALLOCATIONS_URL = "/admin/customers/allocation/"


def staff(username: str, role: str) -> User:
    user = User.objects.create_user(username=username, password="pw", is_staff=True)
    user.groups.add(Group.objects.get(name=role))
    return user


def signed_in(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def admin_client_role(db) -> Client:
    return signed_in(staff("admin2", "admin"))


@pytest.fixture
def desk(db) -> dict:
    """Two customers who held 198.51.100.7 one after the other, one with a business block."""
    alice = Customer.objects.create(account="R-1001", name="Alice Example", kind="residential")
    Contact.objects.create(customer=alice, email="alice@example.net")
    bob = Customer.objects.create(account="R-1002", name="Bob Sample", kind="residential")
    Contact.objects.create(customer=bob, email="bob@example.org")
    acme = Customer.objects.create(account="B-2001", name="Acme Print Ltd", kind="business", standing="warned")
    old = services.create_allocation(
        customer=bob, network="198.51.100.7/32", valid_from=T0, valid_to=T1, source="lease", actor_label="test"
    )
    now = services.create_allocation(
        customer=alice, network="198.51.100.7/32", valid_from=T1, source="lease", actor_label="test"
    )
    block = services.create_allocation(customer=acme, network="192.0.2.8/29", valid_from=T0, actor_label="test")
    return {"alice": alice, "bob": bob, "acme": acme, "old": old, "now": now, "block": block}


def changelist_accounts(response) -> set[str]:
    return {c.account for c in response.context["cl"].result_list}


def split(value: datetime | None) -> tuple[str, str]:
    """The admin's split date/time widget values."""
    if value is None:
        return "", ""
    return value.strftime("%Y-%m-%d"), value.strftime("%H:%M:%S")


def customer_post(customer: Customer, contacts: list[Contact] | None = None) -> dict:
    """The change form as a browser would post it (contacts inline; allocations are on their own pages)."""
    data = {
        "account": customer.account,
        "name": customer.name,
        "kind": customer.kind,
        "notes": customer.notes,
        "_save": "Save",
    }
    contacts = list(customer.contacts.all()) if contacts is None else contacts
    data |= {
        "contacts-TOTAL_FORMS": str(len(contacts)),
        "contacts-INITIAL_FORMS": str(len(contacts)),
        "contacts-MIN_NUM_FORMS": "0",
        "contacts-MAX_NUM_FORMS": "1000",
    }
    for i, c in enumerate(contacts):
        data |= {
            f"contacts-{i}-id": str(c.pk),
            f"contacts-{i}-customer": str(customer.pk),
            f"contacts-{i}-email": c.email,
            f"contacts-{i}-name": c.name,
            f"contacts-{i}-receives_notices": "on" if c.receives_notices else "",
        }
    return data


def allocation_post(**fields) -> dict:
    """The allocation form; its read-only history inline still posts a management form."""
    data = {"changes-TOTAL_FORMS": "0", "changes-INITIAL_FORMS": "0", "changes-MIN_NUM_FORMS": "0"}
    data["changes-MAX_NUM_FORMS"] = "1000"
    for name, value in fields.items():
        if isinstance(value, datetime) or (value is None and name.startswith("valid_")):
            data[name + "_0"], data[name + "_1"] = split(value)
        else:
            data[name] = value
    return data


# --- search -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("R-1001", {"R-1001"}),
        ("sample", {"R-1002"}),
        ("bob@example.org", {"R-1002"}),
        ("example.net", {"R-1001"}),
        ("Acme", {"B-2001"}),
    ],
)
def test_it_finds_customers_by_account_name_and_email(admin_client_role, desk, term, expected):
    response = admin_client_role.get(CUSTOMERS_URL, {"q": term})
    assert response.status_code == 200
    assert changelist_accounts(response) == expected


def test_it_finds_the_holder_and_the_earlier_holder_of_an_ip_with_periods(admin_client_role, desk):
    response = admin_client_role.get(CUSTOMERS_URL, {"q": "198.51.100.7"})
    assert response.status_code == 200
    assert changelist_accounts(response) == {"R-1001", "R-1002"}
    lookup = response.context["ip_lookup"]
    assert lookup.current == desk["now"]
    assert [a.pk for a in lookup.earlier] == [desk["old"].pk]
    html = response.content.decode()
    panel = html[html.index('id="ip-lookup"') :]
    # Alice now (open), Bob before, from 1 January until 1 February.
    assert panel.index("R-1001") < panel.index("R-1002")
    assert "2025-01-01 00:00" in panel and "2025-02-01 00:00" in panel
    assert "open" in panel


def test_an_ipv4_mapped_address_and_a_cidr_search_find_the_same_holders(admin_client_role, desk):
    mapped = admin_client_role.get(CUSTOMERS_URL, {"q": "::ffff:198.51.100.7"})
    assert changelist_accounts(mapped) == {"R-1001", "R-1002"}
    inside = admin_client_role.get(CUSTOMERS_URL, {"q": "192.0.2.12"})
    assert changelist_accounts(inside) == {"B-2001"}
    assert inside.context["ip_lookup"].current == desk["block"]
    cidr = admin_client_role.get(CUSTOMERS_URL, {"q": "192.0.2.8/29"})
    assert changelist_accounts(cidr) == {"B-2001"}


def test_an_ip_nobody_held_finds_nobody(admin_client_role, desk):
    response = admin_client_role.get(CUSTOMERS_URL, {"q": "203.0.113.99"})
    assert response.status_code == 200
    assert changelist_accounts(response) == set()
    assert response.context["ip_lookup"].current is None
    assert b"Nobody." in response.content


def test_a_number_is_an_account_search_not_an_ip(admin_client_role, desk):
    Customer.objects.create(account="3232235777", name="Numbers Ltd", kind="business")
    response = admin_client_role.get(CUSTOMERS_URL, {"q": "3232235777"})
    assert changelist_accounts(response) == {"3232235777"}
    assert response.context["ip_lookup"] is None


def test_the_allocation_list_searches_ip_history(admin_client_role, desk):
    response = admin_client_role.get(ALLOCATIONS_URL, {"q": "198.51.100.7"})
    assert response.status_code == 200
    assert {a.pk for a in response.context["cl"].result_list} == {desk["old"].pk, desk["now"].pk}


# --- audited writes --------------------------------------------------------------


def test_the_allocation_form_refuses_an_overlap_with_a_form_error(admin_client_role, desk):
    data = allocation_post(
        customer=desk["bob"].pk, network="192.0.2.8/29", source="static", note="", valid_from=T1, valid_to=None
    )
    response = admin_client_role.post(f"{ALLOCATIONS_URL}add/", data)
    assert response.status_code == 200
    assert "already allocated to B-2001" in response.content.decode()
    # A more specific network inside the block is allowed (a reassignment).
    data["network"] = "192.0.2.12/30"
    response = admin_client_role.post(f"{ALLOCATIONS_URL}add/", data)
    assert response.status_code == 302
    created = Allocation.objects.get(network="192.0.2.12/30")
    assert created.prefixlen == 30 and created.family == 4
    assert AllocationChange.objects.get(allocation=created).action == "created"


def test_the_allocation_form_updates_through_the_service(db, desk):
    user = staff("admin3", "admin")
    block = desk["block"]
    data = allocation_post(
        customer=desk["acme"].pk, network=block.network, source="static", note="moved rack", valid_from=T0, valid_to=T2
    )
    response = signed_in(user).post(f"{ALLOCATIONS_URL}{block.pk}/change/", data)
    assert response.status_code == 302
    change = AllocationChange.objects.get(allocation=block, action="updated")
    assert change.actor == user
    assert change.new["note"] == "moved rack" and change.new["valid_to"] == T2.isoformat()
    # The change page shows that history.
    page = signed_in(user).get(f"{ALLOCATIONS_URL}{block.pk}/change/")
    assert "moved rack" in page.content.decode()


def test_bulk_delete_of_allocations_writes_a_change_per_row(db, desk):
    user = staff("admin3", "admin")
    ids = [desk["old"].pk, desk["now"].pk]
    response = signed_in(user).post(
        ALLOCATIONS_URL, {"action": "delete_selected", "_selected_action": ids, "post": "yes"}
    )
    assert response.status_code == 302
    assert not Allocation.objects.filter(pk__in=ids).exists()
    deleted = AllocationChange.objects.filter(action="deleted", actor=user)
    assert deleted.count() == 2


def test_deleting_a_customer_records_its_allocations_deletion(db, desk):
    user = staff("admin3", "admin")
    acme = desk["acme"]
    response = signed_in(user).post(f"{CUSTOMERS_URL}{acme.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Customer.objects.filter(pk=acme.pk).exists()
    assert AllocationChange.objects.get(network="192.0.2.8/29", action="deleted").actor == user


# --- who may do what --------------------------------------------------------------


def test_anonymous_users_are_sent_to_log_in(client, desk):
    for url in (CUSTOMERS_URL, f"{CUSTOMERS_URL}{desk['alice'].pk}/change/", ALLOCATIONS_URL, "/admin/"):
        response = client.get(url)
        assert response.status_code == 302
        assert "login" in response["Location"]


@pytest.mark.parametrize("role", ["noc", "manager"])
def test_noc_and_managers_can_view_but_not_change(db, desk, role):
    client = signed_in(staff(f"{role}9", role))
    alice = desk["alice"]
    assert client.get(CUSTOMERS_URL).status_code == 200
    assert client.get(CUSTOMERS_URL, {"q": "198.51.100.7"}).status_code == 200
    page = client.get(f"{CUSTOMERS_URL}{alice.pk}/change/")
    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert client.get(f"{ALLOCATIONS_URL}{desk['now'].pk}/change/").status_code == 200
    data = customer_post(alice) | {"name": "Changed"}
    assert client.post(f"{CUSTOMERS_URL}{alice.pk}/change/", data).status_code == 403
    assert client.get(f"{CUSTOMERS_URL}add/").status_code == 403
    assert client.post(f"{CUSTOMERS_URL}{alice.pk}/delete/", {"post": "yes"}).status_code == 403
    alice.refresh_from_db()
    assert alice.name == "Alice Example"
    assert not AllocationChange.objects.filter(action="updated").exists()


def test_admins_can_change_customers(admin_client_role, desk):
    alice = desk["alice"]
    data = customer_post(alice) | {"name": "Alice Renamed"}
    response = admin_client_role.post(f"{CUSTOMERS_URL}{alice.pk}/change/", data)
    assert response.status_code == 302
    alice.refresh_from_db()
    assert alice.name == "Alice Renamed"
    # Nothing about the allocation changed, so nothing is recorded for it.
    assert not AllocationChange.objects.filter(action="updated").exists()


def test_a_signed_in_user_without_staff_status_gets_no_admin(db, desk):
    user = User.objects.create_user(username="plain", password="pw")
    user.groups.add(Group.objects.get(name="admin"))
    response = signed_in(user).get(CUSTOMERS_URL)
    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_allocation_history_is_read_only(db, desk):
    user = staff("admin3", "admin")
    change = AllocationChange.objects.first()
    client = signed_in(user)
    assert client.get("/admin/customers/allocationchange/").status_code == 200
    page = client.get(f"/admin/customers/allocationchange/{change.pk}/change/")
    assert page.status_code == 200 and page.context["has_change_permission"] is False
    assert client.post(f"/admin/customers/allocationchange/{change.pk}/delete/", {"post": "yes"}).status_code == 403
    assert reverse("admin:customers_allocationchange_changelist") == "/admin/customers/allocationchange/"


def test_the_changelists_do_not_query_per_row(admin_client_role, db):
    def queries_for(url: str) -> int:
        with CaptureQueriesContext(connection) as ctx:
            assert admin_client_role.get(url).status_code == 200
        return len(ctx)

    def add_customers(start: int, n: int) -> None:
        for i in range(start, start + n):
            c = Customer.objects.create(account=f"R-{i}", name=f"Line {i}", kind="residential")
            Contact.objects.create(customer=c, email=f"line{i}@example.net")
            services.create_allocation(customer=c, network=f"203.0.113.{i}/32", valid_from=T0, source="lease")

    add_customers(1, 3)
    few = (queries_for(CUSTOMERS_URL), queries_for(ALLOCATIONS_URL))
    add_customers(10, 20)
    many = (queries_for(CUSTOMERS_URL), queries_for(ALLOCATIONS_URL))
    assert few == many
