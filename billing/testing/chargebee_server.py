"""A local Chargebee (API v2, Product Catalog 2.0) for tests: a real HTTP server on 127.0.0.1 that the
official `chargebee` SDK talks to, keeping customers and subscriptions in memory.

Chargebee's OpenAPI description is too large to ship, so every request is checked against `SPEC`
(billing/testing/chargebee_spec.py), an explicit table of the parameters Chargebee's API reference
documents for each endpoint served here (names, required ones, enum values, types). An unknown
parameter, a missing required one, a value of the wrong type or outside its enum is answered 400 with
Chargebee's own error body (`type=invalid_request`, `api_error_code=param_wrong_value`, `param`), as the
real API does, so a wrong name or enum in the adapter fails the tests. Requests are authenticated with
HTTP Basic (the key as user name), writes honour the `chargebee-idempotency-key` header (a replay answers the first
response with `chargebee-idempotency-replayed: true` and changes nothing), and state rules follow the
reference (no pause of a trial, no change to a cancelled subscription, and so on).
"""

from __future__ import annotations

import base64
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from billing.providers.base import ZERO_DECIMAL, Credentials
from billing.testing import (
    COUPON,
    PLANS,
    TRIAL_ENDED_DAYS_AGO,
    FaultsMixin,
    InjectedFaults,
    Remote,
    allow_api_base,
    forbid_api_base,
)
from billing.testing.chargebee_spec import ERRORS, ApiError, route, validate, wrong
from brightback_site.testing import LocalHTTPServer

API_KEY = "test_cbfake_3b1e9d0c"
SITE = "acme-test"


def ts(moment: datetime) -> int:
    return int(moment.timestamp())


@dataclass
class Sub:
    id: str
    customer_id: str
    plan: str  # the plan item's price
    status: str
    created_at: int
    term_start: int
    term_end: int
    trial_end: int | None = None
    coupons: list[str] = field(default_factory=list)
    pending_plan: str = ""
    pause_date: int | None = None
    resume_date: int | None = None
    cancelled_at: int | None = None
    quantity: int = 1  # the plan item's
    addons: dict[str, int] = field(default_factory=dict)  # add-on price -> quantity
    pending_quantity: int = 1
    cancel_reason_code: str = ""

    def json(self, *, scheduled: bool = False) -> dict[str, Any]:
        plan = self.pending_plan if scheduled and self.pending_plan else self.plan
        quantity = self.pending_quantity if scheduled and self.pending_plan else self.quantity
        currency, months, _, _ = PRICES[self.plan]
        out: dict[str, Any] = {
            "id": self.id, "object": "subscription", "customer_id": self.customer_id, "status": self.status,
            "currency_code": currency, "billing_period": 1 if months == 12 else months,
            "billing_period_unit": "year" if months == 12 else "month", "channel": "web",
            "created_at": self.created_at, "started_at": self.created_at, "updated_at": int(time.time()),
            "current_term_start": self.term_start, "current_term_end": self.term_end,
            "has_scheduled_changes": bool(self.pending_plan), "deleted": False, "due_invoices_count": 0,
            "resource_version": int(time.time() * 1000),
            "subscription_items": [
                {"item_price_id": price, "item_type": PRICES[price][2], "quantity": count,
                 "unit_price": PRICES[price][3], "amount": PRICES[price][3] * count, "free_quantity": 0,
                 "object": "subscription_item"}
                for price, count in ((plan, quantity), *self.addons.items())],
        }
        # a non-renewing subscription bills no more; a paused one next bills when it resumes
        next_bill = {"active": self.term_end, "in_trial": self.term_end, "paused": self.resume_date}
        if next_bill.get(self.status):
            out["next_billing_at"] = next_bill[self.status]
        if self.trial_end:
            out.update(trial_start=self.created_at, trial_end=self.trial_end)
        if self.cancel_reason_code:
            out["cancel_reason_code"] = self.cancel_reason_code
        if self.coupons:
            out["coupons"] = [{"coupon_id": c, "applied_count": 0, "object": "coupon"} for c in self.coupons]
        for name in ("pause_date", "resume_date", "cancelled_at"):
            if getattr(self, name):
                out[name] = getattr(self, name)
        return out


# item price id: (currency, months per period, item type, unit price in cents)
PRICES: dict[str, tuple[str, int, str, int]] = {
    "basic": ("USD", 1, "plan", 1000),
    "pro": ("USD", 1, "plan", 3000),
    "annual": ("USD", 12, "plan", 10000),
    "basic-eur": ("EUR", 1, "plan", 900),
    "seats": ("USD", 1, "addon", 500),
}
assert set(PLANS) <= set(PRICES)
# The site's cancellation reason codes (Settings > Reason Codes > Subscription Cancellation): Chargebee
# refuses a cancel_reason_code that is not one of them (case-sensitive).
REASON_CODES = ("Too Expensive", "Not Using", "Missing Features", "Switched", "Other")


class ChargebeeFake(FaultsMixin):
    """The FakeBilling for Chargebee (see billing/testing/__init__.py)."""

    slug = "chargebee"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._customers: dict[str, dict[str, Any]] = {}
        self._subs: dict[str, Sub] = {}
        self._invoices: list[dict[str, Any]] = []
        self._writes: dict[str, int] = {}
        self._replies: dict[str, tuple[str, str, int, dict[str, Any]]] = {}
        self.faults = InjectedFaults()
        self._counter = 0
        self.requests: list[dict[str, Any]] = []  # what the SDK sent: method, path, params, headers
        self._http = LocalHTTPServer(_handler_for(self), name="chargebee-fake")
        self.port = self._http.port
        allow_api_base(self.url)

    # --- FakeBilling --------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self._http.url()

    def credentials(self, *, timeout: float = 5.0) -> Credentials:
        return Credentials(api_key=API_KEY, site=SITE, api_base=self.url, timeout=timeout)

    def bad_credentials(self) -> Credentials:
        return Credentials(api_key="test_wrong_key", site=SITE, api_base=self.url, timeout=5.0)

    def seed(self, *, customer_id: str, plan: str = "basic", trialing: bool = False, trial_ended: bool = False,
             extra_items: tuple[tuple[str, int], ...] = (), quantity: int = 1, email: str = "") -> str:
        """As the protocol says; `extra_items` are add-on item prices (`seats`)."""
        now = datetime.now(UTC).replace(microsecond=0)
        with self._lock:
            self._counter += 1
            self._customers.setdefault(customer_id, {
                "id": customer_id, "object": "customer", "auto_collection": "on", "net_term_days": 0,
                "email": email or f"{customer_id}@example.test",
                "allow_direct_debit": False, "created_at": ts(now), "taxability": "taxable", "deleted": False,
                "preferred_currency_code": "USD", "card_status": "no_card", "channel": "web"})
            sub_id = f"cbsub_{self._counter:04d}"
            end = now + (timedelta(days=14) if trialing else timedelta(days=365 if PRICES[plan][1] == 12 else 30))
            # created_at grows with each seed so "newest first" is well defined within one second
            self._subs[sub_id] = Sub(id=sub_id, customer_id=customer_id, plan=plan,
                                     status="in_trial" if trialing else "active", created_at=ts(now) + self._counter,
                                     term_start=ts(now), term_end=ts(end), trial_end=ts(end) if trialing else None,
                                     quantity=quantity, addons=dict(extra_items))
            if trial_ended:  # Chargebee keeps trial_start and trial_end after the trial
                self._subs[sub_id].trial_end = ts(now - timedelta(days=TRIAL_ENDED_DAYS_AGO))
            self._writes[sub_id] = 0
        return sub_id

    def invoice(self, subscription_id: str, *, amount: Decimal, paid_at: datetime | None, currency: str = "USD",
                status: str = "paid", created: datetime | None = None) -> str:
        made = created or paid_at or datetime.now(UTC)
        minor = int(amount.scaleb(0 if currency.upper() in ZERO_DECIMAL else 2))
        with self._lock:
            sub = self._subs[subscription_id]
            self._counter += 1
            paid = status == "paid"
            invoice: dict[str, Any] = {
                "id": f"cbinv_{self._counter:04d}", "object": "invoice", "customer_id": sub.customer_id,
                "subscription_id": subscription_id, "recurring": True, "status": "paid" if paid else "payment_due",
                "date": ts(made), "due_date": ts(made), "price_type": "tax_exclusive",
                "currency_code": currency.upper(),
                "total": minor, "amount_paid": minor if paid else 0, "amount_due": 0 if paid else minor,
                "amount_adjusted": 0, "credits_applied": 0, "write_off_amount": 0, "exchange_rate": 1.0,
                "updated_at": ts(paid_at or made), "deleted": False, "first_invoice": False,
                "has_advance_charges": False, "term_finalized": True, "is_gifted": False, "base_currency_code": "USD",
            }
            if paid and paid_at is not None:
                invoice["paid_at"] = ts(paid_at)
            self._invoices.append(invoice)
            return str(invoice["id"])

    def remote(self, subscription_id: str) -> Remote:
        with self._lock:
            sub = self._subs[subscription_id]
            when = lambda stamp: datetime.fromtimestamp(stamp, UTC) if stamp else None  # noqa: E731
            return Remote(status=sub.status, canceled=sub.status == "cancelled",
                          cancel_at_period_end=sub.status == "non_renewing", coupons=tuple(sub.coupons),
                          paused=sub.status == "paused" or sub.pause_date is not None, plan=sub.plan,
                          pending_plan=sub.pending_plan, trial_end=when(sub.trial_end),
                          pause_resumes_at=when(sub.resume_date), cancel_reason=sub.cancel_reason_code,
                          next_bill_at=when(sub.term_end if sub.status in ("active", "in_trial", "non_renewing")
                                            else None),
                          items=((sub.plan, sub.quantity), *sub.addons.items()))

    def items(self, subscription_id: str) -> list[tuple[str, int]]:
        return list(self.remote(subscription_id).items)

    def writes(self, subscription_id: str) -> int:
        with self._lock:
            return self._writes.get(subscription_id, 0)

    def reset(self) -> None:
        with self._lock:
            self._customers.clear()
            self._subs.clear()
            self._invoices.clear()
            self._writes.clear()
            self._replies.clear()
            self.faults.clear()
            self.requests.clear()

    def close(self) -> None:
        forbid_api_base(self.url)
        self._http.stop()

    # --- the API ------------------------------------------------------------------------------------

    def handle(self, method: str, path: str, query: str, body: str,
               headers: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        """Answer one request: (status, extra headers, JSON body)."""
        stall = self.faults.take_stall()
        if stall:
            time.sleep(stall)
        with self._lock:
            self.requests.append({"method": method, "path": path, "query": query, "body": body,
                                  "headers": dict(headers)})
            failure = self.faults.take_failure()
            if failure is not None:
                status, retry_after = failure
                type_, code, message = ERRORS.get(status, (None, "internal_error", "Injected failure"))
                extra = {"Retry-After": str(retry_after)} if retry_after is not None else {}
                return status, extra, ApiError(status, message, code=code, type_=type_).body()
            try:
                return self._answer(method, path, query, body, headers)
            except ApiError as err:
                return err.status, {}, err.body()

    def _answer(self, method: str, path: str, query: str, body: str,
                headers: dict[str, str]) -> tuple[int, dict[str, str], dict[str, Any]]:
        if headers.get("authorization", "") != "Basic " + base64.b64encode(f"{API_KEY}:".encode()).decode():
            raise ApiError(401, ERRORS[401][2], code="api_authentication_failed", type_=None)
        name, found = route(method, path)
        if method == "POST" and not headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            raise ApiError(400, "Content-Type must be application/x-www-form-urlencoded", code="invalid_request")
        params = validate(name, parse_qsl(body if method == "POST" else query, keep_blank_values=True))
        target = unquote(found.groupdict().get("id") or "")
        key = headers.get("chargebee-idempotency-key")
        if method == "POST" and key and key in self._replies:
            first_path, first_body, status, answer = self._replies[key]
            if (first_path, first_body) != (path, body):
                raise ApiError(409, f"idempotency key {key} was used for another request", code="invalid_request")
            return status, {"chargebee-idempotency-replayed": "true"}, answer
        answer = getattr(self, f"_{name}")(target, params)
        if method == "POST":
            self._writes[target] = self._writes.get(target, 0) + 1
            if key:
                self._replies[key] = (path, body, 200, answer)
        return 200, {}, answer

    def _sub(self, sub_id: str) -> Sub:
        sub = self._subs.get(sub_id)
        if sub is None:
            raise ApiError(404, f"Sorry, we couldn't find subscription {sub_id}.", code="resource_not_found")
        return sub

    def _with_customer(self, sub: Sub, *, scheduled: bool = False) -> dict[str, Any]:
        return {"subscription": sub.json(scheduled=scheduled), "customer": self._customers[sub.customer_id]}

    def _list_configurations(self, _: str, __: dict[str, Any]) -> dict[str, Any]:
        return {"configurations": [{"domain": SITE, "product_catalog_version": "v2",
                                    "chargebee_response_schema_type": "compat"}]}

    def _list_customers(self, _: str, params: dict[str, Any]) -> dict[str, Any]:
        limit, start = params.get("limit", 10), int(params.get("offset") or 0)
        email = params.get("email[is]")
        found = [c for c in self._customers.values() if email is None or c.get("email") == email]
        page: dict[str, Any] = {"list": [{"customer": c} for c in found[start:start + limit]]}
        if start + limit < len(found):
            page["next_offset"] = str(start + limit)
        return page

    def _retrieve_customer(self, customer_id: str, _: dict[str, Any]) -> dict[str, Any]:
        if customer_id not in self._customers:
            raise ApiError(404, f"Sorry, we couldn't find customer {customer_id}.", code="resource_not_found")
        return {"customer": self._customers[customer_id]}

    def _list_invoices(self, _: str, params: dict[str, Any]) -> dict[str, Any]:
        """Filters as Chargebee applies them: `[is]` equals, `paid_at[after]` strictly later (an invoice not
        paid has no paid_at, so never matches), sorted by `date` (then id); an unknown subscription lists none."""
        limit, start = params.get("limit", 10), int(params.get("offset") or 0)
        if not 1 <= limit <= 100:
            raise wrong("limit", "limit : must be between 1 and 100")
        found = [i for i in self._invoices
                 if params.get("subscription_id[is]") in (None, i["subscription_id"])
                 and params.get("customer_id[is]") in (None, i["customer_id"])
                 and params.get("status[is]") in (None, i["status"])
                 and ("paid_at[after]" not in params or i.get("paid_at", -1) > params["paid_at[after]"])
                 and ("paid_at[before]" not in params or -1 < i.get("paid_at", -1) < params["paid_at[before]"])]
        by = params.get("sort_by[desc]") or params.get("sort_by[asc]") or "date"
        found.sort(key=lambda i: (i[by], i["id"]), reverse="sort_by[desc]" in params)
        page: dict[str, Any] = {"list": [{"invoice": i} for i in found[start:start + limit]]}
        if start + limit < len(found):
            page["next_offset"] = str(start + limit)
        return page

    def _subscriptions_for_customer(self, customer_id: str, params: dict[str, Any]) -> dict[str, Any]:
        limit, start = params.get("limit", 10), int(params.get("offset") or 0)
        if not 1 <= limit <= 100:
            raise wrong("limit", "limit : must be between 1 and 100")
        mine = sorted((s for s in self._subs.values() if s.customer_id == customer_id), key=lambda s: s.id)
        page: dict[str, Any] = {"list": [{"subscription": s.json()} for s in mine[start:start + limit]]}
        if start + limit < len(mine):
            page["next_offset"] = str(start + limit)
        return page

    def _retrieve_subscription(self, sub_id: str, _: dict[str, Any]) -> dict[str, Any]:
        return self._with_customer(self._sub(sub_id))

    def _retrieve_with_scheduled_changes(self, sub_id: str, _: dict[str, Any]) -> dict[str, Any]:
        sub = self._sub(sub_id)
        if not sub.pending_plan:
            raise ApiError(400, "No changes are scheduled for this subscription.", code="invalid_request")
        return self._with_customer(sub, scheduled=True)

    def _retrieve_coupon(self, coupon_id: str, _: dict[str, Any]) -> dict[str, Any]:
        if coupon_id != COUPON:
            raise ApiError(404, f"Sorry, we couldn't find coupon {coupon_id}.", code="resource_not_found")
        return {"coupon": {"id": COUPON, "object": "coupon", "name": "Save 30%", "discount_type": "percentage",
                           "discount_percentage": 30.0, "duration_type": "forever", "status": "active",
                           "apply_on": "invoice_amount", "redemptions": 0, "created_at": 1700000000}}

    def _retrieve_item_price(self, price_id: str, _: dict[str, Any]) -> dict[str, Any]:
        if price_id not in PRICES:
            raise ApiError(404, f"Sorry, we couldn't find item price {price_id}.", code="resource_not_found")
        currency, months, kind, amount = PRICES[price_id]
        return {"item_price": {"id": price_id, "object": "item_price", "item_id": price_id, "item_type": kind,
                               "name": f"{price_id} {currency}", "pricing_model": "per_unit",
                               "price": amount, "period": 1 if months == 12 else months,
                               "period_unit": "year" if months == 12 else "month",
                               "currency_code": currency, "status": "active", "channel": "web"}}

    @staticmethod
    def _require_state(sub: Sub, *states: str) -> None:
        if sub.status not in states:
            raise ApiError(409, f"Subscription {sub.id} is {sub.status}; this needs {' or '.join(states)}.",
                           code="invalid_state_for_request")

    def _remove_scheduled_cancellation(self, sub_id: str, params: dict[str, Any]) -> dict[str, Any]:
        # Chargebee: only a non_renewing subscription has a cancellation to remove (else 409); it
        # renews again, in its trial if one is still running.
        sub = self._sub(sub_id)
        self._require_state(sub, "non_renewing")
        in_trial = sub.trial_end is not None and sub.trial_end > int(time.time())
        sub.status, sub.cancelled_at = ("in_trial" if in_trial else "active"), None
        return self._with_customer(sub)

    def _cancel_for_items(self, sub_id: str, params: dict[str, Any]) -> dict[str, Any]:
        sub = self._sub(sub_id)
        self._require_state(sub, "future", "in_trial", "active", "non_renewing", "paused")
        option = params.get("cancel_option") or ("end_of_term" if params.get("end_of_term") else "immediately")
        if option not in ("immediately", "end_of_term"):
            raise wrong("cancel_option", f"cancel_option : {option} is not supported by this server")
        code = params.get("cancel_reason_code")
        if code is not None and code not in REASON_CODES:
            raise wrong("cancel_reason_code", f"cancel_reason_code : {code} is not a cancellation reason code of "
                                              "this site")
        now = int(time.time())
        if option == "end_of_term":
            self._require_state(sub, "future", "in_trial", "active", "non_renewing")
            sub.status, sub.cancelled_at = "non_renewing", sub.term_end
        else:
            sub.status, sub.cancelled_at, sub.term_end = "cancelled", now, now
            sub.pending_plan, sub.pause_date, sub.resume_date = "", None, None
        if code is not None:
            sub.cancel_reason_code = code
        return self._with_customer(sub)

    def _update_for_items(self, sub_id: str, params: dict[str, Any]) -> dict[str, Any]:
        sub = self._sub(sub_id)
        self._require_state(sub, "future", "in_trial", "active", "non_renewing", "paused")
        items = params.get("subscription_items[item_price_id]", {})
        for field_name, given in params.items():
            if field_name.startswith("subscription_items[") and set(given) - set(items):
                raise ApiError(400, "subscription_items[item_price_id] : cannot be blank",
                               code="param_wrong_value", param="subscription_items[item_price_id]")
        for index, price in sorted(items.items()):
            if price not in PRICES:
                raise ApiError(404, f"Item price {price} is not present", code="resource_not_found",
                               param=f"subscription_items[item_price_id][{index}]")
            if PRICES[price][0] != PRICES[sub.plan][0]:
                raise wrong(f"subscription_items[item_price_id][{index}]",
                            f"The currency of item price {price} ({PRICES[price][0]}) does not match the "
                            f"subscription's ({PRICES[sub.plan][0]})")
        plans = [i for i, price in items.items() if PRICES[price][2] == "plan"]
        if len(plans) > 1:
            raise wrong("subscription_items[item_price_id]", "A subscription can have only one plan item")
        quantities = params.get("subscription_items[quantity]", {})
        for index, coupon in sorted(params.get("coupon_ids", {}).items()):
            if coupon != COUPON:
                raise ApiError(404, f"Coupon {coupon} is not present", code="resource_not_found",
                               param=f"coupon_ids[{index}]")
        option = params.get("change_option") or ("end_of_term" if params.get("end_of_term") else "immediately")
        if option == "specific_date":
            raise wrong("change_option", "change_option : specific_date is not supported by this server")
        if params.get("replace_coupon_list"):
            sub.coupons = []
        for _, coupon in sorted(params.get("coupon_ids", {}).items()):
            if coupon not in sub.coupons:
                sub.coupons.append(coupon)
        for index, price in sorted(items.items()):
            # Chargebee's default quantity for an item given without one is 1.
            count = int(quantities.get(index, 1))
            if PRICES[price][2] == "addon":
                sub.addons[price] = count
            elif option == "end_of_term":
                sub.pending_plan = price if price != sub.plan else ""
                sub.pending_quantity = count
            else:
                sub.plan, sub.quantity, sub.pending_plan = price, count, ""
        return self._with_customer(sub)

    def _pause(self, sub_id: str, params: dict[str, Any]) -> dict[str, Any]:
        sub = self._sub(sub_id)
        self._require_state(sub, "active", "non_renewing")
        if sub.pause_date:
            raise ApiError(409, "A pause is already scheduled for this subscription.",
                           code="invalid_state_for_request")
        if sub.pending_plan:
            raise ApiError(400, "The subscription has scheduled changes; remove them before pausing.",
                           code="operation_failed", type_="operation_failed")
        option, now = params.get("pause_option", "immediately"), int(time.time())
        if option not in ("immediately", "end_of_term"):
            raise wrong("pause_option", f"pause_option : {option} is not supported by this server")
        starts = now if option == "immediately" else sub.term_end
        resume = params.get("resume_date")
        if resume is not None and resume <= starts:
            raise wrong("resume_date", "resume_date : must be after the pause date")
        if option == "immediately":
            sub.status = "paused"
        sub.pause_date, sub.resume_date = starts, resume  # end_of_term: scheduled, active until then
        return self._with_customer(sub)

    def _change_term_end(self, sub_id: str, params: dict[str, Any]) -> dict[str, Any]:
        sub = self._sub(sub_id)
        self._require_state(sub, "in_trial", "active", "non_renewing")
        ends = params["term_ends_at"]
        if ends <= int(time.time()):
            raise wrong("term_ends_at", "term_ends_at : must be in the future")
        sub.term_end = ends
        if sub.status == "in_trial":
            sub.trial_end = ends
        elif sub.status == "non_renewing":
            sub.cancelled_at = ends
        return self._with_customer(sub)


def _handler_for(fake: ChargebeeFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length).decode() if length else ""
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, extra, answer = fake.handle(self.command, parts.path, parts.query, body, headers)
            payload = json.dumps(answer).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json;charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):  # the client gave up (a provoked timeout)
                self.close_connection = True

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler
