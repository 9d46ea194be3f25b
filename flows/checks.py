"""System checks: bad configuration is reported at start-up (`manage.py check`), not at 3 a.m."""

from __future__ import annotations

from urllib.parse import urlsplit

from django.conf import settings
from django.core.checks import Error, Warning, register
from django.utils.module_loading import import_string


@register()
def check_site_url(app_configs, **kwargs):  # noqa: ANN001, ANN003, ANN201
    if not settings.SITE_URL:
        if not settings.DEBUG:
            return [Warning("SITE_URL is not set: hosted-page URLs will use the request's Host header.",
                            hint="Set SITE_URL=https://cancel.example.com", id="flows.W001")]
        return []
    parts = urlsplit(settings.SITE_URL)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        return [Error(f"SITE_URL must be an absolute http(s) address with no path, not {settings.SITE_URL!r}",
                      id="flows.E001")]
    return []


@register()
def check_event_handlers(app_configs, **kwargs):  # noqa: ANN001, ANN003, ANN201
    errors = []
    for path in settings.BRIGHTBACK_EVENT_HANDLERS:
        try:
            handler = import_string(path)
        except ImportError as exc:
            errors.append(Error(f"BRIGHTBACK_EVENT_HANDLERS names {path!r}, which cannot be imported: {exc}",
                                id="flows.E002"))
            continue
        if not callable(handler):
            errors.append(Error(f"BRIGHTBACK_EVENT_HANDLERS names {path!r}, which is not callable",
                                id="flows.E003"))
    return errors


@register(deploy=True)
def check_production_parts(app_configs, **kwargs):  # noqa: ANN001, ANN003, ANN201
    warnings = []
    if settings.DATABASES["default"]["ENGINE"].endswith("sqlite3"):
        warnings.append(Warning("SQLite is the embedded default; use PostgreSQL (DATABASE_URL) in production.",
                                id="flows.W002"))
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        warnings.append(Warning("The embedded broker only works on one machine; set REDIS_URL in production.",
                                id="flows.W003"))
    return warnings


ENCRYPTION_KEYS_HINT = ('Generate one with: python -c "from cryptography.fernet import Fernet; '
                        'print(Fernet.generate_key().decode())", set FIELD_ENCRYPTION_KEYS to it and keep it '
                        "with SECRET_KEY (see .env.example). An installation that ran without it: then run "
                        "`python manage.py rotate_encryption_keys`.")


@register("secrets")
def check_encryption_keys(app_configs, **kwargs):  # noqa: ANN001, ANN003, ANN201
    """Without FIELD_ENCRYPTION_KEYS, stored secrets are encrypted with a key derived from SECRET_KEY: the
    day SECRET_KEY is rotated, as one does after a leak, every App, endpoint and billing key becomes
    unreadable and the cancel pages stop. Development (DEBUG) may; production must not start so."""
    if settings.DEBUG or settings.FIELD_ENCRYPTION_KEYS:
        return []
    return [Error("FIELD_ENCRYPTION_KEYS is not set and DEBUG is off: stored secrets (App secrets, webhook "
                  "and billing keys, Slack URLs) would be encrypted with a key derived from SECRET_KEY, and "
                  "rotating SECRET_KEY would make them all unreadable.", hint=ENCRYPTION_KEYS_HINT,
                  id="flows.E004")]
