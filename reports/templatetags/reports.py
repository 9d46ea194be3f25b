"""Number formats for the report pages; "—" where a figure has no value (nothing to divide by)."""

from __future__ import annotations

from decimal import Decimal

from django import template

register = template.Library()
NONE = "—"


@register.filter
def num(value: int | None) -> str:
    return NONE if value is None else f"{value:,}"


@register.filter
def pct(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:.1f}%"


@register.filter
def decimal1(value: float | None) -> str:
    """A median or percentile: one decimal place, "—" when there was nothing to measure."""
    return NONE if value is None else f"{value:,.1f}"


@register.filter
def chance(value: float | None) -> str:
    """A probability as people read it: never a flat 0% or 100%, which no finite sample can show."""
    if value is None:
        return NONE
    if value > 0.999:
        return ">99.9%"
    if value < 0.001:
        return "<0.1%"
    return pct(value)


@register.filter
def signed_pct(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:+.1f}%"


@register.filter
def points(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:+.1f} pts"


@register.filter
def money(value: Decimal | float | None) -> str:
    return NONE if value is None else f"{Decimal(value):,.2f}"


@register.filter
def pvalue(value: float | None) -> str:
    if value is None:
        return NONE
    return "<0.001" if value < 0.001 else f"{value:.3f}"


@register.filter
def amount(value: dict | None) -> str:
    """{currency, amount} as "1,234.50 USD": money is never shown without its currency."""
    if not value:
        return NONE
    return f"{Decimal(value['amount']):,.2f} {value['currency']}"


@register.filter
def sub(value: int, other: int) -> int:
    return (value or 0) - (other or 0)
