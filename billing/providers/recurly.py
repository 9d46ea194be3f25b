"""Recurly (API v2021-02-25) through the official `recurly` SDK 4.x. The only module that imports it.

Ids: a subscription is named by its Recurly id (`e28zov4fw0v2`) or `uuid-<uuid>`; a customer is a
Recurly account, named by its account code (the business's own id for the customer; `code-` is added
here, and `Subscription.customer_id` gives the code back).

How each action maps to the API. Every write also carries our key as an `Idempotency-Key` header, which
the v2021-02-25 description does not document: exactly once rests on reading first (below), not on it.
- connection_check: `GET /sites?limit=1` -> "Recurly site acme (sandbox)".
- subscriptions_for_customer: `GET /accounts/code-{customer}/subscriptions?sort=created_at&order=desc`,
  kept when still billable (active, canceled-at-term-end, future, paused). `state=live` would drop paused ones.
- cancel at period end: `PUT /subscriptions/{id}/cancel {"timeframe": "term_end"}`; the state becomes
  `canceled` and the subscription expires when its term does.
- cancel now: `DELETE /subscriptions/{id}?refund=partial|none&charge=true|false` (Recurly's "terminate",
  which expires it at once; `timeframe=bill_date` would still run to the next bill date, so it is not
  "now"). `refund=partial` refunds the unused part of the current period in money, so it is sent only
  when the App chose to refund (`refund`); `prorate` alone sends `none`, as Recurly's terminate has no
  credit (never `full`); `invoice_now` is `charge`: unbilled usage goes on the final invoice.
- coupon: `GET /coupons/code-{coupon}` first (an unknown coupon is named in the error), then
  `POST /accounts/{account}/coupon_redemptions/active {"coupon_id", "subscription_id"}`; the
  subscription is sent when the coupon is redeemed on subscriptions (`redemption_resource`).
- pause: `GET /plans/code-{plan}` (its billing cycle), then `PUT /subscriptions/{id}/pause
  {"remaining_pause_cycles": cycles}`: Recurly pauses from the next bill date (the end of the period
  paid for) for that many billing cycles and resumes by itself. N months become N / (months per cycle)
  whole cycles, or the pause is refused (3 months on a yearly plan): never three years. Zero would
  cancel a scheduled pause, so it is refused here.
- plan change: `GET /plans/code-{plan}` and the current plan first: a target that does not bill in the
  subscription's currency, or bills at another interval, is refused naming both. Then
  `POST /subscriptions/{id}/change {"plan_code", "quantity", "timeframe": "now"|"renewal"}`: the
  quantity is the subscription's own (Recurly's default is 1, which would drop seats), and `add_ons`
  is left out, which Recurly documents as keeping the subscription's add-ons unaffected. A change at
  renewal shows as the subscription's `pending_change`. This API version has no proration switch: a
  change now is prorated by Recurly, one at renewal has nothing to prorate, so `prorate` changes nothing.
- customers by email: `GET /accounts?email=…` (Recurly's exact-address filter; several accounts may
  share one address), their account codes.
- trial extension: `PUT /subscriptions/{id} {"next_bill_date": until}`: for a subscription in trial
  Recurly moves the trial end with it, and the spec describes it as a postponement without proration.
- skip renewals: `GET /plans/code-{plan}` (its billing cycle), then the same postponement,
  `PUT /subscriptions/{id} {"next_bill_date": next bill + N cycles}`: the current period runs on to
  that date and nothing is billed in between (Recurly has no "free cycle" of an existing subscription;
  postponing the bill date is its documented way). Done: the next bill date is at or past it.
- the reason of a cancel: none is sent. This API version's cancel takes only `timeframe`, and its
  terminate only `refund` and `charge`; a note on the subscription (`customer_notes`) would print on
  the customer's invoices. The reason stays in this console (and in webhooks).

"Already done" (read first, then nothing is sent): cancel at period end when the state is `canceled`,
`expired` or `failed`; cancel now when `expired` or `failed`; the coupon among the subscription's active
redemptions (or the account's, for a coupon redeemed on accounts); a pause when `paused_at` is set or
the state is `paused`; a plan change now when the plan is already billed, at renewal when it is already
the pending change (or already billed with nothing pending); a trial extension when the trial end (in
trial) or else the next bill date is at or past `until`.

Errors: the SDK never retries. Its connection is replaced by one of ours (to `Credentials.api_base`
when set, else to Recurly's own host) that applies `Credentials.timeout` and remembers the last answer's
status and headers, so every failure leaves as a ProviderError with the HTTP status and `Retry-After`
(or, lacking it on a 429, the time until `X-RateLimit-Reset`).
"""

from __future__ import annotations

import http.client
import time
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from email.message import Message
from typing import Any, TypeVar
from urllib.parse import urlsplit

import recurly

from brightback_site import ssrf

from .base import (
    ActionResult,
    BillingProvider,
    CancelReason,
    Credentials,
    PaidInvoice,
    ProviderError,
    Subscription,
    add_cycles,
    register,
)

RECURLY_HOSTS = {"us": "v3.recurly.com", "eu": "v3.eu.recurly.com"}  # the SDK's own, by `region`
BILLABLE_STATES = ("active", "canceled", "future", "paused")
ENDED_STATES = ("expired", "failed")
T = TypeVar("T")


class _UnsafePeer(Exception):
    """Recurly's own host reached an address the webhooks' guard refuses."""


class _Recording:
    """What our connection adds to http.client's: a path prefix (an api_base such as
    http://127.0.0.1:8080/recurly), the last answer's status and headers, and, for Recurly's own host,
    a check of the address the socket really reached (brightback_site.ssrf)."""

    prefix = ""
    check_peer = False
    last_status: int | None = None
    last_headers: Message | None = None

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        if self.check_peer:
            sock = self.sock  # type: ignore[attr-defined]
            peer = (sock.getpeername() if sock is not None else ("",))[0]
            try:
                ssrf.check_address(peer)
            except (ssrf.UnsafeAddress, ValueError) as exc:
                self.close()  # type: ignore[attr-defined]
                raise _UnsafePeer(str(exc)) from exc

    def request(self, method: str, url: str, body: Any = None, headers: Any = None, **kwargs: Any) -> None:
        self.last_status, self.last_headers = None, None
        super().request(method, self.prefix + url, body, headers or {}, **kwargs)  # type: ignore[misc]

    def getresponse(self) -> http.client.HTTPResponse:
        response = super().getresponse()  # type: ignore[misc]
        self.last_status, self.last_headers = response.status, response.headers
        return response


class _HTTPConnection(_Recording, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_Recording, http.client.HTTPSConnection):
    pass


_Connection = _HTTPConnection | _HTTPSConnection


def _connection(credentials: Credentials) -> _Connection:
    """The `--api-base` feature: the SDK hard-codes v3.recurly.com:443 and offers no setting for it, so
    its private connection (`Client._BaseClient__conn`) is replaced by ours."""
    base = credentials.api_base.strip()
    if not base:
        host = RECURLY_HOSTS.get(credentials.region)
        if host is None:
            raise ProviderError(f"Recurly has no region {credentials.region!r}: it is us or eu.", retryable=False)
        own = _HTTPSConnection(host, 443, timeout=credentials.timeout)
        own.check_peer = True
        return own
    url = urlsplit(base)
    try:
        port = url.port
    except ValueError:
        port = -1
    if url.scheme not in ("http", "https") or not url.hostname or port == -1:
        raise ProviderError(f"The Recurly address {base!r} is not an http(s) URL.", retryable=False)
    kind = _HTTPConnection if url.scheme == "http" else _HTTPSConnection
    connection: _Connection = kind(url.hostname, port, timeout=credentials.timeout)
    connection.prefix = url.path.rstrip("/")
    return connection


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _day(moment: datetime | None) -> str:
    return moment.date().isoformat() if moment else "unknown date"


@register
class RecurlyProvider(BillingProvider):
    slug = "recurly"
    name = "Recurly"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__(credentials)
        self._sdk: Any = None
        self._conn: _Connection | None = None

    # --- plumbing -------------------------------------------------------------------------------

    @property
    def _client(self) -> Any:
        if self._sdk is None:
            if not self.credentials.api_key.isascii():
                raise ProviderError("The Recurly API key holds characters no Recurly key has.", retryable=False)
            self._conn = _connection(self.credentials)
            self._sdk = recurly.Client(self.credentials.api_key, timeout=self.credentials.timeout)
            self._sdk._BaseClient__conn = self._conn
        return self._sdk

    def _call(self, doing: str, call: Callable[[], T], *, missing: str = "") -> T:
        """Run one SDK call; any failure leaves as a ProviderError. `doing` completes "Recurly refused
        to ..."; `missing` names the thing a 404 means is absent ("coupon NOPE99")."""
        if self._conn is not None:
            self._conn.last_status = self._conn.last_headers = None
        try:
            return call()
        except recurly.ApiError as exc:
            raise self._api_error(exc, doing, missing) from exc
        except _UnsafePeer as exc:
            raise ProviderError(f"Recurly was not called to {doing}: its address reached a private or loopback "
                                "address", retryable=False, detail=str(exc)) from exc
        except (recurly.NetworkError, OSError, http.client.HTTPException) as exc:
            if self._conn is not None:
                self._conn.close()  # a connection left mid-answer cannot carry the next request
            reason = str(exc) or type(exc).__name__
            raise ProviderError(f"Recurly could not be reached to {doing}; it will be tried again", retryable=True,
                                detail=reason) from exc
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # An answer that is not Recurly's JSON (a proxy's page, another server): its body is never shown.
            conn = self._conn
            status = conn.last_status if conn is not None else None
            kind = (conn.last_headers.get("Content-Type") if conn is not None and conn.last_headers else None)
            raise ProviderError(f"The server's answer to {doing} is not an answer of Recurly's API", retryable=False,
                                status_code=status,
                                detail=f"HTTP {status}, {kind or 'no content type'}, {type(exc).__name__}") from exc

    def _api_error(self, exc: Exception, doing: str, missing: str) -> ProviderError:
        conn = self._conn
        status = conn.last_status if conn is not None else None
        headers = conn.last_headers if conn is not None else None
        detail = str(exc)
        if status is None:  # the SDK refused the call before sending it (an empty id, say)
            return ProviderError(f"Recurly could not {doing}: {detail}", retryable=False, detail=detail)
        retry_after = None
        if headers is not None:
            retry_after = _seconds(headers.get("Retry-After"))
            reset = _seconds(headers.get("X-RateLimit-Reset"))
            if retry_after is None and status == 429 and reset is not None:
                retry_after = max(0.0, reset - time.time())
        retryable = status == 429 or status >= 500
        if getattr(exc, "error", None) is None:  # not Recurly's error format: no body to show
            kind = headers.get("Content-Type") if headers is not None else None
            detail = f"HTTP {status}, {kind or 'no content type'}"
        if status == 404 and missing:
            message = f"{missing} does not exist in Recurly"
        elif status == 401:
            message = "Recurly refused the API key: check it in the connection"
        elif retryable:
            message = f"Recurly could not {doing} just now ({status}); it will be tried again"
        else:
            message = f"Recurly refused to {doing} ({status})"
        return ProviderError(message, retryable=retryable, status_code=status, retry_after=retry_after,
                             detail=detail)

    def _read(self, subscription_id: str) -> Any:
        return self._call(f"read subscription {subscription_id}",
                          lambda: self._client.get_subscription(subscription_id),
                          missing=f"subscription {subscription_id}")

    def _write(self, key: str) -> dict[str, dict[str, str]]:
        return {"headers": {"Idempotency-Key": key}}

    def _result(self, changed: bool, summary: str, sub: Any) -> ActionResult:
        return ActionResult(changed=changed, summary=summary, subscription=_subscription(sub))

    # --- reads ----------------------------------------------------------------------------------

    def connection_check(self) -> str:
        site = self._call("list its sites", lambda: self._client.list_sites(params={"limit": 1}).first())
        if site is None:
            return "Recurly: the key works but sees no site"
        mode = getattr(site, "mode", None)
        return f"Recurly site {getattr(site, 'subdomain', site.id)}" + (f" ({mode})" if mode else "")

    def subscription_get(self, subscription_id: str) -> Subscription:
        return _subscription(self._read(subscription_id))

    def customers_by_email(self, email: str) -> list[str]:
        params = {"email": email, "limit": 200}
        found = self._call(f"look up customers with email {email}",
                           lambda: list(self._client.list_accounts(params=params).items()))
        return [str(account.code or account.id) for account in found]

    def scheduled_plan(self, subscription_id: str) -> str:
        return str(_subscription(self._read(subscription_id)).raw_status.get("pending_plan") or "")

    def subscriptions_for_customer(self, customer_id: str) -> list[Subscription]:
        account = customer_id if customer_id.startswith("code-") else f"code-{customer_id}"
        params = {"limit": 200, "sort": "created_at", "order": "desc"}
        found = self._call(f"list the subscriptions of customer {customer_id}",
                           lambda: list(self._client.list_account_subscriptions(account, params=params).items()),
                           missing=f"customer {customer_id}")
        return [s for s in map(_subscription, found) if s.is_active]

    # --- writes ---------------------------------------------------------------------------------

    def subscription_cancel(self, subscription_id: str, *, at_period_end: bool, prorate: bool,
                            invoice_now: bool, idempotency_key: str, refund: bool = False,
                            reason: CancelReason | None = None) -> ActionResult:
        sub = self._read(subscription_id)
        state = sub.state
        if state in ENDED_STATES or (at_period_end and state == "canceled"):
            ends = getattr(sub, "expires_at", None)
            return self._result(False, f"already {'canceled' if state == 'canceled' else 'ended'} "
                                       f"({_day(ends)})", sub)
        doing = f"cancel subscription {subscription_id}"
        if at_period_end:
            sub = self._call(doing, lambda: self._client.cancel_subscription(
                subscription_id, body={"timeframe": "term_end"}, **self._write(idempotency_key)))
            return self._result(True, f"canceled at period end ({_day(getattr(sub, 'expires_at', None))})", sub)
        # Recurly's terminate has no credit: `partial` refunds money. Only the App's refund choice sends it.
        refunded = "partial" if refund else "none"
        sub = self._call(doing, lambda: self._client.terminate_subscription(
            subscription_id, params={"refund": refunded, "charge": invoice_now}, **self._write(idempotency_key)))
        return self._result(True, f"canceled now (refund: {refunded}, usage charged: {'yes' if invoice_now else 'no'})",
                            sub)

    def coupon_apply(self, subscription_id: str, *, coupon: str, idempotency_key: str) -> ActionResult:
        sub = self._read(subscription_id)
        found = self._call(f"look up coupon {coupon}", lambda: self._client.get_coupon(f"code-{coupon}"),
                           missing=f"coupon {coupon}")
        on_account = getattr(found, "redemption_resource", "account") == "account"
        customer = _subscription(sub).customer_id
        account = f"code-{customer}" if getattr(sub.account, "code", None) else sub.account.id
        if on_account:
            active = self._call(f"list the coupons of customer {customer}",
                                lambda: list(self._client.list_active_coupon_redemptions(account).items()))
            applied = any(r.coupon.code == coupon and getattr(r, "subscription_id", None) in (None, sub.id)
                          for r in active)
        else:
            applied = coupon in _subscription(sub).coupons
        if applied:
            return self._result(False, f"coupon {coupon} already applied", sub)
        body = {"coupon_id": found.id} if on_account else {"coupon_id": found.id, "subscription_id": sub.id}
        self._call(f"apply coupon {coupon} to subscription {subscription_id}",
                   lambda: self._client.create_coupon_redemption(account, body, **self._write(idempotency_key)))
        return self._result(True, f"coupon {coupon} applied", self._read(subscription_id))

    def subscription_pause(self, subscription_id: str, *, months: int, resumes_at: datetime,
                           idempotency_key: str) -> ActionResult:
        if months < 1:
            raise ProviderError(f"A pause of {months} months cannot be asked of Recurly: at least one billing "
                                "cycle is needed (zero would cancel a scheduled pause).", retryable=False)
        sub = self._read(subscription_id)
        if sub.state == "paused" or getattr(sub, "paused_at", None) is not None:
            return self._result(False, f"already paused ({_day(getattr(sub, 'paused_at', None))})", sub)
        cycles = self._pause_cycles(sub.plan.code, months)
        sub = self._call(f"pause subscription {subscription_id}", lambda: self._client.pause_subscription(
            subscription_id, {"remaining_pause_cycles": cycles}, **self._write(idempotency_key)))
        return self._result(True, f"paused for {months} month{'s' if months != 1 else ''} ({cycles} billing "
                                  f"cycle{'s' if cycles != 1 else ''}) from {_day(getattr(sub, 'paused_at', None))}",
                            sub)

    def _pause_cycles(self, plan_code: str, months: int) -> int:
        """Recurly counts a pause in billing cycles of the plan: N months become N / (months per cycle)
        whole cycles, or the pause is refused (a 3-month pause is not 3 cycles of a yearly plan)."""
        plan = self._call(f"look up plan {plan_code}", lambda: self._client.get_plan(f"code-{plan_code}"),
                          missing=f"plan {plan_code}")
        unit, length = getattr(plan, "interval_unit", None), int(getattr(plan, "interval_length", 0) or 0)
        if unit != "months" or length < 1 or months % length:
            cycle = f"{length} {unit}" if unit and length else "unknown"
            raise ProviderError(f"A pause of {months} month{'s' if months != 1 else ''} is not a whole number of "
                                f"billing cycles of Recurly plan {plan_code} (one cycle is {cycle}); offer this "
                                "pause to plans it divides, or change its months", retryable=False)
        return months // length

    def plan_change(self, subscription_id: str, *, plan: str, at_renewal: bool, prorate: bool,
                    idempotency_key: str) -> ActionResult:
        sub = self._read(subscription_id)
        pending = getattr(sub, "pending_change", None)
        pending_plan = pending.plan.code if pending is not None and getattr(pending, "plan", None) else ""
        if (not at_renewal and sub.plan.code == plan) or (at_renewal and (
                pending_plan == plan or (sub.plan.code == plan and not pending_plan))):
            scheduled = at_renewal and pending_plan == plan
            return self._result(False, f"plan {plan} already scheduled from the renewal" if scheduled
                                else f"already on plan {plan}", sub)
        target = self._call(f"look up plan {plan}", lambda: self._client.get_plan(f"code-{plan}"),
                            missing=f"plan {plan}")
        current = self._call(f"look up plan {sub.plan.code}", lambda: self._client.get_plan(f"code-{sub.plan.code}"),
                             missing=f"plan {sub.plan.code}")
        _same_terms(sub, current, target)
        # The subscription's own quantity (seats): Recurly's default is 1. Add-ons are left out, which keeps them.
        body = {"plan_code": plan, "quantity": int(getattr(sub, "quantity", None) or 1),
                "timeframe": "renewal" if at_renewal else "now"}
        change = self._call(f"move subscription {subscription_id} to plan {plan}",
                            lambda: self._client.create_subscription_change(
                                subscription_id, body, **self._write(idempotency_key)))
        summary = (f"plan {plan} from the renewal ({_day(getattr(change, 'activate_at', None))})" if at_renewal
                   else f"plan changed to {plan} now")
        return self._result(True, summary, self._read(subscription_id))

    def subscription_reactivate(self, subscription_id: str, *, idempotency_key: str) -> ActionResult:
        sub = self._read(subscription_id)
        if sub.state in ENDED_STATES:
            raise ProviderError(f"subscription {subscription_id} has already ended in Recurly ({sub.state}) and "
                                "cannot be kept; the customer needs a new subscription", retryable=False)
        if sub.state != "canceled":
            return self._result(False, "not set to cancel: nothing to undo", sub)
        sub = self._call(f"reactivate subscription {subscription_id}", lambda: self._client.reactivate_subscription(
            subscription_id, **self._write(idempotency_key)))
        return self._result(True, "scheduled cancel removed: it renews again", sub)

    def trial_extend(self, subscription_id: str, *, until: datetime, idempotency_key: str) -> ActionResult:
        target = _utc(until).replace(microsecond=0)
        sub = self._read(subscription_id)
        current = _subscription(sub)
        in_trial = current.trialing
        moving = current.trial_end if in_trial else current.current_period_end
        what = "trial end" if in_trial else "next bill date"
        if moving is not None and moving >= target:
            return self._result(False, f"{what} already {_day(moving)}", sub)
        sub = self._call(f"move the {what} of subscription {subscription_id}", lambda: self._client.update_subscription(
            subscription_id, {"next_bill_date": target.isoformat()}, **self._write(idempotency_key)))
        return self._result(True, f"{what} moved to {_day(target)}", sub)

    # --- paid invoices ---------------------------------------------------------------------------

    def paid_invoices(self, subscription_id: str, *, since: datetime) -> list[PaidInvoice]:
        """GET /subscriptions/{id}/invoices?state=paid&type=charge, by `updated_at` from `since` (an
        invoice marked paid then was updated then); kept: `closed_at` (when it was marked paid) at or after
        `since`, and `paid`, the amount paid, already in the currency's unit."""
        params = {"state": "paid", "type": "charge", "limit": 200, "sort": "updated_at", "order": "asc",
                  "begin_time": since.astimezone(UTC).isoformat()}
        invoices = self._call(f"list the invoices of subscription {subscription_id}",
                              lambda: list(self._client.list_subscription_invoices(subscription_id,
                                                                                   params=params).items()),
                              missing=f"subscription {subscription_id}")
        found = []
        for invoice in invoices:
            closed = getattr(invoice, "closed_at", None)
            if getattr(invoice, "state", None) != "paid" or closed is None or _utc(closed) < since:
                continue
            found.append(PaidInvoice(id=str(invoice.id), amount=Decimal(str(invoice.paid or 0)),
                                     currency=str(invoice.currency).upper(), paid_at=_utc(closed)))
        return sorted(found, key=lambda invoice: invoice.paid_at)



    def renewals_skip_until(self, subscription_id: str, *, renewals: int) -> datetime:
        sub = self._read(subscription_id)
        next_bill = _subscription(sub).current_period_end
        if next_bill is None:
            raise ProviderError(f"Recurly subscription {subscription_id} has no next bill date: there is no renewal "
                                "to skip", retryable=False)
        code = sub.plan.code
        plan = self._call(f"look up plan {code}", lambda: self._client.get_plan(f"code-{code}"), missing=f"plan {code}")
        unit, length = str(getattr(plan, "interval_unit", "") or ""), int(getattr(plan, "interval_length", 0) or 0)
        try:
            return add_cycles(next_bill, unit=unit, length=length, cycles=renewals).replace(microsecond=0)
        except ValueError as exc:
            raise ProviderError(f"the billing cycle of Recurly plan {code} cannot be read ({exc})",
                                retryable=False) from exc

    def renewals_skip(self, subscription_id: str, *, renewals: int, until: datetime,
                      idempotency_key: str) -> ActionResult:
        target = _utc(until).replace(microsecond=0)
        sub = self._read(subscription_id)
        if sub.state in ENDED_STATES:
            raise ProviderError(f"Recurly subscription {subscription_id} has ended ({sub.state}): there is no "
                                "renewal to skip", retryable=False)
        free = _subscription(sub).no_charge_until
        if free is not None and free >= target:
            return self._result(False, f"already nothing billed until {_day(free)}", sub)
        sub = self._call(f"postpone the next bill of subscription {subscription_id}",
                         lambda: self._client.update_subscription(
                             subscription_id, {"next_bill_date": target.isoformat()}, **self._write(idempotency_key)))
        plural = "s" if renewals != 1 else ""
        return self._result(True, f"next {renewals} renewal{plural} free: next bill {_day(target)}", sub)


def _cycle(plan: Any) -> str:
    unit, length = getattr(plan, "interval_unit", None), int(getattr(plan, "interval_length", 0) or 0)
    if unit == "months":
        return f"{length} month"
    return f"{length} {str(unit or '?').removesuffix('s')}"


def _same_terms(sub: Any, current: Any, target: Any) -> None:
    """A Recurly subscription bills in one currency at its plan's interval: a target plan with no price
    in that currency, or another interval, is refused naming both (a plan change never converts them)."""
    currency = str(getattr(sub, "currency", "") or "").upper()
    offered = sorted(str(c.currency).upper() for c in getattr(target, "currencies", None) or [])
    have, want = _cycle(current), _cycle(target)
    if currency not in offered or have != want:
        raise ProviderError(
            f"plan {target.code} is billed in {'/'.join(offered) or 'no currency'} every {_words(want)}, the "
            f"subscription in {currency} every {_words(have)} (plan {current.code}); a plan change keeps the "
            "currency and the billing cycle, so the plan was not changed", retryable=False)


def _words(cycle: str) -> str:
    return {"12 month": "year", "1 month": "month"}.get(cycle, cycle + "s")


def _seconds(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _subscription(sub: Any) -> Subscription:
    state = sub.state
    account = getattr(sub, "account", None)
    pending = getattr(sub, "pending_change", None)
    redemptions = getattr(sub, "coupon_redemptions", None) or []
    trial_end = getattr(sub, "trial_ends_at", None)
    period_end = getattr(sub, "current_period_ends_at", None)
    expires = getattr(sub, "expires_at", None)
    return Subscription(
        id=sub.id,
        customer_id=str(getattr(account, "code", None) or getattr(account, "id", "") or ""),
        status=state,
        is_active=state in BILLABLE_STATES,
        plan=sub.plan.code,
        cancel_at_period_end=state == "canceled",
        canceled=state == "canceled" or state in ENDED_STATES,
        paused=state == "paused" or getattr(sub, "paused_at", None) is not None,
        coupons=tuple(r.coupon.code for r in redemptions
                      if getattr(r, "state", "active") == "active" and getattr(r, "coupon", None)),
        trial_end=_utc(trial_end) if trial_end else None,
        current_period_end=_utc(period_end) if period_end else None,
        trialing=trial_end is not None and _utc(trial_end) > datetime.now(UTC) and state in BILLABLE_STATES,
        items=((sub.plan.code, int(getattr(sub, "quantity", None) or 1)),
               *((a.add_on.code, int(a.quantity or 1)) for a in getattr(sub, "add_ons", None) or [])),
        currency=str(getattr(sub, "currency", "") or "").upper(),  # the interval is the plan's: not on a subscription
        raw_status={
            "state": state,
            "pending_plan": pending.plan.code if pending is not None and getattr(pending, "plan", None) else "",
            "remaining_pause_cycles": getattr(sub, "remaining_pause_cycles", None),
            "expires_at": expires.isoformat() if expires else None,
        },
    )
