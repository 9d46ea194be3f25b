"""Reads of the evidence: a session's whole record as JSON, a flow's versions and their differences,
and how much it took customers to cancel (for the reports).

The channels' parts of a session's record (billing actions, the customer's receipts) come from the
functions named in settings.BRIGHTBACK_EVIDENCE_PARTS, each `part(session) -> dict` merged into the
record, as the admin's timeline gathers its entries (flows/timeline.py): evidence imports no channel.
"""

from __future__ import annotations

import difflib
import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils.module_loading import import_string

from flows.models import CancelSession, Decision, Event

from .models import FlowVersion, Step

logger = logging.getLogger(__name__)

# What the record says of a channel that could not be read: the rest of the record still answers.
PART_FAILED = "could not be read"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- flow versions ----------------------------------------------------------------------------------

def versions_for_flow(*, flow_id: int) -> QuerySet[FlowVersion]:
    return FlowVersion.objects.filter(flow_id=flow_id).select_related("flow").order_by("-number")


def version_of_session(session: CancelSession) -> FlowVersion | None:
    """The version the session's page showed (CancelSession.flow_version), None when none was recorded."""
    if not session.flow_version:
        return None
    return FlowVersion.objects.filter(flow_id=session.flow_id, number=session.flow_version).first()


def previous_version(version: FlowVersion) -> FlowVersion | None:
    return FlowVersion.objects.filter(flow_id=version.flow_id, number__lt=version.number).order_by("-number").first()


def _lines(content: Any) -> list[str]:
    return json.dumps(content, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def version_diff(older: FlowVersion | None, newer: FlowVersion) -> list[str]:
    """The unified difference between two versions' contents, as pretty JSON lines (all of `newer`'s
    lines added when there is no older one)."""
    before = _lines(older.content) if older is not None else []
    return list(difflib.unified_diff(before, _lines(newer.content), lineterm="", n=3,
                                     fromfile=f"v{older.number}" if older is not None else "(nothing)",
                                     tofile=f"v{newer.number}"))


# --- a session's record -----------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _parts(paths: tuple[str, ...]) -> list[Callable[[CancelSession], dict]]:
    return [import_string(path) for path in paths]


def _step(step: Step) -> dict:
    return {"at": _iso(step.at), "kind": step.kind, "source": step.source, "page": step.name or None,
            "action": step.action or None, "reason": step.reason_code or None, "offer": step.offer_code or None,
            "controls": step.controls, "status": step.status}


def _decision(decision: Decision) -> dict:
    return {"id": decision.pk, "kind": decision.kind, "created_at": _iso(decision.created_at),
            "reason": ({"code": decision.reason_code, "label": decision.reason_label}
                       if decision.reason_code else None),
            "feedback": decision.feedback, "offer": decision.offer_code or None,
            "redirect_url": decision.redirect_url}


def _version(version: FlowVersion | None, number: int | None) -> dict | None:
    if version is None:
        return {"number": number, "missing": True} if number else None
    return {"id": version.pk, "number": version.number, "hash": version.content_hash,
            "created_at": _iso(version.created_at), "author": version.author_name, "source": version.source,
            "content": version.content}


def session_evidence(session: CancelSession) -> dict:
    """Everything kept about what one customer was shown and did, and what followed, as JSON values."""
    decisions = Decision.objects.filter(session_id=session.pk).order_by("created_at", "pk")
    record: dict[str, Any] = {
        "session": {
            "id": session.public_id, "pk": session.pk,
            "app": {"app_id": session.app.app_id, "name": session.app.name},
            "flow": {"id": session.flow_id, "name": session.flow.name},
            "variant": session.variant.code if session.variant_id and session.variant else None,
            "status": session.status, "test": session.is_test,
            "email": session.email or None, "account_internal_id": session.account_internal_id or None,
            "subscription_id": session.subscription_id or None, "locale": session.locale,
            "region": (session.compliance or {}).get("region") or None,
            "rules_applied": session.compliance or {},
            "offers_shown": session.offers_shown or [],
            "created_at": _iso(session.created_at), "opened_at": _iso(session.opened_at),
            "expires_at": _iso(session.expires_at), "erased_at": _iso(session.erased_at),
        },
        "flow_version": _version(version_of_session(session), session.flow_version),
        "steps": [_step(step) for step in Step.objects.filter(session_id=session.pk).order_by("at", "pk")],
        "decisions": [_decision(decision) for decision in decisions],
        "events": [{"id": event.id, "type": event.type, "created_at": _iso(event.created_at)}
                   for event in Event.objects.filter(session_id=session.pk).order_by("created_at")],
        "billing_actions": [],
        "receipts": [],
    }
    for part in _parts(tuple(getattr(settings, "BRIGHTBACK_EVIDENCE_PARTS", ()))):
        try:
            record.update(part(session))
        except Exception:
            logger.exception("evidence part %s failed for session %s", part.__module__, session.public_id)
            record.setdefault("unreadable", []).append(f"{part.__module__}: {PART_FAILED}")
    return record


def sessions_of_app(*, app_pk: int, since: datetime) -> Iterator[CancelSession]:
    """An App's sessions started since the moment, oldest first, for an audit's JSON lines."""
    return (CancelSession.objects.filter(app_id=app_pk, created_at__gte=since)
            .select_related("app", "flow", "variant").order_by("created_at", "pk").iterator(chunk_size=200))


# --- how much it takes to cancel --------------------------------------------------------------------

def percentile(values: Sequence[float], fraction: float) -> float | None:
    """The value below which `fraction` of the values lie, interpolated between the two nearest ranks
    (PostgreSQL's percentile_cont, numpy's default): the median of 1, 2, 3, 4 is 2.5."""
    if not values:
        return None
    ordered = sorted(values)
    place = (len(ordered) - 1) * fraction
    low, high = math.floor(place), math.ceil(place)
    return ordered[low] + (ordered[high] - ordered[low]) * (place - low)


# The cancels the effort figures read: the newest this many of the report's range. Its median and 90th
# percentile are of recent behaviour, and the page reads a bounded number of steps at any size.
EFFORT_CANCELS = 2000


def cancel_effort(sessions: Q, *, since: datetime, until: datetime, limit: int = EFFORT_CANCELS) -> dict:
    """Of the sessions that canceled on the page (`sessions`: a condition over Step's `session__`), the
    newest `limit` by their Cancel: the clicks it took (every button pressed up to and including the
    first Cancel that went through) and the seconds from opening the page to that Cancel, each as
    {count, median, p90}, and `total`, every such session of the range when there are fewer than `limit`
    (else None). Read from the steps, driven by
    the step_cancel_at index from the newest Cancel back, so the page reads at most `limit` sessions'
    steps whatever the range holds. `since`/`until` bound the Cancel's time (a session's Cancel comes
    after it was created, at most its page's life later). Sessions without a recorded Cancel click
    (decided before steps were kept) are left out."""
    went_through = Q(kind="click", action=Decision.Kind.CANCEL, status__lt=400)
    earlier = Step.objects.filter(went_through, session_id=OuterRef("session_id")).filter(
        Q(at__lt=OuterRef("at")) | Q(at=OuterRef("at"), pk__lt=OuterRef("pk")))
    first_cancels = (Step.objects.filter(went_through, sessions, at__gte=since, at__lt=until,
                                         session__opened_at__isnull=False)
                     .exclude(Exists(earlier)))
    clicks = (Step.objects.filter(session_id=OuterRef("session_id"), kind="click", at__lte=OuterRef("at"))
              .order_by().values("session_id").annotate(n=Count("pk")).values("n")[:1])
    rows = list(first_cancels.order_by("-at", "-pk").annotate(clicks=Subquery(clicks))
                .values_list("session__opened_at", "at", "clicks")[:limit])
    # Fewer than `limit`: every one of the range. Otherwise how many more there are is not counted (that
    # count would read every Cancel of the range, which the limit is there to avoid).
    total = len(rows) if len(rows) < limit else None
    seconds, counts = [], []
    for opened_at, canceled_at, count in rows:
        assert opened_at is not None  # filtered above
        seconds.append(max(0.0, (canceled_at - opened_at).total_seconds()))
        counts.append(float(count or 0))

    def summary(values: list[float]) -> dict:
        return {"count": len(values), "median": percentile(values, 0.5), "p90": percentile(values, 0.9)}

    return {"clicks": summary(counts), "seconds": summary(seconds), "total": total, "limit": limit}
