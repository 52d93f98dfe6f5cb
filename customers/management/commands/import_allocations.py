from django.core.management.base import BaseCommand

from customers.management.importing import add_import_arguments, run_import_command
from customers.models import ImportRun


class Command(BaseCommand):
    help = (
        "Import customers, contacts and allocations (CSV: account,name,kind,email,network,valid_from,valid_to). "
        "Idempotent; bad rows are reported and skipped; exits non-zero only if the file cannot be read."
    )

    def add_arguments(self, parser) -> None:
        add_import_arguments(parser)

    def handle(self, *args, **options) -> None:
        run_import_command(self, ImportRun.Kind.ALLOCATIONS, options)
