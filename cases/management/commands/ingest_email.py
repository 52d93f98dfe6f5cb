"""Store abuse mail: one message on standard input (the mail server's pipe), or files.

Exit status 0 once every message is stored, even if parsing fails later (a broker that is down
only delays parsing: the periodic pass picks the message up); 75 (EX_TEMPFAIL) when one could not
be stored, or when there is no production configuration, so the mail server keeps it and retries.
Files may be single messages (.eml), mbox files, or Maildir folders.
"""

from __future__ import annotations

import mailbox
import sys
from collections.abc import Iterator
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from cases.models import Channel
from cases.services.intake import receive

EX_TEMPFAIL = 75


def _looks_like_mbox(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(5) == b"From "


def _messages(path: Path) -> Iterator[tuple[str, bytes]]:
    if path.is_dir():
        if not (path / "cur").is_dir() and not (path / "new").is_dir():
            raise CommandError(f"{path} is a folder but not a Maildir (no cur/ or new/)")
        box = mailbox.Maildir(path, factory=None, create=False)
        for key in box.iterkeys():
            yield f"{path}:{key}", box.get_bytes(key)
    elif _looks_like_mbox(path):
        box = mailbox.mbox(path, factory=None, create=False)
        for index, key in enumerate(box.iterkeys()):
            yield f"{path}#{index + 1}", box.get_bytes(key)
    else:
        yield str(path), path.read_bytes()


class Command(BaseCommand):
    help = "Store abuse mail from standard input (one message) or from .eml files, mbox files and Maildirs."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="*", help="Files or Maildir folders; '-' or nothing reads standard input.")
        parser.add_argument("--channel", default=None, choices=[c.value for c in Channel])
        parser.add_argument("--no-progress", action="store_true")

    def handle(self, *args, files: list[str], channel: str | None, no_progress: bool, verbosity: int, **options):
        if not files or files == ["-"]:
            if not settings.CONFIGURED:
                # Nothing set and no env file: storing would put production mail in the developer's
                # SQLite file and report success. Exit 75, so the mail server keeps the message.
                self.stderr.write(
                    "abusedesk is not configured: set ABUSEDESK_ENV_FILE to the production env file, "
                    f"or install it at {settings.DEFAULT_ENV_FILE} (DEBUG=true runs on the development "
                    "defaults). The message was not stored."
                )
                sys.exit(EX_TEMPFAIL)
            raw = sys.stdin.buffer.read()
            try:
                message, created = receive(raw, channel or Channel.EMAIL)
            except Exception as exc:
                self.stderr.write(f"could not store the message: {exc}")
                sys.exit(EX_TEMPFAIL)
            if verbosity > 1:
                self.stdout.write(f"{'stored' if created else 'already stored'} message {message.pk}")
            return

        stored = duplicates = failed = 0
        sources = []
        for name in files:
            path = Path(name)
            if not path.exists():
                self.stderr.write(f"{name}: no such file or folder")
                failed += 1
                continue
            sources.append(path)
        bar = tqdm(desc="messages", unit="msg", disable=no_progress or verbosity == 0, file=sys.stderr)
        for path in sources:
            try:
                for label, raw in _messages(path):
                    try:
                        created = receive(raw, channel or Channel.BULK)[1]
                    except Exception as exc:
                        failed += 1
                        self.stderr.write(f"{label}: could not store: {exc}")
                    else:
                        stored += created
                        duplicates += not created
                    bar.update(1)
                    # Dropped before the next message is read: one message's bytes at a time.
                    del raw
            except (OSError, mailbox.Error, CommandError) as exc:
                failed += 1
                self.stderr.write(f"{path}: could not read: {exc}")
        bar.close()
        self.stdout.write(f"stored: {stored}  already stored: {duplicates}  failed: {failed}")
        if failed:
            sys.exit(EX_TEMPFAIL)
