"""Paddle Billing (API v1) through the official `paddle-python-sdk` (`paddle_billing`).

Paddle has no idempotency keys, so every write is exactly-once by read-back: the subscription is read
first, nothing is sent when it is already in the promised state, and what the caller records comes from
the answer (and the caller's own read-back). A `scheduled_change` on the subscription says what is
pending (a cancel or a pause at the period end).

How each action maps to Paddle's API, and what "already done" means:
- cancel: POST /subscriptions/{id}/cancel with `effective_from=next_billing_period` (at period end) or
  `immediately`. Paddle's cancel takes no proration, refund or invoicing options (a refund is
  an adjustment, which billing never makes): `prorate`, `refund` and `invoice_now` do not apply.
  Done: status `canceled`, or a scheduled change `cancel` when the period end was asked for.
- reactivate: PATCH /subscriptions/{id} with `scheduled_change: null`, which removes a scheduled cancel.
  Not scheduled to cancel: nothing sent. Status `canceled`: refused, it cannot be kept.
- coupon (a Paddle discount, by id `dsc_…` or by its checkout code): GET /discounts/{id} or
  GET /discounts?code=… (exactly one), then PATCH with `discount: {id, effective_from:
  next_billing_period}`. A subscription holds one discount: one already there that is another is
  refused rather than replaced. Done: the subscription's discount is this one.
- pause: POST /subscriptions/{id}/pause with `effective_from=next_billing_period` (the customer keeps the
  period paid for) and `resume_at` (the caller's date: the period end plus N calendar months), so it
  resumes by itself. Done: status `paused`, or a scheduled change `pause`.
- plan change: GET /prices/{id} first; a price of another currency or billing cycle than the
  subscription's is refused naming both. Then PATCH `items` with every item kept (price and quantity)
  and the plan item (the first recurring one) moved to the new price at its quantity, with
  `proration_billing_mode` `prorated_immediately` (prorate) or `do_not_bill` (no charge for the change;
  the next renewal bills the new price). Paddle cannot schedule an item change for the renewal, so
  `at_renewal` is refused, never done now. Done: the plan item is already on that price.
- trial extension: PATCH `next_billed_at` with `proration_billing_mode=do_not_bill`: while trialing
  Paddle moves the trial end with it, otherwise the next bill date moves and the days between are not
  charged. Done: that date is already at or past the target.
- skip renewals: the same PATCH of `next_billed_at` with `proration_billing_mode=do_not_bill`, to the next
  bill date plus N billing cycles (the subscription's `billing_cycle`): Paddle bills nothing for the
  time between (a 100% discount would have to replace a discount the customer may hold: a subscription
  keeps one). Done: the next bill date is at or past it.
- the reason of a cancel: none is sent. Paddle's cancel takes only `effective_from`; the reason stays
  in this console (and in webhooks).
A customer is named by its id (`ctm_…`) or, where the business knows only that, by its email address:
exactly one Paddle customer must have it.
Connection: one `paddle_billing.Client` per call, with the SDK's urllib3 retries replaced by none and
`Credentials.timeout` on every request. A blank `api_base` means Paddle itself, sandbox for a sandbox
key (`pdl_sdbx_…`), live otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import requests
from paddle_billing import Client, Environment, Options
from paddle_billing.Entities.DateTime import DateTime
from paddle_billing.Entities.Shared import Status, TransactionStatus
from paddle_billing.Entities.Subscription import Subscription as PaddleSubscription
from paddle_billing.Entities.Subscriptions import (
    SubscriptionEffectiveFrom,
    SubscriptionProrationBillingMode,
    SubscriptionStatus,
)
from paddle_billing.Exceptions.ApiError import ApiError
from paddle_billing.Resources.Customers.Operations import ListCustomers
from paddle_billing.Resources.Discounts.Operations import ListDiscounts
from paddle_billing.Resources.Shared.Operations import Pager
from paddle_billing.Resources.Subscriptions.Operations import (
    CancelSubscription,
    ListSubscriptions,
    PauseSubscription,
    UpdateSubscription,
)
from paddle_billing.Resources.Subscriptions.Operations.Update import SubscriptionDiscount, SubscriptionUpdateItem
from paddle_billing.Resources.Transactions.Operations import ListTransactions
from requests.adapters import HTTPAdapter

from .base import (
    ActionResult,
    BillingProvider,
    CancelReason,
    Credentials,
    PaidInvoice,
    ProviderError,
    Subscription,
    add_cycles,
    major_units,
    register,
)

ACTIVE_STATUSES = frozenset({"active", "trialing", "past_due", "paused"})
RETRYABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
LIVE_HOST, SANDBOX_HOST = "api.paddle.com", "sandbox-api.paddle.com"
T = TypeVar("T")


@dataclass(frozen=True)
class _Address:
    """What the SDK reads from its `Environment`: a base URL (ours for an api_base)."""

    base_url: str


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "?"


def _utc(moment: datetime | None) -> datetime | None:
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _value(enum_or_text: Any) -> str:
    return str(getattr(enum_or_text, "value", enum_or_text) or "")


def plan_item(entity: PaddleSubscription) -> Any | None:
    """The item that is the plan: the first recurring one (add-ons and seats follow it)."""
    recurring = [item for item in entity.items if item.recurring]
    return (recurring or list(entity.items) or [None])[0]


def subscription_from(entity: PaddleSubscription) -> Subscription:
    """Our Subscription from the SDK's."""
    status = _value(entity.status)
    change = entity.scheduled_change
    action = _value(change.action) if change else ""
    plan = plan_item(entity)
    trial = plan.trial_dates if plan is not None else None
    return Subscription(
        id=str(entity.id),
        customer_id=str(entity.customer_id or ""),
        status=status,
        is_active=status in ACTIVE_STATUSES,
        plan=str(plan.price.id) if plan is not None else "",
        cancel_at_period_end=status != "canceled" and action == "cancel",
        canceled=status == "canceled" or action == "cancel",
        paused=status == "paused" or action == "pause",
        coupons=(str(entity.discount.id),) if entity.discount else (),
        trial_end=_utc(trial.ends_at) if trial else None,
        current_period_end=_utc(entity.next_billed_at
                                or (entity.current_billing_period.ends_at if entity.current_billing_period else None)),
        trialing=status == "trialing",
        raw_status={"status": status, "scheduled_change": action,
                    "effective_at": change.effective_at.isoformat() if change else None,
                    "resume_at": change.resume_at.isoformat() if change and change.resume_at else None,
                    "currency_code": _value(entity.currency_code),
                    "billing_cycle": f"{entity.billing_cycle.frequency} {_value(entity.billing_cycle.interval)}"},
        items=tuple((str(item.price.id), int(item.quantity or 1)) for item in entity.items),
        currency=_value(entity.currency_code).upper(),
        interval=_interval(entity.billing_cycle.frequency, _value(entity.billing_cycle.interval)),
    )


def _interval(frequency: int, unit: str) -> str:
    """"1 month", "12 month" (a year), "1 week", "1 day"."""
    return f"{frequency * 12} month" if unit == "year" else f"{frequency} {unit}"


def _plain(err: Exception) -> tuple[str, str, int | None]:
    """(plain words for support staff, Paddle's own text, HTTP status) about one failure. The body of an
    answer that is not Paddle's API (a proxy's page) is never kept: only its status and size."""
    if isinstance(err, ApiError):
        status = err.response.status_code if err.response is not None else None
        said = f"{err.detail} ({err.error_code})"
        if status == 401:
            return "Paddle refused the API key: check it (a sandbox key works only with the sandbox)", said, status
        if status == 403:
            return "the Paddle API key lacks a permission this needs", said, status
        if status in RETRYABLE_STATUSES:
            return f"Paddle could not do it just now ({status}); it will be tried again", said, status
        return f"Paddle refused it ({status})", said, status
    if isinstance(err, requests.Timeout):
        return "Paddle did not answer in time; it will be tried again", type(err).__name__, None
    response = getattr(err, "response", None)
    if isinstance(err, requests.HTTPError) and response is not None:
        status = response.status_code
        return ("the server answered something that is not Paddle's API",
                f"HTTP {status}, {len(response.content)} bytes, not Paddle's JSON", status)
    return "Paddle could not be reached; it will be tried again", type(err).__name__, None


def provider_error(err: Exception, what: str) -> ProviderError:
    plain, detail, status = _plain(err)
    retryable = status is None or status in RETRYABLE_STATUSES
    retry_after = getattr(err, "retry_after", None) if isinstance(err, ApiError) else None
    return ProviderError(f"{what}: {plain}", retryable=retryable, status_code=status,
                         retry_after=float(retry_after) if retry_after is not None else None, detail=detail)


@register
class PaddleProvider(BillingProvider):
    slug = "paddle"
    name = "Paddle"

    @classmethod
    def key_mode(cls, api_key: str) -> str | None:
        # Paddle's API keys name their environment: pdl_sdbx_apikey_… (sandbox), pdl_live_apikey_… (live).
        if api_key.startswith("pdl_sdbx_"):
            return "test"
        if api_key.startswith("pdl_live_"):
            return "live"
        return None

    # --- plumbing ---------------------------------------------------------------------------------

    def _base_url(self) -> str:
        creds: Credentials = self.credentials
        if creds.api_base:
            return creds.api_base.rstrip("/")
        env = Environment.SANDBOX if self.key_mode(creds.api_key) == "test" else Environment.PRODUCTION
        return env.base_url

    def _client(self) -> Client:
        creds: Credentials = self.credentials
        options = Options(environment=cast(Environment, _Address(self._base_url())))
        client = Client(creds.api_key, options=options, timeout=creds.timeout, retry_count=0)
        for scheme in ("http://", "https://"):  # no retries in the SDK: the outbox owns them
            client.client.mount(scheme, HTTPAdapter(max_retries=0))
        return client

    def _call(self, what: str, call: Callable[[Client], T], not_found: str | None = None,
              ids: tuple[str, ...] = ()) -> T:
        """Run one SDK call; every failure leaves as ProviderError. `not_found` replaces `what` for a 404."""
        if any(not str(value).strip() or "/" in str(value) for value in ids):
            raise ProviderError(f"{what}: an id is blank or not an id", retryable=False)
        client = self._client()
        try:
            return call(client)
        except requests.RequestException as err:
            status = getattr(getattr(err, "response", None), "status_code", None)
            raise provider_error(err, not_found if not_found and status == 404 else what) from err
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            raise ProviderError(f"{what}: Paddle's answer could not be read ({type(err).__name__}: {err})",
                                retryable=False, detail=type(err).__name__) from err

    def _entity(self, subscription_id: str) -> PaddleSubscription:
        return self._call(f"could not read Paddle subscription {subscription_id}",
                          lambda c: c.subscriptions.get(subscription_id),
                          not_found=f"subscription {subscription_id} does not exist in Paddle",
                          ids=(subscription_id,))

    def _write(self, what: str, subscription_id: str, call: Callable[[Client], PaddleSubscription]) -> Subscription:
        return subscription_from(self._call(f"{what} failed for Paddle subscription {subscription_id}", call,
                                            not_found=f"subscription {subscription_id} does not exist in Paddle"))

    # --- reads ------------------------------------------------------------------------------------

    def connection_check(self) -> str:
        self._call("could not connect to Paddle",
                   lambda c: c.subscriptions.list(ListSubscriptions(pager=Pager(per_page=1))))
        base = self._base_url()
        where = {f"https://{LIVE_HOST}": "live", f"https://{SANDBOX_HOST}": "sandbox"}.get(base, f"at {base}")
        mode = self.key_mode(self.credentials.api_key)
        key = {"test": "sandbox key", "live": "live key"}.get(mode or "", "key")
        return f"Paddle {where} ({key} can read subscriptions)"

    def subscription_get(self, subscription_id: str) -> Subscription:
        return subscription_from(self._entity(subscription_id))

    def _customer_id(self, customer: str) -> str:
        """Paddle's customer id for a `ctm_…` id or an email address (exactly one customer has it)."""
        if "@" not in customer:
            found = self._call(f"could not read Paddle customer {customer}",
                               lambda c: [x.id for x in c.customers.list(ListCustomers(ids=[customer]))],
                               ids=(customer,))
            if not found:
                raise ProviderError(f"customer {customer} does not exist in Paddle", retryable=False, status_code=404)
            return customer
        matches = self.customers_by_email(customer)
        if not matches:
            raise ProviderError(f"no Paddle customer has the email {customer}", retryable=False, status_code=404)
        if len(matches) > 1:
            raise ProviderError(f"{len(matches)} Paddle customers have the email {customer} ({', '.join(matches)}); "
                                "the page must pass the customer id (ctm_…) as account.billing_id", retryable=False)
        return str(matches[0])

    def customers_by_email(self, email: str) -> list[str]:
        return self._call(f"could not look up Paddle customers by email {email}",
                          lambda c: [str(x.id) for x in c.customers.list(ListCustomers(emails=[email]))
                                     if _value(x.status) == Status.Active.value])

    def coupon_in_place(self, subscription: Subscription, coupon: str) -> bool:
        # A Paddle discount is named by its id (dsc_…) or its code; the subscription shows the id.
        return coupon in subscription.coupons or (bool(subscription.coupons) and self._discount(coupon)
                                                  in subscription.coupons)

    def subscriptions_for_customer(self, customer_id: str) -> list[Subscription]:
        paddle_id = self._customer_id(customer_id)
        statuses = [SubscriptionStatus(s) for s in sorted(ACTIVE_STATUSES)]
        entities = self._call(f"could not list the subscriptions of Paddle customer {paddle_id}",
                              lambda c: list(c.subscriptions.list(ListSubscriptions(customer_ids=[paddle_id],
                                                                                    statuses=statuses))))
        entities.sort(key=lambda e: e.created_at, reverse=True)
        return [s for s in map(subscription_from, entities) if s.is_active]

    # --- writes -----------------------------------------------------------------------------------

    def subscription_cancel(self, subscription_id: str, *, at_period_end: bool, prorate: bool,
                            invoice_now: bool, idempotency_key: str,
                            refund: bool = False, reason: CancelReason | None = None) -> ActionResult:
        current = self.subscription_get(subscription_id)
        if current.status == "canceled" or (at_period_end and current.cancel_at_period_end):
            return ActionResult(changed=False, summary="already canceled" if current.status == "canceled"
                                else "already set to cancel at period end", subscription=current)
        effective = (SubscriptionEffectiveFrom.NextBillingPeriod if at_period_end
                     else SubscriptionEffectiveFrom.Immediately)
        after = self._write("cancel", subscription_id, lambda c: c.subscriptions.cancel(
            subscription_id, CancelSubscription(effective_from=effective)))
        if at_period_end:
            return ActionResult(changed=True, summary=f"canceled at period end ({_day(current.current_period_end)})",
                                subscription=after)
        return ActionResult(changed=True, summary="canceled now (Paddle credits and refunds nothing on cancel)",
                            subscription=after)

    def subscription_reactivate(self, subscription_id: str, *, idempotency_key: str) -> ActionResult:
        current = self.subscription_get(subscription_id)
        if current.status == "canceled":
            raise ProviderError(f"Paddle subscription {subscription_id} has ended and cannot be kept; a new "
                                "subscription would be needed", retryable=False)
        if not current.cancel_at_period_end:
            return ActionResult(changed=False, summary="not set to cancel", subscription=current)
        after = self._write("removing the scheduled cancel", subscription_id, lambda c: c.subscriptions.update(
            subscription_id, UpdateSubscription(scheduled_change=None)))
        return ActionResult(changed=True, summary="scheduled cancel removed; it renews as before", subscription=after)

    def _discount(self, coupon: str) -> str:
        """The id of the Paddle discount `coupon` names (its id or its code)."""
        missing = f"discount {coupon} does not exist in Paddle"
        if coupon.startswith("dsc_"):
            found = self._call(f"could not look up discount {coupon} in Paddle",
                               lambda c: c.discounts.get(coupon), not_found=missing, ids=(coupon,))
            ids = [(found.id, _value(found.status))]
        else:
            ids = self._call(f"could not look up discount {coupon} in Paddle",
                             lambda c: [(d.id, _value(d.status))
                                        for d in c.discounts.list(ListDiscounts(codes=[coupon]))])
        usable = [i for i, status in ids if status == "active"]
        if not ids:
            raise ProviderError(missing, retryable=False)
        if not usable:
            raise ProviderError(f"discount {coupon} is not active in Paddle", retryable=False)
        if len(usable) > 1:
            raise ProviderError(f"{len(usable)} Paddle discounts have the code {coupon}; use the discount id",
                                retryable=False)
        return str(usable[0])

    def coupon_apply(self, subscription_id: str, *, coupon: str, idempotency_key: str) -> ActionResult:
        discount = self._discount(coupon)
        current = self.subscription_get(subscription_id)
        if discount in current.coupons:
            return ActionResult(changed=False, summary=f"discount {coupon} already applied", subscription=current)
        if current.coupons:
            raise ProviderError(f"Paddle subscription {subscription_id} already has discount {current.coupons[0]}; "
                                f"Paddle keeps one discount per subscription, so {coupon} was not applied",
                                retryable=False)
        after = self._write("applying a discount", subscription_id, lambda c: c.subscriptions.update(
            subscription_id, UpdateSubscription(discount=SubscriptionDiscount(
                id=discount, effective_from=SubscriptionEffectiveFrom.NextBillingPeriod))))
        return ActionResult(changed=True, summary=f"discount {coupon} applied from the next bill", subscription=after)

    def subscription_pause(self, subscription_id: str, *, months: int, resumes_at: datetime,
                           idempotency_key: str) -> ActionResult:
        current = self.subscription_get(subscription_id)
        if current.paused:
            return ActionResult(changed=False, summary="already paused or a pause is scheduled", subscription=current)
        if not current.is_active or current.canceled:
            raise ProviderError(f"Paddle subscription {subscription_id} is {current.status}"
                                f"{' and set to cancel' if current.cancel_at_period_end else ''}; it cannot be paused",
                                retryable=False)
        resume = _utc(resumes_at) or resumes_at
        after = self._write("pause", subscription_id, lambda c: c.subscriptions.pause(
            subscription_id, PauseSubscription(effective_from=SubscriptionEffectiveFrom.NextBillingPeriod,
                                               resume_at=DateTime.from_datetime(resume))))
        summary = f"paused for {months} month(s) from {_day(current.current_period_end)}, resumes {_day(resume)}"
        return ActionResult(changed=True, summary=summary, subscription=after)

    def plan_change(self, subscription_id: str, *, plan: str, at_renewal: bool, prorate: bool,
                    idempotency_key: str) -> ActionResult:
        if at_renewal:
            raise ProviderError("Paddle cannot schedule a plan change for the renewal: choose a change now "
                                f"(price {plan} was not applied)", retryable=False)
        price = self._call(f"could not look up price {plan} in Paddle", lambda c: c.prices.get(plan),
                           not_found=f"price {plan} does not exist in Paddle", ids=(plan,))
        entity = self._entity(subscription_id)
        current = subscription_from(entity)
        item = plan_item(entity)
        if item is None:
            raise ProviderError(f"Paddle subscription {subscription_id} has no items", retryable=False)
        if item.price.id == plan:
            return ActionResult(changed=False, summary=f"already on {plan}", subscription=current)
        have = (_value(entity.currency_code), entity.billing_cycle.frequency, _value(entity.billing_cycle.interval))
        cycle = price.billing_cycle
        want = (_value(price.unit_price.currency_code), cycle.frequency if cycle else None,
                _value(cycle.interval) if cycle else "one-time")
        if have != want:
            raise ProviderError(f"price {plan} is billed in {want[0]} every {want[1]} {want[2]}, the subscription in "
                                f"{have[0]} every {have[1]} {have[2]}; Paddle keeps one currency and cycle per "
                                "subscription, so the plan was not changed", retryable=False)
        items = [SubscriptionUpdateItem(price_id=plan if each is item else each.price.id, quantity=each.quantity)
                 for each in entity.items]
        mode = (SubscriptionProrationBillingMode.ProratedImmediately if prorate
                else SubscriptionProrationBillingMode.DoNotBill)
        after = self._write("plan change", subscription_id, lambda c: c.subscriptions.update(
            subscription_id, UpdateSubscription(items=items, proration_billing_mode=mode)))
        return ActionResult(changed=True, summary=f"moved to {plan} now" + (", prorated" if prorate else ""),
                            subscription=after)

    def trial_extend(self, subscription_id: str, *, until: datetime, idempotency_key: str) -> ActionResult:
        current = self.subscription_get(subscription_id)
        target = _utc(until) or until
        reached = current.trial_end if current.trialing else current.current_period_end
        if current.trialing and current.current_period_end and current.trial_end:
            reached = min(current.trial_end, current.current_period_end)
        if reached is not None and reached >= target:
            return ActionResult(changed=False, summary=f"already until {_day(reached)}", subscription=current)
        if not current.is_active or current.status == "paused":
            raise ProviderError(f"Paddle subscription {subscription_id} is {current.status}; its next bill cannot "
                                "be moved", retryable=False)
        after = self._write("moving the next bill", subscription_id, lambda c: c.subscriptions.update(
            subscription_id, UpdateSubscription(next_billed_at=DateTime.from_datetime(target),
                                                proration_billing_mode=SubscriptionProrationBillingMode.DoNotBill)))
        what = "trial extended" if current.trialing else "next bill moved"
        return ActionResult(changed=True, summary=f"{what} to {_day(target)}", subscription=after)

    def renewals_skip_until(self, subscription_id: str, *, renewals: int) -> datetime:
        entity = self._entity(subscription_id)
        next_bill = subscription_from(entity).current_period_end
        if next_bill is None:
            raise ProviderError(f"Paddle subscription {subscription_id} has no next bill date: there is no renewal "
                                "to skip", retryable=False)
        cycle = entity.billing_cycle
        try:
            return add_cycles(next_bill, unit=_value(cycle.interval), length=int(cycle.frequency), cycles=renewals)
        except ValueError as exc:
            raise ProviderError(f"the billing cycle of Paddle subscription {subscription_id} cannot be read ({exc})",
                                retryable=False) from exc

    def renewals_skip(self, subscription_id: str, *, renewals: int, until: datetime,
                      idempotency_key: str) -> ActionResult:
        current = self.subscription_get(subscription_id)
        target = _utc(until) or until
        if current.status in ("canceled", "paused") or not current.is_active:
            raise ProviderError(f"Paddle subscription {subscription_id} is {current.status}: its next bill cannot be "
                                "moved, so no renewal can be skipped", retryable=False)
        free = current.no_charge_until
        if free is not None and free >= target:
            return ActionResult(changed=False, summary=f"already nothing billed until {_day(free)}",
                                subscription=current)
        after = self._write("skipping renewals", subscription_id, lambda c: c.subscriptions.update(
            subscription_id, UpdateSubscription(next_billed_at=DateTime.from_datetime(target),
                                                proration_billing_mode=SubscriptionProrationBillingMode.DoNotBill)))
        plural = "s" if renewals != 1 else ""
        return ActionResult(changed=True, summary=f"next {renewals} renewal{plural} free: next bill {_day(target)}",
                            subscription=after)

    # --- paid invoices ---------------------------------------------------------------------------

    def paid_invoices(self, subscription_id: str, *, since: datetime) -> list[PaidInvoice]:
        """Paddle bills through transactions: GET /transactions?subscription_id=…&status=paid,completed
        (every page). The time paid is the latest captured payment's `captured_at` (else `billed_at`), the
        amount `details.totals.grand_total`, in the currency's smallest unit. The subscription is read first:
        Paddle lists nothing, not a 404, for an unknown one."""
        self._entity(subscription_id)

        def paid(client: Client) -> list[PaidInvoice]:
            found = []
            listed = client.transactions.list(ListTransactions(
                subscription_ids=[subscription_id], statuses=[TransactionStatus.Paid, TransactionStatus.Completed],
                pager=Pager(per_page=200)))
            for transaction in listed:
                captured = [p.captured_at for p in transaction.payments or []
                            if _value(p.status) == "captured" and p.captured_at is not None]
                paid_at = _utc(max(captured) if captured else transaction.billed_at)
                if paid_at is None or paid_at < since:
                    continue
                currency = _value(transaction.currency_code).upper()
                found.append(PaidInvoice(id=transaction.id, currency=currency, paid_at=paid_at,
                                         amount=major_units(transaction.details.totals.grand_total or 0, currency)))
            return found

        found = self._call(f"could not list the transactions of Paddle subscription {subscription_id}", paid)
        return sorted(found, key=lambda invoice: invoice.paid_at)

