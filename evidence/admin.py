"""A flow's published versions in the admin: its history, the difference between two versions, and a
restore (which needs the permission to change the flow, and makes a new version)."""

from __future__ import annotations

import json

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.decorators import method_decorator
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET

from flows.admin_access import AppScopedAdmin
from flows.models import Flow

from . import selectors, services
from .models import FlowVersion


def diff_rows(lines: list[str]) -> list[tuple[str, str]]:
    """Each line of a unified difference with the class that colours it."""
    rows = []
    for line in lines:
        if line.startswith(("---", "+++")):
            kind = "bb-diff-file"
        elif line.startswith("@@"):
            kind = "bb-diff-hunk"
        elif line.startswith("+"):
            kind = "bb-diff-added"
        elif line.startswith("-"):
            kind = "bb-diff-removed"
        else:
            kind = ""
        rows.append((kind, line))
    return rows


@admin.register(FlowVersion)
class FlowVersionAdmin(AppScopedAdmin):
    """Versions are facts: made by every change of a flow's content, never edited or deleted here."""

    app_path = "flow__app"
    list_display = ("__str__", "flow", "number", "created_at", "author_name", "source", "short_hash")
    list_select_related = ("flow", "flow__app")
    list_filter = ("flow__app", "flow", "source")
    search_fields = ("flow__name", "content_hash", "author_name")
    date_hierarchy = "created_at"
    fields = ("flow", "number", "created_at", "author_name", "source", "restored_from", "content_hash",
              "changes", "pretty_content")
    readonly_fields = ("changes", "pretty_content")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[FlowVersion]:
        return super().get_queryset(request).select_related("flow", "flow__app")

    @admin.display(description=_("hash"))
    def short_hash(self, obj: FlowVersion) -> str:
        return obj.content_hash[:12]

    @admin.display(description=_("changes from the version before"))
    def changes(self, obj: FlowVersion) -> SafeString:
        rows = diff_rows(selectors.version_diff(selectors.previous_version(obj), obj))
        return format_html('<pre class="bb-diff" style="white-space:pre-wrap">{}</pre>',
                           "\n".join(line for _kind, line in rows) or _("No difference."))

    @admin.display(description=_("content"))
    def pretty_content(self, obj: FlowVersion) -> SafeString:
        return format_html("<pre>{}</pre>", json.dumps(obj.content, indent=2, ensure_ascii=False, sort_keys=True))

    def get_urls(self) -> list[URLPattern]:
        return [
            path("<path:object_id>/diff/", self.admin_site.admin_view(self.diff_view),
                 name="evidence_flowversion_diff"),
            path("<path:object_id>/restore/", self.admin_site.admin_view(self.restore_view),
                 name="evidence_flowversion_restore"),
            *super().get_urls(),
        ]

    def _context(self, request: HttpRequest, version: FlowVersion, title: str) -> dict:
        return {**self.admin_site.each_context(request), "opts": self.opts, "original": version, "title": title}

    @method_decorator(require_GET)
    def diff_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The difference between this version and another of the same flow (`?against=N`, by default the
        one before it)."""
        version = self.checked_object(request, object_id, "view")
        others = list(selectors.versions_for_flow(flow_id=version.flow_id).exclude(pk=version.pk))
        against = request.GET.get("against", "")
        if against:
            older = next((other for other in others if str(other.number) == against), None)
            if older is None:
                raise Http404
        else:
            older = selectors.previous_version(version)
        if older is not None and older.number > version.number:
            older, newer = version, older
        else:
            newer = version
        context = self._context(request, version, _("%(flow)s: v%(older)s → v%(newer)s") % {
            "flow": version.flow.name, "older": older.number if older else "0", "newer": newer.number})
        context.update(older=older, newer=newer, others=others,
                       rows=diff_rows(selectors.version_diff(older, newer)),
                       may_restore=self._may_restore(request, version))
        return TemplateResponse(request, "admin/evidence/flowversion/diff.html", context)

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict | None = None) -> HttpResponse:
        version = self.get_object(request, object_id)
        may_restore = version is not None and self._may_restore(request, version)
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), "may_restore": may_restore})

    def _may_restore(self, request: HttpRequest, version: FlowVersion) -> bool:
        flow_admin = self.admin_site._registry[Flow]
        return flow_admin.has_change_permission(request, version.flow)

    def restore_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """GET asks to confirm; POST restores. Needs the permission to change the version's flow."""
        version = self.checked_object(request, object_id, "view")
        if not self._may_restore(request, version):
            raise PermissionDenied
        if request.method == "POST":
            try:
                made = services.flow_version_restore(version=version, author=request.user)
            except services.RestoreRefused as exc:
                self.message_user(request, _("Nothing was changed: %(why)s") % {"why": exc}, messages.ERROR)
                return HttpResponseRedirect(reverse("admin:evidence_flowversion_diff", args=[version.pk]))
            self.log_change(request, version.flow, [{"changed": {"fields": ["published content"]}}])
            if made.number > version.number and made.restored_from == version.number:
                self.message_user(request, _("Restored v%(old)s as v%(new)s.") % {"old": version.number,
                                                                                  "new": made.number}, messages.SUCCESS)
            else:
                self.message_user(request, _("The flow already publishes this content: no new version."),
                                  messages.INFO)
            return HttpResponseRedirect(reverse("admin:evidence_flowversion_change", args=[made.pk]))
        context = self._context(request, version, _("Restore %(version)s?") % {"version": version})
        context["rows"] = diff_rows(selectors.version_diff(
            selectors.versions_for_flow(flow_id=version.flow_id).first(), version))
        return TemplateResponse(request, "admin/evidence/flowversion/restore.html", context)
