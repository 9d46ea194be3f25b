from django.urls import path

from . import views

app_name = "flows"

urlpatterns = [
    path("<str:token>", views.page, name="page"),
    path("<str:token>/done", views.done, name="done"),
]
