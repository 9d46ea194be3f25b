"""The support staff's console: Apps and their secrets, Flows edited on one screen, and read-only results."""

from __future__ import annotations

import json
from contextvars import ContextVar

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.utils import display_for_value
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from audiences.forms import GROUPS, ROWS, AudienceForm
from offers.admin import OfferInline

from . import admin_views, services, timeline
from .admin_access import ActionsNamePermissions, AppScopedAdmin, TabularInline, app_scope
from .models import App, AppAccess, Audience, CancelSession, Decision, Event, Flow, Reason, Variant

# The request whose session page is being drawn (CancelSessionAdmin.change_view sets it).
_viewing: ContextVar[HttpRequest | None] = ContextVar("session_admin_request", default=None)


def _admin_link(obj: object, text: object) -> SafeString:
    opts = obj._meta  # type: ignore[attr-defined]
    url = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])  # type: ignore[attr-defined]
    return format_html('<a href="{}">{}</a>', url, text)


def _pretty_json(value: object) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True))


# --- Staff ----------------------------------------------------------------------------------------
# Django's own user and group pages, with the same rule for actions as every other page.

admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class StaffUserAdmin(ActionsNamePermissions, UserAdmin):
    pass


@admin.register(Group)
class StaffGroupAdmin(ActionsNamePermissions, GroupAdmin):
    pass


# --- Apps -----------------------------------------------------------------------------------------

class AppAccessInline(TabularInline):
    """Who of the staff reads (viewer) or changes (editor) this App; superusers always reach it."""

    model = AppAccess
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    extra = 0
    verbose_name = _("staff member with access")
    verbose_name_plural = _("staff access (superusers reach every App; other staff only the Apps listed here)")

    def formfield_for_foreignkey(self, db_field, request: HttpRequest, **kwargs):  # noqa: ANN001, ANN003, ANN201
        if db_field.name == "user":
            kwargs["queryset"] = db_field.related_model.objects.filter(is_staff=True, is_active=True,
                                                                       is_superuser=False).order_by("username")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(App)
class AppAdmin(AppScopedAdmin):
    app_path = ""
    list_display = ("name", "app_id", "mode", "support_email", "created_at")
    list_filter = ("mode",)
    search_fields = ("name", "app_id", "support_email")
    fields = ("name", "app_id", "mode", "currency", "allowed_return_hosts", "allowed_origins", "support_email",
              "offer_blocklist", "secret_hint", "created_at")
    readonly_fields = ("secret_hint", "created_at")
    inlines = [AppAccessInline]

    def get_inlines(self, request: HttpRequest, obj: App | None) -> list:
        # Access is granted to an App that exists: on its page, once created.
        return self.inlines if obj is not None else []

    def has_add_permission(self, request: HttpRequest) -> bool:
        # A new App belongs to no one yet: the model permission alone decides, and its creator edits it.
        return admin.ModelAdmin.has_add_permission(self, request)

    def get_readonly_fields(self, request: HttpRequest, obj: App | None = None) -> tuple[str, ...]:
        # Pages embed the app_id: changing it would break every one of them.
        return (*self.readonly_fields, "app_id") if obj is not None else self.readonly_fields

    @admin.display(description=_("secret"))
    def secret_hint(self, obj: App) -> str:
        if obj.pk is None:
            return _("Generated when you save, and shown once.")
        return _("%(hint)s (set; shown only when created or rotated)") % {
            "hint": admin_views.secret_hint(obj.secret)}

    def save_model(self, request: HttpRequest, obj: App, form, change: bool) -> None:  # noqa: ANN001
        if change:
            super().save_model(request, obj, form, change)
        else:
            admin.ModelAdmin.save_model(self, request, obj, form, change)
            if not request.user.is_superuser:
                services.app_access_grant(app=obj, user=request.user, role=AppAccess.Role.EDITOR)
        if not obj.return_hosts:
            messages.warning(request, _(
                "%(app)s has no allowed return-URL hosts: every return URL will be refused, so /precancel "
                "turns away any page that passes one.") % {"app": obj.app_id})
        if not obj.origins:
            messages.warning(request, _(
                "%(app)s has no allowed snippet origins: only pages served by this server itself can call "
                "/precancel.") % {"app": obj.app_id})

    def response_add(self, request: HttpRequest, obj: App, post_url_continue: str | None = None) -> HttpResponse:
        return admin_views.secret_once_response(request, self, app=obj, secret=obj.secret, created=True)

    def render_change_form(self, request: HttpRequest, context: dict, add: bool = False, change: bool = False,
                           form_url: str = "", obj: App | None = None) -> HttpResponse:
        if obj is not None and obj.pk is not None:
            context["embed"] = admin_views.embed_snippets(app=obj, server=admin_views.server_address(request))
        return super().render_change_form(request, context, add, change, form_url, obj)

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<path:object_id>/rotate-secret/", self.admin_site.admin_view(self.rotate_secret_view),
                 name="flows_app_rotate_secret"),
            *super().get_urls(),
        ]

    def rotate_secret_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        app = self.checked_object(request, object_id, "change")
        if request.method == "POST":
            secret = services.app_rotate_secret(app=app)
            self.log_change(request, app, [{"changed": {"fields": ["secret"]}}])
            return admin_views.secret_once_response(request, self, app=app, secret=secret, created=False)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "original": app,
                   "title": _("Rotate the secret of %(app)s?") % {"app": app.app_id}}
        return TemplateResponse(request, "admin/flows/app/rotate_secret.html", context)


# --- Flows ----------------------------------------------------------------------------------------

class ReasonInline(TabularInline):
    model = Reason
    fields = ("position", "code", "label", "wants_feedback", "category", "is_active")
    ordering = ("position", "id")
    extra = 1


class VariantForm(forms.ModelForm):
    class Meta:
        model = Variant
        fields = ("code", "name", "weight", "is_control", "offer_codes", "title", "intro", "is_active")
        widgets = {"intro": forms.Textarea(attrs={"rows": 2, "cols": 30})}


class VariantInline(TabularInline):
    """The flow's experiment: each variant's share of new customers, its offers and copy."""

    model = Variant
    form = VariantForm
    extra = 0
    verbose_name = _("experiment variant")
    verbose_name_plural = _("experiment (customers split between active variants by weight; a control shows "
                            "no offers)")


@admin.register(Audience)
class AudienceAdmin(AppScopedAdmin):
    list_display = ("name", "app", "position", "flow", "is_active")
    list_select_related = ("app", "flow")
    list_filter = ("is_active", "app")
    search_fields = ("name", "app__app_id")
    form = AudienceForm  # rows of field, comparison and value; the JSON still accepted
    fieldsets = [
        (None, {"fields": ("app", "name", "position", "flow", "is_active")}),
        (_("Who belongs"), {"fields": ("combine", *(f"group_{g}" for g in range(1, GROUPS + 1)), *(
            (f"row_{r}_group", f"row_{r}_field", f"row_{r}_op", f"row_{r}_value") for r in range(ROWS)))}),
        (_("Advanced"), {"fields": ("rules",)}),
    ]

    def get_form(self, request: HttpRequest, obj: Audience | None = None, change: bool = False, **kwargs):  # noqa: ANN003, ANN201
        form = super().get_form(request, obj, change=change, **kwargs)
        if obj is not None and "flow" in form.base_fields:
            form.base_fields["flow"].queryset = Flow.objects.filter(app_id=obj.app_id)
        return form


@admin.register(Flow)
class FlowAdmin(AppScopedAdmin):
    list_display = ("name", "app", "is_active", "priority", "languages", "updated_at")
    list_select_related = ("app",)
    list_filter = ("is_active", "app")
    search_fields = ("name", "app__name", "app__app_id")
    fieldsets = [
        (None, {"fields": ("app", "name", "is_active", "priority", "languages")}),
        (_("Page copy"), {"fields": ("title", "intro", "reasons_prompt", "nevermind_label", "cancel_label",
                                     "cancel_note")}),
        (_("Branding"), {"fields": ("logo_url", "brand_color", "background_color")}),
    ]
    inlines = [ReasonInline, OfferInline, VariantInline]
    actions = ["duplicate"]

    @admin.action(description=_("Duplicate flow (the copy starts inactive)"), permissions=["add"])
    def duplicate(self, request: HttpRequest, queryset: QuerySet[Flow]) -> None:
        copies = [services.flow_duplicate(flow=flow, author=request.user) for flow in queryset]
        self.message_user(request, _("Made %(names)s, inactive until you turn them on.")
                          % {"names": ", ".join(f"“{copy.name}”" for copy in copies)}, messages.SUCCESS)

    def save_related(self, request: HttpRequest, form, formsets, change: bool) -> None:  # noqa: ANN001
        super().save_related(request, form, formsets, change)
        # The reasons and offers were saved after the flow: retire every process's copy of them.
        services.flow_content_changed(flow_ids=[form.instance.pk], author=request.user, source="admin")
    save_on_top = True
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}

    def get_form(self, request: HttpRequest, obj: Flow | None = None, change: bool = False, **kwargs):  # noqa: ANN003, ANN201
        form = super().get_form(request, obj, change=change, **kwargs)
        # An App is created on its own page, where its secret is shown once; not from a popup here.
        app_field = form.base_fields.get("app")
        if app_field is not None:
            app_field.widget.can_add_related = False
        return form

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<path:object_id>/preview/", self.admin_site.admin_view(self.preview_view),
                 name="flows_flow_preview"),
            *super().get_urls(),
        ]

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        # A preview's POST shows what a decision would do and records nothing: reading is enough.
        flow = self.checked_object(request, object_id, "view")
        return admin_views.flow_preview(request, flow=flow)


# --- Results (read-only) --------------------------------------------------------------------------

class ReadOnlyAdmin(AppScopedAdmin):
    """Results are facts: staff read them; only the cancel flow writes them."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(CancelSession)
class CancelSessionAdmin(ReadOnlyAdmin):
    list_display = ("public_id", "app", "email", "account_internal_id", "status", "decision_kind", "created_at")
    list_select_related = ("app", "decision")
    list_filter = ("app", "status", "decision__kind", "is_test", "audience", "variant")
    search_fields = ("=public_id", "email", "account_internal_id")
    date_hierarchy = "created_at"
    # The page token is left out on purpose: it lets whoever holds it decide for the customer.
    fields = ("public_id", "app", "flow", "audience", "variant", "status", "is_test", "email", "account_internal_id",
              "subscription_id", "locale", "monthly_value", "offer_codes", "compliance", "flow_version", "created_at",
              "expires_at",
              "decision_summary", "timeline", "snippet_data")
    readonly_fields = ("decision_summary", "timeline", "snippet_data")

    def get_queryset(self, request: HttpRequest) -> QuerySet[CancelSession]:
        return super().get_queryset(request).select_related("app", "flow", "audience", "variant", "decision",
                                                            "decision__offer")

    @admin.display(description=_("decision"), ordering="decision__kind")
    def decision_kind(self, obj: CancelSession) -> str:
        decision = getattr(obj, "decision", None)
        return decision.get_kind_display() if decision is not None else "—"

    @admin.display(description=_("decision"))
    def decision_summary(self, obj: CancelSession) -> SafeString | str:
        decision = getattr(obj, "decision", None)
        if decision is None:
            return _("No decision yet.")
        rows = [
            (_("what"), decision.get_kind_display()),
            (_("reason"), f"{decision.reason_label} ({decision.reason_code})" if decision.reason_code else "—"),
            (_("feedback"), decision.feedback or "—"),
            (_("offer"), _admin_link(decision.offer, decision.offer) if decision.offer is not None
             else decision.offer_code or "—"),
            (_("redirected to"), decision.redirect_url or _("the “done” page (no return URL was passed)")),
            (_("when"), display_for_value(decision.created_at, "—")),  # as the admin shows every other time
        ]
        return format_html('<table class="bb-detail">{}</table>', format_html_join(
            "", '<tr><th scope="row">{}</th><td style="white-space:pre-wrap;word-break:break-all">{}</td></tr>',
            rows))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        # The timeline's buttons need the request's CSRF token; display methods only get the object.
        token = _viewing.set(request)
        try:
            response = super().change_view(request, object_id, form_url, extra_context)
            if isinstance(response, TemplateResponse):
                response.render()
            return response
        finally:
            _viewing.reset(token)

    @admin.display(description=_("timeline"))
    def timeline(self, obj: CancelSession) -> SafeString:
        request = _viewing.get()
        here = reverse("admin:flows_cancelsession_change", args=[obj.pk])
        # Buttons (a billing action's Retry) only for those who edit this App; their page checks the rest.
        editable = app_scope(request, editing=True) if request is not None else frozenset()
        may_press = editable is None or obj.app_id in editable

        def what(entry: timeline.Entry) -> SafeString | str:
            title = format_html('<a href="{}">{}</a>', entry.url, entry.title) if entry.url else entry.title
            if entry.action is None or request is None or not may_press:
                return title
            label, url = entry.action
            return format_html(
                '{} <form method="post" action="{}" style="display:inline">'
                '<input type="hidden" name="csrfmiddlewaretoken" value="{}">'
                '<input type="hidden" name="next" value="{}"><button type="submit">{}</button></form>',
                title, url, get_token(request), here, label)

        def detail(entry: timeline.Entry) -> SafeString | str:
            if not entry.raw:
                return entry.detail
            return format_html('{} <details><summary>{}</summary><pre style="white-space:pre-wrap">{}</pre>'
                               "</details>", entry.detail, _("details"), entry.raw)

        rows = ((timezone.localtime(entry.at).strftime("%Y-%m-%d %H:%M:%S"), entry.source, entry.status or "—",
                 what(entry), detail(entry)) for entry in timeline.timeline(obj))
        when = _("when (%(zone)s)") % {"zone": timezone.get_current_timezone_name()}
        return format_html(
            '<table class="bb-timeline"><thead><tr><th scope="col">{}</th><th scope="col">{}</th>'
            '<th scope="col">{}</th><th scope="col">{}</th><th scope="col">{}</th></tr></thead>'
            "<tbody>{}</tbody></table>",
            when, _("from"), _("status"), _("what"), _("detail"),
            format_html_join("", "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>", rows))

    @admin.display(description=_("snippet data"))
    def snippet_data(self, obj: CancelSession) -> SafeString:
        return _pretty_json(obj.data)


@admin.register(Decision)
class DecisionAdmin(ReadOnlyAdmin):
    app_path = "session__app"
    list_display = ("session_id", "app", "kind", "reason_code", "offer_code", "created_at")
    list_select_related = ("session", "session__app")
    list_filter = ("kind", "session__app")
    search_fields = ("=session__public_id", "session__email", "reason_code", "offer_code")
    date_hierarchy = "created_at"
    fields = ("session_link", "kind", "reason_code", "reason_label", "feedback", "offer", "offer_code",
              "redirect_url", "created_at")
    readonly_fields = ("session_link",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Decision]:
        return super().get_queryset(request).select_related("session", "session__app", "offer")

    @admin.display(description=_("session"), ordering="session__public_id")
    def session_id(self, obj: Decision) -> str:
        return obj.session.public_id

    @admin.display(description=_("session"))
    def session_link(self, obj: Decision) -> SafeString:
        return _admin_link(obj.session, obj.session.public_id)

    @admin.display(description=_("app"), ordering="session__app__name")
    def app(self, obj: Decision) -> App:
        return obj.session.app


@admin.register(Event)
class EventAdmin(ReadOnlyAdmin):
    list_display = ("id", "type", "app", "session", "created_at")
    list_select_related = ("app", "session")
    list_filter = ("type", "app")
    search_fields = ("=id", "=session__public_id")
    date_hierarchy = "created_at"
    fields = ("id", "type", "app", "session", "created_at", "payload")
    readonly_fields = ("payload",)

    @admin.display(description=_("data"))
    def payload(self, obj: Event) -> SafeString:
        return _pretty_json(obj.data)
