"""What every long-running process checks before it serves: gunicorn's workers (wsgi.py, asgi.py),
Celery's worker and beat (celery.py). `manage.py runserver`, `migrate` and `check` already run Django's
system checks; these entry points run none, so the checks that must stop a production start are run
here too (those tagged "secrets": see flows.checks.check_encryption_keys). And what a web process builds
before its first request (warm), so that no customer waits for it."""

from __future__ import annotations

from django.core.checks import ERROR, run_checks
from django.core.exceptions import ImproperlyConfigured


def refuse_unsafe_start() -> None:
    errors = [message for message in run_checks(tags=["secrets"]) if message.level >= ERROR]
    if errors:
        raise ImproperlyConfigured("refusing to start:\n" + "\n".join(
            f"{error.id}: {error.msg}\n  HINT: {error.hint}" for error in errors))


# The pages a web process's first requests serve, the URLs their answers name, and what they render.
WARM_PATHS = ("/precancel", "/c/0", "/api/v1/pages/0", "/healthz")
WARM_URL_NAMES = (("precancel", ()), ("flows:page", ("0",)), ("flows:done", ("0",)))
WARM_TEMPLATES = ("flows/page.html", "flows/done.html", "flows/problem.html")


def warm() -> None:
    """Build what a web process's first requests would otherwise build while a customer waits: the URLconf
    with every view module it imports, its patterns compiled and its reverse lookups, the hosted page's
    templates, the email validator's patterns and the broker's transport (the first decision's wake-up
    imports it). Opens no connection: the database or Redis may not answer yet, and the first request
    connects as any other. A new worker's first /precancel took 160 ms, the next ones a few: most of it
    importing the views and compiling patterns (about 55 ms now, its connections and the App's reads)."""
    from django.conf import settings
    from django.core.validators import validate_email
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template
    from django.urls import NoReverseMatch, Resolver404, resolve, reverse
    from django.utils.module_loading import import_string

    for path in WARM_PATHS:
        try:
            resolve(path)
        except Resolver404:
            pass
    for name, args in WARM_URL_NAMES:  # the reverse lookups, built once for the whole URLconf
        try:
            reverse(name, args=args)
        except NoReverseMatch:
            pass
    for name in WARM_TEMPLATES:
        try:
            get_template(name)
        except TemplateDoesNotExist:
            pass
    validate_email("customer@example.com")  # its patterns are compiled on first use: 27 ms
    transport = getattr(settings, "CELERY_BROKER_TRANSPORT", "")
    if transport:
        import_string(transport.replace(":", "."))
