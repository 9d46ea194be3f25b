"""The machine-readable summary (DESIGN §8): what `manage.py report_summary` prints and the admin offers
as a JSON download, for teams' BI tools. The same selectors as the pages, so both always agree.

Accounts are counted by their last outcome (reports.outcomes); `save_rate` is saved / accounts decided
on the days whose watch windows have closed; money is a list of {currency, amount}, never added across
currencies (revenue kept says how much of it came from paid invoices); rates and lifts are fractions
(0.05 is 5 points), not percentages.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from . import experiments, selectors


def _money(amounts: list[dict]) -> list[dict[str, Any]]:
    return [{"currency": m["currency"], "amount": float(Decimal(m["amount"]))} for m in amounts]


def _revenue(amounts: list[dict]) -> list[dict[str, Any]]:
    """Revenue kept: {currency, amount} as DESIGN §8 fixes it, plus what of `amount` is `from_invoices`
    (what billing read the saves paid) and `estimated` (each plan's value net of its offer)."""
    return [{"currency": m["currency"], "amount": float(Decimal(m["amount"])),
             "from_invoices": float(m["invoiced"]), "estimated": float(m["estimated"])} for m in amounts]


def report_summary(report: selectors.ReportFilter) -> dict[str, Any]:
    figures = selectors.overview(report)
    watch = selectors.watch_list(report, rows=False)
    return {
        "sessions_opened": figures.sessions,
        "deflected": figures.deflected,
        "saved": figures.saved,
        "canceled": figures.canceled_accounts,
        "save_rate": figures.save_rate,
        "revenue_kept": _revenue(figures.revenue_kept),
        "watch_list": {"count": watch["count"], "at_stake": _money(watch["at_stake"])},
        "experiments": [experiments.summary(experiment) for experiment in experiments.experiments(report)],
    }
