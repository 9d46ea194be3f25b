"""Settings, read from the environment (see .env.example for every variable).

Embedded defaults (SQLite under var/, kombu's filesystem broker) make `make run` work on a bare
machine; DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from .env import envbool, envfloat, envint, envlist, envnetworks, envrate, envstr, envzone

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(envstr("BRIGHTBACK_VAR_DIR", str(BASE_DIR / "var")))

DEBUG = envbool("DEBUG", False)


def _local_secret_key() -> str:
    """A random key made once for this installation and kept beside its SQLite database, so every
    command of a one-machine install (make run, manage.py) signs and decrypts with the same key."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        import secrets

        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if os.environ.get("PYTEST_VERSION"):
        SECRET_KEY = "test-only-insecure-key"
    elif not os.environ.get("DATABASE_URL"):
        SECRET_KEY = _local_secret_key()
    elif DEBUG:
        SECRET_KEY = "dev-only-insecure-key-do-not-use-in-production"
    else:
        # Several processes share a PostgreSQL database: they must share one key, given to them all.
        raise ImproperlyConfigured("SECRET_KEY must be set when DATABASE_URL is (DEBUG=1 uses a development key)")

# Key(s) for secrets stored at rest (App secrets, endpoint secrets, billing keys): comma-separated
# Fernet keys, newest first, so keys can be rotated. Required unless DEBUG (system check flows.E004);
# under DEBUG a key is derived from SECRET_KEY.
FIELD_ENCRYPTION_KEYS = envlist("FIELD_ENCRYPTION_KEYS", [])
if not FIELD_ENCRYPTION_KEYS and os.environ.get("PYTEST_VERSION"):
    # Like SECRET_KEY above: the tests' own key, which the workers they start are given too.
    FIELD_ENCRYPTION_KEYS = ["dGVzdC1vbmx5LWZpZWxkLWVuY3J5cHRpb24ta2V5LTA="]

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])
# The address customers and snippets reach this server at; used for hosted-page URLs and snippets.
SITE_URL = envstr("SITE_URL", "").rstrip("/")

INSTALLED_APPS = [
    "brightback_site.admin_site.ConsoleAdminConfig",  # django.contrib.admin, its index grouped by task
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "flows",
    "offers",
    "alerts",
    "billing",
    "webhooks",
    "receipts",
    "reports",
    "privacy",
    "embeds",
    "compliance",
    "evidence",
]

MIDDLEWARE = [
    "brightback_site.middleware.HealthzFirst",
    "brightback_site.middleware.ForwardedHeadersFromTrustedProxiesOnly",
    "brightback_site.middleware.UnreadableSecretsAre503",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "brightback_site.middleware.AuthenticationMiddleware",  # Django's two, for staff pages only
    "brightback_site.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "brightback_site.urls"
WSGI_APPLICATION = "brightback_site.wsgi.application"

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
            ],
        },
    },
]

if os.environ.get("DATABASE_URL"):
    # Persistent connections: a request or task reuses its process's connection for this long (seconds)
    # instead of paying for a new PostgreSQL connection each time; a broken one is dropped and replaced.
    DATABASES = {"default": dj_database_url.parse(os.environ["DATABASE_URL"],
                                                  conn_max_age=envint("DB_CONN_MAX_AGE", 600, minimum=0),
                                                  conn_health_checks=True)}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's own, but a connection that finished a request cleanly within the last
        # DB_HEALTH_CHECK_BYPASS_MS skips the next request's health check (brightback_site/postgresql).
        DATABASES["default"]["ENGINE"] = "brightback_site.postgresql"
    DB_HEALTH_CHECK_BYPASS = envint("DB_HEALTH_CHECK_BYPASS_MS", 500, minimum=0) / 1000
    # The hosted page's one query (flows.selectors.session_by_token) and its step's INSERT (evidence) are
    # prepared once per connection: PostgreSQL spent several times longer planning the query than running
    # it. Off behind a pooler that hands one client's statements to another server connection (PgBouncer
    # in transaction mode).
    DB_PREPARED_STATEMENTS = envbool("DB_PREPARED_STATEMENTS", True)
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": str(VAR_DIR / "brightback.sqlite3"),
            # WAL and IMMEDIATE transactions let the web server and the worker write side by side.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 20,
            },
        }
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French")), ("de", _("German")), ("es", _("Spanish"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
# The team's time zone: the admin shows times in it, alert emails state them in it, and a report's day is
# its calendar day. After changing it, `manage.py reports_refresh --all` recounts the days.
TIME_ZONE = envzone("TIME_ZONE", "UTC")
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(VAR_DIR / "staticfiles")))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
WHITENOISE_USE_FINDERS = DEBUG

REST_FRAMEWORK: dict[str, object] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [],
    "DEFAULT_PERMISSION_CLASSES": [],
    "UNAUTHENTICATED_USER": None,
    "EXCEPTION_HANDLER": "flows.api.exception_handler",
    # JSON only: no browsable API pages on the public endpoints.
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Cancel-flow API",
    "DESCRIPTION": "The snippet's POST /precancel (Brightback-compatible), the headless API "
                   "(/api/v1/pages/<token>) and the health check.",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
}

# /precancel bodies larger than this are refused with a 400.
PRECANCEL_MAX_BYTES = envint("PRECANCEL_MAX_BYTES", 32 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(PRECANCEL_MAX_BYTES * 4, 2_621_440)
# A hosted page stays usable this long after /precancel.
SESSION_TTL_SECONDS = envint("SESSION_TTL_SECONDS", 24 * 3600, minimum=60)
# A saved customer is watched this long before save.confirmed.
SAVE_WATCH_DAYS = envint("SAVE_WATCH_DAYS", 30, minimum=0)
# Experiments: the smallest difference (percentage points) each arm's fixed sample size is set to detect.
EXPERIMENT_DETECT_POINTS = envint("EXPERIMENT_DETECT_POINTS", 5, minimum=1)

# --- Cache: abuse-limit counters, and the versions under which each process keeps an App's content ------
if os.environ.get("REDIS_URL"):
    CACHES = {"default": {
        "BACKEND": "brightback_site.cache.RedisCache",  # Django's, sharing its Redis clients
        "LOCATION": os.environ["REDIS_URL"],
        "KEY_PREFIX": "bb",
        # A Redis that does not answer must not hold a customer's request for long (limits fail open).
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    }}
else:
    # Files under var/: shared by the web server and the worker processes of one machine, as the App
    # copies' versions (flows.selectors.app_part) must be; a per-process cache would let a worker keep
    # an App's old webhook endpoints or alert rules after staff changed them.
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
                          "LOCATION": str(VAR_DIR / "cache")}}

# --- Celery ---------------------------------------------------------------------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {
        "socket_connect_timeout": 2,
        "socket_timeout": 5,
        # Unacknowledged messages (a killed worker's) come back after this long; the outbox sweeper
        # usually re-publishes them much sooner. ETA messages must stay below it.
        "visibility_timeout": 3600,
        # One connection attempt per publish: without this kombu keeps retrying for
        # BROKER_CONNECTION_TIMEOUT on every publish while Redis is down, and a decision request would
        # wait that long per outbox row. Workers reconnect with their own retry loop.
        "max_retries": 0,
    }
    # kombu's Redis transport, but a worker that loses Redis while holding unacknowledged messages
    # reconnects instead of exiting (brightback_site/broker.py).
    CELERY_BROKER_TRANSPORT = "brightback_site.broker:Transport"
else:
    _broker_dir = VAR_DIR / "broker"
    for _sub in ("queue", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "queue"),
        "data_folder_out": str(_broker_dir / "queue"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
    }
CELERY_TASK_ALWAYS_EAGER = envbool("CELERY_TASK_ALWAYS_EAGER", False)
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A decision request must never wait on a broker outage: publish once, and let the outbox
# sweeper re-publish what did not get through.
CELERY_TASK_PUBLISH_RETRY = False
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_TIMEOUT = 2
# A worker that loses its broker keeps trying to reconnect for as long as it takes (Celery's default
# gives up, and exits, after 100 attempts), and stops the acks_late tasks it was running: their
# messages go back to the queue, their rows to the sweeper, and every task is idempotent.
CELERY_BROKER_CONNECTION_RETRY = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# Celery's Django fixup otherwise closes the database connection around every task: a new
# PostgreSQL connection per webhook delivery. brightback_site/celery.py instead recycles connections
# per task as Django does per request (CONN_MAX_AGE, and broken ones dropped).
CELERY_DB_REUSE_MAX = 1_000_000
OUTBOX_SWEEP_SECONDS = envfloat("OUTBOX_SWEEP_SECONDS", 30.0, positive=True)
# After a failed publish, a process stops trying the broker for this long and leaves its outbox
# rows to the sweeper, so requests stay fast even when the broker hangs instead of refusing.
OUTBOX_PUBLISH_PAUSE_SECONDS = envfloat("OUTBOX_PUBLISH_PAUSE_SECONDS", 5.0, positive=True)
# The sweeper re-publishes an outbox row still pending this long after it was due when its message can
# have been lost (its queue is empty or already past it: brightback_site.outbox.lost).
OUTBOX_PUBLISH_GRACE_SECONDS = envfloat("OUTBOX_PUBLISH_GRACE_SECONDS", 60.0, positive=True)
# Personal data (who the customer is, what they wrote, where they came from) is scrubbed from sessions older
# than this many days, nightly, keeping what reports count (privacy/services.py); 0 keeps it for good. A
# session's data is still needed while its save is being confirmed: SAVE_WATCH_DAYS, the confirmation's
# 7-day lookback (flows.services.SAVE_CONFIRM_LOOKBACK_DAYS) and the page's own lifetime.
_RETENTION_MINIMUM = SAVE_WATCH_DAYS + 8 + -(-SESSION_TTL_SECONDS // 86400)
SESSION_RETENTION_DAYS = envint("SESSION_RETENTION_DAYS", max(365, _RETENTION_MINIMUM), minimum=0)
if 0 < SESSION_RETENTION_DAYS < _RETENTION_MINIMUM:
    raise ImproperlyConfigured(
        f"SESSION_RETENTION_DAYS must be 0 (keep personal data) or at least {_RETENTION_MINIMUM}, not "
        f"{SESSION_RETENTION_DAYS}: saves are confirmed SAVE_WATCH_DAYS ({SAVE_WATCH_DAYS}) after the decision, "
        "looking the customer up, and that must happen before their data is scrubbed")
# Whatever its queue says, a row pending this long past its due time is published again.
OUTBOX_LOST_AFTER_SECONDS = envfloat("OUTBOX_LOST_AFTER_SECONDS", 900.0, positive=True)
# A sweep runs only while no other copy of it runs (brightback_site.outbox.run_alone); a sweep message
# that waited longer than its period is dropped unrun (`expires`): the next tick does the same work.
def _periodic(task: str, seconds: float) -> dict:
    return {"task": task, "schedule": seconds, "options": {"expires": seconds}}


# The channels' sweeps, run one after the other by one message per tick (brightback_site.celery.outbox_sweep).
OUTBOX_SWEEPS = ["webhooks.sweep", "billing.sweep", "alerts.sweep", "receipts.sweep"]
CELERY_BEAT_SCHEDULE = {
    "outbox-sweep": _periodic("outbox.sweep", OUTBOX_SWEEP_SECONDS),
    "sessions-expire": _periodic("flows.sessions_expire", 60.0),
    "saves-confirm": _periodic("flows.saves_confirm", 3600.0),
    "reports-refresh": _periodic("reports.refresh", envfloat("REPORTS_REFRESH_SECONDS", 300.0, positive=True)),
    # Nightly; a run that waited for hours is dropped, and the next night does the same work.
    "privacy-retention": {"task": "privacy.sessions_scrub_expired", "schedule": crontab(hour=3, minute=30),
                          "options": {"expires": 6 * 3600}},
}
# Queues per channel: a backlog in one (a receiver timing out, a provider rate-limiting) never delays
# another, and the sweeps never wait behind deliveries. One worker consumes them all on a small install
# (`-Q` with all of WORKER_QUEUES, as `make run` does); separate pools per queue where it grows (README).
CELERY_TASK_DEFAULT_QUEUE = "celery"
CELERY_TASK_ROUTES = {
    "webhooks.deliver": {"queue": "webhooks"},
    "billing.execute": {"queue": "billing"},
    "alerts.send": {"queue": "alerts"},
    "receipts.send": {"queue": "receipts"},
    "outbox.sweep": {"queue": "sweeps"},
    "webhooks.sweep": {"queue": "sweeps"},
    "billing.sweep": {"queue": "sweeps"},
    "alerts.sweep": {"queue": "sweeps"},
    "receipts.sweep": {"queue": "sweeps"},
    "flows.sessions_expire": {"queue": "sweeps"},
    "flows.saves_confirm": {"queue": "sweeps"},
    "reports.refresh": {"queue": "reports"},
}
WORKER_QUEUES = ["webhooks", "billing", "alerts", "receipts", "sweeps", "reports", "celery"]

# Channels that receive every recorded event inside the decision's transaction (dotted paths of
# `on_event(event)`). flows never imports them: a new channel is one module and one line here. A module
# may also define `on_events(events)`, the batch form flows.services.event_record_many calls (expired
# sessions close hundreds per transaction): the same rows as on_event for each, in fewer statements. And
# `decision_rows(event, *, alias)`: the rows a decision's event calls for, written by the decision's own
# statement (flows/recording.py), which on_event then leaves alone; None when it writes nothing for the
# event, recording.LATER when on_event writes them. When every channel answers rows or None, a decision is
# one statement without a transaction around it.
BRIGHTBACK_EVENT_HANDLERS = envlist("BRIGHTBACK_EVENT_HANDLERS",
                                    ["webhooks.handlers.on_event", "billing.handlers.on_event",
                                     "alerts.handlers.on_event", "receipts.handlers.on_event"])
# Parts of the flow document owned by channels (flows/flow_document.py, DocumentSection).
BRIGHTBACK_DOCUMENT_SECTIONS = envlist("BRIGHTBACK_DOCUMENT_SECTIONS",
                                       ["billing.document.BillingSection", "alerts.document.AlertsSection",
                                        "compliance.document.ComplianceSection"])
# Asked before a save is confirmed whether the customer still pays (dotted paths; see saves_confirm_due).
BRIGHTBACK_SAVE_CHECKS = envlist("BRIGHTBACK_SAVE_CHECKS", ["billing.handlers.save_still_active"])
# What the reports read from the billing channel (reports never import it): the Apps whose saves it
# confirms, `apps_with_billing(app_ids=...) -> set[int]`; and what saves actually paid over their watch
# windows, `paid_after_saves(start=, end=) -> {session pk: {currency: Decimal}}` (billing/payments.py).
BRIGHTBACK_SAVES_FROM_BILLING = envlist("BRIGHTBACK_SAVES_FROM_BILLING", ["billing.handlers.apps_with_billing"])
BRIGHTBACK_PAID_AFTER_SAVES = envlist("BRIGHTBACK_PAID_AFTER_SAVES", ["billing.handlers.paid_after_saves"])
# What the billing system does about an event, for messages to people (a cancel's alert says the cancel
# is being carried out in Stripe, so nobody does it by hand): dotted paths of
# `event_billing(event) -> dict | None` (see flows.services.event_billing).
BRIGHTBACK_EVENT_BILLING = envlist("BRIGHTBACK_EVENT_BILLING", ["billing.handlers.event_billing"])
# When a Cancel takes effect, so the page's Cancel button says so ("now" only when billing cancels at once):
# dotted paths of `cancel_timing(app) -> "immediately" | "period_end" | None`, the first that knows wins
# (see flows.services.cancel_timing).
BRIGHTBACK_CANCEL_TIMING = envlist("BRIGHTBACK_CANCEL_TIMING", ["billing.handlers.cancel_timing"])
# Asked by the built-in confirmation page whether an email to the customer is on its way (dotted paths of
# `promised(session, decision) -> bool`; see flows.services.customer_email_promised): it promises one only then.
BRIGHTBACK_CUSTOMER_EMAILS = envlist("BRIGHTBACK_CUSTOMER_EMAILS", ["receipts.selectors.receipt_promised"])
# What each channel adds to a session's timeline in the admin: dotted paths of
# `timeline_entries(session) -> list[flows.timeline.Entry]` (see flows/timeline.py).
BRIGHTBACK_TIMELINE_ENTRIES = envlist("BRIGHTBACK_TIMELINE_ENTRIES",
                                      ["webhooks.timeline.timeline_entries", "billing.timeline.timeline_entries",
                                       "alerts.timeline.timeline_entries", "receipts.timeline.timeline_entries"])
# Who keeps a flow's published versions: dotted paths of `record(*, flow_ids, author, source)`, called
# inside the transaction of every write of a flow's content (flows.services.flow_content_published).
BRIGHTBACK_CONTENT_VERSIONS = envlist("BRIGHTBACK_CONTENT_VERSIONS", ["evidence.services.flow_versions_record"])
# Who keeps the steps of a session (each page shown, each button pressed; flows/steps.py): the dotted path
# of `record(*, session_pk, steps)`, one INSERT per request. Blank: steps are not kept.
BRIGHTBACK_STEP_RECORDER = envstr("BRIGHTBACK_STEP_RECORDER", "evidence.services.steps_record")
# The same recorder's INSERT as a part of another statement (flows.steps.statement_insert: the page's kept
# first view, a decision with its click): the dotted path of an object with insert(*, alias, rows) and
# withdraw(*, step_id). Blank: steps are written on their own.
BRIGHTBACK_STEP_STATEMENT = envstr("BRIGHTBACK_STEP_STATEMENT", "evidence.services.StepsInStatement")
# Steps are committed without waiting for the disk (evidence/services.py steps_record): 1 waits, as
# every other write does, at the cost of the hosted page's speed.
EVIDENCE_STEPS_SYNCHRONOUS = envbool("EVIDENCE_STEPS_SYNCHRONOUS", False)
# What each channel adds to a session's evidence (manage.py session_evidence): dotted paths of
# `evidence_part(session) -> dict`, merged into the record (evidence/selectors.py).
BRIGHTBACK_EVIDENCE_PARTS = envlist("BRIGHTBACK_EVIDENCE_PARTS",
                                    ["billing.evidence.evidence_part", "evidence.receipts.evidence_part"])

# --- Webhooks -------------------------------------------------------------------------------
# Endpoints resolving to private, loopback or link-local addresses are refused unless listed here
# (CIDR networks, e.g. "127.0.0.0/8").
WEBHOOK_ALLOWED_NETWORKS = envlist("WEBHOOK_ALLOWED_NETWORKS", [])
for _network in WEBHOOK_ALLOWED_NETWORKS:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"WEBHOOK_ALLOWED_NETWORKS: {_network!r} is not a CIDR network") from None
WEBHOOK_TIMEOUT_SECONDS = envfloat("WEBHOOK_TIMEOUT_SECONDS", 15.0, positive=True)
# A receiver that does not even accept the connection is given this long (a reachable host accepts in
# milliseconds); WEBHOOK_TIMEOUT_SECONDS bounds the wait for its answer.
WEBHOOK_CONNECT_TIMEOUT_SECONDS = envfloat("WEBHOOK_CONNECT_TIMEOUT_SECONDS", min(3.0, WEBHOOK_TIMEOUT_SECONDS),
                                           positive=True)
# An endpoint in trouble (timeouts, 5xx, 429, refused connections) backs off as a whole: no attempt to it
# for this many seconds after its first troubled run, doubling with each troubled run in a row up to
# WEBHOOK_BACKOFF_MAX_SECONDS; one success ends it. Multiplied by WEBHOOK_RETRY_SCALE.
WEBHOOK_BACKOFF_SECONDS = envfloat("WEBHOOK_BACKOFF_SECONDS", 5.0, positive=True)
WEBHOOK_BACKOFF_MAX_SECONDS = envfloat("WEBHOOK_BACKOFF_MAX_SECONDS", 600.0, positive=True)
# Multiplies every retry delay: 1.0 in production; tests compress time with a small value.
WEBHOOK_RETRY_SCALE = envfloat("WEBHOOK_RETRY_SCALE", 1.0, positive=True)
# A worker claims deliveries for this long; a claim that outlives it (the worker was killed) is
# taken over. Keep it above WEBHOOK_TIMEOUT_SECONDS + 50, a delivery run's hard time limit
# (system check webhooks.W002 says so when it is not).
WEBHOOK_LEASE_SECONDS = envfloat("WEBHOOK_LEASE_SECONDS", WEBHOOK_TIMEOUT_SECONDS + 60.0, positive=True)
# A run holds its endpoint (one run per endpoint) and its run slot under a lease this long, renewed every
# third of it by a heartbeat while the run lives: a killed worker's endpoint and slot are taken over this
# soon. 3 s: the soak's healthy endpoint waited out 6 s leases behind a killed run (its slot, then the line
# behind it) for a p99 of 13-14 s; a renewal is one small UPDATE and one Redis call a second per run.
WEBHOOK_RUN_LEASE_SECONDS = envfloat("WEBHOOK_RUN_LEASE_SECONDS", 3.0, positive=True)
# How many of a worker's slots webhook runs may take at once, added up over the live workers into one
# cap they all share (webhooks/runs.py). 0: all of them on a worker consuming only the webhooks queue,
# all but one on a worker that also consumes other queues, so billing, alerts and the sweeps always
# find a slot.
WEBHOOK_RUN_SLOTS = envint("WEBHOOK_RUN_SLOTS", 0, minimum=0)
# The sweeper re-publishes a delivery still pending this long after it was due (the broker lost it).
WEBHOOK_PUBLISH_GRACE_SECONDS = envfloat("WEBHOOK_PUBLISH_GRACE_SECONDS", OUTBOX_PUBLISH_GRACE_SECONDS, positive=True)
# After a secret rotation, the old secret keeps signing too (a second v1 signature) this long.
WEBHOOK_SECRET_OVERLAP_HOURS = envfloat("WEBHOOK_SECRET_OVERLAP_HOURS", 24.0, positive=True)
# An endpoint that has answered nothing but failures for this long is disabled and the team told.
WEBHOOK_DISABLE_AFTER_HOURS = envfloat("WEBHOOK_DISABLE_AFTER_HOURS", 5 * 24.0, positive=True)

# --- Billing --------------------------------------------------------------------------------
# Seconds before a billing system that has not answered counts as failed (the action is retried).
BILLING_TIMEOUT_SECONDS = envfloat("BILLING_TIMEOUT_SECONDS", 20.0, positive=True)
# Multiplies every retry delay of billing actions: 1.0 in production; tests compress time.
BILLING_RETRY_SCALE = envfloat("BILLING_RETRY_SCALE", 1.0, positive=True)
# A worker holds a claimed action this long; keep it above the task's hard limit (8 x timeout + 20: the
# provider calls of the longest action, see billing/tasks.py).
BILLING_LEASE_SECONDS = envfloat("BILLING_LEASE_SECONDS", BILLING_TIMEOUT_SECONDS * 8 + 60.0, positive=True)
# URL prefixes an App's billing API address may use besides the providers' own hosts (comma-separated;
# a provider's test server, a local fake). Nothing else, and no private or loopback address, gets a key.
BILLING_ALLOWED_API_BASES = envlist("BILLING_ALLOWED_API_BASES", [])
for _base in BILLING_ALLOWED_API_BASES:
    _parts = urlsplit(_base)
    if _parts.scheme not in ("http", "https") or not _parts.hostname or _parts.query or _parts.fragment \
            or _parts.username is not None:
        raise ImproperlyConfigured(f"BILLING_ALLOWED_API_BASES: {_base!r} is not an http(s) URL prefix "
                                   "(scheme, host, optional port and path)")

# --- Email ----------------------------------------------------------------------------------
EMAIL_BACKEND = envstr("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "cancel-flow@localhost")
# Seconds an SMTP connection may wait on the server for each step (Django's own setting name).
EMAIL_TIMEOUT = envfloat("EMAIL_TIMEOUT", 15.0, positive=True)

# --- Alerts ---------------------------------------------------------------------------------
# Seconds before Slack's answer to an alert counts as lost.
ALERT_TIMEOUT_SECONDS = envfloat("ALERT_TIMEOUT_SECONDS", 15.0, positive=True)
# Multiplies every retry delay of an alert: 1.0 in production; tests compress time with a small value.
ALERT_RETRY_SCALE = envfloat("ALERT_RETRY_SCALE", 1.0, positive=True)
# A worker holds an alert it is sending this long; a claim that outlives it (the worker was killed)
# is taken over. Keep it above the send task's hard time limit (system check alerts.W002).
ALERT_LEASE_SECONDS = envfloat("ALERT_LEASE_SECONDS", 2 * max(EMAIL_TIMEOUT, ALERT_TIMEOUT_SECONDS) + 90.0,
                               positive=True)

# --- Receipts to customers ---------------------------------------------------------------------
# Multiplies every retry delay of a receipt: 1.0 in production; tests compress time with a small value.
RECEIPT_RETRY_SCALE = envfloat("RECEIPT_RETRY_SCALE", 1.0, positive=True)
# A worker holds a receipt it is sending this long (above the send task's hard limit: check receipts.W002).
RECEIPT_LEASE_SECONDS = envfloat("RECEIPT_LEASE_SECONDS", 2 * EMAIL_TIMEOUT + 90.0, positive=True)
# Where the App's billing system is connected, a receipt waits for billing's answer (when the cancel takes
# effect) this long, asking again every RECEIPT_BILLING_POLL_SECONDS; then it goes out with the App's
# receipt settings' words instead.
RECEIPT_BILLING_WAIT_SECONDS = envfloat("RECEIPT_BILLING_WAIT_SECONDS", 600.0, positive=True)
RECEIPT_BILLING_POLL_SECONDS = envfloat("RECEIPT_BILLING_POLL_SECONDS", 10.0, positive=True)

# --- Security -------------------------------------------------------------------------------
SESSION_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
CSRF_COOKIE_SECURE = envbool("SECURE_COOKIES", not DEBUG)
# The proxies in front of this server (load balancer, nginx), as addresses or networks. Only a request
# whose direct peer is one of them has its X-Forwarded-For read (the client is the right-most entry not in
# the list; brightback_site/ratelimits.py) and its X-Forwarded-Proto believed.
TRUSTED_PROXIES = envnetworks("TRUSTED_PROXIES")
if os.environ.get("BEHIND_PROXY", "").strip().lower() not in ("", "0", "false", "no", "off"):
    # BEHIND_PROXY=1 believed X-Forwarded-For from anyone. Guessing the proxies' addresses would either
    # trust everyone again or count every customer as the proxy: say what to set instead.
    raise ImproperlyConfigured(
        "BEHIND_PROXY is replaced by TRUSTED_PROXIES: set TRUSTED_PROXIES to the addresses or networks of the "
        "proxies in front of this server (e.g. TRUSTED_PROXIES=10.0.0.0/8,127.0.0.1) and remove BEHIND_PROXY")
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if TRUSTED_PROXIES else None
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", False)
# Asking browsers' preload lists to hard-code HTTPS for the whole domain is the domain owner's decision,
# not this server's: SECURE_HSTS_PRELOAD=1 opts in, and check --deploy stays quiet either way.
SILENCED_SYSTEM_CHECKS = ["security.W021"]

# `make bench` only: mounts the baseline views under /bench/ (brightback_site/bench_views.py).
BENCH_VIEWS = envbool("BENCH_VIEWS", False)

# --- Abuse limits (DESIGN §8) -----------------------------------------------------------------
# On by default; RATE_LIMITS=off for benchmarks and load tests. Counted in the cache above, so shared by
# every web process when REDIS_URL is set (by the processes of one machine otherwise). Each rule is
# "COUNT/PERIOD" with PERIOD s, m, h or d, optionally with a multiplier ("100/5m").
RATE_LIMITS = envbool("RATE_LIMITS", True)
RATE_LIMIT_RULES = {
    # One customer's browser opens a session per click on Cancel: a few a minute is already a lot.
    "precancel-ip": envrate("RATE_LIMIT_PRECANCEL_IP", "30/m"),
    # A whole App's customers, in a burst after a price-change email.
    "precancel-app": envrate("RATE_LIMIT_PRECANCEL_APP", "30000/m"),
    "decision-ip": envrate("RATE_LIMIT_DECISION_IP", "30/m"),
    "decision-app": envrate("RATE_LIMIT_DECISION_APP", "30000/m"),
    # Password guessing on the admin login, per address and per username tried.
    "login-ip": envrate("RATE_LIMIT_LOGIN_IP", "10/m"),
    "login-username": envrate("RATE_LIMIT_LOGIN_USERNAME", "5/m"),
}
RATELIMIT_USE_CACHE = "default"
RATELIMIT_IP_META_KEY = "brightback_site.ratelimits.client_ip"

# JSON lines in production (one object per record, with the ids a record carries: app_id, session_id,
# event_id, endpoint_id…), plain text for development. Celery's workers log through the same handler.
LOG_FORMAT = envstr("LOG_FORMAT", "text" if DEBUG else "json")
if LOG_FORMAT not in ("json", "text"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be json or text, not {LOG_FORMAT!r}")
# Records never carry a customer's data (brightback_site/logs.py): tracebacks leave out exception messages
# that may quote it, Django's request and Celery's task arguments are reduced to what identifies the call.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"private": {"()": "brightback_site.logs.PrivateRecords"}},
    "formatters": {
        "json": {"()": "brightback_site.logs.JsonFormatter",
                 "fmt": "%(asctime)s %(levelname)s %(name)s %(process)d %(message)s",
                 "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"}},
        "text": {"()": "brightback_site.logs.TextFormatter",
                 "format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["private"]}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
    "loggers": {
        # Django's own handlers (its console under DEBUG, mail to ADMINS) would write tracebacks whole: its
        # records go through ours only.
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # At DEBUG this logger writes every SQL statement with its parameters (emails, feedback).
        "django.db.backends": {"level": "INFO"},
    },
}
# Error reports (the DEBUG page's text, mailed to ADMINS when set) with DEBUG off show no local variables
# and no POST values.
DEFAULT_EXCEPTION_REPORTER_FILTER = "brightback_site.logs.PrivateExceptionReporterFilter"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
