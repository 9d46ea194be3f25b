"""Local billing servers for tests: each speaks its provider's HTTP API on 127.0.0.1, checks what the
official SDK sends against the provider's published description, and keeps state that a test reads
back directly (never through our adapter).

Every server is a `FakeBilling` (below). It knows the plans `basic` (the plan seeded subscriptions are
on) and `pro`, USD monthly, `annual` (USD yearly), `basic-eur` (EUR monthly), the add-on `seats` (USD
monthly, billed per seat, an item of its own next to the plan) and one coupon, `SAVE30`; anything else is
unknown to it, as to the real provider. Tests get one through `fake_billing(slug)`, or the `fake_billing`
fixture in billing/tests/conftest.py.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from importlib import import_module
from typing import Protocol

from billing.providers.base import Credentials

PLANS = ("basic", "pro")  # the plans every fake has; all of them also have annual, basic-eur and seats
OTHER_TERMS = {"annual": "year", "basic-eur": "EUR"}  # plans billed other than basic: what differs
COUPON = "SAVE30"
TRIAL_ENDED_DAYS_AGO = 60

FAKES = {
    "stripe": "billing.testing.stripe_server:StripeFake",
    "recurly": "billing.testing.recurly_server:RecurlyFake",
    "chargebee": "billing.testing.chargebee_server:ChargebeeFake",
    "paddle": "billing.testing.paddle_server:PaddleFake",
}


@dataclass(frozen=True)
class Remote:
    """A subscription as the server holds it."""

    status: str
    canceled: bool  # ended now
    cancel_at_period_end: bool  # ends when the period does
    coupons: tuple[str, ...]
    paused: bool
    plan: str  # the plan billed now
    pending_plan: str  # the plan it moves to at renewal; "" when none is scheduled
    trial_end: datetime | None
    next_bill_at: datetime | None
    pause_resumes_at: datetime | None = None  # when a pause in force or scheduled ends (billing resumes)
    items: tuple[tuple[str, int], ...] = ()  # (price or plan, quantity) of every item billed now, the plan first
    cancel_reason: str = ""  # the reason the provider recorded with a cancel (Stripe's feedback, Chargebee's code)


class FakeBilling(Protocol):
    slug: str

    def credentials(self, *, timeout: float = 5.0) -> Credentials:
        """A key the server accepts, with api_base (and site) pointing at it."""

    def bad_credentials(self) -> Credentials:
        """A key the server refuses with its provider's 401 answer."""

    def seed(self, *, customer_id: str, plan: str = "basic", trialing: bool = False, trial_ended: bool = False,
             extra_items: tuple[tuple[str, int], ...] = (), quantity: int = 1, email: str = "") -> str:
        """Create a customer (if new; its email `email`, default `<customer_id>@example.test`) with an
        active (or trialing, 14 days) subscription to `plan` x `quantity` and the `extra_items` ((price,
        quantity): seats), its period ending one cycle of the plan from now; return the subscription id.
        `trial_ended`: paying now after a 14-day trial that ended 60 days ago (the provider keeps it)."""

    def items(self, subscription_id: str) -> list[tuple[str, int]]:
        """(price or plan, quantity) of every item the subscription bills now, the plan first."""

    def remote(self, subscription_id: str) -> Remote:
        """The subscription's state, read from the server's own store."""

    def invoice(self, subscription_id: str, *, amount: Decimal, paid_at: datetime | None, currency: str = "USD",
                status: str = "paid", created: datetime | None = None) -> str:
        """Add an invoice of the subscription as the provider keeps one: "paid" at `paid_at` for `amount`
        (major units), or "unpaid" (the provider's own word for one due and not paid: Stripe `open`, Recurly
        `past_due`, Chargebee `payment_due`, Paddle `past_due`), created at `created` (default: when paid,
        else now). Return its id."""

    def writes(self, subscription_id: str) -> int:
        """How many state-changing requests for this subscription the server has carried out."""

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        """Answer the next `times` API requests with `status` and the provider's own error body
        (and a Retry-After header when given), changing nothing."""

    def stall_next(self, seconds: float, *, times: int = 1, after: int = 0) -> None:
        """Hold the next `times` API requests (after letting `after` through) for `seconds` before
        answering (to provoke timeouts)."""

    def reset(self) -> None:
        """Forget every customer, subscription and injected failure (plans and the coupon remain)."""

    def close(self) -> None:
        """Stop the server."""


class InjectedFaults:
    """The failures and stalls a test asked a server for, handed out in order, one of each per request.
    Servers keep one and pass `fail_next` / `stall_next` to it. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._failures: list[tuple[int, int | None]] = []
        self._stalls: list[float] = []

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        with self._lock:
            self._failures.extend([(status, retry_after)] * times)

    def stall_next(self, seconds: float, *, times: int = 1, after: int = 0) -> None:
        """Hold `times` requests for `seconds`, after letting `after` requests through at once."""
        with self._lock:
            self._stalls.extend([0.0] * after + [seconds] * times)

    def take_stall(self) -> float:
        """Seconds to hold this request before answering (0 when none was asked for)."""
        with self._lock:
            return self._stalls.pop(0) if self._stalls else 0.0

    def take_failure(self) -> tuple[int, int | None] | None:
        """(status, retry_after) to answer this request with instead, or None."""
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def clear(self) -> None:
        with self._lock:
            self._failures.clear()
            self._stalls.clear()


class FaultsMixin:
    """A server's `fail_next` and `stall_next` (the FakeBilling protocol), kept in its `faults`."""

    faults: InjectedFaults

    def fail_next(self, status: int, *, retry_after: int | None = None, times: int = 1) -> None:
        self.faults.fail_next(status, retry_after=retry_after, times=times)

    def stall_next(self, seconds: float, *, times: int = 1, after: int = 0) -> None:
        self.faults.stall_next(seconds, times=times, after=after)


def allow_api_base(url: str) -> None:
    """List a running server's address in BILLING_ALLOWED_API_BASES, as an operator would for a local
    fake: in this process's settings, and in the environment that the workers and commands a test
    starts inherit. Billing refuses every other loopback address (billing/addresses.py)."""
    from django.conf import settings

    allowed = list(getattr(settings, "BILLING_ALLOWED_API_BASES", []))
    if url not in allowed:
        settings.BILLING_ALLOWED_API_BASES = [*allowed, url]
    listed = [u for u in os.environ.get("BILLING_ALLOWED_API_BASES", "").split(",") if u]
    if url not in listed:
        os.environ["BILLING_ALLOWED_API_BASES"] = ",".join([*listed, url])


def forbid_api_base(url: str) -> None:
    """Undo allow_api_base when the server stops."""
    from django.conf import settings

    settings.BILLING_ALLOWED_API_BASES = [u for u in getattr(settings, "BILLING_ALLOWED_API_BASES", []) if u != url]
    listed = [u for u in os.environ.get("BILLING_ALLOWED_API_BASES", "").split(",") if u and u != url]
    os.environ["BILLING_ALLOWED_API_BASES"] = ",".join(listed)


def fake_billing(slug: str) -> FakeBilling:
    """Start the local server for one provider."""
    module, _, name = FAKES[slug].partition(":")
    return getattr(import_module(module), name)()
