"""The billing provider interface. Its docstrings are the contract every provider module keeps.

One module per provider (`stripe.py`, `recurly.py`, `chargebee.py`), registered in `REGISTRY` under
its lowercase slug. Only that module imports its vendor's SDK; nothing outside it ever sees an SDK
object: our dataclasses go in and come out.

Rules every provider keeps
- Exactly once. Each write method receives an `idempotency_key` derived from our BillingAction row.
  A provider whose API honours keys (Stripe: the `Idempotency-Key` header) sends it with every write.
  Every provider ALSO reads the subscription first and returns `ActionResult(changed=False, ...)`
  without writing when the change is already in place (already canceled or set to cancel at period
  end, coupon already applied, already paused, already on the plan, trial or bill date already at or
  past the target). Running the same action twice, or again after a worker died between the
  provider's answer and our commit, therefore changes the subscription once.
- Errors. Every failure leaves the method as a `ProviderError`, never an SDK exception:
  `retryable=True` for timeouts, refused connections, 429 and 5xx (with `retry_after` in seconds when
  the provider sent a Retry-After header); `retryable=False` for 400/401/403/404/409/422 and for
  anything we can tell will not get better by waiting (a coupon or plan the provider does not know).
  `message` is plain words a support person can act on and names what was missing
  ("coupon SAVE30 does not exist in Stripe"); `detail` is the provider's own text (its error message
  and code), which the admin keeps behind a "details" toggle. Neither ever carries the body of an
  answer that is not the provider's API (a proxy's page, another server's): only its status, type
  and size.
- Ownership. `Subscription.customer_id` is the provider's customer the subscription belongs to, in
  the form the business passes as `account.billing_id` (Stripe `cus_…`, Recurly's account code,
  Chargebee's customer id): billing refuses to act when the two differ.
- Odd answers. An answer the module cannot read (a field it needs is missing) is a ProviderError
  (not retryable) saying so, never a KeyError or an AttributeError.
- No network retries inside the SDK (Stripe `max_network_retries=0`, and so on): the shared outbox
  engine owns retries, their backoff and their record.
- Timeouts: every HTTP call gives up after `Credentials.timeout` seconds.
- Never move money beyond what the action says: no refunds, no charges, no new subscriptions.
"""

from __future__ import annotations

import calendar
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import ClassVar


class ProviderError(Exception):
    """A provider call that did not succeed. `retryable` says whether trying again later can help."""

    def __init__(self, message: str, *, retryable: bool, status_code: int | None = None,
                 retry_after: float | None = None, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail
        self.retryable = retryable
        self.status_code = status_code
        self.retry_after = retry_after

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class Credentials:
    """What a provider needs to connect. `api_base` replaces the provider's address (a test server
    or a local fake, as `billing_connect --api-base` sets it); blank means the real service."""

    api_key: str
    site: str = ""  # Chargebee's site of the key's mode (acme-test or acme in acme.chargebee.com); unused elsewhere
    api_base: str = ""
    timeout: float = 20.0
    region: str = "us"  # Recurly's data region: "us" (v3.recurly.com) or "eu" (v3.eu.recurly.com)
    stripe_account: str = ""  # Stripe Connect: the connected account (acct_…) every call acts on; blank: the key's own


@dataclass(frozen=True)
class Subscription:
    """A provider's subscription, in our words. Dates are timezone-aware UTC."""

    id: str
    customer_id: str
    status: str  # the provider's own word: active, trialing, canceled, paused, in_trial, non_renewing, ...
    is_active: bool  # still billable now or later: not canceled or expired (set to cancel at period end counts)
    plan: str  # plan or price id: the item that is the plan (Stripe: the first item; see each module)
    cancel_at_period_end: bool = False  # will end at current_period_end (Recurly: canceled, Chargebee: non_renewing)
    canceled: bool = False  # ended, or ends at period end
    paused: bool = False  # a pause is in force or scheduled
    coupons: tuple[str, ...] = ()
    trial_end: datetime | None = None  # providers keep it after the trial: see `trialing`
    current_period_end: datetime | None = None  # the next bill date
    trialing: bool = False  # in its trial now (Stripe `trialing`, Chargebee `in_trial`, Recurly a trial end ahead)
    items: tuple[tuple[str, int], ...] = ()  # every (price or plan id, quantity) billed: the plan, seats, add-ons
    currency: str = ""  # ISO 4217, upper case
    interval: str = ""  # the billing cycle, "1 month" or "12 month" (a year is 12 months)
    raw_status: dict = field(default_factory=dict, compare=False)  # a few provider fields, for the record
    # Bills are made but not charged until then (Stripe's pause_collection, `void`, with its resumes_at;
    # far in the future for a pause without an end). None: collection is not paused.
    collection_paused_until: datetime | None = None

    @property
    def no_charge_until(self) -> datetime | None:
        """Nothing is charged before this: the next bill date, or the end of a paused collection when
        later. What a skip of renewals is read back by."""
        paused = self.collection_paused_until
        if paused is not None and (self.current_period_end is None or paused > self.current_period_end):
            return paused
        return self.current_period_end


@dataclass(frozen=True)
class CancelReason:
    """Why the customer canceled, for the providers that record it. `category` is one of Stripe's
    cancellation feedback values (a Reason's category); `comment` the customer's own words (at most
    what the provider keeps; "" for none); `code` the provider site's own reason code mapped from the
    category by the App's connection (Chargebee's cancel_reason_code), "" when none is mapped."""

    category: str = "other"
    comment: str = ""
    code: str = ""


NO_END = datetime(9999, 12, 31, tzinfo=UTC)  # a paused collection without a resume date


def add_months(moment: datetime, months: int) -> datetime:
    """The same day and time `months` calendar months later (the 31st becomes the month's last day)."""
    index = moment.month - 1 + months
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


def add_cycles(moment: datetime, *, unit: str, length: int, cycles: int) -> datetime:
    """`cycles` billing cycles of `length` `unit`s after `moment`: unit day, week, month or year (a
    plural or Recurly's "days"/"months" also), calendar months keeping the day (the 31st becomes the
    month's last day). Raises ValueError for another unit or a length below 1."""
    unit = unit.lower().removesuffix("s")
    if length < 1:
        raise ValueError(f"a billing cycle of {length} {unit}s")
    if unit in ("day", "week"):
        return moment + timedelta(days=length * cycles * (7 if unit == "week" else 1))
    if unit not in ("month", "year"):
        raise ValueError(f"a billing cycle in {unit}s")
    index = moment.month - 1 + length * cycles * (12 if unit == "year" else 1)
    year, month = moment.year + index // 12, index % 12 + 1
    return moment.replace(year=year, month=month, day=min(moment.day, calendar.monthrange(year, month)[1]))


@dataclass(frozen=True)
class ActionResult:
    """What a write did. `changed` is False when the change was already in place (nothing was sent)."""

    changed: bool
    summary: str  # one line for the admin: "canceled at period end (2026-12-31)", "coupon SAVE30 applied"
    subscription: Subscription


@dataclass(frozen=True)
class PaidInvoice:
    """An invoice of a subscription that the customer paid, in our words."""

    id: str  # the provider's invoice (Paddle: transaction) id
    amount: Decimal  # what was paid, in the currency's major unit (49.00, not 4900), before any later refund
    currency: str  # ISO 4217, upper case
    paid_at: datetime  # timezone-aware UTC


# Currencies whose smallest unit is the unit itself (Stripe's, Chargebee's and Paddle's list), and those
# counted in thousandths: amounts in minor units divide by 1, 1000, else 100.
ZERO_DECIMAL = frozenset({"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA", "PYG", "RWF", "UGX", "VND", "VUV",
                          "XAF", "XOF", "XPF"})
THREE_DECIMAL = frozenset({"BHD", "JOD", "KWD", "OMR", "TND"})


def major_units(amount: int | str, currency: str) -> Decimal:
    """An amount the provider counts in the currency's smallest unit (cents), in the major unit."""
    code = currency.upper()
    places = 0 if code in ZERO_DECIMAL else 3 if code in THREE_DECIMAL else 2
    return Decimal(int(amount)).scaleb(-places)


class BillingProvider(ABC):
    """One billing system. Instances are cheap, made per action, and hold no state between calls."""

    slug: ClassVar[str]  # "stripe", "recurly", "chargebee"
    name: ClassVar[str]  # "Stripe"
    needs_site: ClassVar[bool] = False  # Chargebee: the site name is part of the address
    # Its cancel keeps the customer's own words (Stripe's cancellation_details.comment): only then are
    # they copied onto the action's request.
    takes_cancel_comment: ClassVar[bool] = False

    def __init__(self, credentials: Credentials) -> None:
        self.credentials = credentials

    @classmethod
    def key_mode(cls, api_key: str) -> str | None:
        """"test" or "live" when the provider's key format tells which mode a key is for (Stripe's
        `sk_test_`/`sk_live_`), else None. A key whose mode contradicts the App's is refused at save."""
        return None

    @abstractmethod
    def connection_check(self) -> str:
        """Make one harmless read call and describe what it found, for the admin's Test connection
        ("Stripe account acct_1 (test mode)", "Recurly site acme", "Chargebee site acme-test").
        Raises ProviderError with the provider's message for a wrong key (401, not retryable)."""

    @abstractmethod
    def subscription_get(self, subscription_id: str) -> Subscription:
        """Read one subscription. Raises ProviderError(retryable=False, status_code=404) when the
        provider has none with this id."""

    @abstractmethod
    def customers_by_email(self, email: str) -> list[str]:
        """The ids of the provider's customers with this email address (exactly as it is stored, compared
        without case), in the form `subscriptions_for_customer` takes. For a page that names its customer
        by email alone: billing acts only when exactly one customer has exactly one active subscription."""

    def scheduled_plan(self, subscription_id: str) -> str:
        """The plan or price the subscription moves to at its renewal, read from the provider ("" when
        none is scheduled). A provider that cannot schedule a plan change keeps this default."""
        return ""

    def coupon_in_place(self, subscription: Subscription, coupon: str) -> bool:
        """Whether `subscription` (as read back) carries the discount `coupon` names. A provider whose
        coupon may be named otherwise than it appears on the subscription (Paddle: a code) overrides it."""
        return coupon in subscription.coupons

    @abstractmethod
    def subscriptions_for_customer(self, customer_id: str) -> list[Subscription]:
        """The customer's subscriptions that are still active (is_active), newest first. An unknown
        customer raises ProviderError(retryable=False, status_code=404)."""

    @abstractmethod
    def subscription_cancel(self, subscription_id: str, *, at_period_end: bool, prorate: bool,
                            invoice_now: bool, idempotency_key: str, refund: bool = False,
                            reason: CancelReason | None = None) -> ActionResult:
        """Cancel now, or at the end of the current period. `reason` goes with the cancel where the provider's
        cancel call takes one (Stripe `cancellation_details`, Chargebee `cancel_reason_code`), in the same
        request; a provider whose cancel takes none says so in its module docstring. `prorate` credits unused
        time (never a refund) and `invoice_now` bills outstanding charges now, where the provider supports them
        for an immediate cancel (ignored at period end). Money goes back to the customer only when `refund` says
        so (the App's "refund unused time" choice), in a provider whose immediate cancel can refund (Recurly's
        `refund=partial`); a provider that can only refund where it would credit leaves the unused time alone
        unless `refund` is set. Already canceled (or already set to cancel at period end when that is asked):
        changed=False, nothing sent."""

    @abstractmethod
    def coupon_apply(self, subscription_id: str, *, coupon: str, idempotency_key: str) -> ActionResult:
        """Attach the provider's coupon to the subscription. A coupon the provider does not know is
        ProviderError(retryable=False) naming it. Already attached: changed=False."""

    @abstractmethod
    def subscription_pause(self, subscription_id: str, *, months: int, resumes_at: datetime,
                           idempotency_key: str) -> ActionResult:
        """Bill nothing for `months` calendar months from the end of the period the customer paid for
        (the customer keeps what they paid for), then resume by itself at `resumes_at` (= that period
        end + `months`). The caller works `resumes_at` out once, from a first read, and stores it on
        its row before calling, so a retry under the same key asks for exactly the same change (Stripe
        refuses a key reused with other parameters). A provider that counts billing cycles converts
        `months` to whole cycles of the subscription's plan, or refuses (ProviderError, not retryable,
        naming the plan's cycle) when they do not divide: never a silently longer pause. Already paused
        or a pause scheduled: changed=False."""

    @abstractmethod
    def plan_change(self, subscription_id: str, *, plan: str, at_renewal: bool, prorate: bool,
                    idempotency_key: str) -> ActionResult:
        """Move the subscription's plan item to another plan or price, now or from the next renewal, keeping
        its quantity and every other item (seats, add-ons) as they are. A plan the provider does not know
        is ProviderError(retryable=False) naming it; so is a target billed in another currency or at
        another interval than the subscription, read from the provider, with a message naming both.
        Already on it (or already scheduled to move to it at renewal): changed=False."""

    @abstractmethod
    def subscription_reactivate(self, subscription_id: str, *, idempotency_key: str) -> ActionResult:
        """Keep a subscription that is set to cancel at the end of its period: remove the scheduled cancel
        so it renews as before (the `reactivate` action of a save: Never mind, an accepted offer, a
        customer who comes back). Not set to cancel: changed=False, nothing sent. Already ended (canceled
        now, expired): ProviderError(retryable=False) saying it cannot be kept, never a new subscription.
        The caller reads the subscription back and records it done only when it is no longer set to
        cancel."""

    @abstractmethod
    def trial_extend(self, subscription_id: str, *, until: datetime, idempotency_key: str) -> ActionResult:
        """Move the trial end (a `trialing` subscription) or else the next bill date to `until`, without
        charging for the extra days. The caller works `until` out once, from a first read (`trial_end`
        while trialing, else `current_period_end`, plus N days: a trial that ended long ago is never the
        base), and stores it on its row before calling, so a replay asks for the same date: when the
        date is already at or past `until`, changed=False. The caller reads the subscription back and
        records the action done only when that date is at or past `until`."""

    @abstractmethod
    def paid_invoices(self, subscription_id: str, *, since: datetime) -> list[PaidInvoice]:
        """The subscription's invoices the customer paid at or after `since`, oldest first: what a save
        actually brought in. Only invoices the provider reports as paid, with the amount paid (a zero
        invoice of a paused or trialing term is one, with amount 0); open, void and failed ones are left
        out. Reads only. An unknown subscription raises ProviderError(retryable=False, status_code=404)."""


    @abstractmethod
    def renewals_skip_until(self, subscription_id: str, *, renewals: int) -> datetime:
        """Read only: the one date a skip of the next `renewals` renewals asks this provider for, worked
        out from the subscription's next bill date (`current_period_end`) and its plan's billing cycle.
        The caller stores it on its row before calling `renewals_skip`, so a retry sends the same date.
        A subscription without a next bill date, or a plan whose cycle cannot be read, is
        ProviderError(retryable=False)."""

    @abstractmethod
    def renewals_skip(self, subscription_id: str, *, renewals: int, until: datetime,
                      idempotency_key: str) -> ActionResult:
        """The customer keeps the service and is not charged for the next `renewals` renewals, by the
        means the provider documents (the module docstring says which), with `until` from
        `renewals_skip_until`. Already in place (`no_charge_until` at or past `until`): changed=False,
        nothing sent. The caller reads the subscription back and records the action done only when its
        `no_charge_until` is at or past `until`. An ended subscription: ProviderError(retryable=False)."""


REGISTRY: dict[str, type[BillingProvider]] = {}


def register(cls: type[BillingProvider]) -> type[BillingProvider]:
    REGISTRY[cls.slug] = cls
    return cls
