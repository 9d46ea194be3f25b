"""Every write of the billing channel: connections, and the outbox rows (BillingAction) they carry out.

An action's life: `actions_create_for_event` writes it in the event's transaction (a cancel, or an
accepted offer that changes billing) and wakes a worker on commit; the worker runs `action_execute`,
which claims the row with the shared engine's compare-and-set, finds the subscription, asks the
provider for the change (reading first, with an idempotency key, so it happens once) and finishes the
row: succeeded, failed (with a `billing.action_failed` event), or pending again with its retry on the
row; beat runs `actions_sweep`, which re-publishes what the broker lost or a killed worker left.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from brightback_site import outbox, outbox_runs
from flows import services as flow_services
from flows.models import App, Decision, Event, Reason
from flows.selectors import app_part

from .models import BillingAction, BillingConnection
from .providers import CANCEL_COMMENT_KEPT, ProviderError, provider_for
from .providers.base import ActionResult, BillingProvider, CancelReason, Subscription, add_months
from .targets import ActionImpossible, subscriptions_for

logger = logging.getLogger(__name__)

# Seconds to wait after attempt 1, 2, 3…: quick at first (a blip: a 429 or 500 now and then is retried
# within seconds, so the customer's cancel is still carried out within seconds of their decision; a
# longer Retry-After is honoured), then spread over about two days (a provider outage), then the action
# fails for good and the team is told.
RETRY_DELAYS: tuple[int, ...] = (2, 30, 120, 600, 1800, 3600, 3 * 3600, 6 * 3600, 12 * 3600, 24 * 3600)
LOG_KEPT = 30  # attempts kept in BillingAction.log

# The offer kinds that change billing, and the action each becomes.
OFFER_ACTIONS = {
    "discount": BillingAction.Kind.COUPON,
    "pause": BillingAction.Kind.PAUSE,
    "plan_change": BillingAction.Kind.PLAN_CHANGE,
    "trial_extension": BillingAction.Kind.TRIAL_EXTENSION,
    "skip_renewal": BillingAction.Kind.SKIP_RENEWAL,
}


MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def _channel() -> outbox.Channel:
    from .tasks import billing_execute  # tasks import this module

    return outbox.Channel(model=BillingAction, task=billing_execute, on_takeover=_count_lost_attempts,
                          lease_seconds=lambda: settings.BILLING_LEASE_SECONDS)


def _count_lost_attempts(action_ids: list[int]) -> None:
    """A claim took these over from a worker lost mid-attempt: count and log that attempt."""
    now = timezone.now()
    for action in BillingAction.objects.filter(pk__in=action_ids):
        lost = _log(action, now=now, outcome="interrupted", detail="the worker was lost during this attempt")
        BillingAction.objects.filter(pk=action.pk).update(attempt_count=action.attempt_count + 1, log=lost)


# --- the outbox: rows written with the event ----------------------------------------------------

# Decisions that keep the customer: each also removes a cancel scheduled for the end of the period
# (a `reactivate` action of its own), so a saved customer does not leave anyway. "session.reactivated"
# is a customer who canceled and came back to keep the subscription.
SAVE_EVENTS = (Event.Type.SESSION_NEVERMIND, Event.Type.OFFER_ACCEPTED, "session.reactivated")


def _target(event: Event) -> dict[str, str]:
    """Whom billing acts on: the subscription and customer the page named; a page that names neither
    names its customer by email alone (looked up in the provider: see _subscriptions)."""
    data = event.data
    account = data.get("account") or {}
    target = {"subscription_id": data.get("subscription_id") or "", "customer_id": str(account.get("billing_id") or "")}
    email = data.get("email")
    if not target["subscription_id"] and not target["customer_id"] and isinstance(email, str) and email.strip():
        target["email"] = email.strip()
    return target


def action_requests(*, event: Event, connection: BillingConnection) -> list[tuple[str, dict]]:
    """Everything an event asks of billing, frozen now, in the order the rows are written: the event's
    own action (a cancel, an offer's change), then for a save the `reactivate` that keeps it."""
    asked = []
    own = action_request(event=event, connection=connection)
    if own is not None:
        asked.append(own)
    target = _target(event)
    if event.type in SAVE_EVENTS and any(target.values()):
        asked.append((BillingAction.Kind.REACTIVATE, target))
    return asked


def action_request(*, event: Event, connection: BillingConnection) -> tuple[str, dict] | None:
    """The event's own change in billing (not the reactivate of a save), frozen now: (kind, request), or
    None when it asks none."""
    data = event.data
    target = _target(event)
    if event.type == Event.Type.SESSION_CANCELED:
        return BillingAction.Kind.CANCEL, {
            **target,
            "at_period_end": connection.cancel_timing == BillingConnection.CancelTiming.PERIOD_END,
            "prorate": connection.cancel_prorate,
            "refund": connection.cancel_refund,
            "invoice_now": connection.cancel_invoice_now,
            "all_subscriptions": connection.cancel_scope == BillingConnection.CancelScope.ALL,
            **_cancel_reason(event=event, connection=connection),
        }
    offer = data.get("offer") or {}
    if event.type != Event.Type.OFFER_ACCEPTED or offer.get("type") not in OFFER_ACTIONS:
        return None
    terms = offer.get("terms") or {}
    kind = OFFER_ACTIONS[offer["type"]]
    request: dict[str, Any] = {**target, "offer": offer.get("code", "")}
    if kind == BillingAction.Kind.COUPON:
        request["coupon"] = terms.get("coupon", "")
    elif kind == BillingAction.Kind.PAUSE:
        request["months"] = terms.get("pause_months")
    elif kind == BillingAction.Kind.SKIP_RENEWAL:
        request["renewals"] = terms.get("skip_renewals") or 1
    elif kind == BillingAction.Kind.PLAN_CHANGE:
        request.update(plan=terms.get("plan", ""), at_renewal=terms.get("plan_change_timing") == "renewal",
                       prorate=True)
    else:
        request["days"] = terms.get("trial_days")
    return kind, request


def _cancel_reason(*, event: Event, connection: BillingConnection) -> dict[str, Any]:
    """The `reason` of a cancel request: the category of the reason the customer chose (Stripe's
    cancellation feedback), their own words (where the provider keeps them), and the site's code the
    connection maps the category to (Chargebee). Nothing when the customer gave neither a reason nor words."""
    category = None
    if event.session_id is not None:
        category = (Decision.objects.filter(in_force_for_id=event.session_id)
                    .values_list("reason__category", flat=True).first())
    comment = str(event.data.get("feedback") or "").strip()
    if not category and not comment:
        return {}
    category = category or Reason.Category.OTHER
    # The customer's words are copied only for a billing system that keeps them.
    reason = {"category": category, "comment": comment if connection.provider in CANCEL_COMMENT_KEPT else ""}
    code = (connection.cancel_reason_codes or {}).get(category)
    if isinstance(code, str) and code:
        reason["code"] = code
    return {"reason": reason}


def app_connection(*, app: App) -> BillingConnection | None:
    """The App's billing connection, from this process's memory while the App's version stands (every
    save and delete of a connection retires it: see apps.py)."""
    return app_part(app_id=app.app_id, part="billing.connection",
                    load=lambda: BillingConnection.objects.filter(app_id=app.pk).first())


def actions_planned(*, event: Event) -> tuple[BillingConnection | None, list[tuple[str, dict]]]:
    """The App's connection and the (kind, request) pairs an event asks of it: none without a
    connection, or for an event billing does not act on."""
    if event.type not in (Event.Type.SESSION_CANCELED, *SAVE_EVENTS):
        return None, []
    connection = app_connection(app=event.app)
    if connection is None:
        return None, []
    return connection, action_requests(event=event, connection=connection)


def actions_wanted(*, event: Event) -> bool:
    """Does the event ask anything of billing (would actions_planned plan an action)? Answered from the
    App's connection and the event alone: a connected App's cancel always asks one, an accepted offer one
    when billing carries its kind out, a save its reactivate when the subscription is known."""
    if event.type not in (Event.Type.SESSION_CANCELED, *SAVE_EVENTS) or app_connection(app=event.app) is None:
        return False
    if event.type == Event.Type.SESSION_CANCELED:
        return True
    offer = event.data.get("offer") or {}
    if event.type == Event.Type.OFFER_ACCEPTED and offer.get("type") in OFFER_ACTIONS:
        return True
    return any(_target(event).values())


def action_planned(*, event: Event) -> tuple[BillingConnection, str, dict] | None:
    """The connection and the first action an event asks of billing (what alerts show), or None."""
    connection, asked = actions_planned(event=event)
    if connection is None or not asked:
        return None
    return (connection, *asked[0])


def actions_create_for_event(*, event: Event) -> list[int]:
    """The billing action an event asks for, if its App is connected, in the event's transaction; a
    worker is woken when (and only if) it commits."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("billing actions must be written in the transaction of their event")
    if event.session_id is None:
        return []
    connection, asked = actions_planned(event=event)
    if connection is None or not asked:
        return []
    decision_id = Decision.objects.filter(in_force_for_id=event.session_id).values_list("pk", flat=True).first()
    made = [BillingAction.objects.create(
        app_id=event.app_id, session_id=event.session_id, decision_id=decision_id, event=event,
        provider=connection.provider, kind=kind, dry_run=connection.dry_run, request=request,
        next_attempt_at=event.created_at, created_at=event.created_at).pk for kind, request in asked]
    _channel().wake_on_commit(made)
    return made


def actions_sweep(*, now: datetime | None = None) -> int:
    """Publish again the actions the broker lost or a killed worker left (the shared sweep)."""
    return _channel().sweep(now=now)


# --- carrying an action out ---------------------------------------------------------------------

@dataclass(frozen=True)
class ExecuteResult:
    status: str  # a BillingAction.Status value, or "skipped" when the row was not ours to run
    retry_in: float | None = None


def _log(action: BillingAction, *, now: datetime, outcome: str, detail: str, raw: str = "") -> list:
    entry = {"attempt": action.attempt_count + 1, "at": now.isoformat(), "outcome": outcome, "detail": detail[:500]}
    if raw:
        entry["raw"] = raw[:1000]  # the provider's own words, behind the admin's "details" toggle
    return [*action.log, entry][-LOG_KEPT:]


def _keep(action: BillingAction, lease_until: datetime, **fields: Any) -> None:
    """Save progress made inside an attempt (the subscriptions found, a computed date) so a retry or a
    takeover after a crash reuses it instead of working it out again."""
    BillingAction.objects.filter(pk=action.pk, status=BillingAction.Status.RUNNING,
                                 lease_expires_at=lease_until).update(**fields)
    for name, value in fields.items():
        setattr(action, name, value)


def _carry_out(action: BillingAction, provider: BillingProvider, subscription_id: str, *,
               lease_until: datetime) -> ActionResult:
    request = action.request
    # A new key after each failure the provider answered: it did not apply that attempt (and every
    # provider reads first anyway); a timeout keeps the key, so Stripe replays an answer we lost.
    key = f"bb_{action.public_id}_{subscription_id}_{action.answered_failures}"
    kind = action.kind
    if kind == BillingAction.Kind.REACTIVATE:
        outcome = provider.subscription_reactivate(subscription_id, idempotency_key=key)
        _shows(provider, subscription_id, lambda after: not after.cancel_at_period_end,
               "set to cancel at the end of its period")
        return outcome
    if kind == BillingAction.Kind.CANCEL:
        at_period_end = bool(request["at_period_end"])
        told = request.get("reason")
        reason = CancelReason(category=str(told.get("category") or "other"), comment=str(told.get("comment") or ""),
                              code=str(told.get("code") or "")) if isinstance(told, dict) else None
        outcome = provider.subscription_cancel(subscription_id, at_period_end=at_period_end,
                                               prorate=bool(request["prorate"]), refund=bool(request.get("refund")),
                                               invoice_now=bool(request["invoice_now"]), idempotency_key=key,
                                               reason=reason)
        if at_period_end:  # ended already, or set to end with its period
            _shows(provider, subscription_id, lambda after: after.canceled, "neither canceled nor set to cancel")
        else:
            _shows(provider, subscription_id, lambda after: after.canceled and not after.cancel_at_period_end,
                   "still running (not canceled now)")
        return outcome
    if kind == BillingAction.Kind.SKIP_RENEWAL:
        return _skip_renewals(action, provider, subscription_id, key=key, lease_until=lease_until)
    if kind == BillingAction.Kind.COUPON:
        if not request.get("coupon"):
            raise ActionImpossible(f"offer {request.get('offer')} has no coupon id: set the provider's coupon on it")
        coupon = request["coupon"]
        outcome = provider.coupon_apply(subscription_id, coupon=coupon, idempotency_key=key)
        _shows(provider, subscription_id, lambda after: provider.coupon_in_place(after, coupon),
               f"without coupon {coupon}")
        return outcome
    if kind == BillingAction.Kind.PAUSE:
        if not request.get("months"):
            raise ActionImpossible(f"offer {request.get('offer')} has no pause length")
        months = int(request["months"])
        resumes_by_subscription = dict(request.get("resumes_at") or {})
        if subscription_id not in resumes_by_subscription:  # worked out once: a retry sends the same date
            # One meaning everywhere: the pause starts when the period the customer paid for ends.
            paid_until = provider.subscription_get(subscription_id).current_period_end or timezone.now()
            resumes_by_subscription[subscription_id] = add_months(paid_until, months).isoformat()
            _keep(action, lease_until, request={**request, "resumes_at": resumes_by_subscription})
        resumes_at = parse_datetime(resumes_by_subscription[subscription_id])
        assert resumes_at is not None
        outcome = provider.subscription_pause(subscription_id, months=months, resumes_at=resumes_at,
                                              idempotency_key=key)
        _shows(provider, subscription_id, lambda after: after.paused, "neither paused nor with a pause scheduled")
        return outcome
    if kind == BillingAction.Kind.PLAN_CHANGE:
        if not request.get("plan"):
            raise ActionImpossible(f"offer {request.get('offer')} has no target plan")
        plan, at_renewal = request["plan"], bool(request["at_renewal"])
        outcome = provider.plan_change(subscription_id, plan=plan, at_renewal=at_renewal,
                                       prorate=bool(request.get("prorate", True)), idempotency_key=key)

        def moved(after: Subscription) -> bool:
            billed = plan == after.plan or plan in {price for price, _ in after.items}
            return billed or (at_renewal and provider.scheduled_plan(subscription_id) == plan)

        _shows(provider, subscription_id, moved, f"neither on plan {plan} nor moving to it"
               + (" at renewal" if at_renewal else ""))
        return outcome
    if not request.get("days"):
        raise ActionImpossible(f"offer {request.get('offer')} has no number of trial days")
    until_by_subscription = dict(request.get("until") or {})
    if subscription_id not in until_by_subscription:
        current = provider.subscription_get(subscription_id)
        # Providers keep trial_end after the trial: only a trial still running is extended, otherwise
        # the next bill is pushed (a date in the past would read as "already done").
        base = current.trial_end if current.trialing and current.trial_end else current.current_period_end
        if base is None:
            raise ActionImpossible(f"subscription {subscription_id} has neither a running trial nor a next bill date")
        until_by_subscription[subscription_id] = (base + timedelta(days=int(request["days"]))).isoformat()
        _keep(action, lease_until, request={**request, "until": until_by_subscription})
    until = parse_datetime(until_by_subscription[subscription_id])
    assert until is not None
    outcome = provider.trial_extend(subscription_id, until=until, idempotency_key=key)
    after = provider.subscription_get(subscription_id)  # done only when the provider shows it
    moved_to = after.trial_end if after.trialing else after.current_period_end
    if moved_to is None or moved_to < until - timedelta(seconds=1):
        raise ProviderError(f"{provider.name} did not move the {'trial end' if after.trialing else 'next bill date'} "
                            f"of subscription {subscription_id} to {until.date().isoformat()}",
                            retryable=False, detail=f"it reads {moved_to.isoformat() if moved_to else 'no date'}")
    return outcome


def _shows(provider: BillingProvider, subscription_id: str, promised: Callable[[Subscription], bool],
           otherwise: str) -> None:
    """Done only when the provider shows it: the subscription is read back after every action (whether it
    wrote or found the change already in place) and a state that does not show the promised change fails
    the action, naming what the provider shows instead."""
    after = provider.subscription_get(subscription_id)
    if not promised(after):
        raise ProviderError(f"{provider.name} shows subscription {subscription_id} {otherwise} after the action; "
                            "it is not recorded as done", retryable=False,
                            detail=f"read back: status {after.status}, plan {after.plan or '-'}, "
                                   f"coupons {', '.join(after.coupons) or 'none'}")
def _skip_renewals(action: BillingAction, provider: BillingProvider, subscription_id: str, *, key: str,
                   lease_until: datetime) -> ActionResult:
    """The next N renewals free. The date the provider is asked for is worked out once, from a first read,
    and kept on the row, so a retry asks for the same; done only when the provider shows nothing charged
    until then."""
    request = action.request
    renewals = int(request.get("renewals") or 1)
    until_by_subscription = dict(request.get("until") or {})
    if subscription_id not in until_by_subscription:
        worked_out = provider.renewals_skip_until(subscription_id, renewals=renewals)
        until_by_subscription[subscription_id] = worked_out.isoformat()
        _keep(action, lease_until, request={**request, "until": until_by_subscription})
    until = parse_datetime(until_by_subscription[subscription_id])
    assert until is not None
    outcome = provider.renewals_skip(subscription_id, renewals=renewals, until=until, idempotency_key=key)
    free = provider.subscription_get(subscription_id).no_charge_until
    if free is None or free < until - timedelta(seconds=1):
        raise ProviderError(f"{provider.name} does not show subscription {subscription_id} free of charge until "
                            f"{until.date().isoformat()}", retryable=False,
                            detail=f"it reads {free.isoformat() if free else 'no next bill date'}")
    return outcome


def _ends_at(action: BillingAction, outcome: ActionResult, *, now: datetime) -> str | None:
    """When a cancel takes effect, as the provider answered it (the period's end for a cancel at period
    end, else now): what the customer's receipt states."""
    if action.kind != BillingAction.Kind.CANCEL:
        return None
    subscription = outcome.subscription
    if subscription.cancel_at_period_end and subscription.current_period_end is not None:
        return subscription.current_period_end.isoformat()
    return now.isoformat()


def action_effective_at(action: BillingAction) -> str | None:
    """When a finished action's change takes effect for the customer (ISO 8601): a cancel when its last
    subscription ends, any other change when it was made. None while it is not done (or failed, or a dry
    run)."""
    if action.status != BillingAction.Status.SUCCEEDED:
        return None
    ends = [str(r["ends_at"]) for r in action.result.values() if isinstance(r, dict) and r.get("ends_at")]
    if ends:
        return max(ends)
    return action.finished_at.isoformat() if action.finished_at else None


def _dry_run_summary(action: BillingAction) -> str:
    request = {k: v for k, v in action.request.items() if v not in ("", None, False)}
    return f"dry run: would {action.get_kind_display().lower()} with {request}; nothing was sent"


def action_execute(*, action_id: int) -> ExecuteResult:
    """Carry out one action if it is due and nobody holds it. Running it twice changes billing once:
    the claim is a compare-and-set, a finished action is never run again until retried, and every
    provider reads first and skips what is already done."""
    claim = _channel().claim_one(action_id)
    if not claim.rows:
        return ExecuteResult("skipped")
    return _execute_claimed(claim)


def actions_execute_due(*, action_id: int, eager: bool = False) -> outbox_runs.Run[ExecuteResult]:
    """The wake-up naming `action_id`: carry it out and every other action due, several at once, for a
    few seconds (brightback_site.outbox_runs)."""
    return _channel().run(action_id, handle=_execute_claimed, eager=eager)


def _execute_claimed(claim: outbox.Claim) -> ExecuteResult:
    action: BillingAction = claim.rows[0]
    now = timezone.now()
    finish: dict[str, Any] = {"lease_until": claim.lease_until, "now": now,
                              "attempt_count": action.attempt_count + 1, "started_at": action.started_at or now}
    if action.attempt_count >= MAX_ATTEMPTS:
        return _failed(action, error="gave up: workers were lost during the last attempts", retryable=False,
                       status_code=None, retry_after=None, finish=finish)
    if action.dry_run:
        summary = _dry_run_summary(action)
        outbox.finish(action, status=BillingAction.Status.SKIPPED, summary=summary, finished_at=now,
                      log=_log(action, now=now, outcome="skipped", detail=summary), **finish)
        return ExecuteResult(BillingAction.Status.SKIPPED)
    connection = BillingConnection.objects.select_related("app").filter(app_id=action.app_id).first()
    try:
        if connection is None or connection.provider != action.provider:
            raise ActionImpossible(f"the App is no longer connected to {action.get_provider_display()}")
        if not connection.api_key:
            raise ActionImpossible(f"no {connection.app.mode} API key is set for {connection.get_provider_display()}")
        provider = provider_for(connection.provider, connection.credentials(timeout=settings.BILLING_TIMEOUT_SECONDS))
        subscription_ids = subscriptions_for(action, provider)
        if subscription_ids != action.subscription_ids:
            _keep(action, claim.lease_until, subscription_ids=subscription_ids)
        results = dict(action.result)
        for subscription_id in subscription_ids:
            if results.get(subscription_id, {}).get("done"):
                continue  # done in an earlier attempt of an all-subscriptions cancel
            outcome = _carry_out(action, provider, subscription_id, lease_until=claim.lease_until)
            results[subscription_id] = {"done": True, "changed": outcome.changed, "summary": outcome.summary,
                                        "status": outcome.subscription.status}
            if ends_at := _ends_at(action, outcome, now=now):
                results[subscription_id]["ends_at"] = ends_at
            _keep(action, claim.lease_until, result=results)
    except ProviderError as exc:
        return _failed(action, error=exc.message, retryable=exc.retryable, status_code=exc.status_code,
                       retry_after=exc.retry_after, finish=finish, detail=exc.detail)
    except ActionImpossible as exc:
        return _failed(action, error=str(exc), retryable=False, status_code=None, retry_after=None, finish=finish)
    except ODD_ANSWERS as exc:
        odd = _odd_answer(action.get_provider_display(), exc)
        return _failed(action, error=odd.message, retryable=False, status_code=None, retry_after=None,
                       finish=finish, detail=odd.detail)
    summary = "; ".join(f"{sid}: {r['summary']}" if len(results) > 1 else r["summary"] for sid, r in results.items())
    if not subscription_ids:
        summary = "no subscription of the customer is set to cancel: nothing to undo"
    outbox.finish(action, status=BillingAction.Status.SUCCEEDED, summary=summary, last_error="", error_detail="",
                  finished_at=now,
                  log=_log(action, now=now, outcome="succeeded", detail=summary), **finish)
    return ExecuteResult(BillingAction.Status.SUCCEEDED)


def _failed(action: BillingAction, *, error: str, retryable: bool, status_code: int | None,
            retry_after: float | None, finish: dict[str, Any], detail: str = "") -> ExecuteResult:
    now = finish["now"]
    retry_in = None
    if retryable:
        retry_in = outbox.retry_delay(schedule=RETRY_DELAYS, attempt_number=finish["attempt_count"],
                                      retry_after=retry_after, scale=settings.BILLING_RETRY_SCALE)
    # A new key after an answer that did not apply the change; a timeout or a 409 (a request with this key
    # still running) keeps it, so the provider replays or finishes that request rather than a second one.
    answered = action.answered_failures + (1 if status_code not in (None, 409) else 0)
    outcome = "retrying" if retry_in is not None else "failed"
    fields: dict[str, Any] = {"last_error": error, "last_status_code": status_code, "answered_failures": answered,
                              "error_detail": detail,
                              "log": _log(action, now=now, outcome=outcome, detail=error, raw=detail), **finish}
    if retry_in is not None:
        outbox.finish(action, status=BillingAction.Status.PENDING, retry_in=retry_in, **fields)
        return ExecuteResult(BillingAction.Status.PENDING, retry_in)
    if retryable:
        error = f"gave up after {finish['attempt_count']} attempts: {error}"
        fields["last_error"] = error
    with transaction.atomic():
        if outbox.finish(action, status=BillingAction.Status.FAILED, summary=error, finished_at=now, **fields):
            _record_failure(action, error=error)
    # The reason names the customer's subscriptions and billing id: it stays on the row (the admin, and
    # customer_erase, can reach it there), out of the logs.
    logger.warning("billing action %s (%s) failed for good (provider status %s); the reason is on its page",
                   action.public_id, action.kind, status_code or "none",
                   extra={"billing_action_id": action.public_id, "session_id": action.session.public_id,
                          "event_id": action.event_id})
    return ExecuteResult(BillingAction.Status.FAILED)


def action_described(action: BillingAction) -> dict[str, Any]:
    """An action as events and alerts describe it: `billing.action_failed`'s `billing`, and what
    handlers.event_billing reports while it runs."""
    failed = action.status == BillingAction.Status.FAILED
    return {"action_id": action.public_id, "action": action.kind, "provider": action.provider,
            "status": action.status, "error": (action.summary or action.last_error) if failed else None,
            "subscription_id": ", ".join(action.subscription_ids) or action.request.get("subscription_id") or None}


def _record_failure(action: BillingAction, *, error: str) -> None:
    """The `billing.action_failed` event: webhooks and alerts hear of the failure through it."""
    session = action.session
    billing = {**action_described(action), "status": BillingAction.Status.FAILED, "error": error}
    try:
        with transaction.atomic():
            flow_services.event_record(session=session, type=Event.Type.BILLING_ACTION_FAILED,
                                       decision=getattr(session, "decision", None), extra={"billing": billing})
    except IntegrityError:
        # One such event per session: a failure after a manual retry is on the action's own record.
        logger.info("billing.action_failed already recorded for session %s", session.public_id)


@transaction.atomic
def action_retry(*, action: BillingAction) -> bool:
    """Start an action over now (a person pressed Retry): it asks the provider again, which reads first,
    so what is already done is not done twice. False while a worker holds it."""
    now = timezone.now()
    changed = outbox.start_over(BillingAction.objects.filter(pk=action.pk)
                                .exclude(status=BillingAction.Status.RUNNING, lease_expires_at__gte=now),
                                now=now, finished_at=None, result={})
    if changed:
        _channel().wake_on_commit([action.pk])
    return changed == 1


# --- connections --------------------------------------------------------------------------------

def connection_save(*, app: App, provider: str, api_key: str | None = None, mode: str | None = None,
                    site: str | None = None, api_base: str | None = None, **choices: Any) -> BillingConnection:
    """Create or update an App's connection. `api_key` (when given) is stored for `mode` (the App's mode
    by default). A new connection starts on DESIGN §8's defaults: cancel at period end, offers apply
    their own terms, dry run off."""
    connection = BillingConnection.objects.filter(app=app).first() or BillingConnection(app=app)
    connection_provider_set(connection, provider)
    if site is not None:
        connection.site = site
    if api_base is not None:
        connection_address_set(connection, api_base)
    if api_key is not None:
        if (mode or app.mode) == App.Mode.LIVE:
            connection.live_api_key = api_key
        else:
            connection.test_api_key = api_key
    for name, value in choices.items():
        setattr(connection, name, value)
    connection.full_clean()
    connection.save()
    return connection


def connection_provider_set(connection: BillingConnection, provider: str) -> None:
    """Another billing system clears the stored keys too: one provider's key is never sent to another."""
    if connection.pk is not None and provider != connection.provider:
        connection.test_api_key = connection.live_api_key = ""
    connection.provider = provider


def connection_address_set(connection: BillingConnection, api_base: str) -> None:
    """A new API address clears the stored keys (not yet saved): a key typed in for one server never
    goes to another. The caller sets the new server's keys in the same save."""
    api_base = api_base.strip()
    if connection.pk is not None and api_base != connection.api_base:
        connection.test_api_key = connection.live_api_key = ""
    connection.api_base = api_base


def _odd_answer(provider: str, exc: Exception) -> ProviderError:
    """An answer the provider module could not read (a field it needs is missing): a failure that says
    so, never a 500. Logged with its traceback, as it may also be a defect of ours."""
    logger.warning("unreadable answer from %s", provider, exc_info=exc)
    return ProviderError(f"{provider} answered in a way billing could not read; nothing was assumed",
                         retryable=False, detail=f"{type(exc).__name__}: {str(exc)[:200]}")


ODD_ANSWERS = (KeyError, IndexError, TypeError, AttributeError, ValueError)


def connection_check(*, connection: BillingConnection) -> str:
    """One harmless read call; the provider's description of what it found is kept on the connection.
    Raises ProviderError (the provider's message) when it fails."""
    now = timezone.now()
    if not connection.api_key:
        raise ProviderError(f"no {connection.app.mode} API key is set", retryable=False)
    try:
        provider = provider_for(connection.provider,
                                connection.credentials(timeout=settings.BILLING_TIMEOUT_SECONDS))
        try:
            found = provider.connection_check()
        except ODD_ANSWERS as exc:
            raise _odd_answer(connection.get_provider_display(), exc) from exc
    except ProviderError as exc:
        BillingConnection.objects.filter(pk=connection.pk).update(checked_at=now, check_result=f"failed: {exc}")
        raise
    BillingConnection.objects.filter(pk=connection.pk).update(checked_at=now, check_result=found)
    return found
