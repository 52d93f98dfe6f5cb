"""A big message is stored byte for byte without its bytea text in the query (COPY on PostgreSQL),
and stays idempotent by sha256 like any other."""

from __future__ import annotations

import os

import pytest

from cases.models import InboundMessage
from cases.services import intake

pytestmark = pytest.mark.django_db(transaction=True)


def _big_mail() -> bytes:
    body = os.urandom(intake.COPY_RAW_BYTES).hex()  # twice the threshold, every byte value in the header
    return (
        b"From: feeds@cert.example\r\nSubject: big \xff\x00 bytes\r\nMessage-ID: <big@cert.example>\r\n\r\n"
        + body.encode()
        + b"\r\n\x00\xff\x80 the end\r\n"
    )


@pytest.mark.requires_postgres
def test_a_big_message_is_stored_by_copy_byte_for_byte_and_once():
    raw = _big_mail()
    message, created = intake.receive(raw, "email")
    assert created and message.raw == raw
    stored = InboundMessage.objects.with_raw().get(pk=message.pk)
    assert bytes(stored.raw) == raw and stored.size == len(raw)

    again, created = intake.receive(raw, "email")
    assert (again.pk, created) == (message.pk, False)
    assert InboundMessage.objects.get(pk=message.pk).times_received == 2
    # Two in one transaction: each gets its own bytes (the upload table is emptied between them).
    from django.db import transaction

    with transaction.atomic():
        one, _ = intake.receive(raw + b"1", "email")
        two, _ = intake.receive(raw + b"22", "email")
    assert bytes(InboundMessage.objects.with_raw().get(pk=one.pk).raw) == raw + b"1"
    assert bytes(InboundMessage.objects.with_raw().get(pk=two.pk).raw) == raw + b"22"


def test_a_big_message_is_stored_byte_for_byte_on_any_database():
    raw = _big_mail()
    message, created = intake.receive(raw, "email")
    assert created
    assert bytes(InboundMessage.objects.with_raw().get(pk=message.pk).raw) == raw


@pytest.mark.requires_postgres
def test_a_worker_reads_a_big_message_back_byte_for_byte():
    raw = _big_mail()
    message, _ = intake.receive(raw, "email")
    assert intake._read_raw(message.pk) == raw
    with pytest.raises(InboundMessage.DoesNotExist):
        intake._read_raw(message.pk + 1000)


def test_a_big_feed_is_read_back_and_filed_whole(settings):
    from tests.cases.helpers import customer_with
    from tests.intake.test_intake_chunks import shadowserver_feed

    settings.ENRICHMENT_ENABLED = False
    customer_with("198.51.100.0/24", "F-1")
    raw = shadowserver_feed(3000)
    assert len(raw) > intake.COPY_RAW_BYTES
    message, _ = intake.receive(raw, "email")
    intake.process_pending(first=message.pk)
    message.refresh_from_db()
    assert (message.status, message.event_count) == ("parsed", 3000)
