"""The report pages under /admin/reports/. Thin: parse the filter, call selectors, render.

Staff need the permission to view cancel sessions, and see only the Apps granted to them (flows.AppAccess).
Every page is served with a strict
Content-Security-Policy: the charts are inline SVG, the styles a file of our own, and nothing runs.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, JsonResponse, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from flows.admin_access import app_scope

from . import charts, export, selectors, services
from . import experiments as experiments_report
from .filters import ReportFilterForm
from .summary import report_summary

REPORTS_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")
PERMISSION = "flows.view_cancelsession"
# A refresh records a RollupRun: that is the permission it needs, beyond reading the reports.
REFRESH_PERMISSION = "reports.add_rolluprun"
TABS = [("overview", "Overview"), ("reasons", "Reasons"), ("offers", "Offers"), ("experiments", "Experiments"),
        ("watch_list", "Watch list")]

View = Callable[..., HttpResponse]


def staff_report(view: View) -> View:
    @wraps(view)
    def wrapper(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
        if not request.user.has_perm(PERMISSION):
            raise PermissionDenied
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = REPORTS_CSP
        return response

    return admin.site.admin_view(wrapper)


def _page(request: HttpRequest, tab: str, build: Callable[[selectors.ReportFilter], dict]) -> HttpResponse:
    # Bound even when empty: clean() fills in the default dates.
    form = ReportFilterForm(request.GET, apps=app_scope(request))
    valid = form.is_valid()
    context = {
        **admin.site.each_context(request),
        "title": _("Reports"), "tab": tab, "tabs": TABS, "form": form,
        "query": request.GET.urlencode(), "last_refresh": selectors.last_refresh(),
    }
    if not valid:
        return render(request, "reports/page.html", context, status=400)
    report = form.report()
    context.update(report=report, **build(report))
    return render(request, f"reports/{tab}.html", context)


@require_GET
@staff_report
def overview(request: HttpRequest) -> HttpResponse:
    def build(report: selectors.ReportFilter) -> dict:
        figures = selectors.overview(report)
        return {"figures": figures, "watch_days": settings.SAVE_WATCH_DAYS,
                "saved_source": selectors.saved_source(report), "effort": selectors.cancel_effort(report),
                "revenue_source": selectors.revenue_source(figures),
                "no_confirmations_note": selectors.no_confirmations_note(report, figures),
                "daily_chart": charts.daily_chart(figures.days, title=_("Sessions opened per day, and deflected"),
                                                  labels=(_("Sessions opened"), _("Deflected accounts"))),
                "funnel_chart": charts.bar_list([(label, share or 0, f"{count:,}") for label, count, share
                                                 in figures.funnel], title=_("The funnel"),
                                                meaning=_("Share of the sessions started"))}

    return _page(request, "overview", build)


@require_GET
@staff_report
def reasons(request: HttpRequest) -> HttpResponse:
    def build(report: selectors.ReportFilter) -> dict:
        rows = selectors.reasons(report)
        chart = charts.bar_list([(row["label"] or row["reason_code"], row["share"] or 0,
                                  f"{row['decided']:,}") for row in rows], title=_("Decisions by reason"),
                                meaning=_("Share of all decisions"))
        return {"rows": rows, "chart": chart}

    return _page(request, "reasons", build)


@require_GET
@staff_report
def offers(request: HttpRequest) -> HttpResponse:
    def build(report: selectors.ReportFilter) -> dict:
        rows = selectors.offers(report)
        chart = charts.bar_list([(row["title"] or row["offer_code"], row["conversion"] or 0,
                                  f"{(row['conversion'] or 0) * 100:.1f}%") for row in rows],
                                title=_("Offer conversion: accepted out of shown"),
                                meaning=_("Sessions that accepted, of those shown the offer"))
        return {"rows": rows, "chart": chart, "watch_days": settings.SAVE_WATCH_DAYS}

    return _page(request, "offers", build)


@require_GET
@staff_report
def experiments(request: HttpRequest) -> HttpResponse:
    return _page(request, "experiments", lambda report: {"experiments": experiments_report.experiments(report),
                                                         "detect_points": settings.EXPERIMENT_DETECT_POINTS})


@require_GET
@staff_report
def watch_list(request: HttpRequest) -> HttpResponse:
    return _page(request, "watch_list", lambda report: {"watch": selectors.watch_list(report)})


@require_GET
@staff_report
def sessions_csv(request: HttpRequest, *, use_copy: bool | None = None) -> HttpResponse:
    """Every session of the filter (reports/export.py): the header at once, then the rows as they come."""
    form = ReportFilterForm(request.GET, apps=app_scope(request))
    if not form.is_valid():
        return HttpResponse("; ".join(str(e) for errors in form.errors.values() for e in errors), status=400,
                            content_type="text/plain; charset=utf-8")
    report = form.report()
    response = StreamingHttpResponse(export.csv_stream(report, use_copy=use_copy),
                                     content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="sessions-{report.first_day}-{report.last_day}.csv"')
    return response


@require_GET
@staff_report
def summary_json(request: HttpRequest) -> HttpResponse:
    """What `manage.py report_summary` prints, for the page's filter (over the reader's Apps), as a download."""
    form = ReportFilterForm(request.GET, apps=app_scope(request))
    if not form.is_valid():
        return JsonResponse({"errors": {name: [str(e) for e in errors] for name, errors in form.errors.items()}},
                            status=400)
    report = form.report()
    response = JsonResponse(report_summary(report), json_dumps_params={"indent": 2})
    response["Content-Disposition"] = f'attachment; filename="summary-{report.first_day}-{report.last_day}.json"'
    return response


@require_POST
@staff_report
def refresh(request: HttpRequest) -> HttpResponse:
    if not request.user.has_perm(REFRESH_PERMISSION):
        raise PermissionDenied
    days = services.rollups_refresh_recent()
    messages.success(request, _("Refreshed the numbers of %(days)s days that can still change.") % {"days": days})
    target = reverse("reports:overview")
    back = request.POST.get("next", "")
    return HttpResponseRedirect(back if back.startswith("/admin/reports/") else target)
