from django.urls import path

from . import views

app_name = "evidence"

urlpatterns = [
    path("<str:object_id>.json", views.session_json_view, name="session"),
]
