"""The session page's erase button: a superuser removes the customer's personal data from there.

The session admin is flows' own; this adds its one privacy view by extending it, so flows never learns
about erasure. Superusers only (an erasure cannot be undone, and reaches every App table), a GET that
shows what will go and a POST (CSRF-protected, like every admin form) that does it.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from flows.admin import CancelSessionAdmin
from flows.models import CancelSession

from . import selectors, services


class ErasableCancelSessionAdmin(CancelSessionAdmin):
    def get_fields(self, request: HttpRequest, obj: CancelSession | None = None):  # noqa: ANN201
        fields = list(super().get_fields(request, obj))
        return [*fields, "personal_data"] if request.user.is_superuser else fields

    def get_readonly_fields(self, request: HttpRequest, obj: CancelSession | None = None):  # noqa: ANN201
        return (*super().get_readonly_fields(request, obj), "personal_data")

    @admin.display(description=gettext_lazy("personal data"))
    def personal_data(self, obj: CancelSession) -> SafeString | str:
        if obj.erased_at is not None:
            return _("Erased on %(when)s.") % {"when": obj.erased_at.strftime("%Y-%m-%d %H:%M")}
        url = reverse("admin:flows_cancelsession_erase", args=[obj.pk])
        return format_html('<a class="button" href="{}">{}</a>', url, _("Erase this customer’s personal data…"))

    def get_urls(self) -> list[URLPattern]:
        return [path("<path:object_id>/erase/", self.admin_site.admin_view(self.erase_view),
                     name="flows_cancelsession_erase"), *super().get_urls()]

    def erase_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.is_superuser:
            raise PermissionDenied
        session = self.get_object(request, unquote(object_id))
        if session is None:
            return self._get_obj_does_not_exist_redirect(request, self.opts, object_id)
        change_url = reverse("admin:flows_cancelsession_change", args=[session.pk])
        if session.erased_at is not None:
            messages.info(request, _("This session's personal data was already erased."))
            return HttpResponseRedirect(change_url)
        if request.method == "POST" and request.POST.get("confirm") == "yes":
            try:
                erasure = services.customer_erase(app=session.app, email=session.email,
                                                  account_id=session.account_internal_id)
            except services.CustomerBusy as busy:
                messages.error(request, _("Nothing was erased: %(why)s") % {"why": "; ".join(busy.reasons)})
                return HttpResponseRedirect(change_url)
            # Ids only: the log entry outlives the erasure.
            self.log_change(request, session, _("Erased the customer's personal data"))
            messages.success(request, _("Erased the personal data of %(sessions)d sessions: %(rows)d rows changed.")
                             % {"sessions": erasure.sessions, "rows": erasure.changed})
            for note in erasure.notes:
                messages.warning(request, _("Not changed: %(note)s") % {"note": note})
            return HttpResponseRedirect(change_url)
        subject = selectors.customer(app=session.app, email=session.email, account_id=session.account_internal_id)
        context = {
            **self.admin_site.each_context(request), "opts": self.opts, "original": session,
            "title": _("Erase this customer’s personal data?"), "subject": subject,
            "emails": sorted(subject.emails), "account_ids": sorted(subject.account_ids),
            "sessions": len(subject.session_ids), "change_url": change_url,
        }
        return TemplateResponse(request, "admin/privacy/erase_confirm.html", context)


admin.site.unregister(CancelSession)
admin.site.register(CancelSession, ErasableCancelSessionAdmin)
