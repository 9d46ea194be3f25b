"""Admin for webhook endpoints and their delivery log. Thin: every write goes through services."""

from __future__ import annotations

import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode

from brightback_site.badges import badge
from flows.admin_access import AppScopedAdmin, TabularInline
from flows.models import Event

from . import endpoints, services
from .models import Delivery, DeliveryAttempt, Endpoint


def deliveries_url(**query: str | int) -> str:
    return reverse("admin:webhooks_delivery_changelist") + "?" + urlencode(query)


class EndpointForm(forms.ModelForm):
    url = forms.URLField(label="URL", max_length=2000, assume_scheme="https")
    event_types = forms.MultipleChoiceField(
        choices=Event.Type.choices, required=False, widget=forms.CheckboxSelectMultiple,
        help_text="The event types sent here. None ticked: every type.")

    class Meta:
        model = Endpoint
        fields = ["app", "url", "description", "event_types", "send_hub_signature", "is_active"]


@admin.register(Endpoint)
class EndpointAdmin(AppScopedAdmin):
    form = EndpointForm
    change_form_template = "admin/webhooks/endpoint/change_form.html"
    list_display = ["url", "app", "state_badge", "types", "failing_since", "disabled_at", "log_link"]
    list_filter = ["is_active", "app"]
    search_fields = ["url", "description", "app__name", "app__app_id"]
    list_select_related = ["app"]
    actions = ["send_test_event", "enable"]
    readonly_fields = ["state_badge", "disabled_reason", "failing_since", "disabled_at", "secret_info",
                       "recent_deliveries"]
    fieldsets = [
        (None, {"fields": ["app", "url", "description", "event_types", "send_hub_signature", "is_active"]}),
        ("Health", {"fields": ["state_badge", "failing_since", "disabled_at", "disabled_reason"]}),
        ("Signing secret", {"fields": ["secret_info"]}),
        ("Delivery log", {"fields": ["recent_deliveries"]}),
    ]

    def get_fieldsets(self, request: HttpRequest, obj: Endpoint | None = None) -> list:
        return self.fieldsets if obj is not None else self.fieldsets[:1]

    @admin.display(description="state")
    def state_badge(self, obj: Endpoint) -> str:
        return badge(obj.state)

    @admin.display(description="event types")
    def types(self, obj: Endpoint) -> str:
        return ", ".join(obj.event_types) if obj.event_types else "all"

    @admin.display(description="deliveries")
    def log_link(self, obj: Endpoint) -> str:
        return format_html('<a href="{}">delivery log</a>', deliveries_url(endpoint__id__exact=obj.pk))

    @admin.display(description="secret")
    def secret_info(self, obj: Endpoint) -> str:
        created = obj.secret_rotated_at or obj.created_at
        text = format_html("Set {} (shown only when created or rotated). ", created.strftime("%Y-%m-%d %H:%M UTC"))
        if obj.previous_secret_expires_at and obj.previous_secret_expires_at > timezone.now():
            text += format_html("The previous secret also signs until {}.",
                                obj.previous_secret_expires_at.strftime("%Y-%m-%d %H:%M UTC"))
        return text

    @admin.display(description="recent deliveries")
    def recent_deliveries(self, obj: Endpoint) -> str:
        rows = obj.deliveries.order_by("-created_at", "-id")[:20]
        if not rows:
            return "Nothing delivered yet."
        table = format_html_join(
            "", '<tr><td>{}</td><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>',
            ((d.created_at.strftime("%Y-%m-%d %H:%M:%S"), reverse("admin:webhooks_delivery_change", args=[d.pk]),
              d.message_id, d.event_type, badge(d.status), d.attempt_count, d.last_status_code or d.last_error or "")
             for d in rows))
        return format_html('<table><thead><tr><th>created</th><th>webhook-id</th><th>type</th><th>status</th>'
                           '<th>attempts</th><th>last answer</th></tr></thead><tbody>{}</tbody></table>'
                           '<p><a href="{}">Full delivery log for this endpoint</a></p>',
                           table, deliveries_url(endpoint__id__exact=obj.pk))

    def save_model(self, request: HttpRequest, obj: Endpoint, form: forms.ModelForm, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if change and obj.is_active and obj.disabled_at is not None:
            # Ticking "active" again on a disabled endpoint re-enables it with a clean health record.
            endpoints.endpoint_enable(endpoint=obj)

    def response_add(self, request: HttpRequest, obj: Endpoint, post_url_continue: str | None = None) -> HttpResponse:
        return self._show_secret(request, obj, obj.secret, rotated=False)

    def _show_secret(self, request: HttpRequest, obj: Endpoint, secret: str, *, rotated: bool) -> HttpResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": obj,
                   "title": "Signing secret", "secret": secret, "rotated": rotated,
                   "overlap_hours": settings.WEBHOOK_SECRET_OVERLAP_HOURS,
                   "change_url": reverse("admin:webhooks_endpoint_change", args=[obj.pk])}
        response = TemplateResponse(request, "admin/webhooks/endpoint/secret.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def get_urls(self) -> list:
        own = [
            path("<path:object_id>/rotate-secret/", self.admin_site.admin_view(self.rotate_secret_view),
                 name="webhooks_endpoint_rotate_secret"),
            path("<path:object_id>/send-test/", self.admin_site.admin_view(self.send_test_view),
                 name="webhooks_endpoint_send_test"),
        ]
        return own + super().get_urls()

    def rotate_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self.checked_object(request, object_id, "change")
        if request.method != "POST":
            context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": endpoint,
                       "title": "Rotate the signing secret?",
                       "overlap_hours": settings.WEBHOOK_SECRET_OVERLAP_HOURS}
            return TemplateResponse(request, "admin/webhooks/endpoint/rotate_confirm.html", context)
        secret = endpoints.endpoint_secret_rotate(endpoint=endpoint)
        return self._show_secret(request, endpoint, secret, rotated=True)

    def send_test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        endpoint = self.checked_object(request, object_id, "change")
        if request.method == "POST":
            delivery = services.endpoint_send_test(endpoint=endpoint)
            self.message_user(request, format_html(
                'Test event {} queued: <a href="{}">follow its delivery</a>.', delivery.message_id,
                reverse("admin:webhooks_delivery_change", args=[delivery.pk])), messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:webhooks_endpoint_change", args=[endpoint.pk]))

    @admin.action(description="Send a test event", permissions=["change"])
    def send_test_event(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        for endpoint in queryset.select_related("app"):
            services.endpoint_send_test(endpoint=endpoint)
        self.message_user(request, f"Test events queued for {queryset.count()} endpoint(s): see the delivery log.")

    @admin.action(description="Enable (and clear the failure record)", permissions=["change"])
    def enable(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        for endpoint in queryset:
            endpoints.endpoint_enable(endpoint=endpoint)
        self.message_user(request, f"{queryset.count()} endpoint(s) enabled.")


class DeliveryAttemptInline(TabularInline):
    model = DeliveryAttempt
    extra = 0
    can_delete = False
    fields = ["number", "started_at", "outcome_badge", "status_code", "duration_ms", "error", "response_body"]
    readonly_fields = fields
    ordering = ["started_at", "id"]

    @admin.display(description="outcome")
    def outcome_badge(self, obj: DeliveryAttempt) -> str:
        return badge(obj.outcome, obj.get_outcome_display())

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:  # noqa: ANN001
        return False


@admin.register(Delivery)
class DeliveryAdmin(AppScopedAdmin):
    app_path = "endpoint__app"
    change_form_template = "admin/webhooks/delivery/change_form.html"
    list_display = ["created_at", "event_type", "message_id", "endpoint_link", "session_link", "status_badge",
                    "attempt_count", "last_answer", "next_attempt_at"]
    list_filter = ["status", "event_type", "is_test", "endpoint__app", "endpoint"]
    search_fields = ["=message_id", "=event__session__public_id", "endpoint__url"]
    search_help_text = "A webhook-id (evt_…), a session id (ses_…) or part of an endpoint URL."
    list_select_related = ["endpoint", "event__session"]
    date_hierarchy = "created_at"
    actions = ["redeliver"]
    inlines = [DeliveryAttemptInline]
    fields = ["endpoint", "event_type", "message_id", "session_link", "is_test", "status_badge", "attempt_count",
              "next_attempt_at", "last_status_code", "last_error", "delivered_at", "created_at", "payload_pretty"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: Delivery) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="endpoint", ordering="endpoint__url")
    def endpoint_link(self, obj: Delivery) -> str:
        return format_html('<a href="{}">{}</a>', deliveries_url(endpoint__id__exact=obj.endpoint_id), obj.endpoint.url)

    @admin.display(description="session")
    def session_link(self, obj: Delivery) -> str:
        if obj.event is None or obj.event.session is None:
            return "—"
        public_id = obj.event.session.public_id
        return format_html('<a href="{}" title="every delivery of this session">{}</a>', deliveries_url(q=public_id),
                           public_id)

    @admin.display(description="last answer")
    def last_answer(self, obj: Delivery) -> str:
        return str(obj.last_status_code or "") or obj.last_error[:80]

    @admin.display(description="payload")
    def payload_pretty(self, obj: Delivery) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>",
                           json.dumps(obj.payload, indent=2, ensure_ascii=False))

    def get_urls(self) -> list:
        own = [path("<path:object_id>/redeliver/", self.admin_site.admin_view(self.redeliver_view),
                    name="webhooks_delivery_redeliver")]
        return own + super().get_urls()

    def redeliver_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        delivery = self.checked_object(request, object_id, "change")
        if request.method == "POST":
            if services.delivery_redeliver(delivery=delivery):
                self.message_user(request, f"{delivery.message_id} queued for redelivery.", messages.SUCCESS)
            else:
                self.message_user(request, "It is being sent right now; try again in a moment.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:webhooks_delivery_change", args=[delivery.pk]))

    @admin.action(description="Redeliver (same webhook-id, fresh retry schedule)", permissions=["change"])
    def redeliver(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        queued = sum(services.delivery_redeliver(delivery=d) for d in queryset)
        self.message_user(request, f"{queued} deliver{'y' if queued == 1 else 'ies'} queued for redelivery.")


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(AppScopedAdmin):
    app_path = "delivery__endpoint__app"
    list_display = ["started_at", "delivery_link", "number", "outcome_badge", "status_code", "duration_ms",
                    "short_error"]
    list_filter = ["outcome", "delivery__endpoint__app", "delivery__endpoint"]
    search_fields = ["=delivery__message_id", "=delivery__event__session__public_id"]
    list_select_related = ["delivery"]
    readonly_fields = ["delivery", "number", "url", "started_at", "duration_ms", "status_code", "outcome",
                       "error", "response_body"]
    fields = readonly_fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="delivery")
    def delivery_link(self, obj: DeliveryAttempt) -> str:
        return format_html('<a href="{}">{}</a>', reverse("admin:webhooks_delivery_change", args=[obj.delivery_id]),
                           obj.delivery.message_id)

    @admin.display(description="outcome", ordering="outcome")
    def outcome_badge(self, obj: DeliveryAttempt) -> str:
        return badge(obj.outcome, obj.get_outcome_display())

    @admin.display(description="error")
    def short_error(self, obj: DeliveryAttempt) -> str:
        return obj.error[:100]
