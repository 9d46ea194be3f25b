from django.contrib import admin
from django.urls import include, path

from flows import demo, views
from flows.api import PrecancelView

admin.site.site_header = "Cancel-flow console"
admin.site.site_title = "Cancel-flow console"
admin.site.index_title = "Apps, flows and results"
# Result lists (sessions, deliveries) need the width more than a second copy of the app index.
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("precancel", PrecancelView.as_view(), name="precancel"),
    path("precancel/", PrecancelView.as_view()),
    path("c/", include("flows.urls")),
    path("js/brightback.js", views.snippet, name="snippet"),
    path("healthz", views.healthz, name="healthz"),
    path("demo/", demo.demo_page, name="demo"),
    path("demo/return/<str:outcome>", demo.demo_return, name="demo-return"),
    path("admin/reports/", include("reports.urls")),
    path("admin/", admin.site.urls),
]
