"""Admin for alert rules, per-App alert settings and the alert log. Thin: writes go through services,
previews through selectors (the code the worker renders with)."""

from __future__ import annotations

import html
import json

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.http import urlencode

from brightback_site.badges import badge
from flows.admin_access import AppScopedAdmin
from flows.models import Event

from . import selectors, services
from .models import AlertDelivery, AlertRule, AlertSettings, recipient_problems, slack_url_problem


def slack_card(chat: dict | None) -> list[dict]:
    """The Block Kit message as Slack lays it out, roughly: header, fields, sections, context, button.
    mrkdwn's three escapes are undone, as Slack shows them; the template escapes the text again."""
    if not chat:
        return []
    card = []
    for block in chat.get("blocks", []):
        kind = block.get("type")
        if kind == "header":
            card.append({"kind": "header", "text": block["text"]["text"]})
        elif kind == "section":
            card.append({"kind": "section", "text": html.unescape(block.get("text", {}).get("text", "")),
                         "fields": [html.unescape(field["text"]) for field in block.get("fields", [])]})
        elif kind == "context":
            card.append({"kind": "context", "text": " ".join(html.unescape(e.get("text", ""))
                                                             for e in block.get("elements", []))})
        elif kind == "actions":
            card += [{"kind": "button", "text": e["text"]["text"], "url": e.get("url", "")}
                     for e in block.get("elements", []) if e.get("type") == "button"]
    return card


def log_url(**query: str | int) -> str:
    return reverse("admin:alerts_alertdelivery_changelist") + "?" + urlencode(query)


class RecipientsField(forms.CharField):
    """Email addresses, one per line (commas also separate)."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value: object) -> object:
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value: object) -> list[str]:
        text = str(value or "")
        return [item.strip() for item in text.replace(",", "\n").splitlines() if item.strip()]

    def validate(self, value: list[str]) -> None:
        problems = recipient_problems(value)
        if problems:
            raise forms.ValidationError(problems)


class AlertRuleForm(forms.ModelForm):
    events = forms.MultipleChoiceField(choices=Event.Type.choices, widget=forms.CheckboxSelectMultiple,
                                       help_text="The events that trigger this alert.")
    recipients = RecipientsField(
        required=False, help_text="One address per line: a person, a team list or your help desk's inbox "
                                  "(Zendesk, Help Scout, Freshdesk).")
    slack_webhook_url = forms.CharField(
        label="Slack webhook URL", required=False, max_length=2000,
        widget=forms.TextInput(attrs={"size": 80, "autocomplete": "off"}),
        help_text="An incoming-webhook URL (https://hooks.slack.com/services/…). Blank: no Slack message.")

    class Meta:
        model = AlertRule
        fields = ["app", "events", "recipients", "slack_webhook_url", "live_only"]

    def clean_slack_webhook_url(self) -> str:
        url = self.cleaned_data["slack_webhook_url"].strip()
        problem = slack_url_problem(url)
        if problem:
            raise forms.ValidationError(problem)
        return url


@admin.register(AlertRule)
class AlertRuleAdmin(AppScopedAdmin):
    form = AlertRuleForm
    change_form_template = "admin/alerts/alertrule/change_form.html"
    list_display = ["__str__", "app", "event_list", "recipient_list", "has_slack", "live_only", "test_link"]
    list_filter = ["app", "live_only"]
    search_fields = ["app__name", "app__app_id"]
    list_select_related = ["app"]

    @admin.display(description="events")
    def event_list(self, obj: AlertRule) -> str:
        return ", ".join(obj.events)

    @admin.display(description="recipients")
    def recipient_list(self, obj: AlertRule) -> str:
        return ", ".join(obj.recipients) or "—"

    @admin.display(description="Slack", boolean=True)
    def has_slack(self, obj: AlertRule) -> bool:
        return bool(obj.slack_webhook_url)

    @admin.display(description="test")
    def test_link(self, obj: AlertRule) -> str:
        return format_html('<a href="{}">Preview · Send test alert</a>',
                           reverse("admin:alerts_alertrule_test", args=[obj.pk]))

    def save_model(self, request: HttpRequest, obj: AlertRule, form: forms.ModelForm, change: bool) -> None:
        if not change:
            obj.position = AlertRule.objects.filter(app=obj.app).count()
        super().save_model(request, obj, form, change)

    def get_urls(self) -> list:
        own = [path("<path:object_id>/test/", self.admin_site.admin_view(self.test_view), name="alerts_alertrule_test")]
        return own + super().get_urls()

    def test_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET: exactly what each destination receives for a made-up event; POST: send it, marked as a test."""
        rule = self.checked_object(request, object_id, "view")
        event_type = request.POST.get("event") or request.GET.get("event") or rule.events[0]
        if event_type not in Event.Type.values:
            return HttpResponse(f"Unknown event type {event_type!r}.", status=400, content_type="text/plain")
        if request.method == "POST":
            if not self.has_change_permission(request, rule):
                raise PermissionDenied
            sent = services.rule_send_test(rule=rule, event_type=event_type)
            self.message_user(request, format_html(
                'Test alert queued to {} destination(s): <a href="{}">follow it in the alert log</a>.',
                len(sent), log_url(rule__id__exact=rule.pk, is_test__exact=1)), messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:alerts_alertrule_test", args=[rule.pk]) + "?"
                                        + urlencode({"event": event_type}))
        previews = selectors.rule_preview(rule=rule, event_type=event_type)
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, "original": rule,
                   "title": f"Test alert: {rule}", "rule": rule, "event_type": event_type,
                   "event_types": Event.Type.values,
                   "previews": [{"label": p.label, "message": p.message,
                                 "slack_json": json.dumps(p.message.chat, indent=2, ensure_ascii=False)
                                 if p.message.chat else "", "slack_card": slack_card(p.message.chat)}
                                for p in previews],
                   "can_send": self.has_change_permission(request, rule),
                   "default_from": settings.DEFAULT_FROM_EMAIL,
                   "recent": selectors.deliveries_for_rule(rule=rule)[:10]}
        return TemplateResponse(request, "admin/alerts/alertrule/test.html", context)


@admin.register(AlertSettings)
class AlertSettingsAdmin(AppScopedAdmin):
    list_display = ["app", "response_business_days", "customer_acknowledgement", "cancellation_receipt"]
    list_select_related = ["app"]
    fields = ["app", "response_business_days", "customer_acknowledgement", "cancellation_receipt",
              "cancellation_effective"]


@admin.register(AlertDelivery)
class AlertDeliveryAdmin(AppScopedAdmin):
    change_form_template = "admin/alerts/alertdelivery/change_form.html"
    list_display = ["created_at", "event_type", "kind", "destination", "session_link", "status_badge",
                    "attempt_count", "short_error", "next_attempt_at"]
    list_filter = ["status", "kind", "event_type", "is_test", "app", "rule"]
    search_fields = ["=event__session__public_id", "=event__id", "recipients"]
    search_help_text = "A session id (ses_…), an event id (evt_…) or part of a recipient's address."
    list_select_related = ["app", "event__session"]
    date_hierarchy = "created_at"
    actions = ["resend"]
    fields = ["app", "rule", "kind", "event_type", "destination", "session_link", "is_test", "status_badge",
              "attempt_count", "next_attempt_at", "last_error", "last_answer", "sent_at", "occurred_at",
              "created_at", "language", "data_pretty"]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="status", ordering="status")
    def status_badge(self, obj: AlertDelivery) -> str:
        return badge(obj.status, obj.get_status_display())

    @admin.display(description="session")
    def session_link(self, obj: AlertDelivery) -> str:
        if obj.event is None or obj.event.session is None:
            return "—"
        session = obj.event.session
        return format_html('<a href="{}">{}</a>', reverse("admin:flows_cancelsession_change", args=[session.pk]),
                           session.public_id)

    @admin.display(description="last error")
    def short_error(self, obj: AlertDelivery) -> str:
        return obj.last_error[:100]

    @admin.display(description="event data")
    def data_pretty(self, obj: AlertDelivery) -> str:
        return format_html("<pre style='white-space:pre-wrap'>{}</pre>", json.dumps(obj.data, indent=2,
                                                                                      ensure_ascii=False))

    def get_urls(self) -> list:
        own = [path("<path:object_id>/resend/", self.admin_site.admin_view(self.resend_view),
                    name="alerts_alertdelivery_resend")]
        return own + super().get_urls()

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        delivery = self.get_object(request, object_id)
        extra: dict = {**(extra_context or {}), "default_from": settings.DEFAULT_FROM_EMAIL}
        if delivery is not None:
            try:
                _slug, extra["message"] = services.message_of(delivery)
            except Exception as exc:  # noqa: BLE001 - a broken template override: say so on the page
                extra["render_error"] = f"{exc.__class__.__name__}: {exc}"
            if extra.get("message") is not None and extra["message"].chat:
                extra["slack_json"] = json.dumps(extra["message"].chat, indent=2, ensure_ascii=False)
                extra["slack_card"] = slack_card(extra["message"].chat)
        return super().change_view(request, object_id, form_url, extra_context=extra)

    def resend_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        delivery = self.checked_object(request, object_id, "change")
        if request.method == "POST":
            if services.delivery_resend(delivery=delivery):
                self.message_user(request, "Queued to be sent again.", messages.SUCCESS)
            else:
                self.message_user(request, "It is being sent right now; try again in a moment.", messages.WARNING)
        return HttpResponseRedirect(reverse("admin:alerts_alertdelivery_change", args=[delivery.pk]))

    @admin.action(description="Re-send (fresh retry schedule)", permissions=["change"])
    def resend(self, request: HttpRequest, queryset) -> None:  # noqa: ANN001
        queued = sum(services.delivery_resend(delivery=d) for d in queryset)
        self.message_user(request, f"{queued} alert(s) queued to be sent again.")
