"""What every long-running process checks before it serves: gunicorn's workers (wsgi.py, asgi.py),
Celery's worker and beat (celery.py). `manage.py runserver`, `migrate` and `check` already run Django's
system checks; these entry points run none, so the checks that must stop a production start are run
here too (those tagged "secrets": see flows.checks.check_encryption_keys)."""

from __future__ import annotations

from django.core.checks import ERROR, run_checks
from django.core.exceptions import ImproperlyConfigured


def refuse_unsafe_start() -> None:
    errors = [message for message in run_checks(tags=["secrets"]) if message.level >= ERROR]
    if errors:
        raise ImproperlyConfigured("refusing to start:\n" + "\n".join(
            f"{error.id}: {error.msg}\n  HINT: {error.hint}" for error in errors))
