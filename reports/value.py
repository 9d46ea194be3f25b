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

Each value is worked out exactly (a month is 30 days, so a window of 7 days is 7/30 of a month, not a
decimal near it) and rounded once, half to even, to the cent: the export's database path
(reports/export.py) reproduces it to the cent.

A value is always in its App's currency (App.currency): sums across Apps are grouped by currency, never
added together. Revenue kept counts saved customers only (still paying after the window).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

from django.conf import settings

from offers.models import Offer

CENT = Decimal("0.01")
DAYS_PER_MONTH = Decimal(30)  # as the watch window counts them: the default 30 days are one month

# The offer's terms the valuation reads, as values() names them from a decision.
TERMS = ("kind", "discount_percent", "discount_months", "pause_months", "trial_days", "skip_renewals")


def window_months(window_days: int | None = None) -> Decimal:
    days = settings.SAVE_WATCH_DAYS if window_days is None else window_days
    return Decimal(days) / DAYS_PER_MONTH


def months_paid_exact(*, offer_kind: str | None, discount_percent: int | None = None,
                      discount_months: int | None = None, pause_months: int | None = None,
                      trial_days: int | None = None, skip_renewals: int | None = None, confirmed: bool = True,
                      window_days: int | None = None) -> Fraction:
    """The months of the plan's price a kept customer pays over the watch window, net of the offer."""
    months = Fraction(settings.SAVE_WATCH_DAYS if window_days is None else window_days, 30)
    if offer_kind == Offer.Kind.CONTACT_SUPPORT:
        return months if confirmed else Fraction(0)
    if offer_kind == Offer.Kind.PAUSE:
        return max(Fraction(0), months - (pause_months or 1))
    if offer_kind == Offer.Kind.SKIP_RENEWAL:
        return max(Fraction(0), months - (skip_renewals or Offer.TERM_DEFAULTS["skip_renewals"]))
    if offer_kind == Offer.Kind.TRIAL_EXTENSION:
        return max(Fraction(0), months - Fraction(trial_days or 0, 30))
    if offer_kind == Offer.Kind.DISCOUNT and discount_percent:
        discounted = months if not discount_months else min(months, Fraction(discount_months))
        return months - discounted * Fraction(discount_percent, 100)
    return months


def months_paid(**terms: object) -> Decimal:
    """months_paid_exact as a Decimal (28 significant digits), for display."""
    exact = months_paid_exact(**terms)  # type: ignore[arg-type]
    return Decimal(exact.numerator) / Decimal(exact.denominator)


def amount_for(monthly_value: Decimal, months: Fraction) -> Decimal:
    """monthly_value x months, to the cent (half to even), with a Decimal product's sign even at zero."""
    cents = round(Fraction(monthly_value) * months * 100)  # round() of a Fraction is half to even
    amount = Decimal(cents).scaleb(-2)
    if cents == 0 and (monthly_value < 0) != (months < 0):
        return amount.copy_negate()
    return amount


def value_kept(monthly_value: Decimal | None, *, confirmed: bool = True, **terms: object) -> Decimal:
    """The money a kept customer pays over the watch window (see months_paid_exact for `terms`)."""
    if monthly_value is None:
        return Decimal(0)
    return amount_for(monthly_value, months_paid_exact(confirmed=confirmed, **terms))  # type: ignore[arg-type]


def terms_of(row: dict, prefix: str) -> dict:
    """months_paid's keyword arguments from a values() row whose offer columns start with `prefix`."""
    return {"offer_kind" if name == "kind" else name: row[f"{prefix}{name}"] for name in TERMS}


def money(amounts: dict[str, Decimal]) -> list[dict]:
    """[{currency, amount}], largest first: a sum per currency, never one across currencies."""
    return [{"currency": currency, "amount": amount.quantize(CENT)}
            for currency, amount in sorted(amounts.items(), key=lambda item: (-item[1], item[0]))]
