"""Every write of the cancel flow. Views, commands and tasks call these; nothing else writes."""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction
from django.db.models import F, OuterRef, Subquery, Value
from django.db.models.functions import Coalesce, Now, NullIf
from django.utils import timezone

from audiences import facts
from brightback_site import statements

from . import cancel_terms, experiments, hooks, ids, recording, routing, selectors, signing, steps
from .events import event_hand_over, event_payload, event_record, event_record_many, event_unsaved  # noqa: F401

# The lifecycle's writes (run by beat), where callers have always found them.
from .lifecycle import (  # noqa: F401
    SAVE_CONFIRM_LOOKBACK_DAYS,
    event_billing,
    saves_confirm_due,
    sessions_abandon_expired,
)
from .models import App, AppAccess, CancelSession, Decision, Event, Flow, Reason, Variant
from .snippet_data import OFFER_URL, URL_FIELDS

if TYPE_CHECKING:
    from django.contrib.auth.models import User

    from offers.models import Offer

logger = logging.getLogger(__name__)


class FlowError(Exception):
    """A request the flow refuses; the message is safe to show."""


class NoActiveFlow(FlowError):
    pass


class ReturnUrlRefused(FlowError):
    pass


class SessionClosed(FlowError):
    """The session expired (or was abandoned) before a decision."""


class BadDecision(FlowError):
    """The posted decision names a reason or offer this session's flow does not have."""


# --- sessions -----------------------------------------------------------------------------------

def session_start(*, app: App, data: dict) -> CancelSession:
    """Open a hosted-page session for validated snippet data (see snippet_data.clean_snippet_data).

    Routing runs here, once: the audience, the flow, the experiment's variant and the offers this
    customer may see are recorded on the session, so the page reads them without asking again.
    """
    # offers and compliance depend on flows; these reads go the other way.
    from compliance.selectors import rules_for
    from offers.eligibility import offer_codes_for

    for key, value in data.items():
        if (key in URL_FIELDS or OFFER_URL.fullmatch(key)) and not app.allows_return_url(value):
            raise ReturnUrlRefused(f"{key} is not on this app's allowed return-URL hosts")
    now = timezone.now()
    content = routing.published(app)
    route = routing.route_for(app=app, data=data, now=now, content=content)
    if route is None:
        raise NoActiveFlow(f"No active flow for app:{app.app_id}")
    account = data.get("account", {})
    internal_id, email = account.get("internal_id", ""), data.get("email", "")
    key = experiments.account_key(internal_id=internal_id, email=email,
                                  subscription_id=data.get("subscription_id", ""))
    variant = experiments.variant_for(flow=route.flow, key=key, variants=content.variants.get(route.flow.pk, []))
    stored = {k: v for k, v in data.items() if k != "auth"}
    # The rules of the customer's region, once: the page, the API and the receipt read them from the session.
    compliance = rules_for(app=app, country=account.get("country", ""), region=account.get("region", ""))
    # What the page promises Cancel will do, kept with the rules the customer was shown it under.
    compliance["cancel_effective"] = cancel_terms.cancel_effective(app)
    offer_codes = [] if compliance["offers"] == "none" else offer_codes_for(
        app=app, flow=route.flow, variant=variant, data=data, now=now, offers=content.offers.get(route.flow.pk, []))
    session = CancelSession(
        app=app,
        flow=route.flow,
        audience=route.audience,
        variant=variant,
        offer_codes=offer_codes,
        compliance=compliance,
        monthly_value=facts.monthly_value(account),
        is_test=not app.is_live,
        email=email,
        account_internal_id=internal_id,
        subscription_id=data.get("subscription_id", ""),
        account_key=key,
        locale=data.get("context", {}).get("locale", "")[:35],
        data=stored,
        created_at=now,
        expires_at=now + timedelta(seconds=settings.SESSION_TTL_SECONDS),
    )
    statements.insert_prepared(session)
    logger.info("session created", extra={"app_id": app.app_id, "session_id": session.public_id,
                                         "flow_id": route.flow.pk})
    return session


def session_offers_shown(*, session: CancelSession, codes: list[str]) -> None:
    """Note which offers the customer saw (the reports' funnel and offer conversion count them)."""
    seen = list(session.offers_shown or [])
    new = [code for code in codes if code not in seen]
    if session.pk is None or not new:
        return
    now = timezone.now()
    session.offers_shown = seen + new
    session.offers_shown_at = session.offers_shown_at or now
    CancelSession.objects.filter(pk=session.pk).update(offers_shown=session.offers_shown,
                                                       offers_shown_at=session.offers_shown_at)


def session_opened(*, session_pk: int, now: datetime | None = None) -> bool:
    """Record that the customer opened the page (or an embed of it): the session starts counting then.

    Only the first open writes, in one conditional UPDATE; return whether this call was that one. Callers
    skip it when they already read opened_at, so the hosted page's later views write nothing.
    """
    return CancelSession.objects.filter(pk=session_pk, opened_at__isnull=True,
                                        status=CancelSession.Status.OPEN).update(
        opened_at=now or timezone.now(), flow_version=_published_version()) == 1


def _published_version() -> NullIf:
    """The session's flow's published version (Flow.version), read inside the UPDATE that opens it: the
    version the page shows is noted without another query. Null while the flow has none.

    Unordered: one row by its key needs no order, and Flow's default ordering (by its App's name) would
    join the App into every decision's and first view's UPDATE for nothing."""
    return NullIf(Subquery(Flow.objects.filter(pk=OuterRef("flow_id")).order_by().values("version")[:1]), Value(0))


# --- decisions ----------------------------------------------------------------------------------

EVENT_FOR_KIND: dict[str, str] = {
    Decision.Kind.NEVERMIND: Event.Type.SESSION_NEVERMIND,
    Decision.Kind.ACCEPT: Event.Type.OFFER_ACCEPTED,
    Decision.Kind.CANCEL: Event.Type.SESSION_CANCELED,
}


def _with_bb_params(url: str, *, session: CancelSession, event_type: str, ts: int) -> str:
    account_id = session.account_internal_id
    params = {
        "bb_event": event_type,
        "bb_account_id": account_id,
        "bb_session": session.public_id,
        "bb_ts": str(ts),
        "bb_sig": signing.return_signature(secret=session.app.secret, event=event_type,
                                           account_id=account_id, session=session.public_id, ts=ts),
    }
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not k.startswith("bb_")]
    return urlunsplit(parts._replace(query=urlencode(query + list(params.items()))))


def _target_url(session: CancelSession, kind: str, offer: Offer | None) -> str:
    if kind == Decision.Kind.CANCEL:
        return session.return_url("cancel_confirmation_url")
    if kind == Decision.Kind.ACCEPT and offer is not None:
        if offer.snippet_url_slot and session.return_url(f"offer_{offer.snippet_url_slot}_url"):
            return session.return_url(f"offer_{offer.snippet_url_slot}_url")
        configured = offer.return_url or offer.link_url
        if configured:
            return configured
    return session.return_url("save_return_url")


@dataclass(frozen=True)
class DecisionPlan:
    """A checked decision: what it records and where it sends the customer. Nothing written yet."""

    kind: str
    event_type: str
    reason: Reason | None
    offer: Offer | None
    feedback: str
    decided_at: datetime
    redirect_url: str


def decision_plan(*, session: CancelSession, kind: str, reason_code: str = "", feedback: str = "",
                  offer_code: str = "") -> DecisionPlan:
    """Check a decision against the session's flow and work out its event and redirect.

    Raises BadDecision for an unknown action, reason or offer, or an offer not shown for the reason.
    Reads only, so the admin's preview can show exactly what a decision would do.
    """
    from offers.models import Offer  # offers depends on flows; this one read goes the other way

    if kind not in Decision.KINDS:
        raise BadDecision(f"Unknown action {kind!r}.")
    reason = None
    if reason_code:
        # The flow's published reasons, from this process's memory when current (selectors.published_reasons).
        reason = next((r for r in selectors.published_reasons(flow=session.flow) if r.code == reason_code), None)
        if reason is None:
            raise BadDecision(f"Unknown reason {reason_code!r}.")
    offer = None
    if kind == Decision.Kind.ACCEPT:
        offer = next((o for o in selectors.offers_on_page(session, reason_code) if o.code == offer_code), None)
        if offer is None:
            raise BadDecision(f"Offer {offer_code!r} is not shown for this reason.")

    event_type = EVENT_FOR_KIND[kind]
    if offer is not None and offer.kind == Offer.Kind.CONTACT_SUPPORT:
        event_type = Event.Type.OFFER_EMAIL_REQUESTED
    now = timezone.now().replace(microsecond=0)
    target = _target_url(session, kind, offer)
    redirect_url = _with_bb_params(target, session=session, event_type=event_type,
                                   ts=int(now.timestamp())) if target else ""
    return DecisionPlan(kind=kind, event_type=event_type, reason=reason, offer=offer, feedback=feedback.strip(),
                        decided_at=now, redirect_url=redirect_url)


def decision_record(
    *,
    session: CancelSession,
    kind: str,
    reason_code: str = "",
    feedback: str = "",
    offer_code: str = "",
    click: steps.Step | None = None,
) -> Decision:
    """Record the customer's decision once, with its event, and return it.

    A second call for the same session (double click, replayed POST) records nothing and returns
    the first decision, so the customer is redirected the same way.

    `session` is the caller's copy, read with its app and flow (selectors.session_by_token) moments ago:
    what the decision needs of it does not change while the session is open.

    `click`, the caller's evidence step of the POST that made the decision, is written with the decision
    where the step recorder allows (flows/recording.py); the decision returned then says so
    (`bb_click_recorded`), and the caller records the step itself otherwise (a replay, a refusal, SQLite).
    A step that cannot be written never costs the decision: should the statement carrying it fail, its
    transaction is rolled back whole and the decision recorded again without it.
    """
    if click is not None and transaction.get_connection().vendor == "postgresql":
        try:
            return _decision_record(session=session, kind=kind, reason_code=reason_code, feedback=feedback,
                                    offer_code=offer_code, click=click)
        except _ClickNotWritten:
            logger.exception("decision of session %s recorded again without its click's step", session.public_id)
    return _decision_record(session=session, kind=kind, reason_code=reason_code, feedback=feedback,
                            offer_code=offer_code, click=None)


def _decision_record(*, session: CancelSession, kind: str, reason_code: str, feedback: str, offer_code: str,
                     click: steps.Step | None) -> Decision:
    if transaction.get_connection().vendor == "postgresql":
        try:
            plan = decision_plan(session=session, kind=kind, reason_code=reason_code, feedback=feedback,
                                 offer_code=offer_code)
        except BadDecision:
            plan = None  # refused below as before, once the session is known to be open
        if plan is not None:
            return _decision_record_at_once(session=session, plan=plan, click=click)
    return _decision_record_in_steps(session=session, kind=kind, reason_code=reason_code, feedback=feedback,
                                     offer_code=offer_code)


@transaction.atomic
def _decision_record_in_steps(*, session: CancelSession, kind: str, reason_code: str, feedback: str,
                              offer_code: str) -> Decision:
    """decision_record elsewhere than PostgreSQL, and for a decision refused once the session is known open."""
    connection = transaction.get_connection()
    # One statement takes the session's row lock and closes it to any other decision: a concurrent one
    # waits for this transaction, then finds the session no longer open (PostgreSQL re-checks the WHERE
    # on the committed row) and returns the decision recorded here.
    # A decision reached without the page (an embed's API) opens the session too: a decided session
    # has always been opened.
    opened = CancelSession.objects.filter(pk=session.pk, status=CancelSession.Status.OPEN,
                                          expires_at__gt=timezone.now()).update(
        status=CancelSession.Status.DECIDED, opened_at=Coalesce(F("opened_at"), Now()),
        flow_version=Coalesce(F("flow_version"), _published_version()))
    if not opened:
        return _decision_in_force(session)
    plan = decision_plan(session=session, kind=kind, reason_code=reason_code, feedback=feedback,
                         offer_code=offer_code)
    try:
        # Under the row lock a second writer cannot get here, so the savepoint (two more round trips) is
        # only needed where there are no row locks (SQLite).
        with transaction.atomic(savepoint=not connection.features.has_select_for_update):
            decision = _decision_new(session=session, plan=plan)
            decision.save(force_insert=True)
    except IntegrityError:
        # Only reachable where row locks are not available: the first writer won.
        return Decision.objects.get(in_force_for=session)
    session.status = CancelSession.Status.DECIDED
    event = event_record(session=session, type=plan.event_type, decision=decision)
    _decision_logged(session, event)
    return decision


def _decision_record_at_once(*, session: CancelSession, plan: DecisionPlan, click: steps.Step | None) -> Decision:
    """decision_record on PostgreSQL: the session closed, the decision, its event (and its click's step)
    inserted in one statement (flows/recording.py), with the channels' rows where they offer them.

    When that is every row the decision writes (no channel writes in `on_event`), the statement is atomic on
    its own and runs without a transaction around it: committed when it answers, one round trip. Otherwise
    (or inside a caller's transaction) it runs in a transaction, and the event is handed after it to the
    channels that write in `on_event`, as event_record does."""
    decision = _decision_new(session=session, plan=plan)
    event = event_unsaved(session=session, type=plan.event_type, decision=decision)
    connection = transaction.get_connection()
    # The channels' configuration is read under one App version, for their rows in the statement and the
    # hand-over alike.
    with selectors.app_versions_read_once():
        parts, later = recording.channel_rows(event)
        alone = not later and not connection.in_atomic_block
        with contextlib.nullcontext() if alone else transaction.atomic():
            try:
                pk, click_recorded = recording.close_and_record(session_pk=session.pk, now=timezone.now(),
                                                                decision=decision, event=event, click=click,
                                                                parts=parts)
            except DatabaseError as exc:
                if click is None:
                    raise
                raise _ClickNotWritten from exc  # rolled back (its transaction, or itself): tried again without it
            if pk is None:
                return _decision_in_force(session)
            decision.pk = pk
            decision.bb_click_recorded = click_recorded  # type: ignore[attr-defined]
            for instance in (decision, event):
                instance._state.adding, instance._state.db = False, connection.alias
            session.status = CancelSession.Status.DECIDED
            if later:
                event_hand_over(event, paths=later)
    _decision_logged(session, event)
    return decision


class _ClickNotWritten(Exception):
    """The decision's statement failed with its click's step in it (decision_record records it again without)."""


def _decision_new(*, session: CancelSession, plan: DecisionPlan) -> Decision:
    return Decision(session=session, in_force_for=session, kind=plan.kind, reason=plan.reason,
                    reason_code=plan.reason.code if plan.reason else "",
                    reason_label=plan.reason.label if plan.reason else "",
                    feedback=plan.feedback, offer=plan.offer, offer_code=plan.offer.code if plan.offer else "",
                    redirect_url=plan.redirect_url, created_at=plan.decided_at)


def _decision_in_force(session: CancelSession) -> Decision:
    """The decision a closed session already has (a replayed POST redirects where it went); SessionClosed
    when it has none (it expired, or was abandoned)."""
    existing = Decision.objects.filter(in_force_for_id=session.pk).first()
    if existing is not None:
        return existing
    raise SessionClosed("This cancel page has expired.")


def _decision_logged(session: CancelSession, event: Event) -> None:
    logger.info("decision recorded", extra={"app_id": session.app.app_id, "session_id": session.public_id,
                                            "event_id": event.id, "event_type": event.type})


def customer_email_promised(*, session: CancelSession, decision: Decision) -> bool:
    """Will the customer get an email about this decision? Asked of the channels named in
    BRIGHTBACK_CUSTOMER_EMAILS (dotted paths of `promised(session, decision) -> bool`), so the
    confirmation page promises an email only when one is on its way."""
    for promised in hooks.named(tuple(settings.BRIGHTBACK_CUSTOMER_EMAILS)):
        try:
            if promised(session, decision):
                return True
        except Exception:
            logger.exception("%s failed for session %s", promised.__qualname__, session.public_id)
    return False


# --- published content ----------------------------------------------------------------------

def flow_content_changed(*, flow_ids: list[int], author: User | None = None, source: str = "admin") -> None:
    """Say that staff changed these flows' content (reasons, offers, copy): their updated_at moves, so
    every process's in-memory copy of it (selectors.published_reasons) is retired on its next read, and
    so does their Apps' version (selectors.app_part: routing, offers, variants), which also covers rows
    changed by queryset updates that send no signal (the importer's deactivations). The change is then
    published as each flow's new version (flow_content_published), by `author` through `source`."""
    Flow.objects.filter(pk__in=flow_ids).update(updated_at=timezone.now())
    flow_content_published(flow_ids=flow_ids, author=author, source=source)
    selectors.forget_published_content(flow_ids=flow_ids)
    for app_pk in set(Flow.objects.filter(pk__in=flow_ids).values_list("app_id", flat=True)):
        selectors.app_row_changed(pk=app_pk)


def flow_content_published(*, flow_ids: list[int], author: User | None = None, source: str = "admin") -> None:
    """Hand the flows to the version keepers named in settings.BRIGHTBACK_CONTENT_VERSIONS (dotted paths of
    `record(*, flow_ids, author, source)`, evidence.services.flow_versions_record): each flow whose
    published content differs from its latest version gets a new one, inside the caller's transaction.
    Called after every write of a flow's content (the admin, flow_import, a restore); one that changed
    nothing makes no version."""
    for record in hooks.named(tuple(getattr(settings, "BRIGHTBACK_CONTENT_VERSIONS", ()))):
        record(flow_ids=flow_ids, author=author, source=source)


def flow_version_published(*, flow_id: int, number: int) -> None:
    """Note the flow's latest published version: sessions opened from now on record it."""
    Flow.objects.filter(pk=flow_id).update(version=number)


@transaction.atomic
def flow_duplicate(*, flow: Flow, author: User | None = None) -> Flow:
    """A copy of the flow, its reasons, offers (with their reasons and audiences) and variants, made
    inactive so staff can edit it before it meets a customer. Audiences that route to the original keep
    routing there; sessions, assignments and reports stay with the original."""
    from offers.models import Offer

    original_pk = flow.pk
    names = set(Flow.objects.filter(app_id=flow.app_id).values_list("name", flat=True))
    name, n = f"{flow.name} (copy)", 2
    while name in names:
        name, n = f"{flow.name} (copy {n})", n + 1
    copy = Flow.objects.get(pk=original_pk)
    copy.pk, copy.id, copy.name, copy.is_active, copy.version = None, None, name[:200], False, 0
    copy.save()
    reasons: dict[int, Reason] = {}
    for reason in Reason.objects.filter(flow_id=original_pk):
        old_pk = reason.pk
        reason.pk, reason.id, reason.flow = None, None, copy
        reason.save()
        reasons[old_pk] = reason
    for offer in Offer.objects.filter(flow_id=original_pk).prefetch_related("reasons", "audiences"):
        offer_reasons, audiences = [reasons[r.pk] for r in offer.reasons.all()], list(offer.audiences.all())
        offer.pk, offer.id, offer.flow = None, None, copy
        offer.save()
        offer.reasons.set(offer_reasons)
        offer.audiences.set(audiences)
    for variant in Variant.objects.filter(flow_id=original_pk):
        variant.pk, variant.id, variant.flow = None, None, copy
        variant.save()
    selectors.app_row_changed(pk=copy.app_id)
    flow_content_published(flow_ids=[copy.pk], author=author, source="duplicate")
    return copy


# --- apps ---------------------------------------------------------------------------------------

def app_rotate_secret(*, app: App) -> str:
    """Give the App a new secret and return it, to be shown once.

    The old secret stops working at once: embeds it signed are refused by /precancel and landing pages
    must verify bb_sig with the new one, so the business deploys the new secret as soon as it has it.
    """
    secret = ids.app_secret()
    App.objects.filter(pk=app.pk).update(secret=secret)
    selectors.app_changed(app_id=app.app_id)
    app.secret = secret
    return secret


def app_access_grant(*, app: App, user: User, role: str) -> AppAccess:
    """Let a staff user read (viewer) or also change (editor) one App's rows; a second grant replaces
    the first's role."""
    if role not in AppAccess.Role.values:
        raise ValueError(f"role must be one of {', '.join(AppAccess.Role.values)}")
    access, _created = AppAccess.objects.update_or_create(app=app, user=user, defaults={"role": role})
    return access


def app_access_revoke(*, app: App, user: User) -> bool:
    """Take one App away from a staff user; False when they had no access to it."""
    deleted, _rows = AppAccess.objects.filter(app=app, user=user).delete()
    return deleted > 0
