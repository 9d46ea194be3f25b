import math

from django.conf import settings
from django.contrib import admin
from django.contrib.admin.forms import AdminAuthenticationForm
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import include, path
from django.utils.translation import gettext, ngettext
from drf_spectacular.views import SpectacularAPIView

from brightback_site import ratelimits
from flows import demo, views
from flows.api import PrecancelAliasView, PrecancelView, precancel_view

admin.site.site_header = "Cancel-flow console"
admin.site.site_title = "Cancel-flow console"
admin.site.index_title = "Apps, flows and results"
# Result lists (sessions, deliveries) need the width more than a second copy of the app index.
admin.site.enable_nav_sidebar = False



def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """The admin's login, throttled against password guessing per address, and per username tried from
    each address: a stranger guessing a known admin's password from their address is held back, while
    the admin signing in from theirs is not."""
    if request.method == "POST":
        username = request.POST.get("username", "").strip().lower()[:150]
        limited = (ratelimits.check(request, scope="login-ip")
                   or ratelimits.check(request, scope="login-username", key=f"user:{username}",
                                    from_address=True))
        if limited:
            return _login_throttled(request, limited)
    return admin.site.login(request, extra_context)


def _login_throttled(request: HttpRequest, limited: ratelimits.Limited) -> HttpResponse:
    """The admin's own login page, with the wait in words, its form empty but for the username: the
    attempt is not checked at all, so the password is neither tried nor shown back."""
    minutes = max(1, math.ceil(limited.retry_after / 60))
    context = {
        **admin.site.each_context(request),
        "title": gettext("Log in"), "app_path": request.get_full_path(),
        "username": request.user.get_username(), "next": request.POST.get("next", ""),
        "form": AdminAuthenticationForm(request, initial={"username": request.POST.get("username", "")[:150]}),
        "throttled": ngettext(
            "Too many sign-in attempts. Nothing was checked. Please try again in %(minutes)d minute.",
            "Too many sign-in attempts. Nothing was checked. Please try again in %(minutes)d minutes.",
            minutes) % {"minutes": minutes},
    }
    response = TemplateResponse(request, "admin/login.html", context, status=429)
    response["Retry-After"] = str(limited.retry_after)
    return response


urlpatterns = [
    path("precancel", precancel_view(PrecancelView), name="precancel"),
    path("precancel/", precancel_view(PrecancelAliasView)),
    path("c/", include("flows.urls")),
    path("r/", include("receipts.urls")),
    path("js/brightback.js", views.snippet, name="snippet"),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/pages/", include("embeds.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("demo/", demo.demo_page, name="demo"),
    path("demo/return/<str:outcome>", demo.demo_return, name="demo-return"),
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/reports/", include("reports.urls")),
    path("admin/evidence/sessions/", include("evidence.urls")),
    path("admin/", admin.site.urls),
]

if settings.BENCH_VIEWS:
    from brightback_site import bench_views

    urlpatterns += bench_views.urlpatterns
