"""Admin for per-App receipt settings and the receipt log (with Re-send). Thin: writes go through
services; the message shown is rendered by the code the worker sends with."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html

from brightback_site.badges import badge
from flows.admin_access import AppScopedAdmin

from . import rendering, services
from .models import Receipt, ReceiptSettings


@admin.register(ReceiptSettings)
class ReceiptSettingsAdmin(AppScopedAdmin):
    list_display = ["app", "enabled", "cancel_takes_effect", "way_back_days", "support_url"]
    list_select_related = ["app"]
    fields = ["app", "enabled", "cancel_takes_effect", "effective_text", "way_back_days", "support_url"]


@admin.register(Receipt)
class ReceiptAdmin(AppScopedAdmin):
    change_form_template = "admin/receipts/receipt/change_form.html"
    list_display = ["created_at", "kind", "session_link", "status_badge", "attempt_count", "sent_at", "message_id",
                    "short_error"]
    list_filter = ["status", "kind", "app"]
    search_fields = ["=session__public_id", "=message_id", "recipient"]
    search_help_text = "A session id (ses_…), a Message-ID or part of the customer's address."
    list_select_related = ["app", "session"]
    date_hierarchy = "created_at"
    actions = ["resend"]
    fields = ["app", "kind", "session_link", "recipient", "language", "status_badge", "attempt_count",
              "next_attempt_at", "message_id", "sent_at", "effective_at", "effective_source", "way_back_until",
              "last_error", "last_answer", "created_at"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Receipt) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="session")
    def session_link(self, obj: Receipt) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:flows_cancelsession_change", args=[obj.session_id]),
                           obj.session.public_id)

    @admin.display(description="last error")
    def short_error(self, obj: Receipt) -> str:
        return obj.last_error[:100]

    def get_urls(self) -> list:
        own = [path("<path:object_id>/resend/", self.admin_site.admin_view(self.resend_view),
                    name="receipts_receipt_resend")]
        return own + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        receipt = self.get_object(request, object_id)
        extra: dict = dict(extra_context or {})
        if receipt is not None and receipt.recipient:
            try:
                extra["message"] = rendering.email_for(receipt=receipt,
                                                       prefs=services.settings_for_app(app=receipt.app))
            except Exception as exc:  # noqa: BLE001 - a broken template override: say so on the page
                extra["render_error"] = f"{exc.__class__.__name__}: {exc}"
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        receipt = self.checked_object(request, object_id, "change")
        if request.method == "POST":
            if services.receipt_resend(receipt=receipt):
                self.message_user(request, "Queued to be sent again.", messages.SUCCESS)
            else:
                self.message_user(request, "It is being sent right now, or the customer's address was erased.",
                                  messages.WARNING)
        return HttpResponseRedirect(reverse("admin:receipts_receipt_change", args=[receipt.pk]))

    @admin.action(description="Re-send (fresh retry schedule)", permissions=["change"])
    def resend(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        queued = sum(services.receipt_resend(receipt=r) for r in queryset)
        self.message_user(request, f"{queued} receipt(s) queued to be sent again.")
