from django.conf import settings
from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
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
    """The admin's login, throttled per address and per username against password guessing."""
    if request.method == "POST":
        username = request.POST.get("username", "").strip().lower()[:150]
        limited = (ratelimits.check(request, scope="login-ip")
                   or ratelimits.check(request, scope="login-username", key=f"user:{username}"))
        if limited:
            response = HttpResponse(f"Too many sign-in attempts. Try again in {limited.retry_after} seconds.\n",
                                    status=429, content_type="text/plain; charset=utf-8")
            response["Retry-After"] = str(limited.retry_after)
            return response
    return admin.site.login(request, extra_context)


urlpatterns = [
    path("precancel", precancel_view(PrecancelView), name="precancel"),
    path("precancel/", precancel_view(PrecancelAliasView)),
    path("c/", include("flows.urls")),
    path("js/brightback.js", views.snippet, name="snippet"),
    path("healthz", views.healthz, name="healthz"),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("demo/", demo.demo_page, name="demo"),
    path("demo/return/<str:outcome>", demo.demo_return, name="demo-return"),
    path("admin/login/", admin_login, name="admin-login"),
    path("admin/reports/", include("reports.urls")),
    path("admin/", admin.site.urls),
]

if settings.BENCH_VIEWS:
    from brightback_site import bench_views

    urlpatterns += bench_views.urlpatterns
