from django.urls import path

from . import api

app_name = "embeds"

urlpatterns = [
    path("<str:token>", api.PageView.as_view(), name="page"),
    path("<str:token>/decision", api.DecisionView.as_view(), name="decision"),
]
