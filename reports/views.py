"""The report pages under /admin/reports/. Thin: parse the filter, call selectors, render.

Staff need the permission to view cancel sessions, and see only the Apps granted to them (flows.AppAccess).
Every page is served with a strict
Content-Security-Policy: the charts are inline SVG, the styles a file of our own, and nothing runs.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from functools import wraps

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from flows.admin_access import app_scope

from . import charts, selectors, services
from .filters import ReportFilterForm

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
        return {"figures": figures,
                "daily_chart": charts.daily_chart(figures.days, title=_("Sessions per day, saves in dark blue")),
                "funnel_chart": charts.bar_list([(label, share or 0, f"{count:,}") for label, count, share
                                                 in figures.funnel], title=_("The funnel"))}

    return _page(request, "overview", build)


@require_GET
@staff_report
def reasons(request: HttpRequest) -> HttpResponse:
    def build(report: selectors.ReportFilter) -> dict:
        rows = selectors.reasons(report)
        chart = charts.bar_list([(row["label"] or row["reason_code"], row["share"] or 0,
                                  f"{row['decided']:,}") for row in rows], title=_("Decisions by reason"))
        return {"rows": rows, "chart": chart}

    return _page(request, "reasons", build)


@require_GET
@staff_report
def offers(request: HttpRequest) -> HttpResponse:
    def build(report: selectors.ReportFilter) -> dict:
        rows = selectors.offers(report)
        chart = charts.bar_list([(row["title"] or row["offer_code"], row["conversion"] or 0,
                                  f"{(row['conversion'] or 0) * 100:.1f}%") for row in rows],
                                title=_("Offer conversion: accepted out of shown"))
        return {"rows": rows, "chart": chart}

    return _page(request, "offers", build)


@require_GET
@staff_report
def experiments(request: HttpRequest) -> HttpResponse:
    return _page(request, "experiments", lambda report: {"experiments": selectors.experiments(report)})


@require_GET
@staff_report
def watch_list(request: HttpRequest) -> HttpResponse:
    return _page(request, "watch_list", lambda report: {"watch": selectors.watch_list(report)})


# Spreadsheet programs run cells starting with these as formulas: a customer's feedback must stay text.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_HEADER = ["session_id", "started_at", "app_id", "flow", "audience", "variant", "email", "account_internal_id",
              "plan", "plan_term", "monthly_value", "offers_shown", "decision", "decided_at", "reason_code",
              "reason_label", "feedback", "offer_code", "discount_percent", "value_kept"]


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class _Echo:
    def write(self, value: str) -> str:
        return value


def _csv_rows(report: selectors.ReportFilter) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CSV_HEADER)
    for session in selectors.sessions_for_export(report).iterator(chunk_size=2000):
        decision = getattr(session, "decision", None)
        offer = decision.offer if decision is not None else None
        kept = services.value_kept(session.monthly_value, offer_kind=offer.kind if offer else None,
                                   discount_percent=offer.discount_percent if offer else None) \
            if decision is not None and decision.kind in services.SAVED_KINDS else None
        account = session.account
        yield writer.writerow([_cell(v) for v in (
            session.public_id, session.created_at.isoformat(), session.app.app_id, session.flow.name,
            session.audience.name if session.audience else "", session.variant.code if session.variant else "",
            session.email, session.account_internal_id, account.get("plan", ""), account.get("plan_term", ""),
            session.monthly_value, " ".join(session.offers_shown or []),
            decision.kind if decision else "", decision.created_at.isoformat() if decision else "",
            decision.reason_code if decision else "", decision.reason_label if decision else "",
            decision.feedback if decision else "", decision.offer_code if decision else "",
            offer.discount_percent if offer else "", kept.quantize(services.CENT) if kept is not None else "")])


@require_GET
@staff_report
def sessions_csv(request: HttpRequest) -> HttpResponse:
    form = ReportFilterForm(request.GET, apps=app_scope(request))
    if not form.is_valid():
        return HttpResponse("; ".join(str(e) for errors in form.errors.values() for e in errors), status=400,
                            content_type="text/plain; charset=utf-8")
    report = form.report()
    response = StreamingHttpResponse(_csv_rows(report), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = (f'attachment; filename="sessions-{report.first_day}-{report.last_day}.csv"')
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
