"""Reads for the report pages. Each figure is one query over the daily rollups (or, for the watch list
and feedback excerpts, one bounded query over indexed recent rows), so a page costs the same number of
queries at a thousand sessions as at a million."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.db.models.fields.json import KT
from django.utils import timezone
from django.utils.translation import gettext as _

from evidence.selectors import cancel_effort as evidence_cancel_effort
from flows.models import App, CancelSession, Decision
from offers.models import Offer

from . import channels, days, value
from .models import DailyOfferStat, DailyReasonStat, DailyStat, RollupRun
from .outcomes import unconfirmed_last_outcomes


@dataclass(frozen=True)
class ReportFilter:
    first_day: date
    last_day: date
    app_id: int | None = None
    flow_id: int | None = None
    audience_id: int | None = None
    variant_id: int | None = None
    include_test: bool = False  # sessions of Apps in test mode are left out unless asked for
    # The Apps the reader may see (flows.admin_access.app_scope); None: every App.
    app_ids: frozenset[int] | None = None

    def rollups(self, model: type[DailyStat] | type[DailyReasonStat] | type[DailyOfferStat]) -> QuerySet:
        rows = model.objects.filter(day__gte=self.first_day, day__lte=self.last_day)
        for name in ("app_id", "flow_id", "audience_id", "variant_id"):
            if getattr(self, name) is not None:
                rows = rows.filter(**{name: getattr(self, name)})
        if not self.include_test:
            rows = rows.filter(is_test=False)
        if self.app_ids is not None:
            rows = rows.filter(app_id__in=self.app_ids)
        return rows.order_by()

    def scope(self, prefix: str = "") -> Q:
        """The report's App, flow, audience, variant and test choice over sessions, whatever their dates
        (a staff member's allowed Apps narrow it here too)."""
        q = Q(**{f"{prefix}opened_at__isnull": False})
        for name in ("app_id", "flow_id", "audience_id", "variant_id"):
            if getattr(self, name) is not None:
                q &= Q(**{f"{prefix}{name}": getattr(self, name)})
        if not self.include_test:
            q &= Q(**{f"{prefix}is_test": False})
        if self.app_ids is not None:
            q &= Q(**{f"{prefix}app_id__in": self.app_ids})
        return q

    def sessions(self, prefix: str = "") -> Q:
        start, end = days.bounds(self.first_day, self.last_day)
        return Q(**{f"{prefix}created_at__gte": start, f"{prefix}created_at__lt": end}) & self.scope(prefix)


def _share(part: int | None, whole: int | None) -> float | None:
    return part / whole if whole and part is not None else None


# --- overview -------------------------------------------------------------------------------------

def closed_through(today: date | None = None) -> date:
    """The last day whose sessions' watch windows have all closed (decided within the page's life, then
    watched SAVE_WATCH_DAYS, then confirmed by beat within the day): only those days have a save rate."""
    today = today or days.today()
    open_days = math.ceil(settings.SESSION_TTL_SECONDS / 86400)
    return today - timedelta(days=settings.SAVE_WATCH_DAYS + open_days + 1)


@dataclass
class Overview:
    # Sessions: every opened visit.
    sessions: int = 0
    reason_given: int = 0
    offers_shown: int = 0
    decided: int = 0
    nevermind: int = 0
    accepted: int = 0
    canceled: int = 0
    # Accounts, by their last outcome (reports.outcomes).
    deflected_nevermind: int = 0
    deflected_offer: int = 0
    canceled_accounts: int = 0
    saved_nevermind: int = 0
    saved_offer: int = 0
    # The same accounts on the days whose watch windows have closed: the save rate's.
    closed_through: date | None = None
    closed_decided: int = 0
    closed_saved: int = 0
    # [{currency, amount, invoiced, estimated}]: `invoiced` of `amount` is what billing read the saves
    # paid (their invoices), `estimated` the rest (reports.value).
    revenue_kept: list[dict] = field(default_factory=list)
    saved_invoiced: int = 0  # saves valued at what they paid
    days: list[dict] = field(default_factory=list)

    @property
    def deflected(self) -> int:
        return self.deflected_nevermind + self.deflected_offer

    @property
    def saved(self) -> int:
        return self.saved_nevermind + self.saved_offer

    @property
    def decided_accounts(self) -> int:
        return self.deflected + self.canceled_accounts

    @property
    def deflect_rate(self) -> float | None:
        return _share(self.deflected, self.decided_accounts)

    @property
    def save_rate(self) -> float | None:
        """Saved / decided accounts, over the days whose watch windows have closed."""
        return _share(self.closed_saved, self.closed_decided)

    @property
    def funnel(self) -> list[tuple[str, int, float | None]]:
        steps = [("Started (opened the page)", self.sessions), ("Gave a reason", self.reason_given),
                 ("Saw an offer", self.offers_shown), ("Accepted an offer", self.accepted)]
        return [(label, count, _share(count, self.sessions)) for label, count in steps]


SESSION_COUNTERS = ("sessions", "reason_given", "offers_shown", "decided", "nevermind", "accepted", "canceled")
ACCOUNT_COUNTERS = ("deflected_nevermind", "deflected_offer", "canceled_accounts", "saved_nevermind", "saved_offer")


def money_by_currency(rows: QuerySet, column: str) -> list[dict]:
    """One sum of `column` per App currency (rollups are per App): never one across currencies."""
    sums = rows.values("app__currency").annotate(total=Sum(column)).order_by()
    return value.money({row["app__currency"]: row["total"] or Decimal(0) for row in sums if row["total"]})


def revenue_by_currency(rows: QuerySet) -> list[dict]:
    """Revenue kept per App currency, with what of it came from paid invoices and what was estimated."""
    sums = (rows.values("app__currency").annotate(total=Sum("revenue_kept"), invoiced=Sum("revenue_invoiced"))
            .order_by())
    invoiced = {row["app__currency"]: row["invoiced"] or Decimal(0) for row in sums}
    return [{**money, "invoiced": invoiced[money["currency"]].quantize(value.CENT),
             "estimated": (money["amount"] - invoiced[money["currency"]]).quantize(value.CENT)}
            for money in value.money({row["app__currency"]: row["total"] or Decimal(0) for row in sums
                                      if row["total"]})]


def revenue_source(figures: Overview) -> str:
    """Where the revenue kept comes from, as the page labels it."""
    if not figures.saved:
        return ""
    if not figures.saved_invoiced:
        return _("estimated: each plan's value over the window, net of its offer")
    if figures.saved_invoiced >= figures.saved:
        return _("from the invoices the saved customers paid, as the billing system reports them")
    return _("%(paid)s of %(saved)s saves from the invoices they paid, as the billing system reports them; the "
             "rest estimated from each plan's value") % {"paid": f"{figures.saved_invoiced:,}",
                                                         "saved": f"{figures.saved:,}"}


def overview(report: ReportFilter) -> Overview:
    rows = report.rollups(DailyStat)
    totals = rows.aggregate(**{name: Sum(name) for name in (*SESSION_COUNTERS, *ACCOUNT_COUNTERS, "saved_invoiced")})
    result = Overview(closed_through=closed_through(), revenue_kept=revenue_by_currency(rows),
                      saved_invoiced=totals["saved_invoiced"] or 0)
    for name in (*SESSION_COUNTERS, *ACCOUNT_COUNTERS):
        setattr(result, name, totals[name] or 0)
    closed = rows.filter(day__lte=result.closed_through).aggregate(
        decided=Sum(F("deflected_nevermind") + F("deflected_offer") + F("canceled_accounts")),
        saved=Sum(F("saved_nevermind") + F("saved_offer")))
    result.closed_decided, result.closed_saved = closed["decided"] or 0, closed["saved"] or 0
    per_day = (rows.values("day").annotate(sessions=Sum("sessions"), decided=Sum("decided"),
                                           deflected=Sum(F("deflected_nevermind") + F("deflected_offer")),
                                           saved=Sum(F("saved_nevermind") + F("saved_offer"))).order_by("day"))
    by_day = {row["day"]: row for row in per_day}
    current = report.first_day
    while current <= report.last_day:
        row = by_day.get(current, {"sessions": 0, "decided": 0, "deflected": 0, "saved": 0})
        result.days.append({"day": current, "sessions": row["sessions"], "decided": row["decided"],
                            "deflected": row["deflected"], "saved": row["saved"]})
        current += timedelta(days=1)
    return result


def cancel_effort(report: ReportFilter) -> dict:
    """What canceling took on the page, for the sessions of the report's days and Apps that canceled:
    clicks and seconds from opening the page to the Cancel, each {count, median, p90}, over the newest
    evidence.selectors.EFFORT_CANCELS of them, and `total` (evidence's steps)."""
    start, end = days.bounds(report.first_day, report.last_day)
    # A Cancel comes after its session was created, at most the page's life later.
    latest = timedelta(seconds=settings.SESSION_TTL_SECONDS)
    return evidence_cancel_effort(report.sessions("session__"), since=start, until=end + latest)


SAVED_KINDS = (Decision.Kind.NEVERMIND, Decision.Kind.ACCEPT)


def saved_source(report: ReportFilter) -> str:
    """How the report's saves were confirmed, as the page labels them."""
    if report.app_id is not None:
        apps = [report.app_id]
    else:
        apps = list(App.objects.filter(**({"pk__in": report.app_ids} if report.app_ids is not None else {}))
                    .values_list("pk", flat=True))
    connected = channels.apps_with_billing(app_ids=apps)
    if apps and len(connected) == len(apps):
        return _("still paying, read from the billing system")
    if not connected:
        return _("did not cancel through us (no billing system connected)")
    return _("read from billing where connected; elsewhere, did not cancel through us")


def no_confirmations_note(report: ReportFilter, figures: Overview) -> str:
    """Why the range shows no save rate, when it cannot: its days' watch windows have not closed yet."""
    if figures.closed_decided or figures.closed_through is None or report.first_day <= figures.closed_through:
        return ""
    return _("No save rate yet: the watch windows (%(days)s days) of these sessions have not closed. Sessions "
             "up to %(day)s have one; widen the range to include them.") % {
        "days": settings.SAVE_WATCH_DAYS, "day": figures.closed_through.isoformat()}


# --- reasons --------------------------------------------------------------------------------------

FEEDBACK_PER_REASON = 3
FEEDBACK_SCAN = 300


def reasons(report: ReportFilter) -> list[dict[str, Any]]:
    rows = (report.rollups(DailyReasonStat).values("reason_code")
            .annotate(label=Max("reason_label"), decided=Sum("decided"), saved=Sum("saved"),
                      accepted=Sum("accepted"), canceled=Sum("canceled"))
            .order_by("-decided", "reason_code"))
    result = [dict(row) for row in rows]
    # Shares are of every decision, those without a reason included (their own row).
    everything = report.rollups(DailyStat).aggregate(
        decided=Sum("decided"), saved=Sum(F("nevermind") + F("accepted")), accepted=Sum("accepted"),
        canceled=Sum("canceled"))
    total = everything["decided"] or 0
    without = {name: (everything[name] or 0) - sum(row[name] for row in result)
               for name in ("decided", "saved", "accepted", "canceled")}
    if without["decided"] > 0:
        result.append({"reason_code": "", "label": _("No reason given"), **without})
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
    """Per offer (a flow's offer code): shown to, accepted by (sessions), accounts whose last outcome it
    is, and those still paying after the watch window, with what they kept in their App's currency."""
    rows = (report.rollups(DailyOfferStat).values("flow_id", "flow__name", "offer_code", "app__currency")
            .annotate(shown=Sum("shown"), accepted=Sum("accepted"), deflected=Sum("deflected"), saved=Sum("saved"),
                      revenue_kept=Sum("revenue_kept"), revenue_invoiced=Sum("revenue_invoiced"))
            .order_by("-accepted", "offer_code", "flow_id"))
    result = [dict(row) for row in rows]
    # Each offer's own title: codes are unique within a flow only.
    titles = {(flow_id, code): title for flow_id, code, title in Offer.objects.filter(
        flow_id__in={row["flow_id"] for row in result}, code__in={row["offer_code"] for row in result})
        .values_list("flow_id", "code", "title")}
    for row in result:
        row["title"] = titles.get((row["flow_id"], row["offer_code"]), "")
        row["conversion"] = _share(row["accepted"], row["shown"])
        row["revenue_kept"] = {"currency": row.pop("app__currency"), "amount": row["revenue_kept"] or Decimal(0),
                               "invoiced": row.pop("revenue_invoiced") or Decimal(0)}
    return result


# --- the watch list -------------------------------------------------------------------------------

WATCH_LIST_ROWS = 100


def _watched(report: ReportFilter, *, since: datetime) -> QuerySet[CancelSession]:
    """Deflected accounts (their last outcome) decided after `since`, not confirmed yet."""
    return unconfirmed_last_outcomes(CancelSession.objects.filter(report.scope(), decision__kind__in=SAVED_KINDS,
                                                                  decision__created_at__gt=since))


def watch_list(report: ReportFilter, *, now: datetime | None = None, rows: bool = True) -> dict[str, Any]:
    """Deflected customers (their last outcome) still inside their watch window, newest first.

    The window is the last SAVE_WATCH_DAYS whatever the report's dates: these are the saves still to
    prove themselves. The report's App, flow, audience and variant apply. `count` and `at_stake` (what
    they would pay over the window, per currency) come from the rollups for the days wholly inside the
    window, and from the sessions themselves for the days it cuts through; the rows are the latest ones.
    """
    now = now or timezone.now()
    since = now - timedelta(days=settings.SAVE_WATCH_DAYS)
    boundary = days.day_of(since)
    window = ReportFilter(first_day=boundary + timedelta(days=1), last_day=days.day_of(now) + timedelta(days=1),
                          app_id=report.app_id, flow_id=report.flow_id, audience_id=report.audience_id,
                          variant_id=report.variant_id, include_test=report.include_test,
                          app_ids=report.app_ids)
    rollups = window.rollups(DailyStat)
    totals = rollups.aggregate(deflected=Sum(F("deflected_nevermind") + F("deflected_offer")),
                               saved=Sum(F("saved_nevermind") + F("saved_offer")))
    count = (totals["deflected"] or 0) - (totals["saved"] or 0)
    at_stake = {row["currency"]: row["amount"] for row in money_by_currency(rollups, "value_deflected")}
    # Days the window's start cuts through: sessions decided up to a page's life after they started.
    open_days = math.ceil(settings.SESSION_TTL_SECONDS / 86400)
    start, end = days.bounds(boundary - timedelta(days=open_days), boundary)
    # Their decisions came while their pages were open: bounding those too keeps the read to the edge's days.
    # Counted by what values them (a few plans' prices and offers' terms): a few groups rather than a row
    # (and a valuation in Python) per session.
    edge = (_watched(report, since=since).filter(created_at__gte=start, created_at__lt=end,
                                                 decision__created_at__lt=end + timedelta(
                                                     seconds=settings.SESSION_TTL_SECONDS))
            .order_by().values("app__currency", "monthly_value", *(f"decision__offer__{name}" for name in value.TERMS))
            .annotate(sessions=Count("pk")))
    for row in edge:
        count += row["sessions"]
        kept = value.value_kept(row["monthly_value"], confirmed=False, **value.terms_of(row, "decision__offer__"))
        at_stake[row["app__currency"]] = at_stake.get(row["app__currency"], Decimal(0)) + kept * row["sessions"]
    # Only what the page shows: not the sessions' data, nor the App's secret (decrypted for each row).
    sessions = list(_watched(report, since=since).select_related("app", "decision")
                    .only("public_id", "email", "account_internal_id", "monthly_value", "app__app_id",
                          "app__currency", "decision__created_at", "decision__offer_code", "decision__kind")
                    .order_by("-decision__created_at")[:WATCH_LIST_ROWS]) if rows else []
    entries = []
    for session in sessions:
        decision = session.decision
        ends = decision.created_at + timedelta(days=settings.SAVE_WATCH_DAYS)
        entries.append({"decision": decision, "session": session, "ends": ends,
                        "days_left": max((ends - now).days, 0)})
    return {"count": count, "at_stake": value.money({c: a for c, a in at_stake.items() if a}),
            "rows": entries, "watch_days": settings.SAVE_WATCH_DAYS}


# --- freshness and export -------------------------------------------------------------------------

def last_refresh() -> RollupRun | None:
    return RollupRun.objects.order_by("-finished_at").first()


EXPORT_HEADER = ["session_id", "started_at", "opened_at", "app_id", "test", "flow", "audience", "variant", "email",
                 "account_internal_id", "plan", "plan_term", "monthly_value", "currency", "offers_shown", "decision",
                 "decided_at", "reason_code", "reason_label", "feedback", "offer_code", "discount_percent",
                 "value_kept"]
_EXPORT_COLUMNS = ("public_id", "created_at", "opened_at", "app__app_id", "is_test", "flow__name", "audience__name",
                   "variant__code", "email", "account_internal_id", "plan", "plan_term",
                   "monthly_value", "app__currency", "offers_shown", "decision__kind", "decision__created_at",
                   "decision__reason_code", "decision__reason_label", "decision__feedback", "decision__offer_code",
                   *(f"decision__offer__{name}" for name in value.TERMS))
EXPORT_CHUNK = 5000


def sessions_for_export(report: ReportFilter) -> Iterator[list]:
    """The export's rows for the csv-module path (SQLite's; on PostgreSQL the database writes the same lines
    itself, reports/export.py), in EXPORT_HEADER's order, in the order sessions were created (their id, which
    PostgreSQL reads in index order without sorting the range first): a server-side cursor (iterator)
    inside a transaction, so it is declared WITHOUT HOLD and hands rows over as it finds them (outside
    one, a cursor WITH HOLD is filled completely first); plain tuples, no model instances. So a large range
    starts at once and streams tens of thousands of rows a second. `value_kept` is what the customer pays
    over the watch window net of the offer they took, for deflected sessions (reports.value)."""
    rows = (CancelSession.objects.filter(report.sessions()).order_by("id")
            # The plan as text (->>): no JSON to decode per row.
            .annotate(plan=KT("data__account__plan"), plan_term=KT("data__account__plan_term"))
            .values_list(*_EXPORT_COLUMNS))
    terms = len(value.TERMS)
    with transaction.atomic():
        for row in rows.iterator(chunk_size=EXPORT_CHUNK):
            (public_id, created, opened, app_id, is_test, flow, audience, variant, email, account, plan, term,
             monthly, currency, shown, kind, decided, reason_code, reason_label, feedback, offer_code) = row[:-terms]
            offer_kind, discount_percent, *_ = row[-terms:]
            kept = (value.value_kept(monthly, confirmed=False, **dict(zip(
                ("offer_kind", *value.TERMS[1:]), row[-terms:], strict=True)))
                if kind in SAVED_KINDS and monthly is not None else None)
            yield [public_id, created.isoformat(), opened.isoformat() if opened else "", app_id,
                   "yes" if is_test else "", flow, audience or "", variant or "", email, account,
                   plan or "", term or "",
                   monthly, currency, " ".join(shown or []), kind or "", decided.isoformat() if decided else "",
                   reason_code or "", reason_label or "", feedback or "", offer_code or "",
                   discount_percent if offer_kind == "discount" and discount_percent is not None else "",
                   kept if kept is not None else ""]
