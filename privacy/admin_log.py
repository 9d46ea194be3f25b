"""The admin's history (django.contrib.admin's LogEntry) as a privacy part (privacy/parts.py): an entry
whose description of the object or of the change names the customer (an alert to them is described by
its recipient) keeps who did what and when, without the customer's name in it. customer_erase only."""

from __future__ import annotations

from datetime import datetime

from django.contrib.admin.models import LogEntry
from django.db.models import Q, QuerySet

from .parts import Subject, rows


def _naming(subject: Subject) -> QuerySet[LogEntry]:
    # One customer's few identifiers are cheap to look for; the retention scrub's hundreds per batch, over the
    # whole history, are not: old history is the admin's own to prune (LogEntry has no link to a customer).
    terms = {t for t in (*subject.emails, *subject.account_ids, *subject.identifiers) if len(t) >= 3}
    if not terms or not subject.is_customer:
        return LogEntry.objects.none()
    query = Q()
    for term in terms:
        query |= Q(object_repr__icontains=term) | Q(change_message__icontains=term)
    return LogEntry.objects.filter(query)


def busy(subject: Subject) -> list[str]:
    return []


def erase(subject: Subject, *, now: datetime) -> dict[str, int]:
    changed = 0
    for entry in _naming(subject).order_by("pk"):
        fields = {"object_repr": subject.redact(entry.object_repr)[:200],
                  "change_message": subject.redact(entry.change_message)}
        if any(getattr(entry, name) != value for name, value in fields.items()):
            changed += LogEntry.objects.filter(pk=entry.pk).update(**fields)
    return {"admin.LogEntry": changed}


def export(subject: Subject) -> dict[str, list[dict]]:
    return {"entries": rows(_naming(subject))}
