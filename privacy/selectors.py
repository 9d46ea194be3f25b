"""Reads of the privacy concern: who a customer is in our rows, and everything held about them."""

from __future__ import annotations

from functools import lru_cache
from importlib import import_module
from types import ModuleType
from typing import Any

from django.apps import apps
from django.utils import timezone
from django.utils.module_loading import module_has_submodule

from flows import privacy as flows_privacy
from flows.models import App, CancelSession, Decision

from .parts import Subject

# A customer's identifiers lead to sessions, whose identifiers may lead to more (the same account under
# an old email address); this many rounds is far more than any real customer needs.
MAX_ROUNDS = 10


@lru_cache(maxsize=1)
def parts() -> list[tuple[str, ModuleType]]:
    """Every installed app's `privacy` module (the contract: privacy/parts.py), flows first."""
    found = []
    for config in apps.get_app_configs():
        if config.name != "privacy" and module_has_submodule(config.module, "privacy"):
            found.append((config.label, import_module(f"{config.name}.privacy")))
    if apps.is_installed("django.contrib.admin"):
        found.append(("admin", import_module("privacy.admin_log")))
    return sorted(found, key=lambda item: item[0] != "flows")


def subject_of(sessions: list[CancelSession], *, app: App | None = None, emails: set[str] | None = None,
               account_ids: set[str] | None = None) -> Subject:
    """The people of these sessions (one customer when `app` is given), with what every app knows of them."""
    decisions = list(Decision.objects.filter(session__in=sessions))
    found = flows_privacy.identify(sessions, decisions)
    subject = Subject(session_ids=[s.pk for s in sessions], emails=found["emails"] | (emails or set()),
                      account_ids=found["account_ids"] | (account_ids or set()), identifiers=found["identifiers"],
                      incidental=found["incidental"], app=app)
    more: set[str] = set()
    for _label, module in parts():
        if hasattr(module, "identifiers"):
            more |= module.identifiers(subject)
    if more:
        subject = Subject(session_ids=subject.session_ids, emails=subject.emails, account_ids=subject.account_ids,
                          identifiers=subject.identifiers | more, incidental=subject.incidental, app=app)
    return subject


def customer(*, app: App, email: str = "", account_id: str = "") -> Subject:
    """One customer of an App, found by email (any case) or account id, and every session that is theirs:
    those carrying either, and those carrying the other identifiers these sessions carry."""
    emails = {email.strip().lower()} if email.strip() else set()
    account_ids = {account_id.strip()} if account_id.strip() else set()
    sessions: list[CancelSession] = []
    for _ in range(MAX_ROUNDS):
        pks = flows_privacy.sessions_with_person(app=app, emails=emails, account_ids=account_ids)
        sessions = list(CancelSession.objects.filter(pk__in=pks).order_by("pk"))
        found = flows_privacy.identify(sessions, [])
        if found["emails"] <= emails and found["account_ids"] <= account_ids:
            break
        emails |= found["emails"]
        account_ids |= found["account_ids"]
    return subject_of(sessions, app=app, emails=emails, account_ids=account_ids)


def customer_export(subject: Subject) -> dict[str, Any]:
    """All that is held about the customer: each app's rows, by app and table."""
    assert subject.app is not None
    held: dict[str, Any] = {
        "app_id": subject.app.app_id,
        "exported_at": timezone.now(),
        "identifiers": {"emails": sorted(subject.emails), "account_ids": sorted(subject.account_ids)},
    }
    for label, module in parts():
        held[label] = module.export(subject)
    return held
