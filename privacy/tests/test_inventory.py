"""Every column that could hold a customer's words or identity is either erased by customer_erase or
known not to: a new TextField, JSONField, EmailField or URLField fails here until it is placed."""

from __future__ import annotations

from django.apps import apps
from django.db import models

from privacy import selectors

# Rows linked to a customer's sessions, scrubbed by their app's privacy module.
ERASED = {
    "flows.CancelSession.email", "flows.CancelSession.account_internal_id", "flows.CancelSession.subscription_id",
    "flows.CancelSession.data", "flows.Decision.feedback", "flows.Decision.redirect_url", "flows.Event.data",
    "flows.VariantAssignment.account_key", "flows.App.offer_blocklist",
    "flows.CancelSession.account_key",  # where sessions keep the customer's experiment key
    "alerts.AlertDelivery.data", "alerts.AlertDelivery.recipients", "alerts.AlertDelivery.last_answer",
    "alerts.AlertDelivery.last_error",
    "billing.BillingAction.request", "billing.BillingAction.subscription_ids", "billing.BillingAction.result",
    "billing.BillingAction.summary", "billing.BillingAction.log", "billing.BillingAction.last_error",
    "billing.BillingAction.error_detail",
    "webhooks.Delivery.payload", "webhooks.Delivery.last_error", "webhooks.DeliveryAttempt.response_body",
    "webhooks.DeliveryAttempt.error",
    # The customer's address on each receipt, and the mail server's answers that may quote it.
    "receipts.Receipt.recipient", "receipts.Receipt.last_answer", "receipts.Receipt.last_error",
}
# Staff's configuration, secrets, codes and our own infrastructure's words: nothing a customer gave.
NOT_CUSTOMER_DATA = {
    "flows.App.secret", "flows.App.allowed_return_hosts", "flows.App.allowed_origins", "flows.App.support_email",
    "flows.Flow.intro", "flows.Flow.logo_url", "flows.Flow.cancel_note", "flows.Variant.intro",
    "flows.CancelSession.offer_codes", "flows.CancelSession.offers_shown",
    # Rules are staff's; one naming a customer is reported by customer_erase (flows.privacy.mentions).
    "flows.Audience.rules",
    # Which rules applied (a region code such as US-CA, the page's rules): evidence kept with the counts; a
    # state or country identifies nobody. Staff's rules per region.
    "flows.CancelSession.compliance", "compliance.ComplianceRules.rules",
    "offers.Offer.description", "offers.Offer.return_url", "offers.Offer.support_email", "offers.Offer.link_url",
    "alerts.AlertRule.events", "alerts.AlertRule.recipients", "alerts.AlertRule.slack_webhook_url",
    "alerts.AlertDelivery.slack_webhook_url",
    "billing.BillingConnection.test_api_key", "billing.BillingConnection.live_api_key",
    "billing.BillingConnection.api_base", "billing.BillingConnection.check_result",
    "billing.BillingConnection.stripe_account",  # the business's Stripe Connect account, not a customer's
    "billing.BillingConnection.cancel_reason_codes",
    "webhooks.Endpoint.url", "webhooks.Endpoint.event_types", "webhooks.Endpoint.secret",
    "webhooks.Endpoint.previous_secret", "webhooks.Endpoint.disabled_reason", "webhooks.DeliveryAttempt.url",
    # A flow's published content is staff's copy and configuration (never the App's blocklist); a step
    # names the controls on screen by their codes (reason:…, accept:…), never what the customer wrote.
    "evidence.FlowVersion.content", "evidence.Step.controls",
    "receipts.ReceiptSettings.support_url",
}
FREE_FORM = (models.TextField, models.JSONField, models.EmailField, models.URLField)
IDENTITY_NAMES = ("email", "account", "subscription", "recipient", "customer", "feedback")
OURS = {"flows", "offers", "alerts", "billing", "webhooks", "reports", "audiences", "privacy", "embeds", "evidence",
        "receipts", "compliance"}


def columns() -> set[str]:
    found = set()
    for model in apps.get_models():
        if model._meta.app_label not in OURS:
            continue
        for field in model._meta.concrete_fields:
            named = isinstance(field, models.CharField) and any(word in field.name for word in IDENTITY_NAMES)
            if isinstance(field, FREE_FORM) or named:
                found.add(f"{model._meta.label}.{field.name}")
    return found


def test_every_column_that_could_hold_customer_data_is_placed():
    unplaced = columns() - ERASED - NOT_CUSTOMER_DATA
    assert not unplaced, (f"Say whether customer_erase must erase {sorted(unplaced)} (its app's privacy.py) "
                          "or why it holds no customer data (NOT_CUSTOMER_DATA here)")


def test_every_app_with_erased_columns_has_a_privacy_module():
    with_modules = {label for label, _module in selectors.parts()}
    assert {name.split(".")[0] for name in ERASED} <= with_modules
    for _label, module in selectors.parts():
        assert callable(module.busy) and callable(module.erase) and callable(module.export)


# Every table whose rows belong to a customer's sessions (a key to the session, its decision or its event)
# is in customer_export: the app's label and the name its rows go under.
EXPORTED_WITH_SESSIONS = {
    "flows.Decision": ("flows", "decisions"), "flows.Event": ("flows", "events"),
    "alerts.AlertDelivery": ("alerts", "deliveries"), "webhooks.Delivery": ("webhooks", "deliveries"),
    "billing.BillingAction": ("billing", "actions"), "billing.SavePayment": ("billing", "save_payments"),
    "receipts.Receipt": ("receipts", "receipts"), "evidence.Step": ("evidence", "steps"),
}


def session_tables() -> set[str]:
    from flows.models import CancelSession, Decision, Event

    held = {CancelSession, Decision, Event}
    return {model._meta.label for model in apps.get_models() if model._meta.app_label in OURS
            and model not in held
            and any(field.is_relation and field.many_to_one and field.related_model in held
                    for field in model._meta.concrete_fields)}


def test_every_table_of_a_customers_sessions_is_exported():
    assert session_tables() == set(EXPORTED_WITH_SESSIONS) - {"flows.Decision", "flows.Event"}, (
        "Say where customer_export puts the rows of a table keyed to sessions (its app's privacy.py export)")
    labels = {label for label, _module in selectors.parts()}
    assert {app for app, _name in EXPORTED_WITH_SESSIONS.values()} <= labels
