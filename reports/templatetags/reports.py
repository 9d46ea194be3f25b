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
def signed_pct(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:+.1f}%"


@register.filter
def points(value: float | None) -> str:
    return NONE if value is None else f"{value * 100:+.1f} pts"


@register.filter
def money(value: Decimal | float | None) -> str:
    return NONE if value is None else f"{Decimal(value):,.2f}"


@register.filter
def sub(value: int, other: int) -> int:
    return (value or 0) - (other or 0)
