"""A local Paddle Billing (API v1) for tests: a stateful HTTP server on 127.0.0.1 for the endpoints our Paddle
provider calls, driven by the official `paddle-python-sdk`, which checks every request against Paddle's own
OpenAPI description (an excerpt of PaddleHQ/paddle-openapi `v1/openapi.yaml`, kept verbatim in
billing/testing/specs/paddle-openapi-excerpt.yaml) before acting on it.

A request is refused the way Paddle refuses it, with `{"error": {"type", "code", "detail",
"documentation_url", "errors"}, "meta": {"request_id"}}`: 401 `authentication_malformed` without a Bearer key
or with a wrong one, 400 `bad_request` for anything the description rules out (openapi-core checks path,
query and body types, enums, formats and required fields; on top of that an undeclared query parameter or
body field is refused too, so a misspelt name fails instead of being ignored), 404 `not_found` for unknown
ids, and the state rules Paddle documents: no change to a canceled subscription, `proration_billing_mode`
required with `items` or `next_billed_at`, every item of one subscription in one currency and one billing
cycle, a pause or `next_billed_at` in the future, one scheduled change at a time.

What it models: customers (with email), prices `basic` and `pro` (monthly, USD), `annual` (yearly, USD),
`basic-eur` (monthly, EUR) and `seats` (a monthly add-on billed per seat), the discount `SAVE30` (by code or
id), subscriptions with several items and quantities, trials (running, or ended 60 days ago), a scheduled
change (`cancel` or `pause` with its `resume_at`) and a discount. Paddle keeps no idempotency keys, and
neither does this server: every accepted write counts in `writes`.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from billing.providers.base import ZERO_DECIMAL, Credentials, add_months
from billing.testing import (
    COUPON,
    TRIAL_ENDED_DAYS_AGO,
    FaultsMixin,
    InjectedFaults,
    Remote,
    allow_api_base,
    forbid_api_base,
)
from billing.testing.paddle_spec import SpecError, check_field, check_request, load_spec
from brightback_site.testing import LocalHTTPServer

DOCS = "https://developer.paddle.com/v1/errors/shared/"
# price id: (name, currency, months per cycle, unit amount in the currency's smallest unit)
PRICES: dict[str, tuple[str, str, int, str]] = {
    "basic": ("Basic", "USD", 1, "1000"),
    "pro": ("Pro", "USD", 1, "3000"),
    "annual": ("Basic yearly", "USD", 12, "10000"),
    "basic-eur": ("Basic (EUR)", "EUR", 1, "900"),
    "seats": ("Extra seat", "USD", 1, "500"),
}
DISCOUNT_ID = "dsc_01hv6scyf7qdnzcdq01t2y8dx4"


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ") if moment else None


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _new_id(prefix: str) -> str:
    return prefix + "01" + "".join(secrets.choice("0123456789abcdefghjkmnpqrstvwxyz") for _ in range(24))


@dataclass
class _Item:
    price: str
    quantity: int


@dataclass
class _Sub:
    id: str
    customer: str
    items: list[_Item]
    created_at: datetime
    period_start: datetime
    next_billed_at: datetime | None
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    status: str = "active"
    canceled_at: datetime | None = None
    paused_at: datetime | None = None
    discount: str | None = None
    change: dict[str, Any] | None = None  # {"action", "effective_at", "resume_at"}
    updated_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def currency(self) -> str:
        return PRICES[self.items[0].price][1]

    @property
    def months(self) -> int:
        return PRICES[self.items[0].price][2]


Handler = Callable[..., tuple[int, dict | list]]
TRANSACTION_STATUSES = {"draft", "ready", "billed", "paid", "completed", "canceled", "past_due"}


class PaddleFake(FaultsMixin):
    """The FakeBilling for Paddle (see billing/testing/__init__.py)."""

    slug = "paddle"

    def __init__(self) -> None:
        load_spec()
        self.api_key = "pdl_sdbx_apikey_" + secrets.token_hex(16)
        self._lock = threading.RLock()
        self._generation = 0
        self._epoch = datetime(2024, 1, 2, tzinfo=UTC)
        self.reset()
        self._http = LocalHTTPServer(_handler_for(self), name="paddle-fake")
        self.port = self._http.port
        allow_api_base(f"http://127.0.0.1:{self.port}")

    # --- the FakeBilling protocol ---------------------------------------------------------------

    def credentials(self, *, timeout: float = 5.0) -> Credentials:
        return Credentials(api_key=self.api_key, api_base=f"http://127.0.0.1:{self.port}", timeout=timeout)

    def bad_credentials(self) -> Credentials:
        return Credentials(api_key="pdl_sdbx_apikey_wrong", api_base=f"http://127.0.0.1:{self.port}", timeout=5.0)

    def seed(self, *, customer_id: str, plan: str = "basic", trialing: bool = False, trial_ended: bool = False,
             extra_items: tuple[tuple[str, int], ...] = (), quantity: int = 1, email: str = "") -> str:
        """As the protocol says; also `extra_items` ((price, quantity) after the plan), the plan's `quantity`
        and the customer's `email` (default `<customer_id>@example.test`)."""
        now = datetime.now(UTC).replace(microsecond=0)
        with self._lock:
            self.customers.setdefault(customer_id, (email or f"{customer_id}@example.test", now))
            months = PRICES[plan][2]
            sub = _Sub(id=_new_id("sub_"), customer=customer_id,
                       items=[_Item(plan, quantity), *(_Item(p, q) for p, q in extra_items)],
                       created_at=now - timedelta(seconds=1000 - len(self.subs)), period_start=now,
                       next_billed_at=add_months(now, months))
            if trialing:
                sub.status, sub.trial_start, sub.trial_end = "trialing", now, now + timedelta(days=14)
                sub.next_billed_at = sub.trial_end
            elif trial_ended:
                ended = now - timedelta(days=TRIAL_ENDED_DAYS_AGO)
                sub.trial_start, sub.trial_end = ended - timedelta(days=14), ended
            self.subs[sub.id] = sub
            return sub.id

    def remote(self, subscription_id: str) -> Remote:
        with self._lock:
            sub = self.subs[subscription_id]
            action = (sub.change or {}).get("action")
            return Remote(status=sub.status, canceled=sub.status == "canceled",
                          cancel_at_period_end=action == "cancel",
                          coupons=(COUPON,) if sub.discount == DISCOUNT_ID else (),
                          paused=sub.status == "paused" or action == "pause",
                          plan=sub.items[0].price, pending_plan="", trial_end=sub.trial_end,
                          next_bill_at=sub.next_billed_at,
                          pause_resumes_at=(sub.change or {}).get("resume_at") if action == "pause" else None,
                          items=tuple((i.price, i.quantity) for i in sub.items))

    def invoice(self, subscription_id: str, *, amount: Decimal, paid_at: datetime | None, currency: str = "USD",
                status: str = "paid", created: datetime | None = None) -> str:
        """Paddle bills through transactions: a paid one is `completed` with a captured payment (its
        `captured_at` when it was paid), an unpaid one `past_due` with none. Amounts in the smallest unit."""
        made = created or paid_at or datetime.now(UTC)
        minor = str(int(amount.scaleb(0 if currency.upper() in ZERO_DECIMAL else 2)))
        with self._lock:
            sub = self.subs[subscription_id]
            paid = status == "paid"
            ident = _new_id("txn_")
            payments = [{"payment_attempt_id": secrets.token_hex(16), "stored_payment_method_id": secrets.token_hex(16),
                         "payment_method_id": _new_id("paymtd_"), "amount": minor, "status": "captured",
                         "error_code": None, "method_details": {"type": "card", "card": None},
                         "created_at": _iso(paid_at), "captured_at": _iso(paid_at)}] if paid and paid_at else []
            totals = {"subtotal": minor, "discount": "0", "tax": "0", "total": minor, "credit": "0",
                      "balance": "0" if paid else minor, "grand_total": minor, "fee": None, "earnings": None,
                      "currency_code": currency.upper(), "credit_to_balance": "0", "grand_total_tax": "0"}
            self.transactions.append({
                "id": ident, "status": "completed" if paid else "past_due", "customer_id": _new_id("ctm_"),
                "address_id": None, "business_id": None, "custom_data": None, "currency_code": currency.upper(),
                "origin": "subscription_recurring", "subscription_id": sub.id, "invoice_id": _new_id("inv_"),
                "invoice_number": f"{1000 + len(self.transactions)}", "collection_mode": "automatic",
                "discount_id": None, "billing_details": None, "billing_period": None, "items": [],
                "details": {"tax_rates_used": [], "totals": totals, "line_items": []}, "payments": payments,
                "checkout": None, "created_at": _iso(made), "updated_at": _iso(paid_at or made),
                "billed_at": _iso(made)})
            return ident

    def items(self, subscription_id: str) -> list[tuple[str, int]]:
        with self._lock:
            return [(i.price, i.quantity) for i in self.subs[subscription_id].items]

    def writes(self, subscription_id: str) -> int:
        with self._lock:
            return self._writes.get(subscription_id, 0)

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self.customers: dict[str, tuple[str, datetime]] = {}  # id: (email, created)
            self.subs: dict[str, _Sub] = {}
            self.transactions: list[dict[str, Any]] = []
            self._writes: dict[str, int] = {}
            self.faults = InjectedFaults()
            self.received: list[dict[str, Any]] = []

    def close(self) -> None:
        forbid_api_base(f"http://127.0.0.1:{self.port}")
        self._http.stop()

    # --- request handling -----------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict] | None:
        """(status, extra headers, JSON body) for one request; None drops the connection."""
        split = urlsplit(target)
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        with self._lock:
            self.received.append({"method": method, "path": split.path, "query": query, "headers": headers,
                                  "body": body})
            stall = self.faults.take_stall()
            generation = self._generation
        if stall:
            time.sleep(stall)
            if generation != self._generation:
                return None
        with self._lock:
            failure = self.faults.take_failure()
            if failure is not None:
                status, retry_after = failure
                extra = {"Retry-After": str(retry_after)} if retry_after else {}
                code = {401: "authentication_malformed", 403: "forbidden", 404: "not_found", 409: "conflict",
                        422: "invalid_field", 429: "too_many_requests"}.get(status, "internal_error")
                return status, extra, _error(status, code, f"Injected failure {status}")
        try:
            return self._route(method.lower(), split.path, query, headers, body)
        except SpecError as exc:
            return exc.status, {}, _error(exc.status, exc.code, exc.detail, exc.errors)
        except Exception as exc:  # a fault of this server: say so rather than drop the connection
            return 500, {}, _error(500, "internal_error", f"The local Paddle failed: {exc!r}")

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, dict, dict]:
        if headers.get("authorization", "") != f"Bearer {self.api_key}":
            return 401, {}, _error(401, "authentication_malformed", "Authentication header included, but "
                                   "incorrectly formatted or the API key is not valid")
        segments = path.strip("/").split("/")
        for verb, pattern, template, handler in ROUTES:
            if verb != method or len(pattern) != len(segments):
                continue
            args = [unquote(seg) for pat, seg in zip(pattern, segments, strict=True) if pat.startswith("{")]
            if all(pat == seg or pat.startswith("{") for pat, seg in zip(pattern, segments, strict=True)):
                check_request(method, template, path, query, body, headers)
                with self._lock:
                    status, data = handler(self, *args, query=query, body=json.loads(body) if body else {})
                return status, {}, {"data": data, "meta": {"request_id": secrets.token_hex(8)}}
        return 404, {}, _error(404, "not_found", f"No route for {method.upper()} {path}")

    # --- objects --------------------------------------------------------------------------------

    def _sub(self, ref: str) -> _Sub:
        sub = self.subs.get(ref)
        if sub is None:
            raise SpecError(404, "not_found", f"Entity {ref} not found")
        return sub

    def _wrote(self, sub: _Sub) -> None:
        sub.updated_at = datetime.now(UTC)
        self._writes[sub.id] = self._writes.get(sub.id, 0) + 1

    def _product(self, price: str) -> dict:
        return {"id": f"pro_{price}", "name": PRICES[price][0], "type": "standard", "tax_category": "standard",
                "description": None, "image_url": None, "custom_data": None, "status": "active",
                "import_meta": None, "created_at": _iso(self._epoch), "updated_at": _iso(self._epoch)}

    def _price(self, price: str) -> dict:
        name, currency, months, amount = PRICES[price]
        cycle = {"interval": "year", "frequency": 1} if months == 12 else {"interval": "month", "frequency": months}
        return {"id": price, "product_id": f"pro_{price}", "type": "standard", "description": name, "name": name,
                "tax_mode": "account_setting", "billing_cycle": cycle, "trial_period": None,
                "unit_price": {"amount": amount, "currency_code": currency}, "unit_price_overrides": [],
                "custom_data": None, "status": "active", "quantity": {"minimum": 1, "maximum": 100},
                "import_meta": None, "created_at": _iso(self._epoch), "updated_at": _iso(self._epoch)}

    def _discount(self) -> dict:
        return {"id": DISCOUNT_ID, "status": "active", "description": "30% off", "enabled_for_checkout": True,
                "code": COUPON, "type": "percentage", "amount": "30", "currency_code": None, "recur": True,
                "maximum_recurring_intervals": None, "usage_limit": None, "restrict_to": None, "expires_at": None,
                "times_used": 0, "mode": "standard", "discount_group_id": None, "custom_data": None,
                "import_meta": None, "created_at": _iso(self._epoch), "updated_at": _iso(self._epoch)}

    def _subscription(self, sub: _Sub) -> dict:
        months = sub.months
        cycle = {"interval": "year", "frequency": 1} if months == 12 else {"interval": "month", "frequency": months}
        period_end = sub.next_billed_at or add_months(sub.period_start, months)
        trial = ({"starts_at": _iso(sub.trial_start), "ends_at": _iso(sub.trial_end)}
                 if sub.trial_start and sub.trial_end else None)
        change = None
        if sub.change:
            change = {"action": sub.change["action"], "effective_at": _iso(sub.change["effective_at"]),
                      "resume_at": _iso(sub.change.get("resume_at"))}
        return {
            "id": sub.id, "status": sub.status, "customer_id": sub.customer, "address_id": "add_01local",
            "business_id": None, "currency_code": sub.currency, "created_at": _iso(sub.created_at),
            "updated_at": _iso(sub.updated_at), "started_at": _iso(sub.created_at),
            "first_billed_at": None if sub.status == "trialing" else _iso(sub.period_start),
            "next_billed_at": _iso(sub.next_billed_at) if sub.status in ("active", "trialing", "past_due") else None,
            "paused_at": _iso(sub.paused_at), "canceled_at": _iso(sub.canceled_at),
            "discount": {"id": sub.discount, "starts_at": _iso(period_end), "ends_at": None, "type": "recurring"}
            if sub.discount else None,
            "collection_mode": "automatic", "billing_details": None,
            "current_billing_period": None if sub.status in ("canceled", "paused")
            else {"starts_at": _iso(sub.period_start), "ends_at": _iso(period_end)},
            "billing_cycle": cycle, "scheduled_change": change,
            "management_urls": {"update_payment_method": None, "cancel": f"https://buyer-portal.paddle.com/{sub.id}"},
            "items": [{"status": "trialing" if sub.status == "trialing" else "active", "quantity": item.quantity,
                       "recurring": True, "created_at": _iso(sub.created_at), "updated_at": _iso(sub.updated_at),
                       "previously_billed_at": None if sub.status == "trialing" else _iso(sub.period_start),
                       "next_billed_at": _iso(sub.next_billed_at), "trial_dates": trial,
                       "price": self._price(item.price), "product": self._product(item.price)} for item in sub.items],
            "custom_data": None, "import_meta": None,
        }

    # --- endpoints ------------------------------------------------------------------------------

    def list_subscriptions(self, *, query: dict, body: dict) -> tuple[int, list]:
        customers = set(filter(None, query.get("customer_id", "").split(",")))
        statuses = set(filter(None, query.get("status", "").split(",")))
        found = [s for s in sorted(self.subs.values(), key=lambda s: s.id)
                 if (not customers or s.customer in customers) and (not statuses or s.status in statuses)]
        return 200, [self._subscription(s) for s in found[:int(query.get("per_page") or 50)]]

    def list_transactions(self, *, query: dict, body: dict) -> tuple[int, list]:
        """GET /transactions (not in the excerpt: checked here): comma-separated `subscription_id` and
        `status` filters, `per_page` (1-200), oldest first (Paddle's default `order_by=id[ASC]`)."""
        allowed = {"subscription_id", "status", "per_page", "after", "order_by", "customer_id", "id", "include"}
        unknown = sorted(set(query) - allowed)
        if unknown:
            raise SpecError(400, "bad_request", f"Unknown query parameters: {', '.join(unknown)}")
        statuses = set(filter(None, query.get("status", "").split(",")))
        if statuses - TRANSACTION_STATUSES:
            raise SpecError(400, "bad_request", f"Invalid status: {', '.join(sorted(statuses - TRANSACTION_STATUSES))}")
        per_page = int(query.get("per_page") or 30)
        if not 1 <= per_page <= 200:
            raise SpecError(400, "bad_request", "per_page must be between 1 and 200")
        subscriptions = set(filter(None, query.get("subscription_id", "").split(",")))
        found = [t for t in self.transactions if (not subscriptions or t["subscription_id"] in subscriptions)
                 and (not statuses or t["status"] in statuses)]
        return 200, found[:per_page]

    def get_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        return 200, self._subscription(self._sub(ref))

    def _editable(self, sub: _Sub) -> None:
        if sub.status == "canceled":
            raise SpecError(400, "subscription_locked_canceled", "Subscription is canceled and cannot be changed")

    def update_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        self._editable(sub)
        if ("items" in body or "next_billed_at" in body) and "proration_billing_mode" not in body:
            raise SpecError(400, "invalid_field", "proration_billing_mode is required when changing items or "
                            "next_billed_at", [{"field": "proration_billing_mode", "message": "required"}])
        for name, component in (("proration_billing_mode", "subscription_update_proration_billing_mode"),
                                ("next_billed_at", "timestamp")):
            if name in body:
                check_field(component, body[name], name)
        if body.get("discount"):
            check_field("effective_from", body["discount"].get("effective_from"), "discount.effective_from")
        if "scheduled_change" in body and body["scheduled_change"] is not None:
            raise SpecError(400, "invalid_field", "scheduled_change can only be null")
        items = sub.items
        if "items" in body:
            items = []
            for entry in body["items"]:
                if entry["price_id"] not in PRICES:
                    raise SpecError(404, "not_found", f"Price {entry['price_id']} not found")
                items.append(_Item(entry["price_id"], int(entry.get("quantity", 1))))
            if len({(PRICES[i.price][1], PRICES[i.price][2]) for i in items}) != 1:
                raise SpecError(400, "subscription_items_mismatched_currency_or_billing_cycle",
                                "Every item of a subscription must share its currency and billing cycle")
            if (PRICES[items[0].price][1], PRICES[items[0].price][2]) != (sub.currency, sub.months):
                raise SpecError(400, "subscription_currency_or_cycle_change_not_allowed",
                                "Items must keep the subscription's currency and billing cycle")
        moved = None
        if "next_billed_at" in body:
            if sub.status == "paused":
                raise SpecError(400, "subscription_paused", "A paused subscription has no next bill to move")
            moved = _parse_time(body["next_billed_at"])
            if moved <= datetime.now(UTC):
                raise SpecError(400, "invalid_field", "next_billed_at must be in the future")
        if body.get("discount"):
            if body["discount"]["id"] != DISCOUNT_ID:
                raise SpecError(404, "not_found", f"Discount {body['discount']['id']} not found")
        sub.items = items
        if moved is not None:
            sub.next_billed_at = moved
            if sub.status == "trialing":
                sub.trial_end = moved
        if "discount" in body:
            sub.discount = body["discount"]["id"] if body["discount"] else None
        if "scheduled_change" in body:
            sub.change = None
        self._wrote(sub)
        return 200, self._subscription(sub)

    def cancel_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        self._editable(sub)
        now = datetime.now(UTC)
        if body.get("effective_from") == "immediately":
            sub.status, sub.canceled_at, sub.change, sub.next_billed_at = "canceled", now, None, None
        else:
            if sub.change:
                raise SpecError(400, "subscription_locked_pending_changes",
                                f"Subscription has a scheduled {sub.change['action']}; remove it first")
            sub.change = {"action": "cancel", "effective_at": sub.next_billed_at, "resume_at": None}
        self._wrote(sub)
        return 200, self._subscription(sub)

    def pause_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        self._editable(sub)
        if sub.status == "paused" or sub.change:
            raise SpecError(400, "subscription_locked_pending_changes",
                            "Subscription is paused or has a scheduled change")
        now = datetime.now(UTC)
        resume = _parse_time(body["resume_at"]) if body.get("resume_at") else None
        at = now if body.get("effective_from") == "immediately" else sub.next_billed_at
        if resume is not None and at is not None and resume <= at:
            raise SpecError(400, "invalid_field", "resume_at must be after the pause takes effect")
        if at == now:
            sub.status, sub.paused_at, sub.next_billed_at = "paused", now, None
            sub.change = {"action": "resume", "effective_at": resume, "resume_at": None} if resume else None
        else:
            sub.change = {"action": "pause", "effective_at": at, "resume_at": resume}
        self._wrote(sub)
        return 200, self._subscription(sub)

    def list_customers(self, *, query: dict, body: dict) -> tuple[int, list]:
        emails = {e.lower() for e in query.get("email", "").split(",") if e}
        ids = set(filter(None, query.get("id", "").split(",")))
        found = [(cid, email, created) for cid, (email, created) in sorted(self.customers.items())
                 if (not emails or email.lower() in emails) and (not ids or cid in ids)]
        return 200, [{"id": cid, "name": None, "email": email, "marketing_consent": False, "status": "active",
                      "custom_data": None, "locale": "en", "created_at": _iso(created), "updated_at": _iso(created),
                      "import_meta": None} for cid, email, created in found]

    def get_price(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        if ref not in PRICES:
            raise SpecError(404, "not_found", f"Entity {ref} not found")
        return 200, self._price(ref)

    def list_discounts(self, *, query: dict, body: dict) -> tuple[int, list]:
        codes = set(filter(None, query.get("code", "").split(",")))
        ids = set(filter(None, query.get("id", "").split(",")))
        wanted = (not codes or COUPON in codes) and (not ids or DISCOUNT_ID in ids)
        return 200, [self._discount()] if wanted else []

    def get_discount(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        if ref != DISCOUNT_ID:
            raise SpecError(404, "not_found", f"Entity {ref} not found")
        return 200, self._discount()


def _error(status: int, code: str, detail: str, errors: list[dict[str, str]] | None = None) -> dict:
    return {"error": {"type": "api_error" if status >= 500 else "request_error", "code": code, "detail": detail,
                      "documentation_url": DOCS + code, **({"errors": errors} if errors else {})},
            "meta": {"request_id": secrets.token_hex(8)}}


_ENDPOINTS: list[tuple[str, str, Handler]] = [
    ("get", "/subscriptions", PaddleFake.list_subscriptions),
    ("get", "/transactions", PaddleFake.list_transactions),
    ("get", "/subscriptions/{subscription_id}", PaddleFake.get_subscription),
    ("patch", "/subscriptions/{subscription_id}", PaddleFake.update_subscription),
    ("post", "/subscriptions/{subscription_id}/cancel", PaddleFake.cancel_subscription),
    ("post", "/subscriptions/{subscription_id}/pause", PaddleFake.pause_subscription),
    ("get", "/customers", PaddleFake.list_customers),
    ("get", "/prices/{price_id}", PaddleFake.get_price),
    ("get", "/discounts", PaddleFake.list_discounts),
    ("get", "/discounts/{discount_id}", PaddleFake.get_discount),
]
ROUTES = [(method, template.strip("/").split("/"), template, handler) for method, template, handler in _ENDPOINTS]


def _handler_for(fake: PaddleFake) -> type[BaseHTTPRequestHandler]:
    class PaddleHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            answer = fake.answer(self.command, self.path, headers, body)
            if answer is None:
                self.close_connection = True
                return
            status, extra, reply = answer
            data = json.dumps(reply).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in extra.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        do_GET = do_PATCH = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    return PaddleHandler
