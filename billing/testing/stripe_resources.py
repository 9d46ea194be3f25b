"""localstripe's resources taught the parts of today's Stripe API that our adapter uses, and the
endpoints localstripe lacks; billing/testing/stripe_server.py serves them (see its docstring).

Each extension raises localstripe's `UserError` with Stripe's own words ("No such coupon: 'X'", "A
canceled subscription can only update its cancellation_details and metadata."), and checks every
input before changing anything, as Stripe does. The request itself has already been checked against
Stripe's OpenAPI description by the server.
"""

from __future__ import annotations

import time
import warnings
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from dateutil.relativedelta import relativedelta
from localstripe.errors import UserError
from localstripe.resources import Plan, StripeObject, Subscription, SubscriptionItem, random_id, store

with warnings.catch_warnings():  # localstripe registers plain functions as handlers, which aiohttp deprecates
    warnings.simplefilter("ignore", DeprecationWarning)
    from localstripe import server as ls_server


# The server's test of which customers the request's account (Stripe-Account) may see.
OWNER_OF: web.RequestKey[Any] = web.RequestKey("owner_of", object)


def _missing(kind: str, ident: str, param: str = "id") -> UserError:
    return UserError(404 if param == "id" else 400, f"No such {kind}: '{ident}'",
                     {"code": "resource_missing", "param": param})


def _plan(price: str, param: str) -> Plan:
    found = store.get("plan:" + price)
    if found is None:
        raise _missing("price", price, param)
    return found


def _price_json(plan: Plan) -> dict[str, Any]:
    return {"id": plan.id, "object": "price", "active": plan.active, "currency": plan.currency,
            "product": plan.product, "type": "recurring", "unit_amount": plan.amount, "billing_scheme": "per_unit",
            "recurring": {"interval": plan.interval, "interval_count": plan.interval_count,
                          "usage_type": "licensed"},
            "livemode": False, "created": plan.created, "lookup_key": None, "metadata": plan.metadata,
            "nickname": plan.nickname}


def _same_terms(plans: list[Plan]) -> None:
    """Stripe bills every item of a subscription in one currency and one interval."""
    if len({p.currency.lower() for p in plans}) > 1:
        raise UserError(400, "Currency and interval fields must match across all plans on this subscription. "
                             "Found mismatch in currency field.", {"param": "items"})
    if len({(p.interval, p.interval_count) for p in plans}) > 1:
        raise UserError(400, "Currency and interval fields must match across all plans on this subscription. "
                             "Found mismatch in interval field.", {"param": "items"})


class HarnessSubscription(Subscription):
    """localstripe's subscription, taught the parts of today's API our adapter uses, several items among
    them (localstripe knows one): an item keeps its id when its price or quantity changes, items not
    named in an update stay as they are, and every item shares one currency and interval."""

    def __init__(self, items: list[dict[str, Any]] | None = None, **data: Any) -> None:
        items = [_price_to_plan(item, f"items[{n}]") for n, item in enumerate(items or [])]
        _same_terms([_plan(item.get("plan", ""), f"items[{n}][price]") for n, item in enumerate(items)])
        self.pause_collection: dict[str, Any] | None = None
        self.cancellation_details: dict[str, Any] = {"comment": None, "feedback": None, "reason": None}
        self._discounts: list[dict[str, Any]] = []
        self._schedule: str | None = None
        super().__init__(items=items[:1], **data)
        for item in items[1:]:
            self.items._list.append(SubscriptionItem(subscription=self.id, plan=item["plan"],
                                                     quantity=int(item.get("quantity") or 1)))
        if self.trial_end and self.trial_end > time.time():
            self.status = "trialing"

    def _items_after(self, items: list[dict[str, Any]]) -> list[tuple[SubscriptionItem | None, Plan, int]]:
        """(the item kept or None for a new one, its plan, its quantity) after an update, checked first."""
        known = {item.id: item for item in self.items._list}
        after: dict[str, tuple[SubscriptionItem | None, Plan, int]] = {
            item.id: (item, item.plan, item.quantity) for item in self.items._list}
        for n, wanted in enumerate(items):
            ident = wanted.get("id")
            if ident is not None and ident not in known:
                raise _missing("subscription item", ident, f"items[{n}][id]")
            if str(wanted.get("deleted", "")).lower() == "true":
                after.pop(ident or "", None)
                continue
            kept = known.get(ident or "")
            plan = _plan(wanted["plan"], f"items[{n}][price]") if wanted.get("plan") else (kept.plan if kept else None)
            if plan is None:
                raise UserError(400, "Each new item needs a price.", {"param": f"items[{n}][price]"})
            quantity = int(wanted["quantity"]) if wanted.get("quantity") else (kept.quantity if kept else 1)
            after[ident or f"new{n}"] = (kept, plan, quantity)
        if not after:
            raise UserError(400, "A subscription needs at least one item.", {"param": "items"})
        _same_terms([plan for _, plan, _ in after.values()])
        had = self.items._list[0].plan.currency.lower()
        if any(plan.currency.lower() != had for _, plan, _ in after.values()):
            raise UserError(400, "You cannot combine currencies on a single customer. This customer has an active "
                                 f"subscription, subscription schedule, discount, quote, or invoice item with currency "
                                 f"{had}.", {"param": "items"})
        return list(after.values())

    @property
    def current_period_end(self) -> int:
        # Stripe moves the billing cycle anchor to `trial_end`: the next bill is then.
        if self.trial_end and self.trial_end > time.time():
            return int(self.trial_end)
        return int(Subscription.current_period_end.fget(self))  # type: ignore[attr-defined]

    def _update(self, items: list[dict[str, Any]] | None = None, discounts: Any = None,
                pause_collection: Any = None, proration_behavior: str | None = None,
                cancellation_details: Any = None, **data: Any) -> None:
        # proration_behavior is checked against the spec and accepted; localstripe models no proration amounts.
        other = set(data) - {"metadata"} or any(v is not None for v in (items, discounts, pause_collection))
        if self.status == "canceled" and other:
            raise UserError(400, "A canceled subscription can only update its cancellation_details and metadata.")
        # Check everything before changing anything, as Stripe does.
        if self._schedule and ("cancel_at_period_end" in data or "cancel_at" in data):
            raise UserError(400, f"The subscription is managed by the subscription schedule `{self._schedule}`, and "
                                 "updating any cancelation behavior directly is not allowed. Please update the "
                                 "schedule instead.")
        new_items = None
        if items is not None:
            new_items = self._items_after([_price_to_plan(item, f"items[{n}]") for n, item in enumerate(items)])
        new_discounts = self._discounts_after(discounts) if discounts is not None else None
        if pause_collection not in (None, ""):
            resumes_at = pause_collection.get("resumes_at")
            if resumes_at is not None and int(resumes_at) <= time.time():
                raise UserError(400, "resumes_at must be in the future.", {"param": "pause_collection[resumes_at]"})
        super()._update(**data)
        if new_items is not None:
            kept = []
            for item, plan, quantity in new_items:
                if item is None:
                    item = SubscriptionItem(subscription=self.id, plan=plan.id, quantity=quantity)
                item.plan, item.quantity = plan, quantity
                kept.append(item)
            self.items._list = kept
            self.quantity = kept[0].quantity
        if cancellation_details is not None:
            self._details_record(cancellation_details, cancel_requested="cancel_at_period_end" in data)
        if new_discounts is not None:
            self._discounts = new_discounts
        if pause_collection == "":
            self.pause_collection = None
        elif pause_collection is not None:
            self.pause_collection = {"behavior": pause_collection["behavior"],
                                     "resumes_at": int(pause_collection.get("resumes_at") or 0) or None}
        if data.get("trial_end") is not None and self.current_period_end == self.trial_end:
            self.status = "trialing"

    def _details_record(self, details: Any, *, cancel_requested: bool) -> None:
        """Stripe keeps `cancellation_details` on the subscription: the reason a cancel gave
        (`cancellation_requested`), the customer's feedback and comment ("" clears one)."""
        for name in ("feedback", "comment"):
            if name in details:
                self.cancellation_details[name] = details[name] or None
        if cancel_requested:
            self.cancellation_details["reason"] = "cancellation_requested"

    def _discounts_after(self, discounts: Any) -> list[dict[str, Any]]:
        if discounts == "":
            return []
        kept = {d["id"]: d for d in self._discounts}
        after = []
        for n, wanted in enumerate(discounts):
            if wanted.get("discount"):
                if wanted["discount"] not in kept:
                    raise _missing("discount", wanted["discount"], f"discounts[{n}][discount]")
                after.append(kept[wanted["discount"]])
            elif wanted.get("coupon"):
                coupon = store.get("coupon:" + wanted["coupon"])
                if coupon is None:
                    raise _missing("coupon", wanted["coupon"], f"discounts[{n}][coupon]")
                after.append({"id": "di_" + random_id(14), "object": "discount", "customer": self.customer,
                              "subscription": self.id, "start": int(time.time()), "end": None,
                              "source": {"type": "coupon", "coupon": coupon.id}, "coupon": coupon._export()})
            else:
                raise UserError(400, "Each discount needs a coupon, discount or promotion_code.",
                                {"param": f"discounts[{n}]"})
        return after

    def _export(self, expand: list[str] | None = None) -> dict[str, Any]:
        expand = list(expand or [])
        expand_discounts = "discounts" in expand
        obj = super()._export(expand=[path for path in expand if path != "discounts"])
        for item in obj["items"]["data"]:
            item["price"] = _price_json(_plan(item["plan"]["id"], "price"))
            item["current_period_start"] = obj["current_period_start"]
            item["current_period_end"] = obj["current_period_end"]
        obj["discounts"] = [d if expand_discounts else d["id"] for d in self._discounts]
        obj["schedule"] = self._schedule
        obj["pause_collection"] = self.pause_collection
        obj["cancellation_details"] = dict(self.cancellation_details)
        return obj


def _price_to_plan(item: dict[str, Any], param: str) -> dict[str, Any]:
    item = dict(item)
    if "price" in item:
        item["plan"] = _plan(item.pop("price"), f"{param}[price]").id
    return item


class SubscriptionSchedule(StripeObject):
    object = "subscription_schedule"
    _id_prefix = "sub_sched_"

    def __init__(self, subscription: HarnessSubscription) -> None:
        super().__init__()
        self.subscription = subscription.id
        self.customer = subscription.customer
        self.status = "active"
        self.end_behavior = "release"
        self.released_at: int | None = None
        self.released_subscription: str | None = None
        self.metadata: dict[str, str] = {}
        trialing = subscription.status == "trialing"
        phase = {"start_date": subscription.current_period_start, "end_date": subscription.current_period_end,
                 "items": [{"price": item.plan.id, "quantity": item.quantity} for item in subscription.items._list],
                 "discounts": [_phase_discount(d) for d in subscription._discounts],
                 "trial_end": subscription.trial_end if trialing else None,
                 "proration_behavior": "create_prorations"}
        self.phases = [phase]
        self.current_phase = {"start_date": phase["start_date"], "end_date": phase["end_date"]}

    def _set_phases(self, phases: list[dict[str, Any]], sub: HarnessSubscription) -> None:
        """Replace the phases; the current one's terms become the subscription's now, as in Stripe: a
        discount or trial left out of it ends."""
        if not phases or str(phases[0].get("start_date")) != str(self.current_phase["start_date"]):
            raise UserError(400, "You can not modify the start date of the current phase.",
                            {"param": "phases[0][start_date]"})
        checked, start = [], int(self.current_phase["start_date"])
        for n, phase in enumerate(phases):
            if not phase.get("items"):
                raise UserError(400, "Each phase needs items.", {"param": f"phases[{n}][items]"})
            plans = [_plan(item.get("price", ""), f"phases[{n}][items][{i}][price]")
                     for i, item in enumerate(phase["items"])]
            _same_terms(plans)
            start = int(phase.get("start_date") or start)
            end = phase.get("end_date")
            if end is None:  # Stripe: one interval of the phase's price
                span = relativedelta(**{plans[0].interval + "s": plans[0].interval_count})
                end = int((datetime.fromtimestamp(start, UTC) + span).timestamp())
            if int(end) <= start:
                raise UserError(400, "A phase must end after it starts.", {"param": f"phases[{n}][end_date]"})
            discounts = sub._discounts_after(phase.get("discounts") or [])
            checked.append({"start_date": start, "end_date": int(end),
                            "items": [{"price": p.id, "quantity": int(i.get("quantity") or 1)}
                                      for p, i in zip(plans, phase["items"], strict=True)],
                            "discounts": [_phase_discount(d) for d in discounts],
                            "trial_end": int(phase["trial_end"]) if phase.get("trial_end") else None,
                            "proration_behavior": phase.get("proration_behavior", "create_prorations")})
            if n == 0:
                now_discounts = discounts
            start = int(end)
        self.phases = checked
        sub._discounts = now_discounts
        if checked[0]["trial_end"]:
            sub.trial_end = checked[0]["trial_end"]
        elif sub.status == "trialing":
            sub.trial_end, sub.status = int(time.time()), "active"


def _phase_discount(discount: dict[str, Any]) -> dict[str, Any]:
    return {"coupon": discount["source"]["coupon"], "discount": discount["id"], "promotion_code": None}


def _expand(request: web.Request) -> list[str]:
    return list(ls_server.unflatten_data(request.query).get("expand") or [])


def _subscription(ident: str) -> HarnessSubscription:
    sub = store.get("subscription:" + ident)
    if sub is None:
        raise _missing("subscription", ident)
    return sub


async def account(request: web.Request) -> web.Response:
    # On a connected account (Stripe Connect) the account is the connected one.
    ident = request.headers.get("Stripe-Account") or "acct_localstripe"
    return web.json_response({"id": ident, "object": "account", "type": "standard",
                              "country": "US", "default_currency": "usd", "charges_enabled": True,
                              "settings": {"dashboard": {"display_name": "Local Stripe"}}})


async def price(request: web.Request) -> web.Response:
    plan = store.get("plan:" + request.match_info["id"])
    if plan is None:
        raise _missing("price", request.match_info["id"])
    return web.json_response(_price_json(plan))


async def customer_list(request: web.Request) -> web.Response:
    """GET /v1/customers, with Stripe's case-sensitive `email` filter (localstripe has no filter), newest
    first; `owner` (set by the server) keeps the customers of the account the request acts on."""
    query = ls_server.unflatten_data(request.query)
    email = query.get("email")
    owner = request.get(OWNER_OF)
    found = [value for key, value in store.items() if key.startswith("customer:")
             and (email is None or value.email == email) and (owner is None or owner(value.id))]
    found.sort(key=lambda c: c.created, reverse=True)
    limit = int(query.get("limit") or 10)
    return web.json_response({"object": "list", "url": "/v1/customers", "has_more": len(found) > limit,
                              "data": [c._export() for c in found[:limit]]})


async def subscription_list(request: web.Request) -> web.Response:
    query = ls_server.unflatten_data(request.query)
    expand = [path.removeprefix("data.") for path in query.pop("expand", None) or []]
    found = Subscription._api_list_all("/v1/subscriptions", **query)
    found._list.reverse()  # Stripe lists the newest first; localstripe's store keeps them oldest first
    found._compute_starting_pos()
    data = [sub._export(expand=expand) for sub in found._list[found._starting_pos:][:found._limit]]
    return web.json_response({"object": "list", "url": "/v1/subscriptions", "has_more": found.has_more,
                              "data": data})


async def subscription_cancel(request: web.Request) -> web.Response:
    sub = _subscription(request.match_info["id"])
    if sub.status == "canceled":  # Stripe: a canceled subscription is gone for this call
        raise _missing("subscription", sub.id)
    # prorate / invoice_now are checked against the spec; localstripe models no final invoice to shape.
    details = ls_server.unflatten_data(request.query).get("cancellation_details")
    Subscription._api_delete(sub.id)
    sub._details_record(details or {}, cancel_requested=True)
    sub.canceled_at = int(time.time())
    if sub._schedule and (schedule := store.get("subscription_schedule:" + sub._schedule)):
        schedule.status = "canceled"
    return web.json_response(sub._export(expand=_expand(request)))


async def schedule_create(request: web.Request) -> web.Response:
    data = ls_server.unflatten_data(await request.post())
    if set(data) - {"from_subscription", "expand", "metadata"}:
        raise UserError(400, "When from_subscription is set, phases and other settings cannot be set.",
                        {"param": "from_subscription"})
    if "from_subscription" not in data:
        raise UserError(400, "This local Stripe creates schedules only from_subscription.",
                        {"param": "from_subscription"})
    sub = _subscription(data["from_subscription"])
    if sub.status == "canceled" or sub._schedule:
        raise UserError(400, f"Subscription {sub.id} is canceled or already attached to a schedule.",
                        {"param": "from_subscription"})
    schedule = SubscriptionSchedule(sub)
    sub._schedule = schedule.id
    return web.json_response(schedule._export())


def _schedule(ident: str) -> SubscriptionSchedule:
    schedule = store.get("subscription_schedule:" + ident)
    if schedule is None:
        raise _missing("subscription schedule", ident)
    return schedule


async def schedule_get(request: web.Request) -> web.Response:
    return web.json_response(_schedule(request.match_info["id"])._export())


async def schedule_update(request: web.Request) -> web.Response:
    schedule = _schedule(request.match_info["id"])
    if schedule.status != "active":
        raise UserError(400, f"You cannot update a subscription schedule that is {schedule.status}.")
    data = ls_server.unflatten_data(await request.post())
    if "phases" in data:
        schedule._set_phases(data["phases"], _subscription(schedule.subscription))
    if "end_behavior" in data:
        schedule.end_behavior = data["end_behavior"]
    return web.json_response(schedule._export())


async def schedule_release(request: web.Request) -> web.Response:
    schedule = _schedule(request.match_info["id"])
    if schedule.status not in ("active", "not_started"):
        raise UserError(400, f"You cannot release a subscription schedule that is currently in the "
                             f"`{schedule.status}` status.")
    schedule.status, schedule.released_subscription = "released", schedule.subscription
    schedule.released_at = int(time.time())
    store["subscription:" + schedule.subscription]._schedule = None
    return web.json_response(schedule._export())


# --- invoices --------------------------------------------------------------------------------------
# localstripe's invoices are drafts of its own billing run, without `status_transitions`: the invoices a
# subscription paid are the harness's, kept in localstripe's store (emptied with it), in today's shape.

def invoice_add(subscription_id: str, *, amount: int, currency: str, status: str, created: int,
                paid_at: int | None) -> str:
    """An invoice of the subscription (`amount` in the currency's smallest unit), as Stripe shows it."""
    sub = _subscription(subscription_id)
    ident = "in_" + random_id(24)
    paid = status == "paid"
    store["harness_invoice:" + ident] = {
        "id": ident, "object": "invoice", "status": status, "currency": currency.lower(), "created": created,
        "customer": sub.customer, "livemode": False, "amount_due": amount, "amount_paid": amount if paid else 0,
        "amount_remaining": 0 if paid else amount, "total": amount, "collection_method": "charge_automatically",
        "billing_reason": "subscription_cycle",
        "parent": {"type": "subscription_details", "quote_details": None,
                   "subscription_details": {"subscription": subscription_id, "metadata": {}}},
        "status_transitions": {"finalized_at": created, "paid_at": paid_at if paid else None,
                               "marked_uncollectible_at": None, "voided_at": created if status == "void" else None},
    }
    return ident


async def invoice_list(request: web.Request) -> web.Response:
    """GET /v1/invoices: `subscription`, `customer` and `status` filters, newest first, `limit` (1-100) and
    `starting_after`, as Stripe pages lists."""
    query = ls_server.unflatten_data(request.query)
    if query.get("subscription"):
        _subscription(query["subscription"])
    found = [invoice for key, invoice in store.items() if key.startswith("harness_invoice:")
             and (not query.get("subscription")
                  or invoice["parent"]["subscription_details"]["subscription"] == query["subscription"])
             and (not query.get("customer") or invoice["customer"] == query["customer"])
             and (not query.get("status") or invoice["status"] == query["status"])]
    found.sort(key=lambda invoice: (invoice["created"], invoice["id"]), reverse=True)
    after = query.get("starting_after")
    if after:
        ids = [invoice["id"] for invoice in found]
        if after not in ids:
            raise _missing("invoice", after, "starting_after")
        found = found[ids.index(after) + 1:]
    limit = int(query.get("limit") or 10)
    if not 1 <= limit <= 100:
        raise UserError(400, f"This value must be between 1 and 100 (it currently is {limit}).",
                        {"param": "limit"})
    return web.json_response({"object": "list", "url": "/v1/invoices", "has_more": len(found) > limit,
                              "data": found[:limit]})
