from django.urls import path

from . import views

app_name = "reports"

urlpatterns = [
    path("", views.overview, name="overview"),
    path("reasons/", views.reasons, name="reasons"),
    path("offers/", views.offers, name="offers"),
    path("experiments/", views.experiments, name="experiments"),
    path("watch-list/", views.watch_list, name="watch_list"),
    path("sessions.csv", views.sessions_csv, name="sessions_csv"),
    path("summary.json", views.summary_json, name="summary_json"),
    path("refresh/", views.refresh, name="refresh"),
]
