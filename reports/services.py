"""Rollups: the report pages read small daily tables instead of a million sessions.

A refresh rewrites whole days (the team's days, reports.days, by the day each session started) from
sessions, decisions and events, in one transaction: delete the days' rows, aggregate in the database,
insert. It is derived data, so running it twice, or over any range, is always safe. Beat refreshes the
days that can still change: those of sessions still open (decisions arrive up to SESSION_TTL_SECONDS
after a session starts) and the days whose saves are being confirmed now (SAVE_WATCH_DAYS ago).
`manage.py reports_refresh` rebuilds any range.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import TruncDate
from django.utils import timezone

from flows.models import CancelSession, Decision, Event
from flows.services import SAVE_CONFIRM_LOOKBACK_DAYS
from offers.models import Offer

from . import days
from .models import DailyOfferStat, DailyReasonStat, DailyStat, RollupRun

SAVED_KINDS = (Decision.Kind.NEVERMIND, Decision.Kind.ACCEPT)
CENT = Decimal("0.01")
DIMENSIONS = ("app_id", "flow_id", "audience_id", "variant_id", "is_test")


def value_kept(monthly_value: Decimal | None, *, offer_kind: str | None, discount_percent: int | None) -> Decimal:
    """What a save keeps each month: the plan's monthly value, less the discount it took to keep it."""
    if monthly_value is None:
        return Decimal(0)
    if offer_kind == Offer.Kind.DISCOUNT and discount_percent:
        return monthly_value * (Decimal(100) - Decimal(discount_percent)) / Decimal(100)
    return monthly_value


def _opened() -> QuerySet[CancelSession]:
    """The sessions reports count: those whose page was opened. A page never opened was no visit."""
    return CancelSession.objects.filter(opened_at__isnull=False)


def _session_key(row: dict, prefix: str = "") -> tuple:
    return (row["day"], *(row[f"{prefix}{name}"] for name in DIMENSIONS))


def _dims(key: tuple) -> dict:
    return {"day": key[0], **dict(zip(DIMENSIONS, key[1:], strict=True))}


def _session_stats(start: datetime, end: datetime) -> list[DailyStat]:
    in_range = _opened().filter(created_at__gte=start, created_at__lt=end).order_by()
    rows = (in_range.annotate(day=TruncDate("created_at", tzinfo=days.zone()))
            .values("day", *DIMENSIONS, "decision__kind", "decision__offer__kind",
                    "decision__offer__discount_percent")
            .annotate(n=Count("id"), reasons=Count("id", filter=Q(decision__reason_code__gt="")),
                      shown=Count("id", filter=Q(offers_shown_at__isnull=False)), value=Sum("monthly_value")))
    stats: dict[tuple, DailyStat] = {}
    for row in rows:
        key = _session_key(row)
        stat = stats.setdefault(key, DailyStat(**_dims(key), revenue_saved=Decimal(0)))
        kind, n = row["decision__kind"], row["n"]
        stat.sessions += n
        stat.reason_given += row["reasons"]
        stat.offers_shown += row["shown"]
        if kind is None:
            continue
        stat.decided += n
        if kind == Decision.Kind.NEVERMIND:
            stat.nevermind += n
        elif kind == Decision.Kind.ACCEPT:
            stat.accepted += n
        else:
            stat.canceled += n
        if kind in SAVED_KINDS:
            stat.revenue_saved += value_kept(row["value"], offer_kind=row["decision__offer__kind"],
                                             discount_percent=row["decision__offer__discount_percent"])
    confirmed = (Event.objects.filter(type=Event.Type.SAVE_CONFIRMED, session__created_at__gte=start,
                                      session__created_at__lt=end).order_by()
                 .annotate(day=TruncDate("session__created_at", tzinfo=days.zone()))
                 .values("day", *(f"session__{name}" for name in DIMENSIONS)).annotate(n=Count("id")))
    for row in confirmed:
        key = _session_key(row, "session__")
        if key in stats:
            stats[key].confirmed += row["n"]
    for stat in stats.values():
        stat.revenue_saved = stat.revenue_saved.quantize(CENT)
    return list(stats.values())


def _reason_stats(start: datetime, end: datetime) -> list[DailyReasonStat]:
    rows = (Decision.objects.filter(session__created_at__gte=start, session__created_at__lt=end)
            .exclude(reason_code="").order_by()
            .annotate(day=TruncDate("session__created_at", tzinfo=days.zone()))
            .values("day", *(f"session__{name}" for name in DIMENSIONS), "reason_code", "kind")
            .annotate(n=Count("id"), label=Max("reason_label")))
    stats: dict[tuple, DailyReasonStat] = {}
    for row in rows:
        key = (*_session_key(row, "session__"), row["reason_code"])
        stat = stats.setdefault(key, DailyReasonStat(**_dims(key[:-1]), reason_code=key[-1], reason_label=""))
        stat.reason_label = max(stat.reason_label, row["label"] or "")
        stat.decided += row["n"]
        if row["kind"] in SAVED_KINDS:
            stat.saved += row["n"]
        if row["kind"] == Decision.Kind.ACCEPT:
            stat.accepted += row["n"]
        elif row["kind"] == Decision.Kind.CANCEL:
            stat.canceled += row["n"]
    return list(stats.values())


def _offer_stats(start: datetime, end: datetime) -> list[DailyOfferStat]:
    stats: dict[tuple, DailyOfferStat] = {}

    def stat_for(key: tuple, code: str) -> DailyOfferStat:
        return stats.setdefault((*key, code), DailyOfferStat(**_dims(key), offer_code=code, revenue_saved=Decimal(0)))

    shown = (_opened().filter(created_at__gte=start, created_at__lt=end, offers_shown_at__isnull=False)
             .order_by().annotate(day=TruncDate("created_at", tzinfo=days.zone()))
             .values_list("day", *DIMENSIONS, "offers_shown"))
    for row in shown.iterator(chunk_size=5000):
        for code in set(row[-1] or ()):
            stat_for(row[:-1], code).shown += 1
    accepted = (Decision.objects.filter(kind=Decision.Kind.ACCEPT, session__created_at__gte=start,
                                        session__created_at__lt=end).order_by()
                .annotate(day=TruncDate("session__created_at", tzinfo=days.zone()))
                .values("day", *(f"session__{name}" for name in DIMENSIONS), "offer_code", "offer__kind",
                        "offer__discount_percent")
                .annotate(n=Count("id"), value=Sum("session__monthly_value")))
    for row in accepted:
        stat = stat_for(_session_key(row, "session__"), row["offer_code"])
        stat.accepted += row["n"]
        stat.revenue_saved += value_kept(row["value"], offer_kind=row["offer__kind"],
                                         discount_percent=row["offer__discount_percent"])
    confirmed = (Event.objects.filter(type=Event.Type.SAVE_CONFIRMED, session__decision__kind=Decision.Kind.ACCEPT,
                                      session__created_at__gte=start, session__created_at__lt=end).order_by()
                 .annotate(day=TruncDate("session__created_at", tzinfo=days.zone()))
                 .values("day", *(f"session__{name}" for name in DIMENSIONS), "session__decision__offer_code")
                 .annotate(n=Count("id")))
    for row in confirmed:
        stat_for(_session_key(row, "session__"), row["session__decision__offer_code"]).confirmed += row["n"]
    for stat in stats.values():
        stat.revenue_saved = stat.revenue_saved.quantize(CENT)
    return list(stats.values())


# Two refreshes of the same days (beat, and staff pressing "Refresh now") must not both delete the old rows
# and then both insert: each would miss the other's inserts and the days would count twice.
ROLLUP_LOCK = 0x5245504F  # any constant of our own for pg_advisory_xact_lock


def _lock_rollups() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUP_LOCK])
    # SQLite runs one writing transaction at a time already.


def rollups_refresh(*, first_day: date, last_day: date) -> RollupRun:
    """Rewrite the rollups of every day from first_day to last_day (inclusive)."""
    began = time.monotonic()
    start, end = days.bounds(first_day, last_day)
    sessions, reasons, offers = _session_stats(start, end), _reason_stats(start, end), _offer_stats(start, end)
    with transaction.atomic():
        _lock_rollups()
        DailyStat.objects.filter(day__gte=first_day, day__lte=last_day).delete()
        DailyStat.objects.bulk_create(sessions, batch_size=2000)
        DailyReasonStat.objects.filter(day__gte=first_day, day__lte=last_day).delete()
        DailyReasonStat.objects.bulk_create(reasons, batch_size=2000)
        DailyOfferStat.objects.filter(day__gte=first_day, day__lte=last_day).delete()
        DailyOfferStat.objects.bulk_create(offers, batch_size=2000)
        return RollupRun.objects.create(first_day=first_day, last_day=last_day, finished_at=timezone.now(),
                                        seconds=round(time.monotonic() - began, 3))


def days_that_can_change(*, today: date) -> list[tuple[date, date]]:
    """The days of sessions still open (today and yesterday with the default 24-hour pages), and the
    days whose saves beat is confirming."""
    watch = settings.SAVE_WATCH_DAYS
    confirming = (today - timedelta(days=watch + SAVE_CONFIRM_LOOKBACK_DAYS + 1),
                  today - timedelta(days=max(watch - 1, 0)))
    # A session can be decided until it expires: its day changes for that long.
    open_days = math.ceil(settings.SESSION_TTL_SECONDS / 86400)
    recent = (today - timedelta(days=open_days), today)
    return _merge([confirming, recent])


def _merge(ranges: Iterable[tuple[date, date]]) -> list[tuple[date, date]]:
    merged: list[tuple[date, date]] = []
    for first, last in sorted(ranges):
        if merged and first <= merged[-1][1] + timedelta(days=1):
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def rollups_refresh_recent(*, now: datetime | None = None) -> int:
    """Refresh the days that can still change; return how many days were rewritten."""
    count = 0
    for first, last in days_that_can_change(today=days.today(now)):
        rollups_refresh(first_day=first, last_day=last)
        count += (last - first).days + 1
    return count


def rollups_refresh_all() -> int:
    """Rebuild every day that has sessions; return how many days that was."""
    span = CancelSession.objects.order_by().aggregate(first=Min("created_at"), last=Max("created_at"))
    if span["first"] is None:
        return 0
    first, last = days.day_of(span["first"]), days.day_of(span["last"])
    rollups_refresh(first_day=first, last_day=last)
    return (last - first).days + 1
