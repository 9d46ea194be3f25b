"""Reads of the billing channel."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db.models import QuerySet

from flows.models import CancelSession

from .models import BillingAction, BillingConnection
from .providers import ProviderError, provider_for

logger = logging.getLogger(__name__)


def actions_for_session(*, session_id: int) -> QuerySet[BillingAction]:
    return BillingAction.objects.filter(session_id=session_id).order_by("created_at", "pk")


def action_for_event(*, event_id: str) -> BillingAction | None:
    # The event's own action (a cancel, an offer's change) comes before the reactivate of a save.
    return BillingAction.objects.filter(event_id=event_id).order_by("pk").first()


def subscription_still_active(*, session: CancelSession) -> bool | None:
    """Ask the App's billing system whether the customer of `session` still pays: True when the named
    subscription (or one of the customer's) is active and not set to end; False when it was canceled
    or is gone; None when billing cannot tell (no connection, dry run, no key, the provider failed)."""
    connection = BillingConnection.objects.select_related("app").filter(app_id=session.app_id).first()
    if connection is None or connection.dry_run or not connection.api_key:
        return None
    customer = str(session.account.get("billing_id") or "")
    try:
        provider = provider_for(connection.provider,
                                connection.credentials(timeout=settings.BILLING_TIMEOUT_SECONDS))
        if session.subscription_id:
            subscriptions = [provider.subscription_get(session.subscription_id)]
        elif customer:
            subscriptions = provider.subscriptions_for_customer(customer)
        else:
            return None
    except ProviderError as exc:
        if exc.status_code == 404:
            return False
        # The provider's message may name the subscription or customer: the status says enough here.
        logger.info("could not check session %s's subscription (provider status %s)", session.public_id,
                    exc.status_code or "none")
        return None
    return any(s.is_active and not s.cancel_at_period_end for s in subscriptions)


def apps_with_billing(*, app_ids: list[int] | None = None) -> set[int]:
    """The Apps (pks) whose billing system is connected and acting (not a dry run): their saves are read
    from it (subscription_still_active); the others' saves are "did not cancel through us"."""
    connections = BillingConnection.objects.filter(dry_run=False)
    if app_ids is not None:
        connections = connections.filter(app_id__in=app_ids)
    return set(connections.values_list("app_id", flat=True))


def cancel_timing(*, app_id: int) -> str | None:
    """When a Cancel on this App's page takes effect in billing (a CancelTiming value); None without a
    billing connection, when the business acts on the webhook itself."""
    return BillingConnection.objects.filter(app_id=app_id).values_list("cancel_timing", flat=True).first()
