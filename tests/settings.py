"""Settings for the test suite: the real settings module, with test-friendly defaults.

DATABASE_URL, CELERY_BROKER_URL and the rest still come from the environment, so the
same suite runs on SQLite (nothing set) and on PostgreSQL + Redis (.ci/run sets them).
"""

import os
from pathlib import Path

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("STATIC_MANIFEST", "false")
os.environ.setdefault("SECURE_COOKIES", "false")
# The test client and live_server speak plain HTTP; production redirects to HTTPS.
os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
# A broker is required with DEBUG off; unit tests run tasks in-process (below). Not CELERY_BROKER_URL:
# Celery reads that variable over any app's own broker, the integration tests' sender included.
os.environ.setdefault("TASKS_IN_PROCESS", "true")
# Without DATABASE_URL the suite runs on SQLite (the test database itself is made by Django).
os.environ.setdefault("DATABASE_URL", f"sqlite:///{Path(__file__).resolve().parents[1] / 'var' / 'db.sqlite3'}")

from abusedesk.settings import *  # noqa: E402,F403

# Several checkouts or people may run the suite on one machine at once: TEST_DB_SUFFIX keeps
# their test databases apart (var/test-db<suffix>.sqlite3, test_<name><suffix>).
_SUFFIX = os.environ.get("TEST_DB_SUFFIX", "")

EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Unit tests run tasks in-process; the integration tests start a real worker and broker.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_URL = "memory://localhost/"
MEDIA_ROOT = BASE_DIR / "var" / "test-media"  # noqa: F405
# Never ask a real resolver from tests: tests that want DNS start a server on 127.0.0.1.
DNS_NAMESERVERS = ["127.0.0.1"]
DNS_PORT = 1
DNS_TIMEOUT = 0.2
# Nor a real RDAP server: tests that want one start it on 127.0.0.1 (tests/fixtures_services.py).
RDAP_BASE_URL = "http://127.0.0.1:9/"
RDAP_TIMEOUT = 0.5

if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":  # noqa: F405
    # A file, not memory: the integration tests' Celery worker is another process and must
    # see the same test database.
    (BASE_DIR / "var").mkdir(exist_ok=True)  # noqa: F405
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-db{_SUFFIX}.sqlite3")}  # noqa: F405
else:
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}{_SUFFIX}"}  # noqa: F405
