"""abusedesk settings, read from the environment.

Every variable is listed, with its default, in .env.example. The defaults are for a
developer's machine: SQLite, tasks run in-process, mail written to files under var/.
With DEBUG off, a missing SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL or CELERY_BROKER_URL
stops start-up.

An env file fills in what the environment does not set: the file named by ABUSEDESK_ENV_FILE,
or else /etc/abusedesk/abusedesk.env if it exists. A mail server runs the ingest pipe with an
almost empty environment; this is how the pipe finds the production settings.
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured
from dotenv import load_dotenv

BASE_DIR = Path(__file__).resolve().parent.parent

DEFAULT_ENV_FILE = Path("/etc/abusedesk/abusedesk.env")
ENV_FILE = os.environ.get("ABUSEDESK_ENV_FILE", "")
if ENV_FILE:
    if not Path(ENV_FILE).is_file():
        raise ImproperlyConfigured(f"ABUSEDESK_ENV_FILE names {ENV_FILE}, which is not a readable file.")
elif DEFAULT_ENV_FILE.is_file():
    ENV_FILE = str(DEFAULT_ENV_FILE)
if ENV_FILE:
    # The environment wins over the file, so one variable can still be overridden for one run.
    load_dotenv(ENV_FILE, override=False)
# Whether anybody configured this process, or it runs on the developer defaults alone. The mail
# pipe refuses to store mail on the defaults: a production mail server would otherwise put its
# mail in the development SQLite file and report success.
CONFIGURED = bool(ENV_FILE) or any(name in os.environ for name in ("DEBUG", "DATABASE_URL"))


def env(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]


# On by default, so a developer's machine and manage.py start with no environment at all.
# Production sets DEBUG=false (.env.example, docker-compose.yml), and then a missing
# SECRET_KEY, ALLOWED_HOSTS or DATABASE_URL stops start-up.
DEBUG = env_bool("DEBUG", default=True)

SECRET_KEY = env("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "SECRET_KEY is not set. Set it in the environment (see .env.example), "
            "or set DEBUG=true for a development machine."
        )
    SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS")
if not ALLOWED_HOSTS:
    if not DEBUG:
        raise ImproperlyConfigured(
            "ALLOWED_HOSTS is not set. Set it to the host names the desk is served on "
            "(comma-separated, see .env.example), or set DEBUG=true for a development machine."
        )
    ALLOWED_HOSTS = ["127.0.0.1", "localhost", "[::1]"]

CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")
SITE_URL = env("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "crispy_forms",
    "crispy_bootstrap5",
    "django_htmx",
    "axes",
    "customers",
    "cases",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes requires: it turns a locked-out sign-in into the lockout page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "abusedesk.urls"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "abusedesk.context_processors.roles",
            ],
        },
    },
]

WSGI_APPLICATION = "abusedesk.wsgi.application"

DATABASE_URL = env("DATABASE_URL")
if not DATABASE_URL:
    if not DEBUG:
        raise ImproperlyConfigured(
            "DATABASE_URL is not set. Set it to the production database "
            "(postgres://user:password@host:5432/name, see .env.example), or set DEBUG=true "
            "to use the development SQLite file in var/."
        )
    DATABASE_URL = f"sqlite:///{BASE_DIR / 'var' / 'db.sqlite3'}"
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=60)}
SILENCED_SYSTEM_CHECKS: list[str] = []
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the in-process task runner and the web server read while one writes.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    DATABASES["default"]["CONN_MAX_AGE"] = 0
    # INCLUDE columns of covering indexes (PostgreSQL) are simply dropped on SQLite; the warning
    # would otherwise open the output of every command, the mail pipe's included.
    SILENCED_SYSTEM_CHECKS.append("models.W040")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "cases:home"
LOGOUT_REDIRECT_URL = "login"

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
# Front-end packages are installed by npm (package.json) into node_modules/ by the
# set-up command; only the files the pages use are exposed.
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/bootstrap", BASE_DIR / "node_modules" / "bootstrap" / "dist"),
    ("vendor/htmx", BASE_DIR / "node_modules" / "htmx.org" / "dist"),
]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if not DEBUG and env_bool("STATIC_MANIFEST", default=True)
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Files browsers ask for at the site's root (/favicon.ico), served by whitenoise as they are.
WHITENOISE_ROOT = BASE_DIR / "static" / "root"
MEDIA_ROOT = Path(env("MEDIA_ROOT", str(BASE_DIR / "var" / "media")))

CRISPY_ALLOWED_TEMPLATE_PACKS = "bootstrap5"
CRISPY_TEMPLATE_PACK = "bootstrap5"

# Mail. Default: every outgoing message is written as a file under var/outbox/.
EMAIL_BACKEND = env("EMAIL_BACKEND", "django.core.mail.backends.filebased.EmailBackend")
EMAIL_FILE_PATH = env("EMAIL_FILE_PATH", str(BASE_DIR / "var" / "outbox"))
EMAIL_HOST = env("EMAIL_HOST", "127.0.0.1")
EMAIL_PORT = int(env("EMAIL_PORT", "25"))
EMAIL_HOST_USER = env("EMAIL_HOST_USER")
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS")
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL")
EMAIL_TIMEOUT = int(env("EMAIL_TIMEOUT", "20"))
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "abuse@isp.example")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Celery. Without a broker, tasks run in-process, right away (the embedded default).
CELERY_BROKER_URL = env("CELERY_BROKER_URL")
if not CELERY_BROKER_URL and not DEBUG and not env_bool("TASKS_IN_PROCESS"):
    raise ImproperlyConfigured(
        "CELERY_BROKER_URL is not set. Set it to the production broker (redis://host:6379/0, see "
        ".env.example), or set DEBUG=true to run tasks in-process on a development machine "
        "(TASKS_IN_PROCESS=true does that with DEBUG off, for a test run or a one-box trial)."
    )
CELERY_TASK_ALWAYS_EAGER = not CELERY_BROKER_URL
if CELERY_TASK_ALWAYS_EAGER:
    # Celery still opens a producer for eager tasks; with no URL kombu falls back to amqp and
    # logs "No hostname was supplied" into every command's output (the mail server's log).
    CELERY_BROKER_URL = "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = False
CELERY_RESULT_BACKEND = None
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env("CELERY_QUEUE", "abusedesk")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TIMEZONE = "UTC"
# Workers keep their database connection from task to task: otherwise Celery closes it around
# every task, and each task pays a new PostgreSQL connection (~7 ms, most of a notice's cost).
# abusedesk/celery.py still drops a broken or CONN_MAX_AGE-old connection before each task.
CELERY_DB_REUSE_MAX = 1000

# Intake: the IMAP mailbox polled for abuse@ mail (off when IMAP_HOST is empty).
IMAP_HOST = env("IMAP_HOST")
IMAP_PORT = int(env("IMAP_PORT", "993"))
IMAP_TLS = env("IMAP_TLS", "ssl")  # ssl | starttls | none
IMAP_USER = env("IMAP_USER")
IMAP_PASSWORD = env("IMAP_PASSWORD")
IMAP_PASSWORD_FILE = env("IMAP_PASSWORD_FILE")
IMAP_FOLDER = env("IMAP_FOLDER", "INBOX")
IMAP_DONE_FOLDER = env("IMAP_DONE_FOLDER")  # move stored mail here; empty = flag it \Seen
IMAP_POLL_SECONDS = int(env("IMAP_POLL_SECONDS", "60"))

# DNS look-ups for enrichment. Empty nameservers = the system resolver.
DNS_NAMESERVERS = env_list("DNS_NAMESERVERS")
DNS_PORT = int(env("DNS_PORT", "53"))
DNS_TIMEOUT = float(env("DNS_TIMEOUT", "2.0"))
DNSBL_ZONES = env_list("DNSBL_ZONES", "zen.spamhaus.org,bl.spamcop.net")
ENRICHMENT_ENABLED = env_bool("ENRICHMENT_ENABLED", default=True)
# RDAP: the abuse contact of addresses that are not ours (the unassigned queue answers reporters with
# it). rdap.org redirects to the registry holding the address; answered ranges are kept this long.
RDAP_BASE_URL = env("RDAP_BASE_URL", "https://rdap.org/")
RDAP_TIMEOUT = float(env("RDAP_TIMEOUT", "5.0"))
RDAP_CACHE_SECONDS = int(env("RDAP_CACHE_SECONDS", str(7 * 24 * 3600)))

# The NOC queue: how long a case may wait for a person, by why it waits (hours); older ones are
# shown overdue. new: nobody has looked; review: a step to confirm or a hold run out; replied: the
# customer answered; approval: a manager's decision; failed: a notice could not be sent.
QUEUE_TARGET_HOURS = {"new": 4, "review": 8, "replied": 8, "approval": 24, "failed": 2}

# import_allocations refuses networks broader than these prefixes (0.0.0.0/0 would make every
# address in the world resolve to one customer).
ALLOCATION_MIN_PREFIX_V4 = int(env("ALLOCATION_MIN_PREFIX_V4", "8"))
ALLOCATION_MIN_PREFIX_V6 = int(env("ALLOCATION_MIN_PREFIX_V6", "16"))

# The ladder and its notices.
# Customer links in notices (signed, no login) expire after this many days.
CUSTOMER_LINK_MAX_AGE_DAYS = int(env("CUSTOMER_LINK_MAX_AGE_DAYS", "60"))
# Where customers reply: notices set Reply-To to abuse+<case>@domain, threaded back onto the case.
NOTICE_FROM_EMAIL = env("NOTICE_FROM_EMAIL", DEFAULT_FROM_EMAIL)
NOTICE_REPLY_TO = env("NOTICE_REPLY_TO", DEFAULT_FROM_EMAIL)
# Sending: a notice is tried this many times (Celery retries with backoff), then marked failed.
NOTICE_MAX_ATTEMPTS = int(env("NOTICE_MAX_ATTEMPTS", "6"))
# The first retry waits this long; each further one twice as long (at most an hour).
NOTICE_RETRY_BASE_SECONDS = int(env("NOTICE_RETRY_BASE_SECONDS", "60"))
# A claim older than this belongs to a worker that died mid-send; the sweeper takes it back. A pending
# notice nobody claimed for this long lost its task (a Redis outage); the sweeper queues it again.
NOTICE_CLAIM_TIMEOUT_SECONDS = int(env("NOTICE_CLAIM_TIMEOUT_SECONDS", "300"))
# The provisioning webhook (restriction, suspension, reinstatement, termination). Empty URL:
# each action is recorded as "to be done by hand" and shown so on the case.
PROVISIONING_WEBHOOK_URL = env("PROVISIONING_WEBHOOK_URL")
PROVISIONING_WEBHOOK_SECRET = env("PROVISIONING_WEBHOOK_SECRET") or (
    Path(env("PROVISIONING_WEBHOOK_SECRET_FILE")).read_text().strip() if env("PROVISIONING_WEBHOOK_SECRET_FILE") else ""
)
PROVISIONING_WEBHOOK_TIMEOUT = float(env("PROVISIONING_WEBHOOK_TIMEOUT", "10"))
# A call that got no answer, a timeout, 408/429 or 5xx is tried again this many times in all, the
# first retry after the base delay and each further one after twice as long (capped); then it fails.
PROVISIONING_MAX_ATTEMPTS = int(env("PROVISIONING_MAX_ATTEMPTS", "8"))
PROVISIONING_RETRY_BACKOFF_SECONDS = float(env("PROVISIONING_RETRY_BACKOFF_SECONDS", "30"))
PROVISIONING_RETRY_BACKOFF_MAX_SECONDS = float(env("PROVISIONING_RETRY_BACKOFF_MAX_SECONDS", "900"))

# Limits on what a sender can make us store or show.
INTAKE_MAX_MESSAGE_BYTES = int(env("INTAKE_MAX_MESSAGE_BYTES", str(40 * 1024 * 1024)))
EVIDENCE_MAX_CHARS = int(env("EVIDENCE_MAX_CHARS", "8000"))
# A feed's events beyond this are not filed; the message says how many were left (a 190 MB CSV
# once yielded 4.7 million). Events are filed in chunks of INTAKE_CHUNK_EVENTS, each committed
# on its own, with the message's progress, so a restart goes on from the last committed chunk.
INTAKE_MAX_EVENTS_PER_MESSAGE = int(env("INTAKE_MAX_EVENTS_PER_MESSAGE", "1000000"))
INTAKE_CHUNK_EVENTS = int(env("INTAKE_CHUNK_EVENTS", "1000"))
# A worker's claim on the messages it parses lives while its heartbeat does: it beats every
# INTAKE_HEARTBEAT_SECONDS, and a claim whose last beat is older than INTAKE_CLAIM_TIMEOUT_SECONDS
# is given back (the worker died or hangs), however long the feed takes.
INTAKE_HEARTBEAT_SECONDS = float(env("INTAKE_HEARTBEAT_SECONDS", "15"))
INTAKE_CLAIM_TIMEOUT_SECONDS = float(env("INTAKE_CLAIM_TIMEOUT_SECONDS", "120"))
DATA_UPLOAD_MAX_MEMORY_SIZE = 50 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

if not DEBUG:
    SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", default=True)
    SECURE_CONTENT_TYPE_NOSNIFF = True

# --- Security: HTTPS, HSTS, the proxy header, CSP, sign-in throttling ---------------------------
# HTTPS redirect and HSTS are on whenever DEBUG is off unless the environment turns them off
# (README, "Deployment behind a proxy that terminates TLS").
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "0" if DEBUG else "31536000"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=not DEBUG)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=False)
# X-Forwarded-Proto and X-Forwarded-For are trusted only when the operator says the proxy in front
# sets them (overwriting what a client sent): otherwise any client could claim HTTPS over plain
# HTTP, or any address to dodge the sign-in lockout.
BEHIND_PROXY = env_bool("BEHIND_PROXY")
if BEHIND_PROXY:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
if not SECURE_HSTS_PRELOAD:
    # Preloading is a commitment of the whole registrable domain (isp.example), decided by its
    # owner, never by one host's settings; check --deploy would otherwise warn on every install.
    SILENCED_SYSTEM_CHECKS.append("security.W021")

# Content-Security-Policy (django-csp): no inline script or style anywhere, no framing. The
# admin runs under the same policy (templates/admin/change_list.html removes its one inline
# <style>); htmx's indicator <style> is off through <meta name="htmx-config"> in base.html.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
        "object-src": ["'none'"],
    },
}

# Sign-in throttling (django-axes), on the desk's login and the admin's: after AXES_FAILURE_LIMIT
# failures within AXES_COOLOFF_MINUTES, that user name from that address is locked out until the
# cool-off has passed. The pair, not the address alone: a NAT or a proxy puts a whole office
# behind one address, and one attacker there must not lock every colleague out; not the user
# name alone, or anybody could lock any account out from anywhere. Spraying one account from many
# addresses is still slowed per address, and the failures stay in the database for the admin.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_HANDLER = "axes.handlers.database.AxesDatabaseHandler"
AXES_FAILURE_LIMIT = int(env("AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=int(env("AXES_COOLOFF_MINUTES", "15")))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
# Behind a proxy REMOTE_ADDR is the proxy's: the client is what the proxy appended last to
# X-Forwarded-For (abusedesk/lib/client_ip.py), read only when BEHIND_PROXY says so.
AXES_CLIENT_IP_CALLABLE = "abusedesk.lib.client_ip.client_ip"

# One date format in the admin and in Django's own date filter, as the desk's isotime filter
# writes it: "2026-11-30 14:02:05 UTC" (abusedesk/formats/en/formats.py).
FORMAT_MODULE_PATH = ["abusedesk.formats"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # In-process (eager) tasks would log every run at INFO; workers configure their own logging.
        "celery.app.trace": {"level": "WARNING"},
        # django-axes announces itself at every start, into every command's stderr (the mail pipe's
        # log); its failed-sign-in and lockout lines (axes.handlers) still log at INFO.
        "axes.apps": {"level": "WARNING"},
    },
}

# Periodic work (celery beat). Both tasks do nothing when there is nothing to do.
CELERY_BEAT_SCHEDULE = {
    "poll-imap": {
        "task": "cases.tasks_intake_io.poll_imap_task",
        "schedule": float(IMAP_POLL_SECONDS),
        # A poll that waited longer than the interval is superseded by the next one.
        "options": {"expires": float(IMAP_POLL_SECONDS)},
    },
    "requeue-unparsed-messages": {"task": "cases.tasks.requeue_unparsed_messages", "schedule": 300.0},
    "ladder-tick": {"task": "cases.tasks_ladder.ladder_tick_task", "schedule": 60.0, "options": {"expires": 60.0}},
    "sweep-provisioning": {
        "task": "cases.tasks_provisioning.sweep_provisioning_task",
        "schedule": 120.0,
        "options": {"expires": 120.0},
    },
    "sweep-referrals": {
        "task": "cases.tasks_triage.sweep_referrals_task",
        "schedule": 300.0,
        "options": {"expires": 300.0},
    },
    "sweep-outbox": {"task": "cases.tasks_notices.sweep_outbox_task", "schedule": 60.0, "options": {"expires": 60.0}},
}

# --- HTTP API (api/) ---------------------------------------------------------------------------
INSTALLED_APPS += [
    "rest_framework",
    # Its AbstractAPIKey (hashed tokens) lives beside a concrete model, so the app must be installed.
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "api",
]
# First: a body over the limit is refused (413) before anything reads it, and every call is logged.
MIDDLEWARE.insert(0, "api.middleware.ApiMiddleware")
# What /api/v1/ runs through instead of the rest of MIDDLEWARE: a token, not a session, says who
# calls, so sessions, CSRF, messages, the sign-in lockout, CSP and htmx have nothing to do there.
API_MIDDLEWARE = ["django.middleware.security.SecurityMiddleware", "django.middleware.common.CommonMiddleware"]
# A token read from the database is trusted by each web process for this long: a token revoked
# in the admin stops working everywhere within it (at once in the process that revoked it).
API_TOKEN_CACHE_SECONDS = float(env("API_TOKEN_CACHE_SECONDS", "10"))
# Requests per token; a token's own rate (set in the admin) wins. The cache that counts them is
# shared by all web processes when API_CACHE_URL names a Redis database.
API_RATE = env("API_RATE", "600/min")
API_MAX_BODY_BYTES = int(env("API_MAX_BODY_BYTES", str(10 * 1024 * 1024)))
API_CACHE_URL = env("API_CACHE_URL")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"},
    "api": (
        {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": API_CACHE_URL}
        if API_CACHE_URL
        else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": "api"}
    ),
}
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["api.auth.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["api.permissions.HasScope"],
    "DEFAULT_THROTTLE_CLASSES": ["api.throttling.TokenRateThrottle"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["rest_framework.parsers.JSONParser"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "api.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DATETIME_FORMAT": "iso-8601",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "abusedesk API",
    "DESCRIPTION": "Submit abuse reports, read cases and customers, act on cases. "
    "Authenticate with `Authorization: Api-Key <token>` (tokens are made in the admin).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/v1",
    "ENUM_NAME_OVERRIDES": {
        "CategoryEnum": "cases.models.Category",
        "CaseStatusEnum": "cases.models.CaseStatus",
        "CustomerKindEnum": "customers.models.CustomerKind",
    },
}
