"""IMAP intake: read new mail from the abuse mailbox, store it, then move or flag it.

The order is the point: a message is fetched with BODY.PEEK[] (so the server does not mark
it read), handed to receive(), and only once receive() has returned, the row committed, is it
moved to IMAP_DONE_FOLDER or flagged \\Seen. A message that could not be stored stays where it
was, unread, and is tried again on the next poll. Nothing is ever expunged that was not stored.
"""

from __future__ import annotations

import contextlib
import imaplib
import logging
import re
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from cases.services.intake import receive

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 30.0
# One poll handles at most this many messages; the rest wait for the next poll, so a flood
# cannot keep one task (and its connection) busy for hours.
DEFAULT_BATCH = 200

_FETCH_SIZE = re.compile(rb"UID (\d+).*?RFC822\.SIZE (\d+)|RFC822\.SIZE (\d+).*?UID (\d+)", re.DOTALL)


class ImapPollError(Exception):
    """The mailbox could not be polled at all (connect, login or select failed)."""


@dataclass
class ImapConfig:
    host: str
    port: int = 993
    tls: str = "ssl"  # ssl | starttls | none
    user: str = ""
    password: str = ""
    password_file: str = ""
    folder: str = "INBOX"
    done_folder: str = ""
    timeout: float = CONNECT_TIMEOUT
    batch: int = DEFAULT_BATCH
    max_bytes: int = 40 * 1024 * 1024

    @classmethod
    def from_settings(cls, source: Any = None) -> ImapConfig:
        """From Django settings, or any object with the same IMAP_* attribute names."""
        source = settings if source is None else source

        def get(name: str, default: Any) -> Any:
            value = getattr(source, name, default)
            return default if value is None else value

        return cls(
            host=str(get("IMAP_HOST", "")),
            port=int(get("IMAP_PORT", 993)),
            tls=str(get("IMAP_TLS", "ssl")).strip().lower(),
            user=str(get("IMAP_USER", "")),
            password=str(get("IMAP_PASSWORD", "")),
            password_file=str(get("IMAP_PASSWORD_FILE", "")),
            folder=str(get("IMAP_FOLDER", "INBOX")) or "INBOX",
            done_folder=str(get("IMAP_DONE_FOLDER", "")),
            timeout=float(get("IMAP_TIMEOUT", CONNECT_TIMEOUT)),
            batch=int(get("IMAP_BATCH", DEFAULT_BATCH)),
            max_bytes=int(get("INTAKE_MAX_MESSAGE_BYTES", 40 * 1024 * 1024)),
        )

    def secret(self) -> str:
        if self.password_file:
            try:
                # Only the line end is dropped: a password may well end in a space.
                return Path(self.password_file).read_text(encoding="utf-8").rstrip("\r\n")
            except OSError as exc:
                raise ImapPollError(f"cannot read IMAP_PASSWORD_FILE: {exc.strerror or exc}") from exc
        return self.password


@dataclass
class PollSummary:
    found: int = 0  # messages the search returned (before the batch limit)
    stored: int = 0  # new InboundMessage rows
    duplicates: int = 0  # already stored (same bytes); moved/flagged all the same
    moved: int = 0
    flagged: int = 0
    failed: int = 0  # left in the mailbox, tried again next poll
    skipped: int = 0  # over the size limit: left in the mailbox for a person
    errors: list[str] = field(default_factory=list)


def _quote(mailbox: str) -> str:
    # imaplib sends mailbox names as they are; a name with a space or quote must be quoted.
    return '"' + mailbox.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _default_store(raw: bytes) -> object:
    return receive(raw, "imap")


def connect(config: ImapConfig) -> imaplib.IMAP4:
    """Connect and log in; raises ImapPollError with a message fit for a log line."""
    if not config.host:
        raise ImapPollError("IMAP_HOST is not set")
    if config.tls not in {"ssl", "starttls", "none"}:
        raise ImapPollError(f"IMAP_TLS must be ssl, starttls or none, not {config.tls!r}")
    password = config.secret()
    try:
        if config.tls == "ssl":
            conn: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                config.host, config.port, ssl_context=ssl.create_default_context(), timeout=config.timeout
            )
        else:
            conn = imaplib.IMAP4(config.host, config.port, timeout=config.timeout)
            if config.tls == "starttls":
                conn.starttls(ssl_context=ssl.create_default_context())
    except (OSError, imaplib.IMAP4.error) as exc:
        raise ImapPollError(f"cannot connect to {config.host}:{config.port}: {exc}") from exc
    try:
        conn.login(config.user, password)
    except (OSError, imaplib.IMAP4.error) as exc:
        _logout(conn)
        # The server's words, not the password: the exception text never contains it.
        raise ImapPollError(f"login as {config.user!r} refused: {exc}") from exc
    return conn


def _logout(conn: imaplib.IMAP4) -> None:
    with contextlib.suppress(OSError, imaplib.IMAP4.error):
        conn.logout()


def _check(typ: str, data: list, what: str) -> list:
    if typ != "OK":
        detail = b" ".join(d for d in data if isinstance(d, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what}: {typ} {detail}".strip())
    return data


def _capabilities(conn: imaplib.IMAP4) -> set[str]:
    # Asked again after login: servers (dovecot among them) announce MOVE and UIDPLUS only to
    # a logged-in client, and imaplib keeps the list it got before login.
    typ, data = conn.capability()
    if typ == "OK" and data and isinstance(data[0], bytes):
        return {word.upper() for word in data[0].decode("ascii", "replace").split()}
    return {str(c).upper() for c in conn.capabilities}


def _sizes(conn: imaplib.IMAP4, uids: list[bytes]) -> dict[bytes, int]:
    typ, data = conn.uid("FETCH", b",".join(uids).decode(), "(UID RFC822.SIZE)")
    sizes: dict[bytes, int] = {}
    for item in _check(typ, data, "FETCH sizes"):
        line = item[0] if isinstance(item, tuple) else item
        if not isinstance(line, bytes):
            continue
        match = _FETCH_SIZE.search(line)
        if match:
            uid, size = (match.group(1), match.group(2)) if match.group(1) else (match.group(4), match.group(3))
            sizes[uid] = int(size)
    return sizes


def _fetch(conn: imaplib.IMAP4, uid: bytes) -> bytes:
    typ, data = conn.uid("FETCH", uid.decode(), "(BODY.PEEK[])")
    for item in _check(typ, data, f"FETCH {uid.decode()}"):
        if isinstance(item, tuple) and len(item) == 2 and b"BODY[]" in item[0]:
            return item[1]
    raise imaplib.IMAP4.error(f"FETCH {uid.decode()}: no message body in the answer (expunged meanwhile?)")


def _ensure_folder(conn: imaplib.IMAP4, folder: str) -> None:
    typ, data = conn.list('""', _quote(folder))
    if typ == "OK" and any(item for item in data if item):
        return
    typ, data = conn.create(_quote(folder))
    _check(typ, data, f"CREATE {folder}")


def _move(conn: imaplib.IMAP4, uid: bytes, folder: str, capabilities: set[str]) -> None:
    uid_text = uid.decode()
    if "MOVE" in capabilities:
        _check(*conn.uid("MOVE", uid_text, _quote(folder)), f"MOVE {uid_text}")
        return
    _check(*conn.uid("COPY", uid_text, _quote(folder)), f"COPY {uid_text}")
    _check(*conn.uid("STORE", uid_text, "+FLAGS.SILENT", r"(\Seen \Deleted)"), f"STORE {uid_text}")
    if "UIDPLUS" in capabilities:
        # UID EXPUNGE removes this message only. A plain EXPUNGE would also remove whatever
        # else someone flagged \Deleted, mail we never stored: without UIDPLUS the copy stays
        # flagged (and searches skip UNDELETED mail) until a person's client expunges it.
        _check(*conn.uid("EXPUNGE", uid_text), f"UID EXPUNGE {uid_text}")


def poll_mailbox(
    config: ImapConfig | Any = None,
    *,
    store: Callable[[bytes], object] | None = None,
) -> PollSummary:
    """Store each new message of the mailbox, then move it to the done folder or flag it \\Seen.

    config: an ImapConfig, any settings-like object with IMAP_* attributes, or None for settings.
    store: takes the raw bytes and must have committed them when it returns; defaults to
    cases.services.intake.receive(raw, "imap"). Raises ImapPollError when the mailbox cannot be opened.
    """
    if not isinstance(config, ImapConfig):
        config = ImapConfig.from_settings(config)
    if store is None:
        store = _default_store
    if transaction.get_connection().in_atomic_block:
        # Inside a transaction, "stored" would mean "stored unless rolled back": moving the
        # mail then could lose it.
        raise ImapPollError("poll_mailbox() must not run inside a database transaction")
    if config.done_folder and config.done_folder == config.folder:
        raise ImapPollError("IMAP_DONE_FOLDER must differ from IMAP_FOLDER")

    summary = PollSummary()
    conn = connect(config)
    try:
        try:
            _check(*conn.select(_quote(config.folder)), f"SELECT {config.folder}")
            capabilities = _capabilities(conn)
            if config.done_folder:
                _ensure_folder(conn, config.done_folder)
                # Everything still here is unprocessed (stored mail is moved away), read or not.
                criterion = f"UNDELETED UNKEYWORD {HELD_KEYWORD}"
            else:
                criterion = f"UNSEEN UNDELETED UNKEYWORD {HELD_KEYWORD}"
            typ, data = conn.uid("SEARCH", None, criterion)
            uids = _check(typ, data, "SEARCH")[0].split() if data and data[0] else []
        except (OSError, imaplib.IMAP4.error) as exc:
            raise ImapPollError(f"cannot open {config.folder!r}: {exc}") from exc
        summary.found = len(uids)
        uids = uids[: max(1, config.batch)]
        if not uids:
            return summary
        try:
            sizes = _sizes(conn, uids)
        except imaplib.IMAP4.abort:
            raise
        except imaplib.IMAP4.error as exc:
            summary.errors.append(str(exc))
            sizes = {}
        for uid in uids:
            _handle_one(conn, uid, sizes.get(uid), config, capabilities, store, summary)
    except (imaplib.IMAP4.abort, OSError) as exc:
        # The connection is gone: what was not yet moved stays and is picked up next time.
        summary.errors.append(f"connection lost: {exc}")
        log.warning("IMAP poll of %s stopped: %s", config.host, exc)
    finally:
        _logout(conn)
    return summary


# Mail we will never take (over the size limit) is flagged with this keyword and left in the
# mailbox for a person; later searches skip it, so it cannot crowd new mail out of a batch.
HELD_KEYWORD = "$AbusedeskHeld"


def _hold(conn: imaplib.IMAP4, uid: bytes) -> None:
    try:
        conn.uid("STORE", uid, "+FLAGS", f"({HELD_KEYWORD})")
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        log.warning("could not flag UID %s as held: %s", uid.decode(), exc)


def _handle_one(
    conn: imaplib.IMAP4,
    uid: bytes,
    size: int | None,
    config: ImapConfig,
    capabilities: set[str],
    store: Callable[[bytes], object],
    summary: PollSummary,
) -> None:
    label = uid.decode()
    if size is not None and size > config.max_bytes:
        summary.skipped += 1
        summary.errors.append(f"UID {label}: {size} bytes, over the {config.max_bytes} limit; left in the mailbox")
        _hold(conn, uid)
        return
    try:
        raw = _fetch(conn, uid)
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        summary.failed += 1
        summary.errors.append(str(exc))
        return
    if len(raw) > config.max_bytes:
        summary.skipped += 1
        summary.errors.append(f"UID {label}: over the size limit; left in the mailbox")
        _hold(conn, uid)
        return
    try:
        result = store(raw)
    except Exception as exc:  # one bad message must not stop the rest; it stays for the next poll
        summary.failed += 1
        summary.errors.append(f"UID {label}: not stored: {exc.__class__.__name__}: {exc}"[:500])
        log.exception("IMAP message UID %s could not be stored; left in the mailbox", label)
        return
    if isinstance(result, tuple) and len(result) == 2 and result[1] is False:
        summary.duplicates += 1
    else:
        summary.stored += 1
    # Stored and committed: only now may the message leave the mailbox (or be marked read).
    try:
        if config.done_folder:
            _move(conn, uid, config.done_folder, capabilities)
            summary.moved += 1
        else:
            _check(*conn.uid("STORE", label, "+FLAGS.SILENT", r"(\Seen)"), f"STORE {label}")
            summary.flagged += 1
    except imaplib.IMAP4.abort:
        raise
    except imaplib.IMAP4.error as exc:
        # Stored but not moved: the next poll stores it again as a duplicate (same bytes, same row).
        summary.errors.append(str(exc))
        log.warning("IMAP message UID %s stored but not moved/flagged: %s", label, exc)
