"""Baselines for `make bench`, mounted only when BENCH_VIEWS=1: what this stack does with no product code,
so each product figure can be read as a ratio to its own ceiling measured in the same run."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from flows.models import App, Event


def bare_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"valid": True, "url": "http://127.0.0.1/c/x", "message": "http://127.0.0.1/c/x"})


def bare_template(request: HttpRequest) -> HttpResponse:
    return render(request, "bench/bare.html", {"title": "Before you go…", "items": range(6)})


def template_select(request: HttpRequest) -> HttpResponse:
    """The bare template view after one indexed SELECT of a session by its token, through Django's cursor:
    the least any page that reads a session per view can cost on this stack."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT id FROM flows_cancelsession WHERE token = %s", [request.GET.get("token", "")])
        cursor.fetchone()
    return render(request, "bench/bare.html", {"title": "Before you go…", "items": range(6)})


@csrf_exempt
def select_insert(request: HttpRequest) -> JsonResponse:
    app_id = App.objects.filter(app_id="demo").values_list("pk", flat=True).first()
    event = Event.objects.create(app_id=app_id, type="bench.baseline", data={})
    return JsonResponse({"valid": True, "id": event.pk})


def sessions_csv_python(request: HttpRequest) -> HttpResponse:
    """The sessions CSV as it was written before COPY (Python's csv module over the cursor; SQLite's way):
    the export benchmark's baseline, behind the same login and permission as the real one."""
    from reports.views import sessions_csv

    return sessions_csv(request, use_copy=False)


urlpatterns = [
    path("bench/json", bare_json),
    path("bench/template", bare_template),
    path("bench/select-insert", select_insert),
    path("bench/template-select", template_select),
    path("bench/sessions-csv-python", sessions_csv_python),
]
