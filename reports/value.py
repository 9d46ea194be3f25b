"""What a kept customer is worth: what they actually pay over the watch window, net of the offer.

Each save is valued at the plan's monthly value (account.value per month) times the months the customer
pays during the watch window (SAVE_WATCH_DAYS; a month is 30 days here), less what the offer gives:

- Nevermind, a plan change (the new plan's price is not known to us: valued at the current plan), a custom
  link: the whole window.
- A discount of d% for k months: d% of the discounted months only (k blank: the whole window).
- A pause of p months: nothing for the paused months.
- A trial extension of t days: nothing for those days.
- A skip of n renewals: nothing for n billing periods, each counted as a month (the report knows the
  plan's monthly value, not its billing period; a window shorter than the periods skipped pays nothing).
- A contact-support request: nothing until the save is confirmed (the customer only asked to talk), so
  it adds to revenue kept once confirmed and never to the watch list's value at stake.

A value is always in its App's currency (App.currency): sums across Apps are grouped by currency, never
added together. Revenue kept counts saved customers only (still paying after the window).
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings

from offers.models import Offer

CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal(30)  # as the watch window counts them: the default 30 days are one month

# The offer's terms the valuation reads, as values() names them from a decision.
TERMS = ("kind", "discount_percent", "discount_months", "pause_months", "trial_days", "skip_renewals")


def window_months(window_days: int | None = None) -> Decimal:
    days = settings.SAVE_WATCH_DAYS if window_days is None else window_days
    return Decimal(days) / DAYS_PER_MONTH


def months_paid(*, offer_kind: str | None, discount_percent: int | None = None, discount_months: int | None = None,
                pause_months: int | None = None, trial_days: int | None = None, skip_renewals: int | None = None,
                confirmed: bool = True,
                window_days: int | None = None) -> Decimal:
    """The months of the plan's price a kept customer pays over the watch window, net of the offer."""
    months = window_months(window_days)
    if offer_kind == Offer.Kind.CONTACT_SUPPORT:
        return months if confirmed else Decimal(0)
    if offer_kind == Offer.Kind.PAUSE:
        return max(Decimal(0), months - Decimal(pause_months or 1))
    if offer_kind == Offer.Kind.SKIP_RENEWAL:
        return max(Decimal(0), months - Decimal(skip_renewals or Offer.TERM_DEFAULTS["skip_renewals"]))
    if offer_kind == Offer.Kind.TRIAL_EXTENSION:
        return max(Decimal(0), months - Decimal(trial_days or 0) / DAYS_PER_MONTH)
    if offer_kind == Offer.Kind.DISCOUNT and discount_percent:
        discounted = months if not discount_months else min(months, Decimal(discount_months))
        return months - discounted * Decimal(discount_percent) / Decimal(100)
    return months


def value_kept(monthly_value: Decimal | None, *, confirmed: bool = True, **terms: object) -> Decimal:
    """The money a kept customer pays over the watch window (see months_paid for `terms`)."""
    if monthly_value is None:
        return Decimal(0)
    return (monthly_value * months_paid(confirmed=confirmed, **terms)).quantize(CENT)  # type: ignore[arg-type]


def terms_of(row: dict, prefix: str) -> dict:
    """months_paid's keyword arguments from a values() row whose offer columns start with `prefix`."""
    return {"offer_kind" if name == "kind" else name: row[f"{prefix}{name}"] for name in TERMS}


def money(amounts: dict[str, Decimal]) -> list[dict]:
    """[{currency, amount}], largest first: a sum per currency, never one across currencies."""
    return [{"currency": currency, "amount": amount.quantize(CENT)}
            for currency, amount in sorted(amounts.items(), key=lambda item: (-item[1], item[0]))]
