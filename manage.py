#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# sysexits.h EX_TEMPFAIL: the mail server keeps the message and delivers it again later.
EX_TEMPFAIL = 75


def main():
    """Run administrative tasks."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "abusedesk.settings")
    try:
        from django.core.management import execute_from_command_line
    except ImportError as exc:
        raise ImportError(
            "Couldn't import Django. Are you sure it's installed and "
            "available on your PYTHONPATH environment variable? Did you "
            "forget to activate a virtual environment?"
        ) from exc
    if len(sys.argv) > 1 and sys.argv[1] == "ingest_email":
        _run_mail_pipe(execute_from_command_line)
    execute_from_command_line(sys.argv)


def _run_mail_pipe(execute) -> None:
    """The mail server's pipe: a settings error is temporary (75), never a bounce (1) nor success (0).

    A missing SECRET_KEY or an unreadable env file is fixed by an operator; until then the mail
    server must keep the message, which it does only for EX_TEMPFAIL.
    """
    from django.core.exceptions import ImproperlyConfigured

    try:
        from django.conf import settings

        settings.INSTALLED_APPS  # noqa: B018 (loads the settings module now, inside this try)
    except (ImproperlyConfigured, ImportError, OSError, ValueError) as exc:
        sys.stderr.write(f"abusedesk: no usable configuration, the message was not stored: {exc}\n")
        sys.exit(EX_TEMPFAIL)
    execute(sys.argv)
    sys.exit(0)


if __name__ == "__main__":
    main()
