"""Chargebee (API v2, Product Catalog 2.0) through the official `chargebee` SDK.

How each action maps to Chargebee's API, and what "already done" means (read first, nothing sent):
- cancel: POST /subscriptions/{id}/cancel_for_items with `end_of_term=true` (at period end) or
  `end_of_term=false` plus `credit_option_for_current_term_charges` (`prorate` or `none`) and, when
  `invoice_now`, `unbilled_charges_option=invoice` (otherwise the site's own setting applies).
  Done: status `cancelled`, or `non_renewing` when the period end was asked for.
- coupon: GET /coupons/{id} first, so a coupon the site does not know is named, then
  POST /subscriptions/{id}/update_for_items with `coupon_ids[0]` (added to the list, not replacing it).
  Done: the coupon is among the subscription's `coupons`.
- pause: POST /subscriptions/{id}/pause with `pause_option=end_of_term` (the customer keeps the term
  they paid for) and `resume_date` (the date on our row: the term end plus N calendar months).
  Done: status `paused`, or a pause already scheduled (`pause_date` set).
- plan change: GET /item_prices/{id} first (the plan must be a `plan` item price in the subscription's
  currency and billing period: another is refused naming both), then
  POST /subscriptions/{id}/update_for_items with `subscription_items[item_price_id][0]` and
  `subscription_items[quantity][0]` (the plan item's own quantity: seats are kept; the plan item is
  replaced, and add-ons and charges not named stay, as `replace_items_list` is not sent) and
  `change_option=immediately` (with `prorate`) or `change_option=end_of_term`. Done: the plan item is
  already that price, or a scheduled change (`has_scheduled_changes`, read back through
  GET /subscriptions/{id}/retrieve_with_scheduled_changes) already moves it there.
- trial extension: POST /subscriptions/{id}/change_term_end with `term_ends_at`, `prorate=false` and
  `invoice_immediately=false`. Chargebee moves `trial_end` for an `in_trial` subscription and the
  current term end (the next bill date) for an active or non-renewing one. Done: that date is already
  at or past the target.
- customers by email: GET /customers with `email[is]` (several may share an address).
- skip renewals: the same POST /subscriptions/{id}/change_term_end, with `term_ends_at` the next bill
  date plus N billing periods (the subscription's `billing_period` and `billing_period_unit`),
  `prorate=false`, `invoice_immediately=false`: the term the customer paid for runs on, unbilled, to
  that date (Chargebee's documented way to give free time on an existing subscription; a 100% coupon
  would have to exist on the site first). Done: the next bill date is at or past it.
- the reason of a cancel: `cancel_reason_code`, the site's own code that the App's connection maps
  from the reason's category (`cancel_reason_codes`); none is sent for a category left unmapped.
Every write carries our key in Chargebee's `chargebee-idempotency-key` header.

Sites: Chargebee's test and live sites are separate (acme-test, acme); the connection keeps both and
`Credentials.site` is the one of the App's mode, as the key is.

Connection: one `chargebee.Chargebee` client per call, with the SDK's retries switched off
(`RetryConfig(enabled=False)`) and its connect and read timeouts set from `Credentials.timeout`.
`Credentials.api_base` replaces `https://{site}.chargebee.com` in the client's own environment.
One setting cannot be made per client: the SDK picks `http` only when the class attribute
`chargebee.Chargebee.verify_ca_certs` is False. It is turned off (process-wide, once) only when an
`http://` api_base is used (a local server); HTTPS calls of every client then still verify
certificates, against httpx's default bundle instead of the copy the SDK ships.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

import chargebee
import httpx
from chargebee.retry_config import RetryConfig

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

IDEMPOTENCY_HEADER = "chargebee-idempotency-key"
ACTIVE_STATUSES = frozenset({"future", "in_trial", "active", "non_renewing", "paused"})
RETRYABLE_STATUSES = frozenset({429}) | frozenset(range(500, 600))
T = TypeVar("T")


def _when(timestamp: Any) -> datetime | None:
    return datetime.fromtimestamp(int(timestamp), UTC) if timestamp else None


def _timestamp(moment: datetime) -> int:
    return int((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


def subscription_from(raw: dict[str, Any]) -> Subscription:
    """Our Subscription from Chargebee's `subscription` object (a plain dict)."""
    status = str(raw.get("status", ""))
    plans = [i for i in raw.get("subscription_items") or [] if i.get("item_type") == "plan"]
    kept = ("status", "has_scheduled_changes", "pause_date", "resume_date", "cancelled_at",
            "current_term_end", "next_billing_at", "trial_end")
    return Subscription(
        id=str(raw["id"]),
        customer_id=str(raw.get("customer_id", "")),
        status=status,
        is_active=status in ACTIVE_STATUSES,
        plan=str(plans[0]["item_price_id"]) if plans else "",
        cancel_at_period_end=status == "non_renewing",
        canceled=status in ("cancelled", "non_renewing"),
        paused=status == "paused" or (status in ("active", "non_renewing") and bool(raw.get("pause_date"))),
        coupons=tuple(str(c["coupon_id"]) for c in raw.get("coupons") or []),
        trial_end=_when(raw.get("trial_end")),
        current_period_end=_when(raw.get("next_billing_at") or raw.get("current_term_end")),
        trialing=status == "in_trial",
        raw_status={k: raw[k] for k in kept if k in raw},
        items=tuple((str(i.get("item_price_id")), int(i.get("quantity") or 1))
                    for i in sorted(raw.get("subscription_items") or [], key=lambda i: i.get("item_type") != "plan")),
        currency=str(raw.get("currency_code") or "").upper(),
        interval=_interval(raw.get("billing_period"), raw.get("billing_period_unit")),
    )


def _interval(period: Any, unit: Any) -> str:
    """"1 month", "12 month" (a year), "1 week", "1 day": one billing period."""
    if not unit:
        return ""
    count = int(period or 1)
    return f"{count * 12} month" if unit == "year" else f"{count} {unit}"


def _words(interval: str) -> str:
    return {"12 month": "year", "1 month": "month", "1 week": "week", "1 day": "day"}.get(interval, interval + "s")


def _plain(err: Exception) -> tuple[str, str]:
    """(plain words for support staff, the provider's own text) about one failure. The text of an answer
    that is not Chargebee's API (a proxy's page, another server's) is never kept: only its status."""
    if isinstance(err, chargebee.APIError):
        code = err.api_error_code or "error"
        said = f"{err.json_obj.get('message') or code} ({code})"
        http_status = int(err.http_status_code)
        if http_status == 401:
            return "Chargebee refused the API key: check it and the site in the connection", said
        if http_status in RETRYABLE_STATUSES:
            return f"Chargebee could not do it just now ({http_status}); it will be tried again", said
        return f"Chargebee refused it ({http_status})", said
    if isinstance(err, httpx.TimeoutException):
        return "Chargebee did not answer in time; it will be tried again", type(err).__name__
    if isinstance(err, httpx.HTTPError):
        return "Chargebee could not be reached; it will be tried again", f"{type(err).__name__}: {err}"
    found = re.search(r"http_status_code:\s*(\d{3})", str(err))
    status = found.group(1) if found else "?"
    return "the server answered something that is not Chargebee's API", f"HTTP {status}, not Chargebee's JSON"


def provider_error(err: Exception, what: str) -> ProviderError:
    """Map an SDK or transport failure to a ProviderError; `what` says what we were doing."""
    plain, detail = _plain(err)
    message = f"{what}: {plain}"
    if isinstance(err, chargebee.APIError):
        status = int(err.http_status_code)
        retry_after = None
        raw_retry_after = (err.http_headers or {}).get("retry-after")
        if raw_retry_after and str(raw_retry_after).strip().isdigit():
            retry_after = float(raw_retry_after)
        return ProviderError(message, retryable=status in RETRYABLE_STATUSES, status_code=status,
                             retry_after=retry_after, detail=detail)
    if isinstance(err, httpx.HTTPError):
        return ProviderError(message, retryable=True, detail=detail)
    # The SDK raises a bare Exception for an answer that is not Chargebee's JSON (a proxy's error page).
    found = re.search(r"http_status_code:\s*(\d{3})", str(err))
    status_code = int(found.group(1)) if found else None
    return ProviderError(message, retryable=status_code is None or status_code in RETRYABLE_STATUSES,
                         status_code=status_code, detail=detail)


def _not_found(err: Exception) -> bool:
    """A 404 about the resource in the path (a 404 naming a parameter is about something else)."""
    return isinstance(err, chargebee.APIError) and int(err.http_status_code) == 404 and not err.param


@register
class ChargebeeProvider(BillingProvider):
    slug = "chargebee"
    name = "Chargebee"
    needs_site = True

    @classmethod
    def key_mode(cls, api_key: str) -> str | None:
        # Chargebee's keys name the kind of site they belong to: test_… (acme-test) or live_… (acme).
        for mode in ("test", "live"):
            if api_key.startswith(f"{mode}_"):
                return mode
        return None

    # --- plumbing ---------------------------------------------------------------------------------

    def _client(self) -> chargebee.Chargebee:
        creds: Credentials = self.credentials
        if not creds.site and not creds.api_base:
            raise ProviderError("Chargebee needs the site name (acme in acme.chargebee.com)", retryable=False)
        client = chargebee.Chargebee(api_key=creds.api_key, site=creds.site or "local",
                                     connection_time_out=creds.timeout,  # type: ignore[arg-type]
                                     read_time_out=creds.timeout)  # type: ignore[arg-type]
        client.update_retry_config(RetryConfig(enabled=False))
        if creds.api_base:
            scheme = urlsplit(creds.api_base).scheme
            if scheme not in ("http", "https"):
                raise ProviderError(f"the Chargebee address {creds.api_base!r} is not an http(s) URL",
                                    retryable=False)
            client.update_protocol(scheme)
            if scheme == "http":
                chargebee.Chargebee.verify_ca_certs = False  # see the module docstring
            client.env.api_endpoint = f"{creds.api_base.rstrip('/')}/api/{client.env.API_VERSION}"
        return client

    def _call(self, what: str, call: Callable[[chargebee.Chargebee], T],
              not_found: str | None = None, ids: tuple[str, ...] = ()) -> T:
        """Run one SDK call; every failure leaves as ProviderError. `not_found` replaces `what` for a 404.
        `ids` go into the URL: a blank one is refused here (the SDK would raise a bare Exception)."""
        if any(not str(value).strip() for value in ids):
            raise ProviderError(f"{what}: an id is blank", retryable=False)
        client = self._client()
        try:
            return call(client)
        except (chargebee.APIError, httpx.HTTPError) as err:
            raise provider_error(err, not_found if not_found and _not_found(err) else what) from err
        except Exception as err:
            if type(err) is not Exception:  # a bug of ours or of the SDK, not an answer: let it show
                raise
            raise provider_error(err, what) from err

    @staticmethod
    def _keyed(idempotency_key: str) -> dict[str, str]:
        return {IDEMPOTENCY_HEADER: idempotency_key}

    def _raw(self, subscription_id: str) -> dict[str, Any]:
        return self._call(f"could not read Chargebee subscription {subscription_id}",
                          lambda c: c.Subscription.retrieve(subscription_id).subscription.raw_data,
                          not_found=f"subscription {subscription_id} does not exist in Chargebee",
                          ids=(subscription_id,))

    def _write(self, what: str, subscription_id: str, call: Callable[[chargebee.Chargebee], Any]) -> Subscription:
        raw = self._call(f"{what} failed for Chargebee subscription {subscription_id}",
                         lambda c: call(c).subscription.raw_data,
                         not_found=f"subscription {subscription_id} does not exist in Chargebee")
        return subscription_from(raw)

    # --- reads ------------------------------------------------------------------------------------

    def connection_check(self) -> str:
        configurations = self._call("could not connect to Chargebee",
                                    lambda c: [x.raw_data for x in c.Configuration.list().configurations])
        site = self.credentials.site or "(local)"
        catalog = ", ".join(sorted({str(x.get("product_catalog_version", "?")) for x in configurations})) or "?"
        if "v1" in catalog.split(", "):
            raise ProviderError(f"Chargebee site {site} uses Product Catalog 1.0; this integration needs 2.0",
                                retryable=False)
        return f"Chargebee site {site} (product catalog {catalog})"

    def subscription_get(self, subscription_id: str) -> Subscription:
        return subscription_from(self._raw(subscription_id))

    def customers_by_email(self, email: str) -> list[str]:
        found: list[str] = []
        offset: str | None = None
        while True:
            def page_at(client: chargebee.Chargebee, offset: str | None = offset) -> Any:
                params: dict[str, Any] = {"email": {"IS": email}, "limit": 100,
                                          **({"offset": offset} if offset else {})}
                return client.Customer.list(params)  # type: ignore[arg-type]

            page = self._call(f"could not look up Chargebee customers with email {email}", page_at)
            found.extend(str(entry.customer.id) for entry in page.list)
            offset = page.next_offset
            if not offset:
                return found

    def scheduled_plan(self, subscription_id: str) -> str:
        current = subscription_from(self._raw(subscription_id))
        return self._scheduled_plan(subscription_id) if current.raw_status.get("has_scheduled_changes") else ""

    def subscriptions_for_customer(self, customer_id: str) -> list[Subscription]:
        self._call(f"could not read Chargebee customer {customer_id}",
                   lambda c: c.Customer.retrieve(customer_id),
                   not_found=f"customer {customer_id} does not exist in Chargebee", ids=(customer_id,))
        found: list[dict[str, Any]] = []
        offset: str | None = None
        while True:
            def page_at(client: chargebee.Chargebee, offset: str | None = offset) -> Any:
                params = {"limit": 100, **({"offset": offset} if offset else {})}
                return client.Subscription.subscriptions_for_customer(customer_id, params)

            page = self._call(f"could not list the subscriptions of Chargebee customer {customer_id}", page_at)
            found.extend(entry.subscription.raw_data for entry in page.list)
            offset = page.next_offset
            if not offset:
                break
        found.sort(key=lambda raw: int(raw.get("created_at") or 0), reverse=True)
        return [s for s in map(subscription_from, found) if s.is_active]

    # --- writes -----------------------------------------------------------------------------------

    def subscription_cancel(self, subscription_id: str, *, at_period_end: bool, prorate: bool,
                            invoice_now: bool, idempotency_key: str, refund: bool = False,
                            reason: CancelReason | None = None) -> ActionResult:
        current = subscription_from(self._raw(subscription_id))
        if current.status == "cancelled" or (at_period_end and current.status == "non_renewing"):
            return ActionResult(changed=False, summary=f"already {current.status.replace('_', '-')}",
                                subscription=current)
        params: dict[str, Any] = {"end_of_term": at_period_end}
        if reason is not None and reason.code:
            params["cancel_reason_code"] = reason.code
        if not at_period_end:
            params["credit_option_for_current_term_charges"] = "prorate" if prorate else "none"
            if invoice_now:
                params["unbilled_charges_option"] = "invoice"
        after = self._write("cancel", subscription_id, lambda c: c.Subscription.cancel_for_items(
            subscription_id, params, headers=self._keyed(idempotency_key)))
        if at_period_end:
            end = after.current_period_end
            summary = f"canceled at period end ({end.date().isoformat() if end else 'term end'})"
        else:
            summary = "canceled now" + (", unused time credited" if prorate else "")
        return ActionResult(changed=True, summary=summary, subscription=after)

    def coupon_apply(self, subscription_id: str, *, coupon: str, idempotency_key: str) -> ActionResult:
        found = self._call(f"could not look up coupon {coupon} in Chargebee",
                           lambda c: c.Coupon.retrieve(coupon).coupon.raw_data,
                           not_found=f"coupon {coupon} does not exist in Chargebee", ids=(coupon,))
        if found.get("status", "active") != "active":
            raise ProviderError(f"coupon {coupon} is {found['status']} in Chargebee and cannot be applied",
                                retryable=False)
        current = subscription_from(self._raw(subscription_id))
        if coupon in current.coupons:
            return ActionResult(changed=False, summary=f"coupon {coupon} already applied", subscription=current)
        after = self._write(f"applying coupon {coupon}", subscription_id, lambda c: c.Subscription.update_for_items(
            subscription_id, {"coupon_ids": [coupon]}, headers=self._keyed(idempotency_key)))
        return ActionResult(changed=True, summary=f"coupon {coupon} applied", subscription=after)

    def subscription_pause(self, subscription_id: str, *, months: int, resumes_at: datetime,
                           idempotency_key: str) -> ActionResult:
        if months < 1:
            raise ProviderError(f"a pause needs at least one month, not {months}", retryable=False)
        current = subscription_from(self._raw(subscription_id))
        if current.paused:
            return ActionResult(changed=False, summary="already paused", subscription=current)
        resume = resumes_at
        # end_of_term: the customer keeps the term they paid for; Chargebee pauses when it ends.
        params = {"pause_option": "end_of_term", "resume_date": _timestamp(resume)}
        after = self._write("pause", subscription_id, lambda c: c.Subscription.pause(
            subscription_id, params, headers=self._keyed(idempotency_key)))
        return ActionResult(changed=True, summary=f"pauses at the term end, until {resume.date().isoformat()}",
                            subscription=after)

    def _scheduled_plan(self, subscription_id: str) -> str:
        raw = self._call(
            f"could not read the scheduled changes of Chargebee subscription {subscription_id}",
            lambda c: c.Subscription.retrieve_with_scheduled_changes(subscription_id).subscription.raw_data)
        return subscription_from(raw).plan

    def plan_change(self, subscription_id: str, *, plan: str, at_renewal: bool, prorate: bool,
                    idempotency_key: str) -> ActionResult:
        price = self._call(f"could not look up plan {plan} in Chargebee",
                           lambda c: c.ItemPrice.retrieve(plan).item_price.raw_data,
                           not_found=f"plan {plan} does not exist in Chargebee", ids=(plan,))
        if price.get("status", "active") != "active":
            raise ProviderError(f"plan {plan} is {price['status']} in Chargebee and cannot be chosen", retryable=False)
        if price.get("item_type") != "plan":
            raise ProviderError(f"plan {plan} is a Chargebee {price.get('item_type')} price, not a plan price",
                                retryable=False)
        current = subscription_from(self._raw(subscription_id))
        scheduled = self._scheduled_plan(subscription_id) if current.raw_status.get("has_scheduled_changes") else ""
        if at_renewal and (scheduled == plan or (not scheduled and current.plan == plan)):
            return ActionResult(changed=False, summary=f"already moving to plan {plan} at renewal",
                                subscription=current)
        if not at_renewal and current.plan == plan:
            return ActionResult(changed=False, summary=f"already on plan {plan}", subscription=current)
        have = (current.currency, current.interval)
        want = (str(price.get("currency_code") or "").upper(), _interval(price.get("period"), price.get("period_unit")))
        if have != want:
            raise ProviderError(f"plan {plan} is billed in {want[0]} every {_words(want[1])}, the subscription in "
                                f"{have[0]} every {_words(have[1])} (subscription {subscription_id}); a plan change "
                                "keeps the currency and the billing period, so the plan was not changed",
                                retryable=False)
        quantity = dict(current.items).get(current.plan, 1)
        # The plan item only: add-ons and charges not named stay as they are, at their quantities.
        params: dict[str, Any] = {"subscription_items": [{"item_price_id": plan, "quantity": quantity}]}
        if at_renewal:
            params["change_option"] = "end_of_term"
        else:
            params.update(change_option="immediately", prorate=prorate)
        after = self._write(f"moving to plan {plan}", subscription_id, lambda c: c.Subscription.update_for_items(
            subscription_id, params, headers=self._keyed(idempotency_key)))
        summary = f"plan {plan} from the next renewal" if at_renewal else f"moved to plan {plan}"
        return ActionResult(changed=True, summary=summary, subscription=after)

    def subscription_reactivate(self, subscription_id: str, *, idempotency_key: str) -> ActionResult:
        current = subscription_from(self._raw(subscription_id))
        if current.status == "cancelled":
            raise ProviderError(f"subscription {subscription_id} has already ended in Chargebee and cannot be kept; "
                                "the customer needs a new subscription", retryable=False)
        if current.status != "non_renewing":
            return ActionResult(changed=False, summary="not set to cancel: nothing to undo", subscription=current)
        after = self._write("removing the scheduled cancel", subscription_id,
                            lambda c: c.Subscription.remove_scheduled_cancellation(
                                subscription_id, {}, headers=self._keyed(idempotency_key)))
        return ActionResult(changed=True, summary="scheduled cancel removed: it renews again", subscription=after)

    def trial_extend(self, subscription_id: str, *, until: datetime, idempotency_key: str) -> ActionResult:
        current = subscription_from(self._raw(subscription_id))
        trialing = current.status == "in_trial"
        moved = "trial end" if trialing else "next bill date"
        end = current.trial_end if trialing else current.current_period_end
        target = _timestamp(until)
        if end is not None and _timestamp(end) >= target:
            return ActionResult(changed=False, summary=f"{moved} already {end.date().isoformat()}",
                                subscription=current)
        params = {"term_ends_at": target, "prorate": False, "invoice_immediately": False}
        after = self._write(f"moving the {moved}", subscription_id, lambda c: c.Subscription.change_term_end(
            subscription_id, params, headers=self._keyed(idempotency_key)))
        return ActionResult(changed=True, summary=f"{moved} moved to {until.date().isoformat()}", subscription=after)

    def renewals_skip_until(self, subscription_id: str, *, renewals: int) -> datetime:
        raw = self._raw(subscription_id)
        next_bill = subscription_from(raw).current_period_end
        if next_bill is None:
            raise ProviderError(f"Chargebee subscription {subscription_id} has no next bill date: there is no "
                                "renewal to skip", retryable=False)
        unit, length = str(raw.get("billing_period_unit") or ""), int(raw.get("billing_period") or 0)
        try:
            return add_cycles(next_bill, unit=unit, length=length, cycles=renewals)
        except ValueError as exc:
            raise ProviderError(f"the billing period of Chargebee subscription {subscription_id} cannot be read "
                                f"({exc})", retryable=False) from exc

    def renewals_skip(self, subscription_id: str, *, renewals: int, until: datetime,
                      idempotency_key: str) -> ActionResult:
        current = subscription_from(self._raw(subscription_id))
        if current.status == "cancelled":
            raise ProviderError(f"Chargebee subscription {subscription_id} is cancelled: there is no renewal to skip",
                                retryable=False)
        free = current.no_charge_until
        if free is not None and _timestamp(free) >= _timestamp(until):
            return ActionResult(changed=False, summary=f"already nothing billed until {free.date().isoformat()}",
                                subscription=current)
        params = {"term_ends_at": _timestamp(until), "prorate": False, "invoice_immediately": False}
        after = self._write("skipping renewals", subscription_id, lambda c: c.Subscription.change_term_end(
            subscription_id, params, headers=self._keyed(idempotency_key)))
        plural = "s" if renewals != 1 else ""
        return ActionResult(changed=True, summary=f"next {renewals} renewal{plural} free: next bill "
                                                  f"{until.date().isoformat()}", subscription=after)

    # --- paid invoices ---------------------------------------------------------------------------

    def paid_invoices(self, subscription_id: str, *, since: datetime) -> list[PaidInvoice]:
        """GET /invoices with `subscription_id[is]`, `status[is]=paid` and `paid_at[after]` (a second before
        `since`, as `after` excludes its own second), `sort_by[asc]=date`; `amount_paid` in the currency's
        smallest unit. The subscription is read first: Chargebee lists nothing, not a 404, for an unknown one."""
        self._raw(subscription_id)
        found: list[PaidInvoice] = []
        offset: str | None = None
        while True:
            def page_at(client: chargebee.Chargebee, offset: str | None = offset) -> Any:
                params = {"subscription_id[is]": subscription_id, "status[is]": "paid",
                          "paid_at[after]": _timestamp(since) - 1, "sort_by[asc]": "date", "limit": 100,
                          **({"offset": offset} if offset else {})}
                return client.Invoice.list(params)

            page = self._call(f"could not list the invoices of Chargebee subscription {subscription_id}", page_at)
            for entry in page.list:
                raw = entry.invoice.raw_data
                paid_at = _when(raw.get("paid_at"))
                if raw.get("status") != "paid" or paid_at is None or paid_at < since:
                    continue
                currency = str(raw.get("currency_code") or "").upper()
                found.append(PaidInvoice(id=str(raw["id"]), amount=major_units(raw.get("amount_paid") or 0, currency),
                                         currency=currency, paid_at=paid_at))
            offset = page.next_offset
            if not offset:
                break
        return sorted(found, key=lambda invoice: invoice.paid_at)

