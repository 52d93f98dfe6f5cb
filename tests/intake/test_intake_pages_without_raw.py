"""Pages never load raw mail: only the raw download reads a message's bytes (the parser reads
them in intake); the case and unassigned pages and the message page ask for none of it."""

from __future__ import annotations

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from cases.models import InboundMessage, Report
from cases.services.filing import record_reports
from tests.cases.helpers import customer_with, event

pytestmark = pytest.mark.django_db

# The raw column as it appears in a SELECT list; a SUBSTR() of it (the preview) is allowed on the message page.
RAW_COLUMN = re.compile(r'"cases_inboundmessage"\."raw"')
RAW_HEAD = re.compile(r'SUBSTR\("cases_inboundmessage"\."raw", ')
BIG = b"Subject: feed\r\n\r\n" + b"x" * 300_000


def _message(n: int) -> InboundMessage:
    raw = BIG + str(n).encode()
    return InboundMessage.objects.create(
        raw=raw, size=len(raw), sha256=f"{n:064d}", channel="email", subject=f"feed {n}"
    )


def _selects(queries: list[dict]) -> list[str]:
    return [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith("SELECT")]


def _pages(client, noc_user):
    customer_with("198.51.100.0/24", "C1")
    for n in range(3):
        record_reports([event(f"198.51.100.{n + 1}"), event(f"203.0.113.{n + 1}")], message=_message(n))
    client.force_login(noc_user)
    return Report.objects.exclude(case=None).values_list("case_id", flat=True).first()


def test_the_case_page_never_selects_the_raw_column(client, noc_user):
    case_id = _pages(client, noc_user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("cases:case_detail", args=[case_id]))
    assert response.status_code == 200
    assert b"198.51.100.1" in response.content
    assert _selects(ctx.captured_queries)
    assert not [sql for sql in ctx.captured_queries if RAW_COLUMN.search(sql["sql"])]


def test_the_unassigned_page_never_selects_the_raw_column(client, noc_user):
    _pages(client, noc_user)
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("cases:unassigned"))
    assert response.status_code == 200
    assert b"feed 0" in response.content  # the message's subject is shown, from the same query
    assert not [sql for sql in ctx.captured_queries if RAW_COLUMN.search(sql["sql"])]


def test_the_message_page_reads_only_the_start_and_the_download_reads_all(client, noc_user):
    _pages(client, noc_user)
    message = InboundMessage.objects.order_by("pk").first()
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(reverse("cases:message_detail", args=[message.pk]))
    assert response.status_code == 200
    assert b"Subject: feed" in response.content
    raw_sql = [q["sql"] for q in ctx.captured_queries if RAW_COLUMN.search(q["sql"])]
    assert raw_sql and all(len(RAW_COLUMN.findall(s)) == len(RAW_HEAD.findall(s)) for s in raw_sql)
    response = client.get(reverse("cases:message_raw", args=[message.pk]))
    assert response.content == BIG + b"0"


def test_the_default_manager_defers_raw_and_with_raw_loads_it():
    message = _message(9)
    assert "raw" in InboundMessage.objects.get(pk=message.pk).get_deferred_fields()
    assert bytes(InboundMessage.objects.with_raw().get(pk=message.pk).raw) == BIG + b"9"
