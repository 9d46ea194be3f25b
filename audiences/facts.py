"""Facts derived from a customer's snippet data, shared by audience rules, offer rules and reports.

Pure functions of the data (and of `now` where time matters): no database, no settings.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

# How many months one billing period of each plan_term lasts. Brightback pages send "month" or "year";
# the other spellings are the ones billing systems use.
TERM_MONTHS: dict[str, Decimal] = {
    "": Decimal(1), "month": Decimal(1), "monthly": Decimal(1), "mo": Decimal(1),
    "year": Decimal(12), "yearly": Decimal(12), "annual": Decimal(12), "annually": Decimal(12), "yr": Decimal(12),
    "quarter": Decimal(3), "quarterly": Decimal(3),
    "week": Decimal(12) / Decimal(52), "weekly": Decimal(12) / Decimal(52),
}
CENT = Decimal("0.01")


def monthly_value(account: dict) -> Decimal | None:
    """account.value per month: a yearly plan's value divided by 12, a weekly one's times 52/12.

    A blank plan_term means monthly (Brightback's default); an unknown one, or no numeric value, gives
    None rather than a guess.
    """
    value = account.get("value")
    if isinstance(value, bool) or value is None:
        return None
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount < 0:
        return None
    term = str(account.get("plan_term") or "").strip().lower()
    months = TERM_MONTHS.get(term)
    if months is None:
        return None
    return (amount / months).quantize(CENT)


def parse_moment(value: object) -> datetime | None:
    """An ISO 8601 date or date-time as an aware datetime (dates at midnight UTC), else None."""
    if not isinstance(value, str) or not value.strip():
        return None
    text = value.strip().replace("Z", "+00:00")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        moment = datetime(day.year, day.month, day.day)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def tenure_days(account: dict, *, now: datetime) -> int | None:
    """Whole days since account.created_at; None when it is missing or not a date."""
    created = parse_moment(account.get("created_at"))
    if created is None:
        return None
    return max((now - created).days, 0)


def in_trial(account: dict, *, now: datetime) -> bool:
    """The page says the customer is trialing: account.trial_ends_at lies ahead, or account.status is
    "trialing" (Stripe's word) or "in_trial" (Chargebee's)."""
    ends = parse_moment(account.get("trial_ends_at"))
    if ends is not None and ends > now:
        return True
    return str(account.get("status") or "").lower() in ("trialing", "in_trial")
