"""A whole tenant for admin tests: an App with a row in every table the admin shows.

Built through the same import and services the product uses (a decision fans out to webhook, alert and
billing rows through the outbox handlers), so every admin page has something of this App to show.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from django.apps import apps
from django.contrib.auth.models import Permission, User
from django.db import models

from alerts.models import AlertDelivery, AlertRule, AlertSettings
from billing.models import BillingAction, BillingConnection
from flows import services
from flows.flow_document import document_import, document_loads
from flows.models import App, Audience, CancelSession, Flow, Variant
from receipts.models import ReceiptSettings
from webhooks.models import Delivery, DeliveryAttempt, Endpoint

DEMO_DOCUMENT = Path(__file__).resolve().parents[1] / "flows" / "fixtures" / "demo-flow.json"


@dataclass
class Tenant:
    app: App
    flow: Flow
    session: CancelSession
    email: str
    endpoint: Endpoint
    delivery: Delivery
    alert_rule: AlertRule
    alert_delivery: AlertDelivery
    connection: BillingConnection
    action: BillingAction
    audience: Audience


def tenant(app_id: str, *, name: str) -> Tenant:
    document = json.loads(DEMO_DOCUMENT.read_text("utf-8"))
    document["app"].update(app_id=app_id, name=name)
    app = document_import(document=document_loads(json.dumps(document))).app
    flow = Flow.objects.get(app=app)
    audience = Audience.objects.create(app=app, name=f"{name} pros", flow=flow)
    Variant.objects.create(flow=flow, code=f"{app_id}-control", is_control=True)
    endpoint = Endpoint.objects.create(app=app, url=f"https://hooks.example.com/{app_id}")
    rule = AlertRule.objects.create(app=app, events=["session.canceled"], recipients=[f"team@{app_id}.example.com"])
    AlertSettings.objects.get_or_create(app=app)
    ReceiptSettings.objects.get_or_create(app=app, defaults={"support_url": f"https://{app_id}.example.com/help"})
    connection = BillingConnection.objects.create(app=app, provider="stripe", dry_run=True)
    email = f"customer@{app_id}.example.com"
    data = {"app_id": app_id, "email": email, "subscription_id": f"sub_{app_id}",
            "save_return_url": "http://127.0.0.1/account", "cancel_confirmation_url": "http://127.0.0.1/canceled",
            "account": {"internal_id": f"acct_{app_id}", "plan": "pro", "value": 49}}
    session = services.session_start(app=app, data=data)
    services.decision_record(session=session, kind="cancel", reason_code="too-expensive",
                             feedback=f"Feedback from {app_id}")
    delivery = Delivery.objects.get(endpoint=endpoint)
    DeliveryAttempt.objects.create(delivery=delivery, number=1, url=endpoint.url, started_at=delivery.created_at,
                                   status_code=500, outcome=DeliveryAttempt.Outcome.RETRYING)
    return Tenant(app=app, flow=flow, session=session, email=email, endpoint=endpoint, delivery=delivery,
                  alert_rule=rule, alert_delivery=AlertDelivery.objects.filter(app=app).first(),
                  connection=connection, action=BillingAction.objects.get(app=app), audience=audience)


def staff_user(username: str, *codenames: str, view_all: bool = False) -> User:
    """A staff user with the named permissions ("flows.change_flow"), or every view_* permission."""
    user = User.objects.create_user(username, password="pw", is_staff=True)
    perms = list(Permission.objects.filter(codename__startswith="view_")) if view_all else []
    for name in codenames:
        label, codename = name.split(".")
        perms.append(Permission.objects.get(content_type__app_label=label, codename=codename))
    user.user_permissions.set(perms)
    return user


def table_snapshot() -> dict[str, list[tuple]]:
    """Every row of every table of our apps (and auth), to show a request changed nothing."""
    ours = {"flows", "offers", "webhooks", "alerts", "billing", "reports", "auth", "audiences", "evidence", "receipts"}
    snapshot: dict[str, list[tuple]] = {}
    for model in apps.get_models():
        if model._meta.app_label not in ours or not model._meta.managed:
            continue
        fields = [f.attname for f in model._meta.concrete_fields if not isinstance(f, models.BinaryField)]
        snapshot[model._meta.label] = sorted(map(repr, model.objects.order_by().values_list(*fields)))
    return snapshot
