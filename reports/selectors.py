"""Reads for the report pages. Each figure is one query over the daily rollups (or, for the watch list
and feedback excerpts, one bounded query over indexed recent rows), so a page costs the same number of
queries at a thousand sessions as at a million."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db.models import Exists, F, Max, OuterRef, Q, QuerySet, Sum
from django.utils import timezone

from flows.models import CancelSession, Decision, Event
from offers.models import Offer

from . import days, stats
from .models import DailyOfferStat, DailyReasonStat, DailyStat, RollupRun


@dataclass(frozen=True)
class ReportFilter:
    first_day: date
    last_day: date
    app_id: int | None = None
    flow_id: int | None = None
    audience_id: int | None = None
    variant_id: int | None = None
    # The Apps the reader may see (flows.admin_access.app_scope); None: every App.
    app_ids: frozenset[int] | None = None

    def rollups(self, model: type[DailyStat] | type[DailyReasonStat] | type[DailyOfferStat]) -> QuerySet:
        rows = model.objects.filter(day__gte=self.first_day, day__lte=self.last_day)
        for name in ("app_id", "flow_id", "audience_id", "variant_id"):
            if getattr(self, name) is not None:
                rows = rows.filter(**{name: getattr(self, name)})
        if self.app_ids is not None:
            rows = rows.filter(app_id__in=self.app_ids)
        return rows.order_by()

    def sessions(self, prefix: str = "") -> Q:
        start, end = days.bounds(self.first_day, self.last_day)
        q = Q(**{f"{prefix}created_at__gte": start, f"{prefix}created_at__lt": end})
        for name in ("app_id", "flow_id", "audience_id", "variant_id"):
            if getattr(self, name) is not None:
                q &= Q(**{f"{prefix}{name}": getattr(self, name)})
        if self.app_ids is not None:
            q &= Q(**{f"{prefix}app_id__in": self.app_ids})
        return q


def _share(part: int | None, whole: int | None) -> float | None:
    return part / whole if whole and part is not None else None


# --- overview -------------------------------------------------------------------------------------

@dataclass
class Overview:
    sessions: int = 0
    reason_given: int = 0
    offers_shown: int = 0
    decided: int = 0
    nevermind: int = 0
    accepted: int = 0
    canceled: int = 0
    confirmed: int = 0
    offer_confirmed: int = 0
    revenue_saved: Decimal = Decimal(0)
    days: list[dict] = field(default_factory=list)

    @property
    def saved(self) -> int:
        return self.nevermind + self.accepted

    @property
    def save_rate(self) -> float | None:
        return _share(self.saved, self.decided)

    @property
    def funnel(self) -> list[tuple[str, int, float | None]]:
        steps = [("Started", self.sessions), ("Gave a reason", self.reason_given),
                 ("Saw an offer", self.offers_shown), ("Accepted an offer", self.accepted),
                 ("Save confirmed after the watch window", self.offer_confirmed)]
        return [(label, count, _share(count, self.sessions)) for label, count in steps]


COUNTERS = ("sessions", "reason_given", "offers_shown", "decided", "nevermind", "accepted", "canceled", "confirmed")


def overview(report: ReportFilter) -> Overview:
    rows = report.rollups(DailyStat)
    totals = rows.aggregate(**{name: Sum(name) for name in COUNTERS}, revenue_saved=Sum("revenue_saved"))
    result = Overview(revenue_saved=totals["revenue_saved"] or Decimal(0))
    for name in COUNTERS:
        setattr(result, name, totals[name] or 0)
    result.offer_confirmed = report.rollups(DailyOfferStat).aggregate(n=Sum("confirmed"))["n"] or 0
    per_day = (rows.values("day").annotate(sessions=Sum("sessions"), decided=Sum("decided"),
                                           saved=Sum(F("nevermind") + F("accepted"))).order_by("day"))
    by_day = {row["day"]: row for row in per_day}
    current = report.first_day
    while current <= report.last_day:
        row = by_day.get(current, {"sessions": 0, "decided": 0, "saved": 0})
        result.days.append({"day": current, "sessions": row["sessions"], "decided": row["decided"],
                            "saved": row["saved"], "save_rate": _share(row["saved"], row["decided"])})
        current += timedelta(days=1)
    return result


# --- reasons --------------------------------------------------------------------------------------

FEEDBACK_PER_REASON = 3
FEEDBACK_SCAN = 300


def reasons(report: ReportFilter) -> list[dict[str, Any]]:
    rows = (report.rollups(DailyReasonStat).values("reason_code")
            .annotate(label=Max("reason_label"), decided=Sum("decided"), saved=Sum("saved"),
                      accepted=Sum("accepted"), canceled=Sum("canceled"))
            .order_by("-decided", "reason_code"))
    result = [dict(row) for row in rows]
    total = sum(row["decided"] for row in result)
    for row in result:
        row["share"] = _share(row["decided"], total)
        row["save_rate"] = _share(row["saved"], row["decided"])
        row["feedback"] = []
    # The latest notes, a few per reason: one bounded query, newest first.
    notes = (Decision.objects.filter(report.sessions("session__")).exclude(feedback="").order_by("-created_at")
             .values("reason_code", "feedback", "created_at", "session__email")[:FEEDBACK_SCAN])
    by_code = {row["reason_code"]: row for row in result}
    for note in notes:
        found = by_code.get(note["reason_code"])
        if found is not None and len(found["feedback"]) < FEEDBACK_PER_REASON:
            text = note["feedback"]
            found["feedback"].append({"text": text if len(text) <= 280 else text[:279] + "…",
                                    "at": note["created_at"], "email": note["session__email"]})
    return result


# --- offers ---------------------------------------------------------------------------------------

def offers(report: ReportFilter) -> list[dict[str, Any]]:
    rows = (report.rollups(DailyOfferStat).values("offer_code")
            .annotate(shown=Sum("shown"), accepted=Sum("accepted"), confirmed=Sum("confirmed"),
                      revenue_saved=Sum("revenue_saved"))
            .order_by("-accepted", "offer_code"))
    result = [dict(row) for row in rows]
    titles = dict(Offer.objects.filter(code__in=[row["offer_code"] for row in result])
                  .filter(**({"flow__app_id": report.app_id} if report.app_id else {}))
                  .filter(**({"flow__app_id__in": report.app_ids} if report.app_ids is not None else {}))
                  .order_by("code", "-is_active", "-id").values_list("code", "title").distinct())
    for row in result:
        row["title"] = titles.get(row["offer_code"], "")
        row["conversion"] = _share(row["accepted"], row["shown"])
    return result


# --- experiments ----------------------------------------------------------------------------------

def experiments(report: ReportFilter) -> list[dict[str, Any]]:
    """Per flow with variants in the period: each variant's save rate, and its lift over the control."""
    rows = (report.rollups(DailyStat).filter(variant__isnull=False)
            .values("flow_id", "flow__name", "variant_id", "variant__code", "variant__name", "variant__is_control",
                    "variant__weight", "variant__is_active")
            .annotate(sessions=Sum("sessions"), decided=Sum("decided"), saved=Sum(F("nevermind") + F("accepted")),
                      revenue_saved=Sum("revenue_saved"))
            .order_by("flow__name", "flow_id", "-variant__is_control", "variant__code"))
    flows: dict[int, dict[str, Any]] = {}
    for row in rows:
        flow = flows.setdefault(row["flow_id"], {"flow": row["flow__name"], "variants": [], "control": None})
        variant = {"code": row["variant__code"], "name": row["variant__name"], "is_control": row["variant__is_control"],
                   "weight": row["variant__weight"], "is_active": row["variant__is_active"],
                   "sessions": row["sessions"], "decided": row["decided"], "saved": row["saved"],
                   "revenue_saved": row["revenue_saved"], "save_rate": _share(row["saved"], row["decided"]),
                   "enough": stats.enough_data(row["saved"], row["decided"]), "comparison": None}
        flow["variants"].append(variant)
        if variant["is_control"]:
            flow["control"] = variant
    for flow in flows.values():
        control = flow["control"]
        for variant in flow["variants"]:
            if control is not None and variant is not control:
                variant["comparison"] = stats.compare(saved=variant["saved"], decided=variant["decided"],
                                                      control_saved=control["saved"],
                                                      control_decided=control["decided"])
    return list(flows.values())


# --- the watch list -------------------------------------------------------------------------------

WATCH_LIST_ROWS = 100


def watch_list(report: ReportFilter, *, now: datetime | None = None) -> dict[str, Any]:
    """Saved customers (nevermind or an accepted offer) still inside their watch window, newest first.

    The window is the last SAVE_WATCH_DAYS whatever the report's dates: these are the saves still to
    prove themselves. The report's App, flow, audience and variant apply. The totals come from the
    rollups (saves of sessions started in the window, less those already confirmed); the rows are the
    latest saves, and those whose customer has canceled since are marked.
    """
    now = now or timezone.now()
    since = now - timedelta(days=settings.SAVE_WATCH_DAYS)
    window = ReportFilter(first_day=days.day_of(since), last_day=days.day_of(now),
                          app_id=report.app_id, flow_id=report.flow_id, audience_id=report.audience_id,
                          variant_id=report.variant_id, app_ids=report.app_ids)
    totals = window.rollups(DailyStat).aggregate(saved=Sum(F("nevermind") + F("accepted")), confirmed=Sum("confirmed"),
                                                 value=Sum("revenue_saved"))
    scope = Q()
    for name in ("app_id", "flow_id", "audience_id", "variant_id"):
        if getattr(report, name) is not None:
            scope &= Q(**{f"session__{name}": getattr(report, name)})
    if report.app_ids is not None:
        scope &= Q(session__app_id__in=report.app_ids)
    rows = list(Decision.objects.filter(scope, kind__in=[Decision.Kind.NEVERMIND, Decision.Kind.ACCEPT],
                                        created_at__gte=since)
                .exclude(Exists(Event.objects.filter(session_id=OuterRef("session_id"),
                                                     type=Event.Type.SAVE_CONFIRMED)))
                .select_related("session", "session__app", "session__variant").order_by("-created_at")
                [:WATCH_LIST_ROWS])
    accounts = {(d.session.app_id, d.session.account_internal_id) for d in rows if d.session.account_internal_id}
    cancels: dict[tuple[int, str], datetime] = {}
    if accounts:
        later = (Decision.objects.filter(kind=Decision.Kind.CANCEL, created_at__gte=since,
                                         session__app_id__in={app for app, _ in accounts},
                                         session__account_internal_id__in={account for _, account in accounts})
                 .values_list("session__app_id", "session__account_internal_id").annotate(last=Max("created_at")))
        cancels = {(app, account): last for app, account, last in later}
    entries = []
    for decision in rows:
        ends = decision.created_at + timedelta(days=settings.SAVE_WATCH_DAYS)
        canceled = cancels.get((decision.session.app_id, decision.session.account_internal_id))
        entries.append({"decision": decision, "session": decision.session, "ends": ends,
                        "days_left": max((ends - now).days, 0),
                        "canceled_since": canceled if canceled and canceled > decision.created_at else None})
    return {"count": (totals["saved"] or 0) - (totals["confirmed"] or 0), "value": totals["value"] or Decimal(0),
            "rows": entries, "watch_days": settings.SAVE_WATCH_DAYS}


# --- freshness and export -------------------------------------------------------------------------

def last_refresh() -> RollupRun | None:
    return RollupRun.objects.order_by("-finished_at").first()


def sessions_for_export(report: ReportFilter) -> QuerySet[CancelSession]:
    return (CancelSession.objects.filter(report.sessions())
            .select_related("app", "flow", "audience", "variant", "decision", "decision__offer")
            .order_by("created_at", "id"))
