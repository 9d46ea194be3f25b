"""A session's story for its admin page: the customer's answers, then everything that followed.

flows knows its own events; every other channel (webhooks, alerts, billing) contributes entries through
a function named in settings.BRIGHTBACK_TIMELINE_ENTRIES, so flows never imports a channel:

    def timeline_entries(session: CancelSession) -> list[Entry]: ...

Each function reads only (it runs while staff view the page) and returns entries in any order; the page
sorts them by time. An entry may carry a button (`action`: its label and an admin URL that takes a POST
with `next`, like a billing action's Retry); the page adds the CSRF token. A function that raises is
logged and shown as one entry saying so, so a broken channel never hides the rest of the story.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.urls import reverse
from django.utils.module_loading import import_string

from .models import CancelSession

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    at: datetime
    source: str          # who contributed it: "session", "event", "webhook", "billing", "alert"
    title: str
    detail: str = ""
    status: str = ""     # "ok", "pending", "failed" or "" when it does not apply
    url: str = ""        # an admin page with the whole record
    action: tuple[str, str] | None = None  # (button label, admin URL to POST to), e.g. Retry
    raw: str = ""        # technical words behind `detail` (a provider's own error), shown behind a toggle


@lru_cache(maxsize=1)
def _contributors(paths: tuple[str, ...]) -> list[Callable[[CancelSession], list[Entry]]]:
    return [import_string(path) for path in paths]


def _own_entries(session: CancelSession) -> list[Entry]:
    entries = [Entry(at=session.created_at, source="session", title="Session started",
                     detail=" · ".join(part for part in (
                         f"flow {session.flow.name}",
                         f"audience {session.audience.name}" if session.audience_id and session.audience else "",
                         f"variant {session.variant.code}" if session.variant_id and session.variant else "",
                     ) if part))]
    if session.offers_shown_at is not None:
        entries.append(Entry(at=session.offers_shown_at, source="session", title="Offers shown"))
    for decision in session.decisions.order_by("created_at", "pk"):
        answers = " · ".join(part for part in (
            f"reason {decision.reason_code}" if decision.reason_code else "",
            f"offer {decision.offer_code}" if decision.offer_code else "",
            f"“{decision.feedback[:200]}”" if decision.feedback else "") if part)
        # A decision's time is kept to the second (it is signed into the return URL): within that second it
        # still came after the page was opened and its offers shown.
        decided = max(filter(None, (decision.created_at, session.created_at, session.offers_shown_at)))
        superseded = "" if decision.is_in_force else " (superseded by a later cancel)"
        entries.append(Entry(at=decided, source="session", title=f"Decided: {decision.get_kind_display()}{superseded}",
                             detail=answers, url=reverse("admin:flows_decision_change", args=[decision.pk])))
    for event in session.events.order_by("created_at"):
        entries.append(Entry(at=event.created_at, source="event", title=event.type, detail=event.id,
                             url=reverse("admin:flows_event_change", args=[event.pk])))
    return entries


def timeline(session: CancelSession) -> list[Entry]:
    entries = _own_entries(session)
    for contribute in _contributors(tuple(getattr(settings, "BRIGHTBACK_TIMELINE_ENTRIES", ()))):
        try:
            entries.extend(contribute(session))
        except Exception:
            logger.exception("timeline entries from %s failed for session %s", contribute, session.public_id)
            entries.append(Entry(at=session.created_at, source="error", status="failed",
                                 title=f"Could not read entries from {contribute.__module__}"))
    return sorted(entries, key=lambda entry: entry.at)
