"""A local Recurly (API v2021-02-25) for tests: a stateful HTTP server on 127.0.0.1 for the endpoints our
Recurly provider calls, which checks every request against Recurly's own OpenAPI description
(billing/testing/specs/recurly-v2021-02-25.yaml, MIT, unchanged) before acting on it.

A request is refused the way Recurly refuses it, with `{"error": {"type", "message", "params"}}`:
401 `unauthorized` for a wrong key (Basic auth, key as user name), 406 `invalid_api_version` without
the version's Accept header, 422 `validation` for anything the spec rules out (openapi-core checks
path, query and body types, enums, formats and required fields; on top of that an undeclared query
parameter or body attribute is refused too, so a misspelt name fails instead of being ignored),
400 `bad_request` for a body that is not JSON, 404 `not_found` for unknown ids and codes. Each answer
is itself checked against the spec's response schema before it leaves (a mismatch is a 500 naming it),
so what the SDK parses is shaped as Recurly shapes it.

What it models: one site, the plans `basic` and `pro` (USD monthly), `annual` (USD yearly) and
`basic-eur` (EUR monthly), each with the add-on `seats`, the coupon `SAVE30` (redeemed on a subscription),
accounts by code (with an email, looked up with `GET /accounts?email=`), subscriptions with a quantity
and add-ons (cancel at term end, terminate now with its `refund` carried out: `none`, `partial` for the
unused part of the period or `full`, read back with `refunded(sub)`; scheduled pause; plan change now
or at renewal as a `pending_change`, its quantity 1 when none is sent, as Recurly's default, its add-ons
kept, a plan without the subscription's currency refused; next bill date / trial end moves) and coupon
redemptions. Headers the
description does not declare (such as `Idempotency-Key`) are recorded in `received` and otherwise ignored:
the description promises nothing about them, so the server does not act on them either.
"""

from __future__ import annotations

import base64
import calendar
import json
import secrets
import string
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from billing.providers.base import Credentials
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
from billing.testing.recurly_spec import API_VERSION, ERROR_TYPES, SpecError, check_request, check_response, load_spec
from brightback_site.testing import LocalHTTPServer

# Plans billed other than monthly, by their length in months (`annual`: a yearly plan, Recurly's fake only).
INTERVAL_MONTHS = {"annual": 12}
CURRENCIES = {"basic-eur": "EUR"}  # plans priced other than in USD alone
ADD_ON = "seats"  # every plan's add-on, billed per seat
UNIT_AMOUNT = {"basic": 10.0, "pro": 30.0, "annual": 100.0, "basic-eur": 9.0}
def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def _parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _new_id() -> str:
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))


@dataclass
class _Sub:
    id: str
    uuid: str
    account: str  # account code
    plan: str  # plan code
    seq: int
    created_at: datetime
    period_start: datetime
    period_end: datetime
    trial_start: datetime | None = None
    trial_end: datetime | None = None
    state: str = "active"
    canceled_at: datetime | None = None
    expires_at: datetime | None = None
    paused_at: datetime | None = None
    pause_cycles: int | None = None
    pending_plan: str = ""
    pending_id: str = ""
    pending_quantity: int = 1
    redemptions: list[tuple[str, str, datetime]] = field(default_factory=list)  # (id, coupon code, at)
    quantity: int = 1
    add_ons: list[tuple[str, str, int]] = field(default_factory=list)  # (subscription add-on id, code, quantity)
    currency: str = "USD"
    refunded: float | None = None  # money refunded by a terminate (None: not terminated)


@dataclass
class _Redemption:
    id: str
    account: str
    coupon: str
    subscription_id: str | None
    created_at: datetime


Handler = Callable[..., tuple[int, dict]]


class RecurlyFake(FaultsMixin):
    """The FakeBilling for Recurly (see billing/testing/__init__.py)."""

    slug = "recurly"

    def __init__(self) -> None:
        load_spec()
        self.api_key = "recurly_test_" + secrets.token_hex(8)
        self._lock = threading.RLock()
        self._generation = 0
        self._plans = {code: _new_id() for code in (*PLANS, *INTERVAL_MONTHS, *CURRENCIES)}
        self._add_on_id = _new_id()
        self._coupon_id = _new_id()
        self._site_id = _new_id()
        self.reset()
        self._http = LocalHTTPServer(_handler_for(self), name="recurly-fake")
        self.port = self._http.port
        allow_api_base(f"http://127.0.0.1:{self.port}")

    # --- the FakeBilling protocol ---------------------------------------------------------------

    def credentials(self, *, timeout: float = 5.0) -> Credentials:
        return Credentials(api_key=self.api_key, api_base=f"http://127.0.0.1:{self.port}", timeout=timeout)

    def bad_credentials(self) -> Credentials:
        return Credentials(api_key="recurly_wrong_key", api_base=f"http://127.0.0.1:{self.port}", timeout=5.0)

    def seed(self, *, customer_id: str, plan: str = "basic", trialing: bool = False, trial_ended: bool = False,
             extra_items: tuple[tuple[str, int], ...] = (), quantity: int = 1, email: str = "") -> str:
        """As the protocol says; `extra_items` are add-ons of the plan (only `seats` exists)."""
        now = datetime.now(UTC).replace(microsecond=0)
        if any(code != ADD_ON for code, _ in extra_items):
            raise ValueError(f"the local Recurly's only add-on is {ADD_ON}")
        with self._lock:
            self._accounts.setdefault(customer_id, (_new_id(), now))
            self._emails.setdefault(customer_id, email or f"{customer_id}@example.test")
            self._seq += 1
            sub = _Sub(id=_new_id(), uuid=secrets.token_hex(16), account=customer_id, plan=plan, seq=self._seq,
                       created_at=now, period_start=now,
                       period_end=now + timedelta(days=365 if plan in INTERVAL_MONTHS else 30),
                       quantity=quantity, currency=CURRENCIES.get(plan, "USD"),
                       add_ons=[(_new_id(), code, count) for code, count in extra_items])
            if trialing:
                sub.trial_start, sub.trial_end = now, now + timedelta(days=14)
                sub.period_end = sub.trial_end  # a trial is the subscription's first period in Recurly
            elif trial_ended:
                ended = now - timedelta(days=TRIAL_ENDED_DAYS_AGO)
                sub.trial_start, sub.trial_end = ended - timedelta(days=14), ended
            self._subs[sub.id] = sub
            return sub.id

    def invoice(self, subscription_id: str, *, amount: Decimal, paid_at: datetime | None, currency: str = "USD",
                status: str = "paid", created: datetime | None = None) -> str:
        made = created or paid_at or datetime.now(UTC)
        with self._lock:
            sub = self._subs[subscription_id]
            paid = status == "paid"
            self._seq += 1
            self._invoices.append({
                "id": _new_id(), "object": "invoice", "type": "charge", "origin": "renewal",
                "state": "paid" if paid else "past_due", "number": str(1000 + self._seq), "currency": currency.upper(),
                "subscription_ids": [sub.id], "collection_method": "automatic", "net_terms": 0,
                "total": float(amount), "subtotal": float(amount), "tax": 0.0, "discount": 0.0,
                "paid": float(amount) if paid else 0.0, "balance": 0.0 if paid else float(amount),
                "created_at": _iso(made), "due_at": _iso(made), "updated_at": _iso(paid_at or made),
                "closed_at": _iso(paid_at) if paid else None, "seq": self._seq, "account_code": sub.account,
            })
            return str(self._invoices[-1]["id"])

    def remote(self, subscription_id: str) -> Remote:
        with self._lock:
            sub = self._subs[subscription_id]
            return Remote(status=sub.state, canceled=sub.state in ("expired", "failed"),
                          cancel_at_period_end=sub.state == "canceled",
                          coupons=tuple(code for _, code, _ in sub.redemptions), paused=sub.paused_at is not None,
                          plan=sub.plan, pending_plan=sub.pending_plan, trial_end=sub.trial_end,
                          next_bill_at=sub.period_end, pause_resumes_at=self._resumes(sub),
                          items=((sub.plan, sub.quantity), *((code, count) for _, code, count in sub.add_ons)))

    def items(self, subscription_id: str) -> list[tuple[str, int]]:
        return list(self.remote(subscription_id).items)

    def refunded(self, subscription_id: str) -> float | None:
        """The money a terminate refunded (0.0 for `refund=none`), None when it was not terminated."""
        with self._lock:
            return self._subs[subscription_id].refunded

    @staticmethod
    def _resumes(sub: _Sub) -> datetime | None:
        """A paused subscription bills again after its remaining pause cycles of its plan."""
        if sub.paused_at is None or not sub.pause_cycles:
            return None
        months = sub.pause_cycles * INTERVAL_MONTHS.get(sub.plan, 1)
        index = sub.paused_at.month - 1 + months
        year, month = sub.paused_at.year + index // 12, index % 12 + 1
        return sub.paused_at.replace(year=year, month=month,
                                     day=min(sub.paused_at.day, calendar.monthrange(year, month)[1]))

    def writes(self, subscription_id: str) -> int:
        with self._lock:
            return self._writes.get(subscription_id, 0)

    def reset(self) -> None:
        with self._lock:
            self._generation += 1
            self._accounts: dict[str, tuple[str, datetime]] = {}
            self._emails: dict[str, str] = {}
            self._subs: dict[str, _Sub] = {}
            self._account_redemptions: list[_Redemption] = []
            self._invoices: list[dict[str, Any]] = []
            self._writes: dict[str, int] = {}
            self.faults = InjectedFaults()
            self.received: list[dict[str, Any]] = []  # every request as it arrived, for tests to inspect
            self._seq = 0

    def close(self) -> None:
        forbid_api_base(f"http://127.0.0.1:{self.port}")
        self._http.stop()

    # --- request handling -----------------------------------------------------------------------

    def answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> tuple[int, dict, dict] | None:
        """Work out (status, extra headers, JSON body) for one request; None drops the connection."""
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
                return None  # the test that stalled this request is over
        with self._lock:
            failure = self.faults.take_failure()
            if failure is not None:
                status, retry_after = failure
                extra = {"Retry-After": str(retry_after),
                         "X-RateLimit-Reset": str(int(time.time()) + retry_after)} if retry_after else {}
                return status, extra, _error(status, f"Injected failure {status}")
        try:
            return self._route(method.lower(), split.path, query, headers, body)
        except SpecError as exc:
            return exc.status, {}, _error(exc.status, exc.message, exc.params)
        except Exception as exc:  # a fault of this server: say so rather than drop the connection
            return 500, {}, _error(500, f"The local Recurly failed: {exc!r}")

    def _route(self, method: str, path: str, query: dict[str, str], headers: dict[str, str],
               body: bytes) -> tuple[int, dict, dict]:
        auth = headers.get("authorization", "")
        try:
            user = base64.b64decode(auth.removeprefix("Basic "), validate=True).decode(errors="replace")
        except ValueError:
            user = ""
        if not auth.startswith("Basic ") or user.partition(":")[0] != self.api_key:
            return 401, {}, _error(401, "Invalid API key. Please use a valid key and try again")
        if headers.get("accept", "").removesuffix("+json") not in (f"application/vnd.recurly.{API_VERSION}",
                                                                   "application/vnd.recurly.latest"):
            return 406, {}, _error(406, "That accept header isn't in the format we use to specify an API version")
        segments = [unquote(s) for s in path.strip("/").split("/")]
        route = next((r for r in ROUTES if r[0] == method and len(r[1]) == len(segments) and all(
            p.startswith("{") or p == s for p, s in zip(r[1], segments, strict=True))), None)
        if route is None:
            return 404, {}, _error(404, f"The local Recurly does not serve {method.upper()} {path}")
        _, pattern, template, handler = route
        check_request(method, template, path, query, body, headers)
        args = [s for p, s in zip(pattern, segments, strict=True) if p.startswith("{")]
        payload = json.loads(body) if body else {}
        with self._lock:
            status, reply = handler(self, *args, query=query, body=payload)
        reply = _compact(reply)
        check_response(method, path, query, status, json.dumps(reply).encode())
        if reply.get("object") == "list":
            # A last page says `"next": null`: the spec declares nothing nullable, but the SDK's pager
            # reads `next` from every page, so the key has to be there.
            reply.setdefault("next", None)
        return status, {}, reply

    # --- lookups and shapes ---------------------------------------------------------------------

    def _sub(self, ref: str) -> _Sub:
        found = next((s for s in self._subs.values() if s.uuid == ref[5:]), None) if ref.startswith("uuid-") \
            else self._subs.get(ref)
        if found is None:
            raise SpecError(404, f"Couldn't find Subscription with id = {ref}")
        return found

    def _account_code(self, ref: str) -> str:
        if ref.startswith("code-") and ref[5:] in self._accounts:
            return ref[5:]
        found = next((code for code, (aid, _) in self._accounts.items() if aid == ref), None)
        if found is None:
            raise SpecError(404, f"Couldn't find Account with {'code' if ref.startswith('code-') else 'id'} = "
                                 f"{ref.removeprefix('code-')}")
        return found

    def _plan_code(self, ref: str) -> str:
        code = ref[5:] if ref.startswith("code-") else next((c for c, i in self._plans.items() if i == ref), "")
        if code not in self._plans:
            raise SpecError(404, f"Couldn't find Plan with code = {ref.removeprefix('code-')}")
        return code

    def _wrote(self, sub: _Sub) -> None:
        self._writes[sub.id] = self._writes.get(sub.id, 0) + 1

    def _plan_mini(self, code: str) -> dict:
        return {"id": self._plans[code], "object": "plan", "code": code, "name": code.title()}

    def _coupon(self) -> dict:
        now = _iso(datetime(2026, 1, 1, tzinfo=UTC))
        return {"id": self._coupon_id, "object": "coupon", "code": COUPON, "name": "Save 30%", "state": "redeemable",
                "duration": "forever", "coupon_type": "single_code", "redemption_resource": "subscription",
                "applies_to_all_plans": True, "discount": {"type": "percent", "percent": 30},
                "created_at": now, "updated_at": now}

    def _subscription(self, sub: _Sub) -> dict:
        account_id, _ = self._accounts[sub.account]
        pending = None
        if sub.pending_plan:
            pending = {"id": sub.pending_id, "object": "subscription_change", "subscription_id": sub.id,
                       "plan": self._plan_mini(sub.pending_plan), "activate_at": _iso(sub.period_end),
                       "activated": False, "quantity": sub.pending_quantity,
                       "unit_amount": UNIT_AMOUNT[sub.pending_plan]}
        return {
            "id": sub.id, "object": "subscription", "uuid": sub.uuid,
            "account": {"id": account_id, "object": "account", "code": sub.account},
            "plan": self._plan_mini(sub.plan), "state": sub.state, "pending_change": pending,
            "coupon_redemptions": [
                {"id": rid, "object": "coupon_redemption", "state": "active", "created_at": _iso(at),
                 "coupon": {"id": self._coupon_id, "object": "coupon", "code": code, "name": "Save 30%",
                            "state": "redeemable", "coupon_type": "single_code"}}
                for rid, code, at in sub.redemptions],
            "current_period_started_at": _iso(sub.period_start), "current_period_ends_at": _iso(sub.period_end),
            "current_term_started_at": _iso(sub.period_start), "current_term_ends_at": _iso(sub.period_end),
            "trial_started_at": _iso(sub.trial_start), "trial_ends_at": _iso(sub.trial_end),
            "paused_at": _iso(sub.paused_at), "remaining_pause_cycles": sub.pause_cycles,
            "auto_renew": True, "currency": sub.currency, "unit_amount": UNIT_AMOUNT[sub.plan],
            "quantity": sub.quantity,
            "add_ons": [{"id": aid, "object": "subscription_add_on", "subscription_id": sub.id,
                         "add_on": {"id": self._add_on_id, "object": "add_on", "code": code, "name": "Seats"},
                         "quantity": count, "unit_amount": 5.0, "created_at": _iso(sub.created_at)}
                        for aid, code, count in sub.add_ons],
            "collection_method": "automatic", "created_at": _iso(sub.created_at),
            "updated_at": _iso(datetime.now(UTC)), "activated_at": _iso(sub.created_at),
            "canceled_at": _iso(sub.canceled_at), "expires_at": _iso(sub.expires_at),
        }

    def _redemption(self, red: _Redemption) -> dict:
        account_id, _ = self._accounts[red.account]
        return {"id": red.id, "object": "coupon_redemption", "subscription_id": red.subscription_id,
                "account": {"id": account_id, "object": "account", "code": red.account},
                "coupon": self._coupon(), "state": "active", "currency": "USD", "discounted": 0.0,
                "created_at": _iso(red.created_at), "updated_at": _iso(red.created_at)}

    # --- endpoints (called under the lock, after the spec check) ----------------------------------

    def list_sites(self, *, query: dict, body: dict) -> tuple[int, dict]:
        site: dict[str, Any] = {"id": self._site_id, "object": "site", "subdomain": "brightback-test",
                                "mode": "sandbox", "features": [], "created_at": _iso(datetime(2026, 1, 1, tzinfo=UTC))}
        return 200, {"object": "list", "has_more": False, "next": None, "data": [site]}

    def list_account_subscriptions(self, account: str, *, query: dict, body: dict) -> tuple[int, dict]:
        code = self._account_code(account)
        subs = [s for s in self._subs.values() if s.account == code]
        state = query.get("state")
        if state == "live":
            subs = [s for s in subs if s.state in ("active", "canceled", "future")]
        elif state == "in_trial":
            now = datetime.now(UTC)
            subs = [s for s in subs if s.trial_end and s.trial_start and s.trial_start < now < s.trial_end]
        elif state:
            subs = [s for s in subs if s.state == state]
        subs.sort(key=lambda s: s.seq, reverse=query.get("order", "desc") == "desc")
        if "ids" in query:  # the spec's one way to name records, and how our `next` pages go on
            wanted = query["ids"].split(",")
            return 200, {"object": "list", "has_more": False, "next": None,
                         "data": [self._subscription(s) for s in subs if s.id in wanted]}
        page, rest = subs[:int(query.get("limit", 20))], subs[int(query.get("limit", 20)):]
        more = f"/accounts/{account}/subscriptions?ids={','.join(s.id for s in rest[:200])}" if rest else None
        return 200, {"object": "list", "has_more": bool(rest), "next": more,
                     "data": [self._subscription(s) for s in page]}

    def list_subscription_invoices(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        """`state` and `type` filters; `begin_time`/`end_time` on the `sort` field (created_at by default),
        inclusive; `order` (desc by default); `limit`; an unknown subscription is a 404."""
        sub = self._sub(ref)
        sort = query.get("sort", "created_at")
        begin = _parse_time(query["begin_time"]) if "begin_time" in query else None
        end = _parse_time(query["end_time"]) if "end_time" in query else None
        found = [i for i in self._invoices if sub.id in i["subscription_ids"]
                 and query.get("state") in (None, i["state"]) and query.get("type") in (None, i["type"])
                 and (begin is None or _parse_time(i[sort]) >= begin) and (end is None or _parse_time(i[sort]) <= end)]
        found.sort(key=lambda i: (i[sort], i["seq"]), reverse=query.get("order", "desc") == "desc")
        account_id, _ = self._accounts[sub.account]
        limit = int(query.get("limit", 20))
        data = [{**{k: v for k, v in i.items() if k not in ("seq", "account_code")},
                 "account": {"id": account_id, "object": "account", "code": i["account_code"]}}
                for i in found[:limit]]
        more = found[limit:]
        following = f"/subscriptions/{ref}/invoices?ids={','.join(i['id'] for i in more[:200])}" if more else None
        if "ids" in query:
            wanted = query["ids"].split(",")
            data = [d for d in data if d["id"] in wanted]
        return 200, {"object": "list", "has_more": bool(more), "next": following, "data": data}

    def get_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        return 200, self._subscription(self._sub(ref))

    def get_plan(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        code = self._plan_code(ref)
        return 200, {**self._plan_mini(code), "state": "active", "interval_unit": "months",
                     "interval_length": INTERVAL_MONTHS.get(code, 1),
                     "currencies": [{"currency": CURRENCIES.get(code, "USD"), "unit_amount": UNIT_AMOUNT[code]}]}

    def list_accounts(self, *, query: dict, body: dict) -> tuple[int, dict]:
        codes = [code for code in self._accounts if "email" not in query or self._emails.get(code) == query["email"]]
        data = [{"id": self._accounts[code][0], "object": "account", "code": code, "email": self._emails.get(code),
                 "state": "active", "created_at": _iso(self._accounts[code][1])} for code in codes]
        return 200, {"object": "list", "has_more": False, "next": None, "data": data[:int(query.get("limit", 20))]}

    def get_coupon(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        if ref not in (f"code-{COUPON}", self._coupon_id):
            raise SpecError(404, f"Couldn't find Coupon with code = {ref.removeprefix('code-')}")
        return 200, self._coupon()

    def list_active_coupon_redemptions(self, account: str, *, query: dict, body: dict) -> tuple[int, dict]:
        code = self._account_code(account)
        data = [self._redemption(r) for r in self._account_redemptions if r.account == code]
        return 200, {"object": "list", "has_more": False, "next": None, "data": data}

    def create_coupon_redemption(self, account: str, *, query: dict, body: dict) -> tuple[int, dict]:
        code = self._account_code(account)
        if body["coupon_id"] not in (self._coupon_id, f"code-{COUPON}"):
            raise SpecError(404, f"Couldn't find Coupon with id = {body['coupon_id']}")
        now = datetime.now(UTC).replace(microsecond=0)
        red = _Redemption(id=_new_id(), account=code, coupon=COUPON, subscription_id=None, created_at=now)
        if body.get("subscription_id"):
            sub = self._sub(body["subscription_id"])
            if sub.account != code:
                raise SpecError(422, "Subscription does not belong to this account", [{"param": "subscription_id"}])
            if any(c == COUPON for _, c, _ in sub.redemptions):
                raise SpecError(422, f"Coupon {COUPON} has already been redeemed on this subscription",
                                [{"param": "coupon_id"}])
            red.subscription_id = sub.id
            sub.redemptions.append((red.id, COUPON, now))
            self._wrote(sub)
        self._account_redemptions.append(red)
        return 200, self._redemption(red)

    def cancel_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        if sub.state not in ("active", "future"):
            raise SpecError(422, "Only active and future subscriptions can be canceled")
        sub.state, sub.canceled_at, sub.expires_at = "canceled", datetime.now(UTC), sub.period_end
        self._wrote(sub)
        return 200, self._subscription(sub)

    def reactivate_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        if sub.state != "canceled":  # the spec's own example: "Only canceled subscriptions can be reactivated"
            raise SpecError(422, "Only canceled subscriptions can be reactivated")
        sub.state, sub.canceled_at, sub.expires_at = "active", None, None
        self._wrote(sub)
        return 200, self._subscription(sub)

    def terminate_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        if sub.state in ("expired", "failed"):
            raise SpecError(422, "Cannot expire an inactive subscription.")
        now = datetime.now(UTC)
        # Recurly's `refund`: none (the default), partial (the unused part of the period) or full.
        charged = UNIT_AMOUNT[sub.plan] * sub.quantity + sum(5.0 * count for _, _, count in sub.add_ons)
        span = (sub.period_end - sub.period_start).total_seconds() or 1.0
        unused = max(0.0, (sub.period_end - now).total_seconds()) / span
        sub.refunded = round({"none": 0.0, "partial": charged * unused, "full": charged}[query.get("refund", "none")],
                             2)
        sub.state, sub.expires_at, sub.canceled_at = "expired", now, sub.canceled_at or now
        sub.pending_plan, sub.paused_at, sub.pause_cycles = "", None, None
        self._wrote(sub)
        return 200, self._subscription(sub)

    def pause_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        cycles = body["remaining_pause_cycles"]
        if sub.state not in ("active", "paused") or cycles < 0:
            raise SpecError(422, "Only active subscriptions can be paused", [{"param": "remaining_pause_cycles"}])
        sub.paused_at, sub.pause_cycles = (sub.period_end, cycles) if cycles else (None, None)
        self._wrote(sub)
        return 200, self._subscription(sub)

    def create_subscription_change(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        if sub.state not in ("active", "canceled", "paused"):
            raise SpecError(422, "Subscription must be active to change it")
        plan_ref = body.get("plan_id") or (f"code-{body['plan_code']}" if body.get("plan_code") else "")
        plan = self._plan_code(plan_ref) if plan_ref else sub.plan
        if CURRENCIES.get(plan, "USD") != sub.currency:
            raise SpecError(422, f"Plan {plan} has no price in {sub.currency}, the subscription's currency",
                            [{"param": "plan_code"}])
        quantity = int(body.get("quantity", 1))  # Recurly's default for a change that names none
        if "add_ons" in body:
            raise SpecError(422, "This local Recurly keeps add-ons: it does not change them", [{"param": "add_ons"}])
        change_id = _new_id()
        if body.get("timeframe", "now") == "now":
            sub.plan, sub.quantity, sub.pending_plan, activate_at = plan, quantity, "", datetime.now(UTC)
        else:
            sub.pending_plan, sub.pending_id, activate_at = plan, change_id, sub.period_end
            sub.pending_quantity = quantity
        self._wrote(sub)
        return 201, {"id": change_id, "object": "subscription_change", "subscription_id": sub.id,
                     "plan": self._plan_mini(plan), "activate_at": _iso(activate_at),
                     "activated": not sub.pending_plan, "quantity": quantity, "unit_amount": UNIT_AMOUNT[plan]}

    def update_subscription(self, ref: str, *, query: dict, body: dict) -> tuple[int, dict]:
        sub = self._sub(ref)
        if sub.state in ("expired", "failed"):
            raise SpecError(422, "Cannot update an inactive subscription.")
        if "next_bill_date" in body:
            when = _parse_time(body["next_bill_date"])
            if when <= datetime.now(UTC):
                raise SpecError(422, "next_bill_date must be in the future", [{"param": "next_bill_date"}])
            if sub.trial_end and sub.trial_end > datetime.now(UTC):
                sub.trial_end = when  # a trialing subscription's next bill is its trial end
            sub.period_end = when
        self._wrote(sub)
        return 200, self._subscription(sub)


def _compact(value: Any) -> Any:
    """Leave out empty fields, as the spec declares none of them nullable."""
    if isinstance(value, dict):
        return {k: _compact(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_compact(v) for v in value]
    return value


def _error(status: int, message: str, params: list[dict[str, str]] | None = None) -> dict:
    return {"error": {"type": ERROR_TYPES.get(status, "bad_request"), "message": message, "params": params or []}}


# (method, path segments with {placeholders}, the spec's path, handler)
_ENDPOINTS: list[tuple[str, str, Handler]] = [
    ("get", "/sites", RecurlyFake.list_sites),
    ("get", "/accounts", RecurlyFake.list_accounts),
    ("get", "/accounts/{account_id}/subscriptions", RecurlyFake.list_account_subscriptions),
    ("get", "/accounts/{account_id}/coupon_redemptions/active", RecurlyFake.list_active_coupon_redemptions),
    ("post", "/accounts/{account_id}/coupon_redemptions/active", RecurlyFake.create_coupon_redemption),
    ("get", "/coupons/{coupon_id}", RecurlyFake.get_coupon),
    ("get", "/plans/{plan_id}", RecurlyFake.get_plan),
    ("get", "/subscriptions/{subscription_id}", RecurlyFake.get_subscription),
    ("get", "/subscriptions/{subscription_id}/invoices", RecurlyFake.list_subscription_invoices),
    ("put", "/subscriptions/{subscription_id}", RecurlyFake.update_subscription),
    ("delete", "/subscriptions/{subscription_id}", RecurlyFake.terminate_subscription),
    ("put", "/subscriptions/{subscription_id}/cancel", RecurlyFake.cancel_subscription),
    ("put", "/subscriptions/{subscription_id}/reactivate", RecurlyFake.reactivate_subscription),
    ("put", "/subscriptions/{subscription_id}/pause", RecurlyFake.pause_subscription),
    ("post", "/subscriptions/{subscription_id}/change", RecurlyFake.create_subscription_change),
]
ROUTES = [(method, template.strip("/").split("/"), template, handler) for method, template, handler in _ENDPOINTS]


def _handler_for(fake: RecurlyFake) -> type[BaseHTTPRequestHandler]:
    class RecurlyHandler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # the SDK keeps one connection open for all its calls

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
                self._send(status, extra, data)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up waiting (a stalled request)

        def _send(self, status: int, extra: dict[str, str], data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("X-Request-Id", secrets.token_hex(10))
            self.send_header("Recurly-Version", f"recurly.{API_VERSION}")
            self.send_header("X-RateLimit-Limit", "2000")
            self.send_header("X-RateLimit-Remaining", "0" if status == 429 else "1999")
            for name, value in extra.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_PUT = do_POST = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
            pass

    return RecurlyHandler
