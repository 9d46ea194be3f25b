"""Reads of the alerts channel."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import QuerySet
from django.utils import timezone

from . import rendering
from .models import AlertDelivery, AlertRule
from .services import sample_data, settings_for_app
from .transports import Message


def deliveries_for_session(*, session_id: int) -> QuerySet[AlertDelivery]:
    """Every alert about one CancelSession (by primary key), oldest first: the session's timeline."""
    return (AlertDelivery.objects.filter(event__session_id=session_id).select_related("rule", "event")
            .order_by("created_at", "id"))


def deliveries_for_rule(*, rule: AlertRule) -> QuerySet[AlertDelivery]:
    return AlertDelivery.objects.filter(rule=rule).order_by("-created_at", "-id")


@dataclass(frozen=True)
class Preview:
    kind: str  # AlertDelivery.Kind
    label: str
    message: Message


def rule_preview(*, rule: AlertRule, event_type: str) -> list[Preview]:
    """What the rule's destinations receive for a made-up `event_type` event (services.rule_send_test
    sends the same): one Preview per destination, rendered by the code the worker runs."""
    prefs = settings_for_app(app=rule.app)
    data = sample_data(app=rule.app, event_type=event_type)
    now = timezone.now()
    previews = []
    for kind, wanted in ((AlertDelivery.Kind.TEAM_EMAIL, bool(rule.recipients)),
                         (AlertDelivery.Kind.SLACK, bool(rule.slack_webhook_url))):
        if not wanted:
            continue
        _slug, message = rendering.message_for(
            app=rule.app, kind=kind, event_type=event_type, data=data, occurred_at=now,
            response_business_days=prefs.response_business_days, recipients=list(rule.recipients),
            slack_webhook_url=rule.slack_webhook_url)
        previews.append(Preview(kind=kind, label=str(AlertDelivery.Kind(kind).label), message=message))
    return previews
