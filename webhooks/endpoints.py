"""An App's webhook endpoints: created (validated: URL scheme, private addresses, event types), disabled
(telling the App's team why), enabled again, and their signing secret rotated with an overlap."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from django.conf import settings
from django.core.mail import send_mail
from django.db import transaction
from django.utils import timezone

from flows.models import App
from flows.selectors import app_row_changed

from . import signing
from .models import Endpoint

logger = logging.getLogger("webhooks.services")


def endpoint_create(*, app: App, url: str, event_types: list[str] | None = None, description: str = "",
                    send_hub_signature: bool = False, is_active: bool = True) -> Endpoint:
    """Validate (URL scheme, private addresses, event types) and save a new endpoint. Its generated
    secret is on the returned object: show it once, it is never shown again."""
    endpoint = Endpoint(app=app, url=url, event_types=list(event_types or []), description=description,
                        send_hub_signature=send_hub_signature, is_active=is_active)
    endpoint.full_clean()
    endpoint.save()
    return endpoint


def endpoint_disable(*, endpoint: Endpoint, reason: str, now: datetime | None = None) -> bool:
    """Stop sending to an endpoint and tell the App's team. False if it was already disabled."""
    now = now or timezone.now()
    note = f"webhook.endpoint_disabled: {reason}"
    changed = Endpoint.objects.filter(pk=endpoint.pk, is_active=True).update(
        is_active=False, disabled_at=now, disabled_reason=note, updated_at=now)
    if changed != 1:
        return False
    app_row_changed(pk=endpoint.app_id)
    endpoint.is_active, endpoint.disabled_at, endpoint.disabled_reason = False, now, note
    logger.warning("webhook.endpoint_disabled endpoint=%s app=%s url=%s: %s",
                   endpoint.pk, endpoint.app.app_id, endpoint.url, reason)
    if endpoint.app.support_email:
        try:
            send_mail(
                subject=f"Webhook endpoint disabled: {endpoint.url}",
                message=(f"We stopped sending {endpoint.app.name}'s events to {endpoint.url}.\n\n"
                         f"Why: {reason}\n\nFix the receiver, then tick “active” on the endpoint in the "
                         "admin and redeliver the failed deliveries from its delivery log.\n"),
                from_email=None, recipient_list=[endpoint.app.support_email],
            )
        except Exception:  # noqa: BLE001 - the endpoint is disabled either way; the log has it
            logger.exception("could not email %s about disabled endpoint %s", endpoint.app.support_email,
                             endpoint.pk)
    return True


def endpoint_enable(*, endpoint: Endpoint) -> None:
    Endpoint.objects.filter(pk=endpoint.pk).update(is_active=True, disabled_at=None, disabled_reason="",
                                                   failing_since=None, backoff_until=None, troubled_runs=0,
                                                   updated_at=timezone.now())
    app_row_changed(pk=endpoint.app_id)
    endpoint.refresh_from_db()


@transaction.atomic
def endpoint_secret_rotate(*, endpoint: Endpoint, now: datetime | None = None) -> str:
    """Give the endpoint a new secret and return it (the only time it is shown). The old secret keeps
    signing too, as a second signature, for WEBHOOK_SECRET_OVERLAP_HOURS."""
    now = now or timezone.now()
    locked = Endpoint.objects.select_for_update().get(pk=endpoint.pk)
    new_secret = signing.secret_new()
    locked.previous_secret = locked.secret
    locked.previous_secret_expires_at = now + timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    locked.secret = new_secret
    locked.secret_rotated_at = now
    locked.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at", "secret_rotated_at",
                               "updated_at"])
    endpoint.refresh_from_db()
    return new_secret
