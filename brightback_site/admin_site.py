"""The admin's own site: the index grouped by task, and a getting-started panel for an App with no flow.

Staff come to the admin to do one of four things, so the index lists models by task rather than by the
Django app that happens to hold them; other pages (an app's own index, the sidebar) keep Django's grouping.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.admin.apps import AdminConfig
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _

# (task, [(app_label, model name)]), in the order staff meet them.
TASKS: list[tuple[str, str, list[tuple[str, str]]]] = [
    ("flows-and-offers", _("Flows and offers"), [("flows", "App"), ("flows", "Flow"), ("offers", "Offer"),
                                                 ("flows", "Audience"), ("evidence", "FlowVersion")]),
    ("delivery", _("Delivery"), [("webhooks", "Endpoint"), ("webhooks", "Delivery"), ("webhooks", "DeliveryAttempt"),
                                 ("alerts", "AlertRule"), ("alerts", "AlertSettings"), ("alerts", "AlertDelivery"),
                                 ("receipts", "ReceiptSettings"), ("receipts", "Receipt")]),
    ("billing", _("Billing"), [("billing", "BillingConnection"), ("billing", "BillingAction")]),
    ("reports", _("Reports"), [("flows", "CancelSession"), ("flows", "Decision"), ("flows", "Event")]),
]


class ConsoleAdminSite(admin.AdminSite):
    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict]:
        app_list = super().get_app_list(request, app_label)
        if app_label is not None:
            return app_list
        models = {(app["app_label"], model["object_name"]): (app, model) for app in app_list for model in app["models"]}
        grouped = []
        for label, name, members in TASKS:
            found = [models.pop(member) for member in members if member in models]
            if found:
                grouped.append({"name": name, "app_label": label, "app_url": found[0][0]["app_url"],
                                "has_module_perms": True, "models": [model for _app, model in found]})
        # Whatever no task names (users and groups, a newly registered model) keeps Django's grouping.
        for app in app_list:
            rest = [model for model in app["models"] if (app["app_label"], model["object_name"]) in models]
            if rest:
                grouped.append({**app, "models": rest})
        return grouped

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        from flows.models import App

        app_admin = self._registry.get(App)
        starting = []
        if app_admin is not None and app_admin.has_view_permission(request):
            starting = list(app_admin.get_queryset(request).filter(flows__isnull=True).order_by("name")[:5])
        return super().index(request, {"apps_without_flow": starting, **(extra_context or {})})


class ConsoleAdminConfig(AdminConfig):
    default_site = "brightback_site.admin_site.ConsoleAdminSite"
