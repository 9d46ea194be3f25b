"""Stripe, through the official `stripe` SDK (16.x, `StripeClient` and its `v1` services).

The client makes no network retries of its own (`max_network_retries=0`), gives up after
`Credentials.timeout` seconds, and talks to `Credentials.api_base` when it is set. Every write sends
our `idempotency_key` as Stripe's Idempotency-Key header. Each action first reads the subscription
(with its discounts expanded) and sends nothing when the change is already in place:

- cancel at period end: update `cancel_at_period_end=true`. Done: canceled, or already set so.
  A subscription managed by a schedule (a plan change at renewal) is released from it first, as
  Stripe refuses cancellation changes on it otherwise; so is one whose plan changes now.
- cancel now: cancel (DELETE) with `prorate` and `invoice_now`. Done: status `canceled` (Stripe itself
  answers "No such subscription" to a second cancel).
- coupon: update `discounts` to the discounts already there plus `{coupon}` (a populated `discounts`
  replaces the whole list). Done: a discount from that coupon is on the subscription.
- pause: update `pause_collection={behavior: void, resumes_at}` (the date on our row, N calendar months on): no invoice
  is collected until then. Done: `pause_collection` is set.
- plan change: the target price is read first; one of another currency or interval than the plan's
  item is refused naming both. The plan's item is the only item, or the one whose price is of the
  target price's product (never items[0] by position: that may be the seats); several or none such is
  refused, naming the items.
- plan change now: update `items=[{id: <the plan's item>, price: <plan>, quantity: <its quantity>}]`
  with `proration_behavior` `create_prorations` (or `none`); items not named stay as they are.
  Done: the price is among its items.
- plan change at renewal: a subscription schedule `from_subscription`, then its phases: the current
  one unchanged and a second with every item, the plan's on the new price at its quantity,
  `end_behavior=release`. Done: it is on that price now, or its schedule's next phase is.
- customers by email: `GET /v1/customers?email=` (Stripe compares it case-sensitively).

Stripe Connect: with `Credentials.stripe_account` every call carries it as the `Stripe-Account` header
(`StripeClient(stripe_account=...)`), so reads and writes act on the connected account.
- trial extension: update `trial_end=until` with `proration_behavior=none`. Done: the trial end
  (trialing) or else the current period end is at or past `until`.
- skip renewals: update `pause_collection={behavior: void, resumes_at}`, Stripe's documented way to
  "temporarily offer a customer your services for free" ("Pause payment collection"): the subscription
  stays active, its renewal invoices are made and voided, and collection resumes by itself.
  `resumes_at` (the date on our row) lies halfway between the last skipped renewal and the first one
  charged again (next bill + N - 1 cycles and next bill + N cycles of its price's `recurring`
  interval), so neither renewal falls near the switch. The billing day stays the same. Done: a paused
  collection lasts at least until then. A pause in force that ends sooner is lengthened.
- the reason of a cancel: `cancellation_details={feedback: <the reason's category>, comment: <the
  customer's words, at most 5000 characters, Stripe's limit>}` on the same cancel request (the update
  for a cancel at period end, the DELETE for a cancel now).

A plan change at renewal uses a schedule because that is Stripe's documented way to change a price
from a future date ("Upgrading or downgrading a subscription" in Subscription schedules); an item
update always applies now. Stripe does not let `from_subscription` carry phases, hence two calls (each
with its own key derived from ours); a replay after the first finds the schedule and only sets the
phases. `trial_end` on a paying subscription moves its billing cycle anchor: the next bill moves to
`until` with no charge for the days in between.

Coupons and prices are looked up before the write, so a missing one fails with a message naming it
rather than Stripe's generic answer about the update. The API version is the one the SDK pins
(2026-10-28): a subscription's discounts are `discounts` (`coupon` on update was removed in 2025),
a discount names its coupon in `source.coupon`, and the period end lives on the subscription item.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import stripe
from stripe.params import (
    SubscriptionCancelParams,
    SubscriptionScheduleUpdateParamsPhase,
    SubscriptionScheduleUpdateParamsPhaseDiscount,
    SubscriptionUpdateParams,
    SubscriptionUpdateParamsCancellationDetails,
    SubscriptionUpdateParamsDiscount,
)

from brightback_site import ssrf

from .base import (
    NO_END,
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

COMMENT_MAX = 5000  # cancellation_details[comment]: maxLength in Stripe's description
ACTIVE = ("active", "trialing", "past_due", "unpaid", "paused", "incomplete")


@register
class StripeProvider(BillingProvider):
    slug = "stripe"
    name = "Stripe"
    takes_cancel_comment = True

    def __init__(self, credentials: Credentials) -> None:
        super().__init__(credentials)
        # Stripe's own host: every connection is checked against the address it really reached (the
        # webhooks' guard). An address the operator listed (BILLING_ALLOWED_API_BASES) may be private.
        session = None if credentials.api_base else ssrf.checked_session(user_agent="brightback-billing")
        self._client = stripe.StripeClient(
            credentials.api_key,
            base_addresses={"api": credentials.api_base.rstrip("/")} if credentials.api_base else None,
            max_network_retries=0,
            http_client=stripe.RequestsClient(timeout=credentials.timeout, session=session),
            # Stripe Connect: every call is made on the connected account (the Stripe-Account header).
            stripe_account=credentials.stripe_account or None,
        )

    @classmethod
    def key_mode(cls, api_key: str) -> str | None:
        for mode in ("test", "live"):
            if api_key.startswith((f"sk_{mode}_", f"rk_{mode}_")):
                return mode
        return None

    # --- reads -----------------------------------------------------------------------------------

    def connection_check(self) -> str:
        account = self._call("account", lambda: self._client.v1.accounts.retrieve_current())
        if not isinstance(account.get("id"), str) or not account["id"]:
            raise ProviderError("The server answered, but not as Stripe does: its account has no id",
                                retryable=False, detail=f"fields: {', '.join(sorted(account)) or 'none'}")
        mode = "test mode" if "_test_" in self.credentials.api_key else "live mode"
        dashboard = (account.get("settings") or {}).get("dashboard") or {}
        display = dashboard.get("display_name") if isinstance(dashboard, dict) else None
        named = f" ({display})" if display else ""
        return f"Stripe account {account['id']}{named}, {mode}"

    def subscription_get(self, subscription_id: str) -> Subscription:
        return _subscription(self._read(subscription_id))

    def customers_by_email(self, email: str) -> list[str]:
        try:
            page = self._client.v1.customers.list(params={"email": email, "limit": 100})
            return [str(customer.id) for customer in page.auto_paging_iter()]
        except stripe.StripeError as failed:
            raise _error(f"customers with email {email}", failed) from failed

    def scheduled_plan(self, subscription_id: str) -> str:
        raw = self._read(subscription_id)
        schedule = self._schedule(raw)
        if schedule is None:
            return ""
        now = {_id(item["price"]) for item in raw["items"]["data"]}
        return next((price for price in _next_phase_prices(schedule) if price not in now), "")

    def subscriptions_for_customer(self, customer_id: str) -> list[Subscription]:
        self._call(f"customer {customer_id}", lambda: self._client.v1.customers.retrieve(customer_id))
        try:
            page = self._client.v1.subscriptions.list(
                params={"customer": customer_id, "status": "all", "limit": 100, "expand": ["data.discounts"]})
            found = [_subscription(item.to_dict()) for item in page.auto_paging_iter()]
        except stripe.StripeError as failed:
            raise _error(f"subscriptions of customer {customer_id}", failed) from failed
        active = [sub for sub in found if sub.is_active]
        return sorted(active, key=lambda sub: sub.raw_status.get("created") or 0, reverse=True)

    # --- writes ----------------------------------------------------------------------------------

    def subscription_cancel(self, subscription_id: str, *, at_period_end: bool, prorate: bool,
                            invoice_now: bool, idempotency_key: str, refund: bool = False,
                            reason: CancelReason | None = None) -> ActionResult:
        raw = self._read(subscription_id)
        before = _subscription(raw)
        ended = before.canceled and not before.cancel_at_period_end
        if ended or (at_period_end and before.cancel_at_period_end):
            return ActionResult(False, f"already {_cancel_words(before)}", before)
        if at_period_end:
            self._release_schedule(raw, idempotency_key)
            update: SubscriptionUpdateParams = {"cancel_at_period_end": True}
            if reason is not None:
                update["cancellation_details"] = _cancellation_details(reason)
            after = self._update(subscription_id, update, idempotency_key)
            return ActionResult(True, f"set to cancel at period end ({_day(after.current_period_end)})", after)
        cancel: SubscriptionCancelParams = {"prorate": prorate, "invoice_now": invoice_now, "expand": ["discounts"]}
        if reason is not None:
            cancel["cancellation_details"] = _cancellation_details(reason)
        raw = self._call(f"subscription {subscription_id}", lambda: self._client.v1.subscriptions.cancel(
            subscription_id, params=cancel,
            options={"idempotency_key": idempotency_key}))
        extras = ", ".join(word for word, on in (("prorated", prorate), ("invoiced now", invoice_now)) if on)
        return ActionResult(True, "canceled now" + (f" ({extras})" if extras else ""), _subscription(raw))

    def coupon_apply(self, subscription_id: str, *, coupon: str, idempotency_key: str) -> ActionResult:
        raw = self._read(subscription_id)
        before = _subscription(raw)
        if coupon in before.coupons:
            return ActionResult(False, f"coupon {coupon} already applied", before)
        self._exists(f"coupon {coupon}", lambda: self._client.v1.coupons.retrieve(coupon))
        kept: list[SubscriptionUpdateParamsDiscount] = [{"discount": _id(d)} for d in raw.get("discounts") or []]
        after = self._update(subscription_id, {"discounts": [*kept, {"coupon": coupon}]}, idempotency_key)
        return ActionResult(True, f"coupon {coupon} applied", after)

    def subscription_pause(self, subscription_id: str, *, months: int, resumes_at: datetime,
                           idempotency_key: str) -> ActionResult:
        if months < 1:
            raise ProviderError(f"a pause of subscription {subscription_id} needs at least one month, not {months}",
                                retryable=False)
        before = self.subscription_get(subscription_id)
        if before.paused:
            return ActionResult(False, "already paused", before)
        resumes = resumes_at
        after = self._update(subscription_id, {"pause_collection": {
            "behavior": "void", "resumes_at": int(resumes.timestamp())}}, idempotency_key)
        return ActionResult(True, f"billing paused until {_day(resumes)}", after)

    def plan_change(self, subscription_id: str, *, plan: str, at_renewal: bool, prorate: bool,
                    idempotency_key: str) -> ActionResult:
        raw = self._read(subscription_id)
        before = _subscription(raw)
        if plan in {price for price, _ in before.items}:
            return ActionResult(False, f"already on plan {plan}", before)
        schedule = self._schedule(raw) if at_renewal else None
        if schedule is not None and plan in _next_phase_prices(schedule):
            return ActionResult(False, f"already moving to plan {plan} at renewal", before)
        price = self._price(plan)
        item = _plan_item(raw, price, subscription_id)
        _same_terms(item, price, subscription_id)
        quantity = int(item.get("quantity") or 1)
        if not at_renewal:
            self._release_schedule(raw, idempotency_key)
            # Only the plan's item is named: Stripe leaves every other item (seats, add-ons) as it is.
            after = self._update(subscription_id, {
                "items": [{"id": item["id"], "price": plan, "quantity": quantity}],
                "proration_behavior": "create_prorations" if prorate else "none"}, idempotency_key)
            return ActionResult(True, f"moved to plan {plan} now", after)
        if schedule is None:
            schedule = self._call(f"subscription {subscription_id}", lambda: (
                self._client.v1.subscription_schedules.create(
                    params={"from_subscription": subscription_id},
                    options={"idempotency_key": f"{idempotency_key}-schedule"})))
        # Phases replace what the schedule had: the current one is sent back as it is (its discounts and
        # trial too, which would otherwise end now), and the discounts carry on into the new plan; the
        # next phase keeps every item, the plan's moved to the new price at its quantity.
        current = schedule["phases"][_current_phase(schedule)]
        discounts = [_phase_discount(d) for d in current.get("discounts") or []]
        kept = [(_id(p["price"]), int(p.get("quantity") or 1)) for p in current["items"]]
        now: SubscriptionScheduleUpdateParamsPhase = {
            "items": [{"price": price, "quantity": count} for price, count in kept],
            "start_date": current["start_date"], "end_date": current["end_date"], "discounts": discounts}
        if current.get("trial_end"):
            now["trial_end"] = current["trial_end"]
        moving = _id(item["price"])
        upcoming: SubscriptionScheduleUpdateParamsPhase = {
            "items": [{"price": plan if price == moving else price, "quantity": count} for price, count in kept],
            "discounts": discounts}
        phases = [now, upcoming]
        self._call(f"subscription {subscription_id}", lambda: self._client.v1.subscription_schedules.update(
            schedule["id"], params={"phases": phases, "end_behavior": "release", "proration_behavior": "none"},
            options={"idempotency_key": f"{idempotency_key}-phases"}))
        after = self.subscription_get(subscription_id)
        return ActionResult(True, f"moves to plan {plan} at renewal ({_day(after.current_period_end)})", after)

    def subscription_reactivate(self, subscription_id: str, *, idempotency_key: str) -> ActionResult:
        before = self.subscription_get(subscription_id)
        if before.canceled and not before.cancel_at_period_end:
            raise ProviderError(f"subscription {subscription_id} has already ended in Stripe and cannot be kept; "
                                "the customer needs a new subscription", retryable=False)
        if not before.cancel_at_period_end:
            return ActionResult(False, "not set to cancel: nothing to undo", before)
        after = self._update(subscription_id, {"cancel_at_period_end": False}, idempotency_key)
        return ActionResult(True, "scheduled cancel removed: it renews again", after)

    def trial_extend(self, subscription_id: str, *, until: datetime, idempotency_key: str) -> ActionResult:
        before = self.subscription_get(subscription_id)
        trialing = before.status == "trialing" and before.trial_end is not None
        current = before.trial_end if trialing else before.current_period_end
        what = "trial end" if trialing else "next bill date"
        if current is not None and current >= until:
            return ActionResult(False, f"{what} already {_day(current)}", before)
        after = self._update(subscription_id, {"trial_end": int(until.timestamp()), "proration_behavior": "none"},
                             idempotency_key)
        return ActionResult(True, f"{what} moved to {_day(until)}", after)

    def renewals_skip_until(self, subscription_id: str, *, renewals: int) -> datetime:
        raw = self._read(subscription_id)
        next_bill = _subscription(raw).current_period_end
        recurring = ((((raw.get("items") or {}).get("data") or [{}])[0]).get("price") or {}).get("recurring") or {}
        if next_bill is None or not recurring.get("interval"):
            raise ProviderError(f"Stripe subscription {subscription_id} has no next bill date or no recurring price: "
                                "there is no renewal to skip", retryable=False)
        interval, count = str(recurring["interval"]), int(recurring.get("interval_count") or 1)
        last_skipped = add_cycles(next_bill, unit=interval, length=count, cycles=renewals - 1)
        charged_again = add_cycles(next_bill, unit=interval, length=count, cycles=renewals)
        return (last_skipped + (charged_again - last_skipped) / 2).replace(microsecond=0)

    def renewals_skip(self, subscription_id: str, *, renewals: int, until: datetime,
                      idempotency_key: str) -> ActionResult:
        before = self.subscription_get(subscription_id)
        if before.canceled and not before.cancel_at_period_end:
            raise ProviderError(f"Stripe subscription {subscription_id} has ended: there is no renewal to skip",
                                retryable=False)
        free = before.no_charge_until
        if free is not None and free >= until:
            return ActionResult(False, f"already nothing charged until {_day(free)}", before)
        after = self._update(subscription_id, {"pause_collection": {
            "behavior": "void", "resumes_at": int(until.timestamp())}}, idempotency_key)
        plural = "s" if renewals != 1 else ""
        return ActionResult(True, f"next {renewals} renewal{plural} free (invoices voided until {_day(until)})", after)

    # --- plumbing --------------------------------------------------------------------------------

    def _read(self, subscription_id: str) -> dict[str, Any]:
        return self._call(f"subscription {subscription_id}", lambda: self._client.v1.subscriptions.retrieve(
            subscription_id, params={"expand": ["discounts"]}))

    def _update(self, subscription_id: str, params: SubscriptionUpdateParams, idempotency_key: str) -> Subscription:
        params = {**params, "expand": ["discounts"]}
        raw = self._call(f"subscription {subscription_id}", lambda: self._client.v1.subscriptions.update(
            subscription_id, params=params, options={"idempotency_key": idempotency_key}))
        return _subscription(raw)

    def _schedule(self, raw: dict[str, Any]) -> dict[str, Any] | None:
        """The schedule that manages the subscription now, if any."""
        schedule = raw.get("schedule")
        if not schedule:
            return None
        ident = _id(schedule)
        found = self._call(f"subscription schedule {ident}",
                           lambda: self._client.v1.subscription_schedules.retrieve(ident))
        return found if found.get("status") in ("active", "not_started") else None

    def _release_schedule(self, raw: dict[str, Any], idempotency_key: str) -> None:
        """Stripe refuses cancellation changes on a subscription a schedule manages, and a schedule's
        next phase would undo a plan change made now: let the subscription go from its schedule first
        (the pending change it held is dropped; the subscription's current terms stay)."""
        schedule = self._schedule(raw)
        if schedule is not None:
            self._call(f"subscription {raw['id']}", lambda: self._client.v1.subscription_schedules.release(
                schedule["id"], options={"idempotency_key": f"{idempotency_key}-release"}))

    def _price(self, plan: str) -> dict[str, Any]:
        """The target price, read from Stripe (its currency, interval and product decide the change)."""
        try:
            return dict(self._client.v1.prices.retrieve(plan).to_dict())
        except stripe.StripeError as failed:
            if failed.http_status == 404:
                raise ProviderError(f"plan {plan} does not exist in Stripe", retryable=False, status_code=404,
                                    detail=_said(failed)) from failed
            raise _error(f"plan {plan}", failed) from failed

    def _exists(self, what: str, fetch: Any) -> None:
        """Look a coupon or price up before a write, so a missing one is named rather than reported as
        a generic refusal of the update."""
        try:
            fetch()
        except stripe.StripeError as failed:
            if failed.http_status == 404:
                raise ProviderError(f"{what} does not exist in Stripe", retryable=False, status_code=404,
                                    detail=_said(failed)) from failed
            raise _error(what, failed) from failed

    def _call(self, what: str, request: Any) -> dict[str, Any]:
        """Run one SDK call and hand back plain data; every SDK failure leaves as a ProviderError."""
        try:
            found = request()
        except stripe.StripeError as failed:
            raise _error(what, failed) from failed
        return dict(found.to_dict())

    # --- paid invoices ---------------------------------------------------------------------------

    def paid_invoices(self, subscription_id: str, *, since: datetime) -> list[PaidInvoice]:
        """GET /v1/invoices?subscription=…&status=paid, newest first, read until the invoices were created
        before `since` (one paid later was created before it, so it reads on past those while they are
        paid after `since`); kept: `status_transitions.paid_at` at or after `since`, `amount_paid`."""
        self._read(subscription_id)  # an unknown subscription is a 404, as the contract says
        found: list[PaidInvoice] = []
        try:
            page = self._client.v1.invoices.list(params={"subscription": subscription_id, "status": "paid",
                                                         "limit": 100})
            for item in page.auto_paging_iter():
                raw = item.to_dict()
                paid_at = _when((raw.get("status_transitions") or {}).get("paid_at"))
                if paid_at is None or paid_at < since:
                    if (_when(raw.get("created")) or since) < since:
                        break
                    continue
                currency = str(raw["currency"]).upper()
                found.append(PaidInvoice(id=str(raw["id"]), amount=major_units(raw["amount_paid"], currency),
                                         currency=currency, paid_at=paid_at))
        except stripe.StripeError as failed:
            raise _error(f"invoices of subscription {subscription_id}", failed) from failed
        except (KeyError, TypeError, ValueError) as odd:
            raise ProviderError(f"Stripe's invoices of subscription {subscription_id} could not be read",
                                retryable=False, detail=type(odd).__name__) from odd
        return sorted(found, key=lambda invoice: invoice.paid_at)



def _error(what: str, failed: stripe.StripeError) -> ProviderError:
    said = _said(failed)
    status = failed.http_status
    if status is None:  # no answer: refused connection, timeout, network
        unsafe = isinstance(failed.__cause__, ssrf.UnsafeAddress) or "UnsafeAddress" in said
        if unsafe:
            return ProviderError(f"Stripe was not called for {what}: its address reached a private or "
                                 "loopback address", retryable=False, detail=said)
        return ProviderError(f"Stripe could not be reached for {what}", retryable=True, detail=said)
    retry_after = None
    for name, value in (failed.headers or {}).items():
        if name.lower() == "retry-after":
            try:
                retry_after = float(value)
            except ValueError:
                retry_after = None
    # As Stripe's own SDK decides: its Stripe-Should-Retry header first, then 409 (a request with this
    # key still running, a lock), 429 and 5xx.
    should = _header(failed, "stripe-should-retry")
    retryable = should == "true" if should in ("true", "false") else (status in (409, 429) or status >= 500)
    if not _from_stripe(failed):
        # Not Stripe's error format (a proxy's page, another server): its body is never shown.
        kind = _header(failed, "content-type") or "no content type"
        size = len(failed.http_body or b"")
        return ProviderError(f"The server answered {what} with HTTP {status}, which is not an answer of Stripe's "
                             "API", retryable=retryable, status_code=status, retry_after=retry_after,
                             detail=f"HTTP {status}, {kind}, {size} bytes")
    if status == 401:
        plain = "Stripe refused the API key: check it in the connection"
    elif status == 404:
        plain = f"{what} was not found in Stripe"
    elif retryable:
        plain = f"Stripe could not handle {what} just now; it will be tried again"
    else:
        plain = f"Stripe refused the change to {what}"
    return ProviderError(plain, retryable=retryable, status_code=status, retry_after=retry_after, detail=said)


def _from_stripe(failed: stripe.StripeError) -> bool:
    body = failed.json_body
    return isinstance(body, dict) and isinstance(body.get("error"), dict)


def _header(failed: stripe.StripeError, name: str) -> str:
    for key, value in (failed.headers or {}).items():
        if key.lower() == name:
            return str(value).split(";")[0].strip()
    return ""


def _said(failed: stripe.StripeError) -> str:
    if failed.http_status is not None and not _from_stripe(failed):
        return f"HTTP {failed.http_status}, not Stripe's error format"
    return failed.user_message or str(failed) or type(failed).__name__


def _subscription(raw: dict[str, Any]) -> Subscription:
    status = str(raw.get("status") or "")
    item = ((raw.get("items") or {}).get("data") or [{}])[0]
    price = item.get("price") or {}
    period_end = item.get("current_period_end") or raw.get("current_period_end")
    coupons = []
    for discount in raw.get("discounts") or []:
        if isinstance(discount, dict):
            coupon = (discount.get("source") or {}).get("coupon") or discount.get("coupon")
            if coupon:
                coupons.append(_id(coupon))
    pause = raw.get("pause_collection")
    every = ((raw.get("items") or {}).get("data") or [])
    canceled = status in ("canceled", "incomplete_expired")
    at_period_end = bool(raw.get("cancel_at_period_end")) and not canceled
    return Subscription(
        id=str(raw["id"]), customer_id=_id(raw.get("customer") or ""), status=status,
        is_active=status in ACTIVE, plan=_id(price) if price else "",
        cancel_at_period_end=at_period_end, canceled=canceled or at_period_end,
        paused=bool(pause) or status == "paused", coupons=tuple(coupons),
        trial_end=_when(raw.get("trial_end")), current_period_end=_when(period_end), trialing=status == "trialing",
        items=tuple((_id(i.get("price") or ""), int(i.get("quantity") or 1)) for i in every),
        currency=str(price.get("currency") or raw.get("currency") or "").upper(),
        interval=_interval(price),
        collection_paused_until=(_when(pause.get("resumes_at")) or NO_END) if isinstance(pause, dict) else None,
        raw_status={key: raw.get(key) for key in ("status", "created", "cancel_at_period_end", "canceled_at",
                                                  "pause_collection", "schedule", "trial_end")},
    )


def _cancellation_details(reason: CancelReason) -> SubscriptionUpdateParamsCancellationDetails:
    details: SubscriptionUpdateParamsCancellationDetails = {"feedback": reason.category}
    if reason.comment.strip():
        details["comment"] = reason.comment.strip()[:COMMENT_MAX]
    return details


def _id(value: Any) -> str:
    return str(value["id"] if isinstance(value, dict) else value)


def _current_phase(schedule: dict[str, Any]) -> int:
    started = (schedule.get("current_phase") or {}).get("start_date")
    starts = [phase.get("start_date") for phase in schedule.get("phases") or []]
    return starts.index(started) if started in starts else 0


def _phase_discount(discount: dict[str, Any]) -> SubscriptionScheduleUpdateParamsPhaseDiscount:
    # The discount itself first: reusing it keeps its end date; a coupon would start a new discount.
    if discount.get("discount"):
        return {"discount": _id(discount["discount"])}
    if discount.get("coupon"):
        return {"coupon": _id(discount["coupon"])}
    return {"promotion_code": _id(discount.get("promotion_code") or "")}


def _next_phase_prices(schedule: dict[str, Any]) -> list[str]:
    phases = schedule.get("phases") or []
    upcoming = _current_phase(schedule) + 1
    if upcoming >= len(phases):
        return []
    return [_id(item.get("price") or "") for item in phases[upcoming].get("items") or []]


def _interval(price: dict[str, Any]) -> str:
    """"1 month", "12 month" (a year), "1 week", "1 day": one billing cycle of a recurring price."""
    recurring = price.get("recurring") or {}
    unit, count = recurring.get("interval"), int(recurring.get("interval_count") or 1)
    if not unit:
        return "one-time"
    return f"{count * 12} month" if unit == "year" else f"{count} {unit}"


def _plan_item(raw: dict[str, Any], price: dict[str, Any], subscription_id: str) -> dict[str, Any]:
    """The subscription item that is the plan the target price replaces: the only item, or else the one
    whose price belongs to the target's product (Basic and Pro are prices of one product; seats and
    add-ons are other products). Never items[0] by position: changing an add-on's price loses the seats."""
    items = (raw.get("items") or {}).get("data") or []
    if len(items) == 1:
        return dict(items[0])
    product = _id(price.get("product") or "")
    same = [item for item in items if _id((item.get("price") or {}).get("product") or "") == product]
    if len(same) == 1:
        return dict(same[0])
    listed = ", ".join(f"{_id(i.get('price') or '')} x{i.get('quantity') or 1}" for i in items)
    raise ProviderError(f"subscription {subscription_id} has {len(items)} items ({listed}) and "
                        f"{'none' if not same else len(same)} of them on product {product} of plan {_id(price)}, "
                        "so it is not clear which one is the plan; nothing was changed", retryable=False)


def _same_terms(item: dict[str, Any], price: dict[str, Any], subscription_id: str) -> None:
    """Stripe bills every item of a subscription in one currency and one interval: a target price of
    another is refused here, naming both, rather than by Stripe or, worse, half applied."""
    have = dict(item.get("price") or {})
    have_terms = (str(have.get("currency") or "").upper(), _interval(have))
    want_terms = (str(price.get("currency") or "").upper(), _interval(price))
    if have_terms != want_terms:
        raise ProviderError(f"plan {_id(price)} is billed in {want_terms[0]} every {_words(want_terms[1])}, the "
                            f"subscription in {have_terms[0]} every {_words(have_terms[1])} (subscription "
                            f"{subscription_id}); Stripe keeps one currency and interval per subscription, so the "
                            "plan was not changed", retryable=False)


def _words(interval: str) -> str:
    return {"12 month": "year", "1 month": "month", "1 week": "week", "1 day": "day"}.get(interval, interval + "s")


def _when(stamp: Any) -> datetime | None:
    return datetime.fromtimestamp(int(stamp), UTC) if stamp else None


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "unknown date"


def _cancel_words(sub: Subscription) -> str:
    if not sub.cancel_at_period_end:
        return "canceled"
    return f"set to cancel at period end ({_day(sub.current_period_end)})"
