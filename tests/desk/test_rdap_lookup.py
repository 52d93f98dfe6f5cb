"""RDAP against a server on 127.0.0.1: the abuse contact found (top level or nested), none named,
404, a timeout, and a cached range that asks no second time."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from abusedesk.lib import rdap
from cases.models import RdapNetwork, Report
from cases.services import triage
from cases.services.filing import record_reports
from tests.cases.helpers import event
from tests.rdap_server import Answer, ip_network_object, rdap_server  # noqa: F401 - the fixture

pytestmark = pytest.mark.django_db


def test_the_abuse_contact_is_found_at_the_top_level(rdap_server):  # noqa: F811
    rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email="abuse@net-a.example"))
    answer = rdap.lookup_ip("192.0.2.55")
    assert answer.abuse_email == "abuse@net-a.example"
    assert (str(answer.first), str(answer.last)) == ("192.0.2.0", "192.0.2.255")
    assert rdap_server.requests == ["/ip/192.0.2.55"]


def test_a_redirect_to_the_registry_is_followed(rdap_server):  # noqa: F811
    rdap_server.answer("192.0.2.0/24", rdap_server.base_url + "registry/ip/{addr}", status=302)
    rdap_server.registry["192.0.2.0/24"] = Answer(
        200, ip_network_object("192.0.2.0/24", abuse_email="abuse@rir.example")
    )
    assert triage.find_abuse_contact("192.0.2.7").email == "abuse@rir.example"
    assert rdap_server.requests == ["/ip/192.0.2.7", "/registry/ip/192.0.2.7"]


def test_a_redirect_to_anything_but_http_is_refused(rdap_server):  # noqa: F811
    rdap_server.answer("192.0.2.0/24", "file:///etc/passwd", status=302)
    with pytest.raises(rdap.RdapError, match="HTTP 302"):
        rdap.lookup_ip("192.0.2.7")


def test_a_nested_abuse_entity_is_found_and_other_roles_are_not(rdap_server):  # noqa: F811
    rdap_server.answer(
        "2001:db8::/32", ip_network_object("2001:db8::/32", abuse_email="abuse@v6.example", nested=True, use_cidr0=True)
    )
    answer = rdap.lookup_ip("2001:db8::1")
    assert answer.abuse_emails == ["abuse@v6.example"]  # not the technical contact's noc@
    assert answer.cidr == "2001:db8::/32"


def test_a_network_without_an_abuse_contact_answers_with_none(rdap_server):  # noqa: F811
    rdap_server.answer("198.18.0.0/15", ip_network_object("198.18.0.0/15", abuse_email=None))
    contact = triage.find_abuse_contact("198.18.3.4")
    assert contact.email == ""
    assert RdapNetwork.objects.get().abuse_email == ""


def test_a_404_is_not_found(rdap_server):  # noqa: F811
    with pytest.raises(rdap.RdapNotFound, match="knows no network for 203.0.113.1"):
        triage.find_abuse_contact("203.0.113.1")
    assert not RdapNetwork.objects.exists()


def test_a_slow_server_is_a_timeout_error(rdap_server, settings):  # noqa: F811
    settings.RDAP_TIMEOUT = 0.3
    rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email="a@b.example"), delay=1.5)
    with pytest.raises(rdap.RdapError, match="did not answer within 0.3 s"):
        triage.find_abuse_contact("192.0.2.1")


def test_an_answer_that_is_not_rdap_or_not_about_the_address_is_refused(rdap_server):  # noqa: F811
    rdap_server.answer("192.0.2.0/25", b"<html>nope</html>")
    rdap_server.answer("192.0.2.128/25", ip_network_object("10.0.0.0/8", abuse_email="a@b.example"))
    with pytest.raises(rdap.RdapError, match="not JSON"):
        rdap.lookup_ip("192.0.2.1")
    with pytest.raises(rdap.RdapError, match="does not describe a network holding"):
        triage.find_abuse_contact("192.0.2.200")
    assert not RdapNetwork.objects.exists()  # nothing wrong is cached


def test_a_server_error_and_a_closed_port_are_errors(rdap_server, settings):  # noqa: F811
    rdap_server.answer("192.0.2.0/24", {"errorCode": 503}, status=503)
    with pytest.raises(rdap.RdapError, match="HTTP 503"):
        rdap.lookup_ip("192.0.2.1")
    settings.RDAP_BASE_URL = "http://127.0.0.1:9/"
    with pytest.raises(rdap.RdapError, match="could not be reached"):
        rdap.lookup_ip("192.0.2.1")


def test_a_cached_range_asks_no_second_time(rdap_server):  # noqa: F811
    rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email="abuse@net-a.example"))
    first = triage.find_abuse_contact("192.0.2.10")
    second = triage.find_abuse_contact("192.0.2.200")  # another address in the answered range
    assert (first.email, first.cached) == ("abuse@net-a.example", False)
    assert (second.email, second.cached) == ("abuse@net-a.example", True)
    assert rdap_server.requests == ["/ip/192.0.2.10"]
    # Outside the range: asked.
    with pytest.raises(rdap.RdapNotFound):
        triage.find_abuse_contact("192.0.3.1")
    assert len(rdap_server.requests) == 2


def test_an_expired_range_is_asked_again(rdap_server, settings):  # noqa: F811
    rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email="abuse@net-a.example"))
    triage.find_abuse_contact("192.0.2.10")
    RdapNetwork.objects.update(fetched_at=timezone.now() - timedelta(seconds=settings.RDAP_CACHE_SECONDS + 1))
    assert triage.find_abuse_contact("192.0.2.11").cached is False
    assert len(rdap_server.requests) == 2
    assert RdapNetwork.objects.count() == 1  # the old row replaced


def test_the_narrowest_cached_range_wins(rdap_server):  # noqa: F811
    rdap_server.answer("192.0.0.0/16", ip_network_object("192.0.0.0/16", abuse_email="abuse@big.example"))
    rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email="abuse@small.example"))
    triage.find_abuse_contact("192.0.2.9")
    triage.find_abuse_contact("192.0.9.9")  # not in the /24: asked, and the /16 is cached too
    assert triage.find_abuse_contact("192.0.2.10").email == "abuse@small.example"
    assert triage.find_abuse_contact("192.0.7.1").email == "abuse@big.example"
    assert len(rdap_server.requests) == 2


@pytest.mark.parametrize(
    ("setup", "shown"),
    [
        ("timeout", "did not answer within"),
        ("404", "knows no network for 192.0.2.55"),
        ("none", "names no abuse contact"),
    ],
)
def test_the_page_shows_rdap_trouble_as_a_message_never_a_500(client, noc_user, rdap_server, settings, setup, shown):  # noqa: F811
    settings.ENRICHMENT_ENABLED = False
    settings.RDAP_TIMEOUT = 0.3
    if setup == "timeout":
        rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email="a@b.example"), delay=1.5)
    elif setup == "none":
        rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email=None))
    record_reports([event("192.0.2.55", reporter="alice@victim.example", format="freetext")])
    report = Report.objects.get()
    client.force_login(noc_user)
    response = client.post(reverse("cases:unassigned_refer"), {"ids": [report.pk], "tab": "outside"}, follow=True)
    assert response.status_code == 200
    assert shown in response.text
    assert Report.objects.unassigned().count() == 1  # still in the queue


def test_a_slow_server_is_asked_once_per_selection_not_once_per_address(client, noc_user, rdap_server, settings):  # noqa: F811
    settings.ENRICHMENT_ENABLED = False
    settings.RDAP_TIMEOUT = 0.3
    rdap_server.answer("192.0.2.0/24", ip_network_object("192.0.2.0/24", abuse_email="a@b.example"), delay=1.0)
    record_reports([event(f"192.0.2.{n}", reporter="alice@victim.example", format="freetext") for n in range(1, 6)])
    client.force_login(noc_user)
    ids = list(Report.objects.values_list("pk", flat=True))
    response = client.post(reverse("cases:unassigned_refer"), {"ids": ids, "tab": "outside"}, follow=True)
    assert response.status_code == 200
    assert "did not answer within 0.3 s" in response.text
    assert len(rdap_server.requests) == 1
    assert Report.objects.unassigned().count() == 5
