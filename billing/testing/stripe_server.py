"""A local Stripe for tests: localstripe (a stateful fake of Stripe's API) served in this process, with
what it lacks added here, every request checked against Stripe's OpenAPI description first.

How it runs: localstripe's handlers on our own aiohttp application, bound to 127.0.0.1 on a free port
in a background thread with its own event loop. Every request of the adapter (not the harness's own
seeding) is checked against the description of the API version the SDK sends (stripe_spec.py).
localstripe keeps its objects in one module-level store that it also pickles to /tmp/localstripe.pickle;
here the store stays in memory (nothing is written to /tmp, so parallel runs never share state) and
`reset()` empties it. Since the store is one
per process, one StripeFake runs at a time in a process.

What the harness adds to localstripe (billing/testing/stripe_resources.py), each request checked by
`stripe_spec` before it runs:
- the Stripe API version the SDK pins: subscription items name a `price` (localstripe only knows
  plans: a price here is the plan with the same id, served at GET /v1/prices/{id});
  `discounts`, `pause_collection`, `cancellation_details` and `proration_behavior` on a subscription
  update (and `cancellation_details` on its cancel, kept on the subscription); the period end
  on each subscription item; `trial_end` on a paying subscription moving its next bill there;
- subscription schedules created `from_subscription` and their `phases` (a plan change at renewal);
- GET /v1/account, for a connection check; GET /v1/customers with its `email` filter;
- several items per subscription, each with its quantity, in one currency and interval (localstripe
  knows one item): the catalogue has `basic`, `pro` (USD monthly), `annual` (USD yearly) and
  `basic-eur` (EUR monthly), prices of one product, and `seats` (USD monthly, a product of its own);
- Stripe Connect: `connect_account(acct)` makes a connected account; objects seeded with `account=`
  live in it. A request's `Stripe-Account` header must name a connected account (else Stripe's 403
  `account_invalid`) and reaches only that account's customers and subscriptions (another's are
  `resource_missing`, as in Stripe); without the header, only the platform's own;
- Stripe's answers where localstripe differs: cancelling or updating a canceled subscription is
  refused, so is a cancellation change on a subscription a schedule manages; a missing object is
  `resource_missing` "No such coupon: 'X'"; an unknown key is a 401; subscriptions list newest first.

`writes(sub)` counts requests that changed what the subscription bills or when: a subscription update
or cancel, and an update or release of its schedule. Creating a schedule from a subscription only
copies the subscription's current terms into a one-phase schedule (Stripe bills exactly as before),
so it is not counted: a plan change at renewal is one counted write, the phase update.
"""

from __future__ import annotations

import asyncio
import base64
import threading
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, TypeVar

import requests
from aiohttp import web
from localstripe.errors import UserError
from localstripe.resources import store

from billing.providers.base import ZERO_DECIMAL, Credentials
from billing.testing import (
    COUPON,
    PLANS,
    FaultsMixin,
    InjectedFaults,
    Remote,
    allow_api_base,
    forbid_api_base,
)
from billing.testing.stripe_resources import (
    OWNER_OF,
    HarnessSubscription,
    account,
    customer_list,
    invoice_add,
    invoice_list,
    ls_server,
    price,
    schedule_create,
    schedule_get,
    schedule_release,
    schedule_update,
    subscription_cancel,
    subscription_list,
)
from billing.testing.stripe_seed import (
    BATCH,
    customer_named,
    form,
    in_store,
    seed_new_customers,
    seed_requests,
    trial_ended_ago,
)
from billing.testing.stripe_spec import SpecViolation, stripe_spec

# price id: (product, currency, interval, unit amount)
CATALOGUE: dict[str, tuple[str, str, str, int]] = {
    "basic": ("prod_brightback", "usd", "month", 1000),
    "pro": ("prod_brightback", "usd", "month", 3000),
    "annual": ("prod_brightback", "usd", "year", 10000),
    "basic-eur": ("prod_brightback", "eur", "month", 900),
    "seats": ("prod_seats", "usd", "month", 500),
}
API_KEY = "sk_test_brightback_local"
BAD_KEY = "sk_test_revoked_key"
HARNESS_KEY = "sk_test_harness_seeding"  # the harness's own requests: never failed, stalled or counted
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _error(status: int, message: str, *, type_: str = "invalid_request_error", code: str | None = None,
           param: str | None = None, headers: dict[str, str] | None = None) -> web.Response:
    body: dict[str, Any] = {"type": type_, "message": message}
    if code:
        body.update(code=code, doc_url=f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}")
    if param:
        body["param"] = param
    return web.json_response({"error": body}, status=status, headers=headers)


@dataclass(frozen=True)
class Seen:
    """One API request as the server received it, before any injected failure or check."""

    method: str
    path: str
    idempotency_key: str | None
    params: dict[str, Any]
    stripe_account: str = ""  # the Stripe-Account header (Stripe Connect), blank without


class StripeFake(FaultsMixin):
    """The `FakeBilling` for Stripe (see billing/testing/__init__.py)."""

    slug = "stripe"
    _running: StripeFake | None = None

    def __init__(self, *, port: int = 0) -> None:
        """Serve on 127.0.0.1:`port` (0: a free port, as tests use)."""
        if StripeFake._running is not None:
            raise RuntimeError("localstripe keeps one store per process: close the running StripeFake first")
        StripeFake._running = self
        self._lock = threading.Lock()
        self.faults = InjectedFaults()
        self._writes: dict[str, int] = {}
        self._seen: list[Seen] = []
        self._accounts: set[str] = set()  # connected accounts (Stripe Connect)
        self._owners: dict[str, str] = {}  # customer or subscription id -> its connected account ("" the platform)
        # Idempotency-Key -> (method, path, params, answer or None while the first request runs).
        self._keys: dict[str, tuple[str, str, dict[str, Any], tuple[int, bytes] | None]] = {}
        # In memory only: localstripe would otherwise pickle every change to /tmp/localstripe.pickle.
        store.dump_to_disk = lambda: None  # type: ignore[method-assign]
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="localstripe", daemon=True)
        self._thread.start()
        self._runner = web.AppRunner(self._app(), shutdown_timeout=0.5, access_log=None)
        self._http = requests.Session()
        self._http.auth = (HARNESS_KEY, "")
        try:
            self.port = self._on_loop(self._start(port))
            self.base_url = f"http://127.0.0.1:{self.port}"
            allow_api_base(self.base_url)
            self.reset()
        except BaseException:
            self.close()
            raise

    # --- the FakeBilling protocol ----------------------------------------------------------------

    def credentials(self, *, timeout: float = 5.0) -> Credentials:
        return Credentials(api_key=API_KEY, api_base=self.base_url, timeout=timeout)

    def bad_credentials(self) -> Credentials:
        return Credentials(api_key=BAD_KEY, api_base=self.base_url, timeout=5.0)

    def seed(self, *, customer_id: str, plan: str = "basic", trialing: bool = False, trial_ended: bool = False,
             extra_items: tuple[tuple[str, int], ...] = (), quantity: int = 1, email: str = "",
             account: str = "") -> str:
        """As the protocol says; also `extra_items` ((price, quantity) after the plan), the plan's `quantity`,
        the customer's `email` (default `<customer_id>@example.test`) and the connected `account` the
        customer and subscription live in (see connect_account). Four requests over HTTP: see
        seed_in_store for many subscriptions."""
        self._connected(account)
        self._on_loop(_now(customer_named, customer_id, email or f"{customer_id}@example.test"))
        made = seed_requests(self._request, customer_id, plan=plan, quantity=quantity, extra_items=extra_items,
                             trialing=trialing)
        self._own(customer_id, made, account)
        if trial_ended:
            self._on_loop(_now(trial_ended_ago, made))
        return made

    def seed_in_store(self, customer_ids: Iterable[str], *, plan: str = "basic", trialing: bool = False,
                      trial_ended: bool = False, extra_items: tuple[tuple[str, int], ...] = (), quantity: int = 1,
                      account: str = "") -> list[str]:
        """`seed` for many new customers at once (each `<customer_id>@example.test`), made straight in the
        server's store in this process rather than over HTTP: the same localstripe calls with the same
        parameters, the same objects (billing/testing/stripe_seed.py), and as with `seed` nothing is
        counted by `writes` or listed by `seen`. Thousands take seconds where HTTP takes minutes (the
        soak's 3,600). Return the subscription ids, in the customers' order."""
        self._connected(account)
        ids = list(customer_ids)

        def one(customer_id: str) -> str:
            customer_named(customer_id, f"{customer_id}@example.test")
            made = seed_requests(in_store, customer_id, plan=plan, quantity=quantity, extra_items=extra_items,
                                 trialing=trialing)
            if trial_ended:
                trial_ended_ago(made)
            return made

        subscriptions: list[str] = []
        for start in range(0, len(ids), BATCH):
            subscriptions += self._on_loop(_now(seed_new_customers, ids[start:start + BATCH], one))
        for customer_id, made in zip(ids, subscriptions, strict=True):
            self._own(customer_id, made, account)
        return subscriptions

    def remote(self, subscription_id: str) -> Remote:
        return self._on_loop(self._remote(subscription_id))

    def items(self, subscription_id: str) -> list[tuple[str, int]]:
        return list(self.remote(subscription_id).items)

    def connect_account(self, account: str) -> None:
        """A connected account of the platform (Stripe Connect), reachable with its Stripe-Account header."""
        with self._lock:
            self._accounts.add(account)
    def invoice(self, subscription_id: str, *, amount: Decimal, paid_at: datetime | None, currency: str = "USD",
                status: str = "paid", created: datetime | None = None) -> str:
        minor = int(amount.scaleb(0 if currency.upper() in ZERO_DECIMAL else 2))
        made = created or paid_at or datetime.now(UTC)

        async def add() -> str:
            return invoice_add(subscription_id, amount=minor, currency=currency,
                               status="paid" if status == "paid" else "open",
                               created=int(made.timestamp()), paid_at=int(paid_at.timestamp()) if paid_at else None)

        return self._on_loop(add())

    def writes(self, subscription_id: str) -> int:
        with self._lock:
            return self._writes.get(subscription_id, 0)

    def seen(self) -> list[Seen]:
        """The API requests received since the last reset (the harness's own excepted), oldest first."""
        with self._lock:
            return list(self._seen)

    def reset(self) -> None:
        with self._lock:
            self.faults.clear()
            self._writes.clear()
            self._seen.clear()
            self._keys.clear()
            self._accounts.clear()
            self._owners.clear()
        self._on_loop(self._clear())
        self._call("POST", "/v1/products", {"id": "prod_brightback", "name": "Brightback test product"})
        self._call("POST", "/v1/products", {"id": "prod_seats", "name": "Extra seats"})
        assert set(PLANS) <= set(CATALOGUE)
        for plan, (product, currency, interval, amount) in CATALOGUE.items():
            self._call("POST", "/v1/plans", {"id": plan, "product": product, "amount": amount,
                                             "currency": currency, "interval": interval})
        self._call("POST", "/v1/coupons", {"id": COUPON, "duration": "repeating", "duration_in_months": 3,
                                           "percent_off": 30})

    def close(self) -> None:
        if StripeFake._running is not self:
            return
        if getattr(self, "base_url", ""):
            forbid_api_base(self.base_url)
        try:
            self._http.close()
            self._on_loop(self._clear())
            self._on_loop(self._runner.cleanup())
            self._on_loop(self._cancel_pending())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=5)
            if not self._thread.is_alive():
                self._loop.close()
            del store.dump_to_disk
            StripeFake._running = None

    # --- plumbing ----------------------------------------------------------------------------------

    def _on_loop(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    async def _start(self, port: int) -> int:
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", port)
        await site.start()
        return int(self._runner.addresses[0][1])

    def _call(self, method: str, path: str, data: dict[str, Any]) -> dict[str, Any]:
        response = self._http.request(method, self.base_url + path, data=form(data), timeout=10)
        if response.status_code != 200:
            raise RuntimeError(f"localstripe refused {method} {path}: {response.status_code} {response.text}")
        return dict(response.json())

    def _request(self, method: str, path: str, data: dict[str, Any]) -> str:
        return str(self._call(method, path, data)["id"])

    def _connected(self, account: str) -> None:
        if account and account not in self._accounts:
            raise ValueError(f"connect_account({account!r}) first")

    def _own(self, customer_id: str, subscription_id: str, account: str) -> None:
        with self._lock:
            self._owners[customer_id] = self._owners.get(customer_id, account)
            self._owners[subscription_id] = self._owners[customer_id]

    async def _cancel_pending(self) -> None:
        # localstripe schedules a webhook send per event (none is registered here): stop them cleanly.
        pending = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _clear(self) -> None:
        store.clear()

    async def _remote(self, subscription_id: str) -> Remote:
        sub = store.get("subscription:" + subscription_id)
        if sub is None:
            raise KeyError(f"no subscription {subscription_id} on the local Stripe")
        plan = sub.plan.id
        items = tuple((item.plan.id, int(item.quantity)) for item in sub.items._list)
        pending = ""
        schedule = store.get(f"subscription_schedule:{sub._schedule}") if sub._schedule else None
        if schedule is not None and schedule.status == "active" and len(schedule.phases) > 1:
            billed = {price for price, _ in items}
            pending = next((i["price"] for i in schedule.phases[1]["items"] if i["price"] not in billed), "")

        def when(stamp: int | None) -> datetime | None:
            return datetime.fromtimestamp(stamp, UTC) if stamp else None

        canceled = sub.status == "canceled"
        return Remote(status=sub.status, canceled=canceled, cancel_at_period_end=bool(sub.cancel_at_period_end),
                      coupons=tuple(d["source"]["coupon"] for d in sub._discounts),
                      paused=sub.pause_collection is not None, plan=plan, pending_plan=pending,
                      trial_end=when(sub.trial_end), next_bill_at=None if canceled else when(sub.current_period_end),
                      pause_resumes_at=when((sub.pause_collection or {}).get("resumes_at")), items=items,
                      cancel_reason=sub.cancellation_details.get("feedback") or "")

    def _app(self) -> web.Application:
        app = web.Application(middlewares=[_stripe_errors, self._faults_and_checks, ls_server.auth_middleware])
        own: list[tuple[str, str, Handler]] = [
            ("GET", "/v1/account", account),
            ("GET", "/v1/customers", customer_list),
            ("GET", "/v1/prices/{id}", price),
            ("POST", "/v1/subscriptions", ls_server.api_create(HarnessSubscription, "/v1/subscriptions")),
            ("GET", "/v1/subscriptions", subscription_list),
            ("GET", "/v1/invoices", invoice_list),
            ("DELETE", "/v1/subscriptions/{id}", subscription_cancel),
            ("POST", "/v1/subscription_schedules", schedule_create),
            ("GET", "/v1/subscription_schedules/{id}", schedule_get),
            ("POST", "/v1/subscription_schedules/{id}", schedule_update),
            ("POST", "/v1/subscription_schedules/{id}/release", schedule_release),
        ]
        taken = set()
        for method, path, handler in own:
            app.router.add_route(method, path, handler)
            taken.add((method, path))
        for route in ls_server.app.router.routes():  # localstripe's own, in its order
            info = route.resource.get_info() if route.resource else {}
            template = info.get("path") or info.get("formatter")
            if template and (route.method, template) not in taken:
                app.router.add_route(route.method, template, _as_async(route.handler))
                taken.add((route.method, template))
        return app

    @web.middleware
    async def _faults_and_checks(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith("/v1/"):
            return await handler(request)
        key = _api_key(request)
        harness = key == HARNESS_KEY
        if request.method == "POST":
            data = ls_server.unflatten_data(await request.post())
        else:
            data = ls_server.unflatten_data(request.query)
        idempotency_key = request.headers.get("Idempotency-Key") if request.method in ("POST", "DELETE") else None
        connected = request.headers.get("Stripe-Account", "")
        if not harness:
            with self._lock:
                self._seen.append(Seen(request.method, request.path, idempotency_key, data or {}, connected))
            refused = self._other_account(request, connected, data or {})
            if refused is not None:
                return refused
            if idempotency_key:
                known = self._idempotent(idempotency_key, request.method, request.path, data or {})
                if known is not None:
                    return known
            try:
                stall = self.faults.take_stall()
                if stall:
                    await asyncio.sleep(stall)
                failure = self.faults.take_failure()
                if failure is not None:
                    self._forget(idempotency_key)  # refused before it ran: Stripe saves no result
                    return _injected(*failure)
            except asyncio.CancelledError:
                self._forget(idempotency_key)
                raise
        if key == BAD_KEY:
            self._forget(idempotency_key)
            return _error(401, f"Invalid API Key provided: {key[:8]}{'*' * (len(key) - 12)}{key[-4:]}")
        try:
            if not harness:  # the harness's own seeding (products, plans, payment methods) is not the adapter's
                stripe_spec().check(request.method, request.path, data or {})
        except SpecViolation as broken:
            self._forget(idempotency_key)
            return web.json_response(broken.body(), status=400)
        try:
            response = await handler(request)
        except BaseException:
            self._forget(idempotency_key)  # answered by _stripe_errors, outside this middleware
            raise
        if not harness and request.method in ("POST", "DELETE") and response.status == 200:
            self._count(request)
        if not harness and idempotency_key:
            self._remember(idempotency_key, response)
        return response

    def _other_account(self, request: web.Request, connected: str, data: dict[str, Any]) -> web.Response | None:
        """Stripe Connect: a request on an account the platform is not connected to is refused; one on a
        customer or subscription of another account than the header's finds nothing."""
        if connected and connected not in self._accounts:
            return _error(403, f"The provided key '{API_KEY[:8]}****' does not have access to account '{connected}' "
                               "(or that account does not exist). Application access may have been revoked.",
                          code="account_invalid")
        request[OWNER_OF] = lambda ident: self._owners.get(ident, "") == connected
        parts = request.path.strip("/").split("/")
        named: list[tuple[str, str, str, str]] = []  # (kind, id, the id that has an owner, param)
        if len(parts) >= 3 and parts[1] in ("subscriptions", "customers"):
            named.append((parts[1].removesuffix("s"), parts[2], parts[2], "id"))
        if len(parts) >= 3 and parts[1] == "subscription_schedules":
            schedule = store.get("subscription_schedule:" + parts[2])
            if schedule is not None:
                named.append(("subscription_schedule", parts[2], schedule.subscription, "id"))
        for field_name in ("customer", "from_subscription"):
            if isinstance(data.get(field_name), str):
                named.append((field_name.removeprefix("from_"), data[field_name], data[field_name], field_name))
        for kind, ident, owned, param in named:
            if owned in self._owners and self._owners[owned] != connected:
                return _error(404 if param == "id" else 400, f"No such {kind}: '{ident}'", code="resource_missing",
                              param=param)
        return None

    def _idempotent(self, key: str, method: str, path: str, params: dict[str, Any]) -> web.Response | None:
        """Stripe's documented rules for a key seen before ("Idempotent requests"): the first answer is
        replayed; the same key with other parameters is refused (400, idempotency_error); while the
        first request still runs, 409. An unknown key is recorded as running (None: carry it out)."""
        with self._lock:
            first = self._keys.get(key)
            if first is None:
                self._keys[key] = (method, path, params, None)
                return None
        first_method, first_path, first_params, answer = first
        if (first_method, first_path, first_params) != (method, path, params):
            return _error(400, "Keys for idempotent requests can only be used with the same parameters they were "
                               f"first used with. Try using a key other than '{key}' if you meant to execute a "
                               "different request.", type_="idempotency_error")
        if answer is None:
            return _error(409, "There is currently another in-progress request using this Idempotent Key (that "
                               "probably means you submitted twice, and the other request is still going "
                               f"through): {key}. Please try again later.", type_="idempotency_error",
                          headers={"Stripe-Should-Retry": "true"})
        status, body = answer
        return web.Response(status=status, body=body, content_type="application/json",
                            headers={"Idempotent-Replayed": "true", "Idempotency-Key": key})

    def _remember(self, key: str, response: web.StreamResponse) -> None:
        body = getattr(response, "body", None)
        with self._lock:
            first = self._keys.get(key)
            if first is not None and isinstance(body, bytes):
                self._keys[key] = (*first[:3], (response.status, body))

    def _forget(self, key: str | None) -> None:
        if key:
            with self._lock:
                self._keys.pop(key, None)

    def _count(self, request: web.Request) -> None:
        parts = request.path.strip("/").split("/")
        subscription = None
        if len(parts) == 3 and parts[1] == "subscriptions":
            subscription = parts[2]
        elif len(parts) in (3, 4) and parts[1] == "subscription_schedules":
            schedule = store.get("subscription_schedule:" + parts[2])
            subscription = schedule.subscription if schedule else None
        if subscription:
            with self._lock:
                self._writes[subscription] = self._writes.get(subscription, 0) + 1


@web.middleware
async def _stripe_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except UserError as refused:
        error = refused.body["error"]
        if refused.code == 404 and error.get("message") == "Not Found":  # localstripe's bare 404
            kind = request.path.strip("/").split("/")[1].rstrip("s").replace("_", " ")
            ident = request.match_info.get("id")
            said = f"No such {kind}: '{ident}'" if ident else "No such object."
            return _error(404, said, code="resource_missing", param="id")
        return _error(refused.code, error.get("message", "Bad request"), code=error.get("code"),
                      param=error.get("param"))
    except (TypeError, KeyError, AttributeError) as broke:  # a spec-valid request localstripe cannot carry out
        return _error(500, f"The local Stripe cannot handle {request.method} {request.path}: {broke!r}",
                      type_="api_error")


async def _now(function: Callable[..., T], *args: Any) -> T:
    """Run `function` on the server's loop (see StripeFake._on_loop), as its handlers run."""
    return function(*args)


def _as_async(handler: Callable[[web.Request], Any]) -> Handler:
    if asyncio.iscoroutinefunction(handler):
        return handler

    async def run(request: web.Request) -> web.StreamResponse:
        return handler(request)  # type: ignore[no-any-return]

    return run


def _injected(status: int, retry_after: int | None) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    known = {
        401: ("invalid_request_error", None, "Invalid API Key provided: sk_test_****"),
        402: ("card_error", "card_declined", "Your card was declined."),
        403: ("invalid_request_error", "secret_key_required",
              "The provided key does not have the required permissions for this endpoint."),
        404: ("invalid_request_error", "resource_missing", "No such object."),
        409: ("idempotency_error", None, "Keys for idempotent requests can only be used with the same parameters."),
        429: ("invalid_request_error", "rate_limit", "Request rate limit exceeded."),
    }
    type_, code, message = known.get(status, ("invalid_request_error", None, "The request could not be processed."))
    if status >= 500:
        type_, code, message = "api_error", None, "An unknown error occurred."
    return _error(status, message, type_=type_, code=code, headers=headers)


def _api_key(request: web.Request) -> str:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme == "Basic":
        return base64.b64decode(value).decode().partition(":")[0]
    return value if scheme == "Bearer" else ""
