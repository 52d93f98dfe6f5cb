from django.core.management.base import BaseCommand

from customers.management.importing import add_import_arguments, run_import_command
from customers.models import ImportRun


class Command(BaseCommand):
    help = (
        "Import a CGNAT port-block log (CSV: ip,port_from,port_to,account,start,stop) as port-block allocations "
        "on the public addresses of a CGNAT pool. Idempotent; bad rows are reported and skipped; exits non-zero "
        "only if the file cannot be read."
    )

    def add_arguments(self, parser) -> None:
        add_import_arguments(parser)

    def handle(self, *args, **options) -> None:
        run_import_command(self, ImportRun.Kind.PORT_BLOCKS, options)
