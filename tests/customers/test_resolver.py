from __future__ import annotations

import ipaddress
import random
from datetime import UTC, datetime, timedelta

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from customers.models import Allocation, AllocationChange
from customers.resolver import candidate_networks, normalize_ip, resolve
from customers.services import create_allocation, delete_allocation, end_allocation, update_allocation
from tests.customers.factories import T0, make_allocation, make_customer

pytestmark = pytest.mark.django_db

TICK = timedelta(microseconds=1)


# --- resolve() ------------------------------------------------------------------------------------


def test_valid_from_is_inclusive():
    lease = make_allocation("198.51.100.7/32", valid_from=T0, valid_to=T0 + timedelta(hours=8))
    assert resolve("198.51.100.7", T0) == lease
    assert resolve("198.51.100.7", T0 - TICK) is None


def test_valid_to_is_exclusive():
    lease = make_allocation("198.51.100.7/32", valid_from=T0, valid_to=T0 + timedelta(hours=8))
    assert resolve("198.51.100.7", T0 + timedelta(hours=8) - TICK) == lease
    assert resolve("198.51.100.7", T0 + timedelta(hours=8)) is None


def test_at_the_handover_instant_the_new_holder_has_the_ip():
    old = make_allocation("198.51.100.7/32", valid_from=T0 - timedelta(days=1), valid_to=T0)
    new = make_allocation("198.51.100.7/32", valid_from=T0)
    assert resolve("198.51.100.7", T0 - TICK).customer == old.customer
    assert resolve("198.51.100.7", T0).customer == new.customer


def test_the_most_specific_network_wins():
    pool = make_allocation("198.51.100.0/24", source="pool")
    block = make_allocation("198.51.100.8/29")
    assert resolve("198.51.100.9", T0) == block
    assert resolve("198.51.100.15", T0) == block
    assert resolve("198.51.100.16", T0) == pool
    assert resolve("198.51.100.7", T0) == pool


def test_a_lease_inside_a_pool_beats_the_pool_only_while_it_lasts():
    pool = make_allocation("198.51.100.0/24", source="pool")
    lease = make_allocation("198.51.100.7/32", valid_from=T0, valid_to=T0 + timedelta(hours=2), source="lease")
    assert resolve("198.51.100.7", T0 + timedelta(hours=1)) == lease
    assert resolve("198.51.100.7", T0 + timedelta(hours=2)) == pool
    assert resolve("198.51.100.7", T0 - TICK) == pool


def test_an_ended_inner_block_falls_back_to_the_outer_one():
    pool = make_allocation("198.51.100.0/24")
    make_allocation("198.51.100.8/29", valid_to=T0)
    assert resolve("198.51.100.9", T0) == pool


def test_ipv6_business_48_with_a_64_inside():
    business = make_allocation("2001:db8:42::/48", customer=make_customer("B-48", kind="business"))
    inner = make_allocation("2001:db8:42:7::/64", customer=make_customer("B-64", kind="business"))
    assert resolve("2001:db8:42:7::1", T0) == inner
    assert resolve("2001:db8:42:7:ffff:ffff:ffff:ffff", T0) == inner
    assert resolve("2001:db8:42:8::1", T0) == business
    assert resolve("2001:db8:42:ffff::1", T0) == business
    assert resolve("2001:db8:43::1", T0) is None


def test_ipv6_is_matched_whatever_the_spelling():
    block = make_allocation("2001:DB8:0:0:1::/80")
    assert block.network == "2001:db8:0:0:1::/80"
    assert resolve("2001:0DB8:0000:0000:0001:0000:0000:0009", T0) == block
    assert resolve(ipaddress.IPv6Address("2001:db8::1:0:0:9"), T0) == block


def test_ipv4_mapped_ipv6_resolves_as_ipv4():
    block = make_allocation("198.51.100.0/24")
    assert resolve("::ffff:198.51.100.7", T0) == block
    assert resolve(ipaddress.IPv6Address("::ffff:c633:6407"), T0) == block
    assert normalize_ip("::ffff:198.51.100.7") == ipaddress.IPv4Address("198.51.100.7")


def test_an_ipv4_mapped_network_is_stored_as_ipv4():
    block = make_allocation("::ffff:198.51.100.0/120")
    assert (block.network, block.family, block.prefixlen) == ("198.51.100.0/24", 4, 24)
    assert resolve("198.51.100.200", T0) == block


def test_no_match_is_none():
    make_allocation("198.51.100.0/24", valid_from=T0)
    assert resolve("203.0.113.9", T0) is None
    assert resolve("198.51.100.7", T0 - timedelta(days=1)) is None
    assert resolve("2001:db8::1", T0) is None


def test_a_lease_that_is_still_open_resolves_now_and_later():
    lease = make_allocation("198.51.100.7/32", valid_from=T0, source="lease")
    assert resolve("198.51.100.7") == lease
    assert resolve("198.51.100.7", T0 + timedelta(days=3650)) == lease


def test_the_customer_who_had_the_ip_last_tuesday_not_the_one_who_has_it_now():
    now = timezone.now()
    last_tuesday = now - timedelta(days=(now.weekday() - 1) % 7 or 7)
    then_customer = make_customer("R-TUESDAY")
    now_customer = make_customer("R-TODAY")
    make_allocation(
        "198.51.100.7/32",
        customer=then_customer,
        valid_from=last_tuesday - timedelta(hours=6),
        valid_to=now - timedelta(hours=1),
        source="lease",
    )
    make_allocation("198.51.100.7/32", customer=now_customer, valid_from=now - timedelta(hours=1), source="lease")
    assert resolve("198.51.100.7", last_tuesday).customer == then_customer
    assert resolve("198.51.100.7").customer == now_customer


def test_a_naive_datetime_is_refused():
    make_allocation("198.51.100.0/24")
    with pytest.raises(ValueError, match="aware"):
        resolve("198.51.100.7", datetime(2026, 11, 3, 14, 2))


@pytest.mark.parametrize("bad", ["", "not an ip", "198.51.100.300", "198.51.100.0/24", "2001:db8::g"])
def test_a_bad_address_is_a_value_error(bad):
    with pytest.raises(ValueError):
        resolve(bad, T0)


def test_the_answer_is_a_complete_allocation_with_its_customer_in_one_query(django_assert_num_queries):
    customer = make_customer("B-ONE", kind="business")
    made = make_allocation(
        "198.51.100.0/24", customer=customer, valid_from=T0, valid_to=T0 + timedelta(days=1), source="pool"
    )
    resolve("198.51.100.1", T0)  # on PostgreSQL, the first call of a session also PREPAREs
    with django_assert_num_queries(1):
        got = resolve("198.51.100.7", T0 + timedelta(hours=1))
        assert got.customer.account == "B-ONE"
    stored = Allocation.objects.get(pk=made.pk)
    for field in Allocation._meta.concrete_fields:
        assert getattr(got, field.attname) == getattr(stored, field.attname), field.name
    assert got.valid_from == T0 and got.valid_from.tzinfo is not None
    assert got.customer.created_at == customer.created_at
    assert not got._state.adding
    # The instance behaves like one from the ORM: it can be saved back.
    got.note = "checked"
    got.save()
    assert Allocation.objects.get(pk=made.pk).note == "checked"


def test_candidate_networks_are_the_canonical_text_of_every_covering_network():
    rng = random.Random(5)
    samples = [ipaddress.IPv4Address(rng.getrandbits(32)) for _ in range(50)]
    # IPv6 with runs of zero groups in every position, which is where formatting goes wrong.
    for _ in range(200):
        groups = [rng.choice([0, 0, 1, 0xFFFF, rng.getrandbits(16)]) for _ in range(8)]
        samples.append(ipaddress.IPv6Address(sum(g << (16 * i) for i, g in enumerate(groups))))
    samples += [ipaddress.IPv6Address("::"), ipaddress.IPv6Address("::1"), ipaddress.IPv4Address("0.0.0.0")]
    for addr in samples:
        expected = [str(ipaddress.ip_network(f"{addr}/{p}", strict=False)) for p in range(addr.max_prefixlen, -1, -1)]
        assert candidate_networks(addr) == expected, addr


# --- validation through customers.services --------------------------------------------------------


def test_host_bits_set_is_refused_with_the_network_named():
    with pytest.raises(ValidationError) as exc:
        make_allocation("198.51.100.7/24")
    assert "198.51.100.7/24 has host bits set; the network is 198.51.100.0/24." in exc.value.messages
    with pytest.raises(ValidationError, match="2001:db8::/32"):
        make_allocation("2001:db8::1/32")
    assert not Allocation.objects.exists()


def test_an_end_before_the_start_is_refused():
    customer = make_customer()
    for valid_to in (T0 - timedelta(hours=1), T0):
        with pytest.raises(ValidationError) as exc:
            create_allocation(customer=customer, network="198.51.100.0/24", valid_from=T0, valid_to=valid_to)
        assert "valid_to" in exc.value.message_dict
    assert not Allocation.objects.exists()


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ((0, 10), (5, 15)),  # starts inside
        ((5, 15), (0, 10)),  # ends inside
        ((0, 10), (2, 3)),  # within
        ((0, None), (30, 40)),  # inside an open-ended one
        ((0, 10), (9, None)),  # open-ended, starting before the other ends
        ((0, None), (-5, None)),  # both open-ended
        ((0, 10), (0, 10)),  # the same period
    ],
)
def test_the_same_network_at_overlapping_times_is_refused(first, second):
    def period(days):
        start, end = days
        return T0 + timedelta(days=start), (T0 + timedelta(days=end) if end is not None else None)

    holder = make_customer("R-HOLDER")
    valid_from, valid_to = period(first)
    make_allocation("198.51.100.7/32", customer=holder, valid_from=valid_from, valid_to=valid_to)
    valid_from, valid_to = period(second)
    with pytest.raises(ValidationError) as exc:
        make_allocation("198.51.100.7/32", valid_from=valid_from, valid_to=valid_to)
    assert "already allocated to R-HOLDER" in exc.value.message_dict["network"][0]
    assert Allocation.objects.count() == 1


def test_the_same_network_written_differently_still_overlaps():
    make_allocation("2001:db8:0::/48", customer=make_customer("B-V6"))
    with pytest.raises(ValidationError, match="already allocated to B-V6"):
        make_allocation("2001:0db8:0000::/48")


def test_adjacent_periods_are_allowed():
    first = make_allocation("198.51.100.7/32", valid_from=T0 - timedelta(days=1), valid_to=T0)
    second = make_allocation("198.51.100.7/32", valid_from=T0, valid_to=T0 + timedelta(days=1))
    third = make_allocation("198.51.100.7/32", valid_from=T0 + timedelta(days=1))
    assert Allocation.objects.filter(network="198.51.100.7/32").count() == 3
    assert resolve("198.51.100.7", T0 - TICK) == first
    assert resolve("198.51.100.7", T0) == second
    assert resolve("198.51.100.7", T0 + timedelta(days=1)) == third


def test_a_more_specific_network_inside_a_bigger_one_is_allowed():
    make_allocation("198.51.100.0/24", source="pool")
    make_allocation("198.51.100.8/29")
    make_allocation("198.51.100.9/32", source="lease")
    make_allocation("2001:db8:42::/48")
    make_allocation("2001:db8:42:7::/64")
    assert Allocation.objects.count() == 5


def test_moving_an_allocation_onto_a_held_period_is_refused():
    make_allocation(
        "198.51.100.7/32", customer=make_customer("R-FIRST"), valid_from=T0, valid_to=T0 + timedelta(days=2)
    )
    later = make_allocation("198.51.100.7/32", valid_from=T0 + timedelta(days=2))
    with pytest.raises(ValidationError, match="already allocated to R-FIRST"):
        update_allocation(later, valid_from=T0 + timedelta(days=1))
    later.refresh_from_db()
    assert later.valid_from == T0 + timedelta(days=2)


def test_create_update_and_delete_write_an_allocation_change_with_the_actor():
    actor = User.objects.create_user("admin-x", password="x")
    customer = make_customer("B-AUDIT", kind="business")
    allocation = make_allocation("198.51.100.0/24", customer=customer, valid_from=T0, actor=actor)
    created = AllocationChange.objects.get(action="created")
    assert (created.allocation, created.actor, created.network, created.old) == (
        allocation,
        actor,
        "198.51.100.0/24",
        None,
    )
    assert created.new["customer"] == "B-AUDIT" and created.new["valid_to"] is None

    end_allocation(allocation, at=T0 + timedelta(days=30), actor=actor)
    updated = AllocationChange.objects.get(action="updated")
    assert updated.actor == actor
    assert updated.old["valid_to"] is None
    assert updated.new["valid_to"] == (T0 + timedelta(days=30)).isoformat()

    delete_allocation(allocation, actor=actor)
    deleted = AllocationChange.objects.get(action="deleted")
    assert (deleted.actor, deleted.network, deleted.new) == (actor, "198.51.100.0/24", None)
    assert deleted.old["customer"] == "B-AUDIT"
    assert not Allocation.objects.exists()
    assert AllocationChange.objects.count() == 3


def test_a_change_without_a_user_is_labelled():
    make_allocation("198.51.100.0/24")
    change = AllocationChange.objects.get()
    assert change.actor is None and change.actor_label == "tests"


@pytest.mark.django_db(transaction=True)
def test_it_keeps_answering_across_reconnects_and_rollbacks():
    block = make_allocation("198.51.100.0/24")
    assert resolve("198.51.100.7", T0) == block
    connection.close()
    assert resolve("198.51.100.7", T0) == block
    with pytest.raises(RuntimeError), transaction.atomic():
        assert resolve("198.51.100.8", T0) == block
        raise RuntimeError("roll back")
    assert resolve("198.51.100.9", T0) == block


def test_the_default_instant_is_now():
    make_allocation("198.51.100.0/24", valid_from=timezone.now() + timedelta(hours=1))
    assert resolve("198.51.100.7") is None
    assert resolve("198.51.100.7", datetime(2100, 1, 1, tzinfo=UTC)) is not None
