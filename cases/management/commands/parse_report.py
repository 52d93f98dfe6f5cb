"""Show how report files parse, without storing anything: for NOC staff asking "why did it parse like that?".

    manage.py parse_report FILE... [--json] [--received-at ISO] [--offline]

--json prints one JSON object per line per file:
    {"file": ..., "format": ..., "events": [{"ip", "port", "occurred_at", "category", "reporter",
     "external_id"}], "error": null}
``error`` says why when nothing could be read. Without --json, a readable table per file.
A file that cannot be read gives an error object too, and the command exits 1 once every file is
done; a file that parses to nothing is an answer (exit 0), not a failure of the command.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils.dateparse import parse_datetime

from cases import intake
from cases.intake.base import ParseResult

EVENT_KEYS = ("ip", "port", "occurred_at", "category", "reporter", "external_id")


def _safe_are_ours(ips: Iterable[str]) -> set[str]:
    # The pipeline ranks free-text candidates by "is this address ours"; the command asks the same
    # question (a read) so its answer matches what intake would do. No database, no ranking: the
    # dispatcher must not see an exception from here.
    from customers.resolver import are_ours

    try:
        return are_ours(ips)
    except DatabaseError:
        return set()


def _received_at(value: str | None) -> datetime | None:
    if not value:
        return None
    parsed = parse_datetime(value)
    if parsed is None:
        raise CommandError(f"--received-at: {value!r} is not an ISO 8601 date-time")
    if parsed.tzinfo is None:
        raise CommandError("--received-at needs a time zone (e.g. 2024-05-01T12:00:00Z)")
    return parsed.astimezone(UTC)


def report_object(name: str, result: ParseResult) -> dict:
    """The --json line for one file."""
    events = []
    for event in result.events:
        full = event.as_dict()
        events.append({key: full[key] for key in EVENT_KEYS})
    return {
        "file": name,
        "format": result.format,
        "events": events,
        "error": None if result.events else (result.error or "no events found"),
    }


def unreadable_object(name: str, reason: str) -> dict:
    return {"file": name, "format": "", "events": [], "error": reason}


class Command(BaseCommand):
    help = "Parse report files (.eml, CSV, JSON) and show the events found. Writes nothing to the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("files", nargs="+", help="Report files; '-' reads standard input.")
        parser.add_argument("--json", dest="as_json", action="store_true", help="One JSON object per line per file.")
        parser.add_argument(
            "--received-at",
            default=None,
            help="When the report arrived (ISO 8601 with zone): the fallback incident time; default now.",
        )
        parser.add_argument("--offline", action="store_true", help="Do not look at allocations to rank candidate IPs.")

    def handle(self, *args, files: list[str], as_json: bool, received_at: str | None, offline: bool, **options):
        at = _received_at(received_at)
        are_ours = None if offline else _safe_are_ours
        unreadable = 0
        for name in files:
            try:
                raw = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
            except OSError as exc:
                unreadable += 1
                obj = unreadable_object(name, f"cannot read the file: {exc.strerror or exc}")
                self._emit(obj, as_json=as_json, result=None)
                continue
            result = intake.parse(raw, received_at=at, are_ours=are_ours)
            self._emit(report_object(name, result), as_json=as_json, result=result)
        if unreadable:
            raise CommandError(f"{unreadable} of {len(files)} file(s) could not be read", returncode=1)

    def _emit(self, obj: dict, *, as_json: bool, result: ParseResult | None) -> None:
        if as_json:
            self.stdout.write(_dumps(obj))
            return
        self.stdout.write(self._table(obj, result))

    def _table(self, obj: dict, result: ParseResult | None) -> str:
        lines = [f"== {obj['file']}", f"format: {obj['format'] or '-'}   events: {len(obj['events'])}"]
        if obj["error"]:
            lines.append(f"error: {obj['error']}")
        if result is not None and result.events:
            header = ("IP", "PORT", "OCCURRED_AT", "CATEGORY", "REPORTER", "EXTERNAL_ID", "CONFIDENCE")
            rows = [
                (
                    e.ip,
                    "" if e.port is None else str(e.port),
                    e.occurred_at.isoformat().replace("+00:00", "Z"),
                    e.category,
                    e.reporter,
                    e.external_id,
                    f"{e.confidence:.2f}",
                )
                for e in result.events
            ]
            widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
            for row in [header, *rows]:
                lines.append(
                    "  ".join(str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
                )
        lines.append("")
        return "\n".join(lines)


def _dumps(obj: dict) -> str:
    # ensure_ascii=False keeps reporters' names readable; one line per file whatever the content.
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))
