from django.urls import path

from . import views

app_name = "receipts"

urlpatterns = [
    path("<str:token>", views.way_back, name="way_back"),
]
