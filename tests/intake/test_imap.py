"""IMAP polling against a real dovecot on 127.0.0.1 (started by tests/fixtures_services.py)."""

from __future__ import annotations

import imaplib

import pytest
from celery.result import allow_join_result

from cases.imap import ImapConfig, ImapPollError, poll_mailbox
from cases.models import Channel, InboundMessage
from cases.tasks_intake_io import poll_imap_task
from tests import fixtures_services

# Until tests/conftest.py loads tests.fixtures_services as a plugin (harmless after).
imap_server = fixtures_services.imap_server
dovecot_factory = fixtures_services.dovecot_factory

pytestmark = pytest.mark.integration


def mail(n: int, extra: bytes = b"") -> bytes:
    return (
        f"From: fbl@mail.example\r\nTo: abuse@isp.example\r\nMessage-ID: <imap-{n}@mail.example>\r\n"
        f"Subject: complaint {n} about 198.51.100.{n}\r\n\r\nSpam came from 198.51.100.{n}.\r\n"
    ).encode() + extra


def config_for(server, **overrides) -> ImapConfig:
    fields = {
        "host": server.host,
        "port": server.port,
        "tls": "none",
        "user": server.user,
        "password": server.password,
        "timeout": 10,
    }
    fields.update(overrides)
    return ImapConfig(**fields)


class Recorder:
    """A store function that keeps what it was given."""

    def __init__(self) -> None:
        self.stored: list[bytes] = []

    def __call__(self, raw: bytes) -> None:
        self.stored.append(raw)


def test_new_mail_is_stored_then_flagged_seen(imap_server):
    imap_server.append(mail(1))
    imap_server.append(mail(2))
    imap_server.append(mail(3), flags=r"(\Seen)")  # read by a person already: not new
    store = Recorder()
    summary = poll_mailbox(config_for(imap_server), store=store)
    assert sorted(store.stored) == [mail(1), mail(2)]
    assert (summary.found, summary.stored, summary.flagged, summary.failed) == (2, 2, 2, 0)
    inbox = imap_server.messages()
    assert len(inbox) == 3  # flag mode deletes nothing
    assert all("\\Seen" in flags for _, flags in inbox)
    again = poll_mailbox(config_for(imap_server), store=store)
    assert (again.found, again.stored) == (0, 0)
    assert len(store.stored) == 2


def test_stored_mail_is_moved_to_the_done_folder(imap_server):
    for n in (1, 2, 3):
        imap_server.append(mail(n))
    store = Recorder()
    summary = poll_mailbox(config_for(imap_server, done_folder="Abuse Done"), store=store)
    assert (summary.stored, summary.moved) == (3, 3)
    assert imap_server.messages("INBOX") == []
    assert sorted(raw for raw, _ in imap_server.messages("Abuse Done")) == [mail(1), mail(2), mail(3)]
    assert poll_mailbox(config_for(imap_server, done_folder="Abuse Done"), store=store).found == 0


def test_nothing_leaves_the_mailbox_before_it_is_stored(imap_server):
    imap_server.append(mail(1))
    imap_server.append(mail(2))
    seen_in_inbox: list[tuple[int, bool]] = []

    def store(raw: bytes) -> None:
        # Look at the mailbox over a second connection while the message is being stored.
        inbox = imap_server.messages("INBOX")
        here = [flags for body, flags in inbox if body == raw]
        seen_in_inbox.append((len(here), bool(here) and "\\Seen" in here[0]))

    poll_mailbox(config_for(imap_server, done_folder="Done"), store=store)
    # Each message was still in INBOX, and still unread, while it was being stored.
    assert seen_in_inbox == [(1, False), (1, False)]
    assert len(imap_server.messages("Done")) == 2


def test_a_message_that_fails_to_store_stays_and_the_rest_go_on(imap_server):
    imap_server.append(mail(1))
    imap_server.append(mail(2, extra=b"POISON\r\n"))
    imap_server.append(mail(3))
    store = Recorder()

    def fussy_store(raw: bytes) -> None:
        if b"POISON" in raw:
            raise RuntimeError("database went away")
        store(raw)

    summary = poll_mailbox(config_for(imap_server, done_folder="Done"), store=fussy_store)
    assert (summary.stored, summary.moved, summary.failed) == (2, 2, 1)
    assert "database went away" in summary.errors[0]
    inbox = imap_server.messages("INBOX")
    assert [raw for raw, _ in inbox] == [mail(2, extra=b"POISON\r\n")]
    assert "\\Seen" not in inbox[0][1]
    # The next poll, with storage working again, takes it.
    summary = poll_mailbox(config_for(imap_server, done_folder="Done"), store=store)
    assert (summary.found, summary.stored, summary.moved) == (1, 1, 1)
    assert imap_server.messages("INBOX") == []
    assert len(imap_server.messages("Done")) == 3


def test_flag_mode_leaves_a_failed_message_unread_for_the_next_poll(imap_server):
    imap_server.append(mail(1))

    def failing(raw: bytes) -> None:
        raise OSError("disk full")

    assert poll_mailbox(config_for(imap_server), store=failing).failed == 1
    assert imap_server.messages()[0][1].isdisjoint({"\\Seen", "\\Deleted"})
    store = Recorder()
    assert poll_mailbox(config_for(imap_server), store=store).stored == 1
    assert store.stored == [mail(1)]


def test_without_move_it_copies_then_expunges_only_what_it_stored(dovecot_factory):
    # No MOVE advertised: COPY + \Deleted + UID EXPUNGE (UIDPLUS).
    server = dovecot_factory("imap_capability = IMAP4rev1 LITERAL+ SASL-IR UIDPLUS")
    server.append(mail(1))
    server.append(mail(2))
    server.append(mail(9), flags=r"(\Deleted)")  # someone else's deletion, never stored by us
    store = Recorder()
    summary = poll_mailbox(config_for(server, done_folder="Done"), store=store)
    assert (summary.stored, summary.moved) == (2, 2)
    assert mail(9) not in store.stored
    inbox = server.messages("INBOX")
    assert [raw for raw, _ in inbox] == [mail(9)]  # still there: we expunged our two only
    assert sorted(raw for raw, _ in server.messages("Done")) == [mail(1), mail(2)]


def test_without_uidplus_the_copies_stay_flagged_and_are_not_stored_again(dovecot_factory):
    server = dovecot_factory("imap_capability = IMAP4rev1 LITERAL+ SASL-IR")
    server.append(mail(1))
    store = Recorder()
    assert poll_mailbox(config_for(server, done_folder="Done"), store=store).moved == 1
    inbox = server.messages("INBOX")
    assert len(inbox) == 1 and "\\Deleted" in inbox[0][1]  # no plain EXPUNGE was sent
    assert [raw for raw, _ in server.messages("Done")] == [mail(1)]
    assert poll_mailbox(config_for(server, done_folder="Done"), store=store).found == 0
    assert store.stored == [mail(1)]


def test_password_file_and_a_wrong_password(imap_server, tmp_path):
    secret = tmp_path / "imap-password"
    secret.write_text(imap_server.password + "\n")
    imap_server.append(mail(1))
    store = Recorder()
    poll_mailbox(config_for(imap_server, password="", password_file=str(secret)), store=store)
    assert store.stored == [mail(1)]
    with pytest.raises(ImapPollError, match="login"):
        poll_mailbox(config_for(imap_server, password="wrong"), store=store)
    with pytest.raises(ImapPollError, match="IMAP_PASSWORD_FILE"):
        poll_mailbox(config_for(imap_server, password_file=str(tmp_path / "missing")), store=store)


def test_a_message_over_the_size_limit_is_left_for_a_person(imap_server):
    imap_server.append(mail(1, extra=b"x" * 5000))
    imap_server.append(mail(2))
    store = Recorder()
    summary = poll_mailbox(config_for(imap_server, max_bytes=1000), store=store)
    assert store.stored == [mail(2)]
    assert (summary.skipped, summary.stored) == (1, 1)
    big = [flags for raw, flags in imap_server.messages() if len(raw) > 1000]
    assert big and "\\Seen" not in big[0]


def test_a_settings_like_object_configures_it(imap_server):
    class Conf:
        IMAP_HOST = imap_server.host
        IMAP_PORT = imap_server.port
        IMAP_TLS = "none"
        IMAP_USER = imap_server.user
        IMAP_PASSWORD = imap_server.password
        IMAP_FOLDER = "INBOX"
        IMAP_DONE_FOLDER = ""

    imap_server.append(mail(1))
    store = Recorder()
    assert poll_mailbox(Conf(), store=store).stored == 1


def test_no_server_listening_is_a_poll_error():
    config = ImapConfig(host="127.0.0.1", port=fixtures_services.free_port(), tls="none", user="u", password="p")
    with pytest.raises(ImapPollError, match="cannot connect"):
        poll_mailbox(config, store=Recorder())


@pytest.mark.django_db
def test_it_refuses_to_run_inside_a_transaction(imap_server):
    imap_server.append(mail(1))
    with pytest.raises(ImapPollError, match="transaction"):
        poll_mailbox(config_for(imap_server))
    assert len(imap_server.messages()) == 1


@pytest.mark.django_db(transaction=True)
def test_end_to_end_the_task_stores_inbound_messages(imap_server, settings):
    settings.IMAP_HOST = imap_server.host
    settings.IMAP_PORT = imap_server.port
    settings.IMAP_TLS = "none"
    settings.IMAP_USER = imap_server.user
    settings.IMAP_PASSWORD = imap_server.password
    settings.IMAP_DONE_FOLDER = "Processed"
    settings.ENRICHMENT_ENABLED = False
    imap_server.append(mail(1))
    imap_server.append(mail(2))
    result = poll_imap_task.delay().get()
    assert (result["stored"], result["moved"]) == (2, 2)
    rows = {bytes(m.raw): m for m in InboundMessage.objects.all()}
    assert set(rows) == {mail(1), mail(2)}
    assert {m.channel for m in rows.values()} == {Channel.IMAP}
    assert rows[mail(1)].message_id == "<imap-1@mail.example>"
    assert imap_server.messages("INBOX") == []
    # The same bytes delivered again are the same row, and the mail still leaves the inbox.
    imap_server.append(mail(1))
    result = poll_imap_task.delay().get()
    assert (result["stored"], result["duplicates"], result["moved"]) == (0, 1, 1)
    assert InboundMessage.objects.count() == 2
    assert InboundMessage.objects.get(message_id="<imap-1@mail.example>").times_received == 2


def test_the_task_does_nothing_when_imap_is_off(settings):
    settings.IMAP_HOST = ""
    with allow_join_result():  # another test may leave Celery's "inside a task" flag set
        assert poll_imap_task.delay().get() is None


def test_the_task_reports_a_failed_login_without_raising(imap_server, settings):
    settings.IMAP_HOST = imap_server.host
    settings.IMAP_PORT = imap_server.port
    settings.IMAP_TLS = "none"
    settings.IMAP_USER = imap_server.user
    settings.IMAP_PASSWORD = "not-the-password"
    with allow_join_result():
        result = poll_imap_task.delay().get()
    assert "login" in result["error"]
    assert imap_server.password not in result["error"]


def test_imaplib_raises_for_a_missing_folder_and_so_do_we(imap_server):
    with pytest.raises(ImapPollError, match="No Such Folder"):
        poll_mailbox(config_for(imap_server, folder="No Such Folder"), store=Recorder())
    conn = imap_server.client()
    try:
        assert conn.select('"No Such Folder"')[0] == "NO"
    finally:
        with pytest.raises(imaplib.IMAP4.error):
            conn.close()  # nothing selected
        conn.logout()


def test_held_mail_does_not_crowd_new_mail_out_of_a_batch(imap_server):
    imap_server.append(mail(1, extra=b"x" * 5000))
    imap_server.append(mail(2, extra=b"y" * 5000))
    imap_server.append(mail(3))
    store = Recorder()
    first = poll_mailbox(config_for(imap_server, max_bytes=1000, batch=2), store=store)
    assert (first.skipped, first.stored) == (2, 0)
    second = poll_mailbox(config_for(imap_server, max_bytes=1000, batch=2), store=store)
    assert store.stored == [mail(3)]
    assert (second.found, second.stored) == (1, 1)
    held = [flags for raw, flags in imap_server.messages() if len(raw) > 1000]
    assert len(held) == 2 and all("$AbusedeskHeld" in f for f in held)
