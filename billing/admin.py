"""Admin for billing connections and the actions they carried out. Thin: every write goes through services."""

from __future__ import annotations

import json

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from brightback_site.badges import badge
from flows.admin_access import AppScopedAdmin

from . import services
from .models import BillingAction, BillingConnection
from .providers import PROVIDER_MODULES, ProviderError, provider_class
from .services import action_retry, connection_check


def _plain_and_details(prefix: str, plain: str, detail: str) -> str:
    if not detail:
        return f"{prefix}{plain}"
    return format_html("{}{} <details><summary>details</summary><pre style='white-space:pre-wrap'>{}</pre></details>",
                       prefix, plain, detail)


def _key_hint(key: str) -> str:
    return f"set, ending …{key[-4:]}" if key else "not set"


class ConnectionForm(forms.ModelForm):
    """Keys are write-only: typed in once, stored encrypted, never shown again (blank keeps the stored one)."""

    new_test_api_key = forms.CharField(
        label="Test API key", required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Used while the App is in test mode. Leave blank to keep the stored key (a new API address "
                  "clears both keys).")
    new_live_api_key = forms.CharField(
        label="Live API key", required=False, strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Used once the App is live. Leave blank to keep the stored key.")

    class Meta:
        model = BillingConnection
        fields = ["app", "provider", "test_site", "site", "region", "stripe_account", "api_base", "dry_run",
                  "cancel_timing", "cancel_prorate", "cancel_refund", "cancel_invoice_now", "cancel_scope",
                  "cancel_reason_codes"]

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        if "region" in self.fields:
            self.fields["region"].required = False  # Recurly only; the others leave it at us

    def clean_region(self) -> str:
        return self.cleaned_data.get("region") or "us"

    def clean_cancel_reason_codes(self) -> dict:
        return self.cleaned_data.get("cancel_reason_codes") or {}  # left blank: no codes

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        provider = cleaned.get("provider")
        app = cleaned.get("app")
        if provider == "chargebee" and app is not None:
            # The site of the App's mode is needed now; the other one may come with its key.
            needed = "site" if app.is_live else "test_site"
            if not cleaned.get(needed):
                self.add_error(needed, f"Chargebee needs the {'live' if app.is_live else 'test'} site's name while "
                                       f"the App is in {app.mode} mode ({'acme' if app.is_live else 'acme-test'} in "
                                       f"{'acme' if app.is_live else 'acme-test'}.chargebee.com).")
        # The keys are set on the instance before the model's own checks run (ModelForm._post_clean):
        # a new address clears the stored ones, and a key of the wrong mode is named on its own field.
        instance = self.instance
        if provider:
            services.connection_provider_set(instance, provider)
        if "api_base" in cleaned:
            services.connection_address_set(instance, cleaned["api_base"] or "")
        for mode, field in (("test", "new_test_api_key"), ("live", "new_live_api_key")):
            key = cleaned.get(field)
            if not key:
                continue
            found = provider_class(provider).key_mode(key) if provider in PROVIDER_MODULES else None
            if found not in (None, mode):
                self.add_error(field, f"This is a {found} key; the {mode} key goes here.")
            else:
                setattr(instance, f"{mode}_api_key", key)
        return cleaned


@admin.register(BillingConnection)
class BillingConnectionAdmin(AppScopedAdmin):
    form = ConnectionForm
    change_form_template = "admin/billing/billingconnection/change_form.html"
    list_display = ["app", "provider", "dry_run", "cancel_timing", "cancel_scope", "checked_at", "check_result"]
    list_filter = ["provider", "dry_run"]
    readonly_fields = ["keys", "checked_at", "check_result"]
    fieldsets = [
        (None, {"fields": ["app", "provider", "test_site", "site", "region", "stripe_account", "keys",
                           "new_test_api_key", "new_live_api_key",
                           "api_base", "dry_run", "checked_at", "check_result"]}),
        ("On Cancel", {"fields": ["cancel_timing", "cancel_prorate", "cancel_refund", "cancel_invoice_now",
                                  "cancel_scope", "cancel_reason_codes"]}),
    ]

    @admin.display(description="stored keys")
    def keys(self, obj: BillingConnection) -> str:
        if obj.pk is None:
            return "Type them below; they are stored encrypted and never shown again."
        return f"test: {_key_hint(obj.test_api_key)}; live: {_key_hint(obj.live_api_key)}"

    def get_urls(self) -> list:
        own = [path("<path:object_id>/check/", self.admin_site.admin_view(self.check_view),
                    name="billing_billingconnection_check")]
        return own + super().get_urls()

    def check_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        connection = self.checked_object(request, object_id, "change")
        if request.method == "POST":
            try:
                found = connection_check(connection=connection)
            except ProviderError as exc:
                # Plain words first; the provider's own text behind a toggle. Neither ever carries the
                # body of an answer that is not the provider's (see providers/base.py).
                self.message_user(request, _plain_and_details("The connection failed: ", exc.message, exc.detail),
                                  messages.ERROR)
            else:
                self.message_user(request, f"Connected: {found}", messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:billing_billingconnection_change", args=[connection.pk]))


@admin.register(BillingAction)
class BillingActionAdmin(AppScopedAdmin):
    change_form_template = "admin/billing/billingaction/change_form.html"
    list_display = ["created_at", "kind", "app", "session_link", "provider", "status_badge", "subscriptions",
                    "attempt_count", "short_summary", "next_attempt_at"]
    list_filter = ["status", "kind", "provider", "dry_run", "app"]
    search_fields = ["=public_id", "=session__public_id", "subscription_ids"]
    search_help_text = "An action id (bact_…), a session id (ses_…) or a subscription id."
    list_select_related = ["app", "session"]
    date_hierarchy = "created_at"
    actions = ["retry"]
    fields = ["public_id", "app", "session_link", "kind", "provider", "dry_run", "status_badge", "subscriptions",
              "summary", "last_error", "error_details", "last_status_code", "attempt_count", "next_attempt_at",
              "started_at", "finished_at", "created_at", "request_pretty", "result_pretty", "log_pretty"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: BillingAction) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="session")
    def session_link(self, obj: BillingAction) -> str:
        url = reverse("admin:flows_cancelsession_change", args=[obj.session_id])
        return format_html('<a href="{}">{}</a>', url, obj.session.public_id)

    @admin.display(description="subscriptions")
    def subscriptions(self, obj: BillingAction) -> str:
        return ", ".join(obj.subscription_ids) or obj.request.get("subscription_id") or "—"

    @admin.display(description="outcome")
    def short_summary(self, obj: BillingAction) -> str:
        return (obj.summary or obj.last_error)[:100]

    @admin.display(description="billing system's words")
    def error_details(self, obj: BillingAction) -> str:
        if not obj.error_detail:
            return "—"
        return format_html("<details><summary>details</summary><pre style='white-space:pre-wrap'>{}</pre>"
                           "</details>", obj.error_detail)

    @staticmethod
    def _pretty(value: object) -> str:
        text = json.dumps(value, indent=2, ensure_ascii=False)
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", text)

    @admin.display(description="asked")
    def request_pretty(self, obj: BillingAction) -> str:
        return self._pretty(obj.request)

    @admin.display(description="provider's answer")
    def result_pretty(self, obj: BillingAction) -> str:
        return self._pretty(obj.result)

    @admin.display(description="attempts")
    def log_pretty(self, obj: BillingAction) -> str:
        return self._pretty(obj.log)

    def get_urls(self) -> list:
        own = [path("<path:object_id>/retry/", self.admin_site.admin_view(self.retry_view),
                    name="billing_billingaction_retry")]
        return own + super().get_urls()

    def retry_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        action = self.checked_object(request, object_id, "change")
        if request.method == "POST":
            if action_retry(action=action):
                self.message_user(request, f"{action.public_id} queued to run again.", messages.SUCCESS)
            else:
                self.message_user(request, "It is running right now; try again in a moment.", messages.WARNING)
        next_url = request.POST.get("next", "")
        if next_url.startswith("/admin/"):
            return HttpResponseRedirect(next_url)
        return HttpResponseRedirect(reverse("admin:billing_billingaction_change", args=[action.pk]))

    @admin.action(description="Retry now (a fresh retry schedule)", permissions=["change"])
    def retry(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        queued = sum(action_retry(action=a) for a in queryset)
        self.message_user(request, f"{queued} action{'' if queued == 1 else 's'} queued to run again.")
