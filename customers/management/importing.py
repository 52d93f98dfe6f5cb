"""What the two import commands share: an ImportRun, a tqdm bar on stderr, rejections, a summary."""

from __future__ import annotations

import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from customers.imports import ImportFileError, execute
from customers.models import ImportRun


def add_import_arguments(parser) -> None:
    parser.add_argument("file", help="CSV file (UTF-8, with a header line)")
    parser.add_argument("--no-progress", action="store_true", help="do not draw the progress bar")


def run_import_command(command: BaseCommand, kind: str, options: dict) -> None:
    path = Path(options["file"])
    # tqdm redraws with carriage returns; Django's OutputWrapper would add a newline to every
    # redraw, so the bar goes to the raw stream underneath it.
    err = getattr(command.stderr, "_out", sys.stderr)
    run = ImportRun.objects.create(kind=kind, filename=path.name[:255], status=ImportRun.Status.RUNNING)
    bar = tqdm(total=None, unit=" rows", unit_scale=True, file=err, disable=options.get("no_progress"), mininterval=0.5)

    def progress(processed: int, total: int) -> None:
        if total and bar.total != total:
            bar.total = total
        bar.update(processed - bar.n)

    def on_reject(line: int, reason: str) -> None:
        tqdm.write(f"line {line}: {reason}", file=err)

    try:
        summary = execute(run, path, progress=progress, on_reject=on_reject)
    except ImportFileError as exc:
        raise CommandError(str(exc)) from None
    finally:
        bar.close()
    command.stdout.write(
        f"{path.name} (import #{run.pk}): {summary.processed} rows\n"
        f"created: {summary.created}\nupdated: {summary.updated}\n"
        f"unchanged: {summary.unchanged}\nrejected: {summary.rejected}"
    )
