"""An account's outcome, as every report reads it (rollups and the few raw reads alike).

A customer is an App's account (CancelSession.account_key: internal_id, else email, else subscription_id).
Each decided session is one of its outcomes; the account counts once, by its last one: a session is
`superseded` when a later session of the same account was decided too (a Nevermind followed by a cancel
next week is a cancel; two Nevermind clicks are one deflected account). A deflected account is `confirmed`
(saved) by its session's save.confirmed event: still paying after the watch window where billing is
connected, else it did not cancel through us. A canceled account that came back through its receipt's
link (`session.reactivated`) is `reactivated`: a win-back, counted as saved, not canceled.
"""

from __future__ import annotations

from django.db.models import Exists, OuterRef, Q, QuerySet

from flows.models import CancelSession, Event


def _outcomes() -> dict[str, Exists]:
    later = CancelSession.objects.filter(
        Q(created_at__gt=OuterRef("created_at")) | Q(created_at=OuterRef("created_at"), pk__gt=OuterRef("pk")),
        app_id=OuterRef("app_id"), account_key=OuterRef("account_key"), account_key__gt="",
        status=CancelSession.Status.DECIDED)
    confirmed = Event.objects.filter(session_id=OuterRef("pk"), type=Event.Type.SAVE_CONFIRMED)
    reactivated = Event.objects.filter(session_id=OuterRef("pk"), type=Event.Type.SESSION_REACTIVATED)
    return {"superseded": Exists(later), "confirmed": Exists(confirmed), "reactivated": Exists(reactivated)}


def with_outcomes(sessions: QuerySet[CancelSession]) -> QuerySet[CancelSession]:
    """Annotate sessions with `superseded`, `confirmed` and `reactivated` (see the module's docstring)."""
    return sessions.annotate(**_outcomes())


def unconfirmed_last_outcomes(sessions: QuerySet[CancelSession]) -> QuerySet[CancelSession]:
    """The sessions that are their account's last outcome and have no save.confirmed yet. Filtered only,
    not selected: as a selected column PostgreSQL works `confirmed` out by hashing every confirmation."""
    return sessions.alias(**_outcomes()).filter(superseded=False, confirmed=False)  # type: ignore[misc]
