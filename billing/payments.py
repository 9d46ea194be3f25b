"""What saved customers actually paid: the billing system's paid invoices over a save's watch window.

When beat confirms a save after its watch window (flows.services.saves_confirm_due asks the channels named
in BRIGHTBACK_SAVE_CHECKS whether the customer still pays), billing also reads the invoices the customer
paid from the save until the window's end (`BillingProvider.paid_invoices`) and keeps their sum per
currency (SavePayment), replacing what an earlier read kept. The reports read them through
BRIGHTBACK_PAID_AFTER_SAVES (`paid_after_saves`): a save with a row is valued at what was paid; one
without (no billing connected, a dry run, the provider did not answer) keeps its estimate (reports.value).
Reading invoices never holds up a confirmation: a provider that fails leaves the save estimated.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import transaction

from flows.models import CancelSession, Decision

from .models import BillingConnection, SavePayment
from .providers import ProviderError, provider_for

logger = logging.getLogger(__name__)


def save_payments_read(*, decision: Decision) -> list[SavePayment] | None:
    """Read and keep what the customer of a save paid over its watch window; None when billing cannot
    tell (no connection, a dry run, no key, no subscription to read, the provider failed)."""
    session = decision.session
    connection = BillingConnection.objects.select_related("app").filter(app_id=session.app_id).first()
    if connection is None or connection.dry_run or not connection.api_key:
        return None
    saved_at = decision.created_at
    window_end = saved_at + timedelta(days=settings.SAVE_WATCH_DAYS)
    customer = str(session.account.get("billing_id") or "")
    try:
        provider = provider_for(connection.provider, connection.credentials(timeout=settings.BILLING_TIMEOUT_SECONDS))
        if session.subscription_id:
            subscriptions = [session.subscription_id]
        elif customer:
            subscriptions = [s.id for s in provider.subscriptions_for_customer(customer)]
        else:
            return None
        invoices = {invoice.id: invoice for sub in subscriptions
                    for invoice in provider.paid_invoices(sub, since=saved_at) if invoice.paid_at <= window_end}
    except ProviderError as exc:
        logger.info("could not read session %s's paid invoices (provider status %s)", session.public_id,
                    exc.status_code or "none")
        return None
    sums: dict[str, tuple[Decimal, int]] = {}
    for invoice in invoices.values():
        amount, count = sums.get(invoice.currency, (Decimal(0), 0))
        sums[invoice.currency] = (amount + invoice.amount, count + 1)
    if not sums:  # nothing paid over the window (a pause, a trial): known, and nothing
        sums[connection.app.currency] = (Decimal(0), 0)
    return _keep(session=session, sums=sums, window_end=window_end)


@transaction.atomic
def _keep(*, session: CancelSession, sums: dict[str, tuple[Decimal, int]], window_end: datetime) -> list[SavePayment]:
    SavePayment.objects.filter(session=session).exclude(currency__in=list(sums)).delete()
    kept = []
    for currency, (amount, count) in sorted(sums.items()):
        row, _ = SavePayment.objects.update_or_create(
            session=session, currency=currency,
            defaults={"amount": amount, "invoices": count, "window_end": window_end})
        kept.append(row)
    return kept


def paid_after_saves(*, start: datetime, end: datetime) -> dict[int, dict[str, Decimal]]:
    """BRIGHTBACK_PAID_AFTER_SAVES: what the saves of the sessions created from `start` to `end` paid over
    their watch windows, per session pk and currency; sessions billing could not read are absent."""
    found: dict[int, dict[str, Decimal]] = {}
    rows = (SavePayment.objects.filter(session__created_at__gte=start, session__created_at__lt=end).order_by()
            .values_list("session_id", "currency", "amount"))
    for session_id, currency, amount in rows.iterator(chunk_size=5000):
        found.setdefault(session_id, {})[currency] = amount
    return found
