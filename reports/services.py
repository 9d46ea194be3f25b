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

from . import channels, days, value
from .models import DailyOfferStat, DailyReasonStat, DailyStat, RollupRun
from .outcomes import with_outcomes

SAVED_KINDS = (Decision.Kind.NEVERMIND, Decision.Kind.ACCEPT)
CENT = value.CENT
DIMENSIONS = ("app_id", "flow_id", "audience_id", "variant_id", "is_test")


def _opened() -> QuerySet[CancelSession]:
    """The sessions reports count: those whose page was opened. A page never opened was no visit."""
    return CancelSession.objects.filter(opened_at__isnull=False)


def _session_key(row: dict, prefix: str = "") -> tuple:
    return (row["day"], *(row[f"{prefix}{name}"] for name in DIMENSIONS))


def _dims(key: tuple) -> dict:
    return {"day": key[0], **dict(zip(DIMENSIONS, key[1:], strict=True))}


OFFER_TERMS = tuple(f"decision__offer__{name}" for name in value.TERMS)
SESSION_GROUPS = ("day", *DIMENSIONS, "decision__kind", *OFFER_TERMS, "superseded", "confirmed", "reactivated")
OFFER_GROUPS = ("day", *DIMENSIONS, "decision__offer_code", *OFFER_TERMS, "superseded", "confirmed")


def _paid_saves(start: datetime, end: datetime, groups: tuple[str, ...]) -> dict[tuple, tuple[Decimal, Decimal, int]]:
    """The saves of [start, end) valued at what they actually paid (the billing channel's paid invoices, in
    their App's currency), per group of `groups` as the day's aggregate forms them: (the sum of their
    monthly values, which the group's estimate must leave out; what they paid; how many)."""
    paid = channels.paid_after_saves(start=start, end=end)
    found: dict[tuple, tuple[Decimal, Decimal, int]] = {}
    ids = list(paid)
    for first in range(0, len(ids), 2000):
        rows = (with_outcomes(_opened().filter(pk__in=ids[first:first + 2000]).order_by())
                .annotate(day=TruncDate("created_at", tzinfo=days.zone()))
                .values("pk", "app__currency", "monthly_value", "decision__kind", *groups))
        for row in rows:
            if not row["confirmed"] or row["superseded"] or row["decision__kind"] not in SAVED_KINDS:
                continue
            amount = paid[row["pk"]].get(row["app__currency"])
            if amount is None:  # paid in another currency than the App's: the estimate stays
                continue
            key = tuple(row[name] for name in groups)
            monthly, total, count = found.get(key, (Decimal(0), Decimal(0), 0))
            found[key] = (monthly + (row["monthly_value"] or 0), total + amount, count + 1)
    return found


def _kept(row: dict, groups: tuple[str, ...], paid: dict[tuple, tuple[Decimal, Decimal, int]],
          terms: dict) -> tuple[Decimal, Decimal, int]:
    """A confirmed group's revenue kept: the estimate of its saves billing did not read, plus what the
    others paid; and of that, what was paid and by how many saves."""
    monthly, total, count = paid.get(tuple(row[name] for name in groups), (Decimal(0), Decimal(0), 0))
    estimated = row["value"] if not count else (row["value"] or Decimal(0)) - monthly
    return value.value_kept(estimated, **terms) + total, total, count


def _session_stats(start: datetime, end: datetime) -> list[DailyStat]:
    in_range = with_outcomes(_opened().filter(created_at__gte=start, created_at__lt=end).order_by())
    paid = _paid_saves(start, end, SESSION_GROUPS)
    rows = (in_range.annotate(day=TruncDate("created_at", tzinfo=days.zone()))
            .values(*SESSION_GROUPS)
            .annotate(n=Count("id"), reasons=Count("id", filter=Q(decision__reason_code__gt="")),
                      shown=Count("id", filter=Q(offers_shown_at__isnull=False)), value=Sum("monthly_value")))
    stats: dict[tuple, DailyStat] = {}
    for row in rows:
        key = _session_key(row)
        stat = stats.setdefault(key, DailyStat(**_dims(key), revenue_kept=Decimal(0), value_deflected=Decimal(0),
                                               revenue_invoiced=Decimal(0)))
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
        if row["superseded"]:
            continue  # not the account's last outcome
        if kind == Decision.Kind.CANCEL and row["reactivated"]:
            # Came back through the receipt's link and kept the subscription: a win-back, saved by their own
            # click (billing, where connected, removed the scheduled cancel).
            stat.deflected_nevermind += n
            stat.saved_nevermind += n
            stat.revenue_kept += value.value_kept(row["value"], **value.terms_of(row, "decision__offer__"))
            continue
        if kind == Decision.Kind.CANCEL:
            stat.canceled_accounts += n
            continue
        offer = kind == Decision.Kind.ACCEPT
        terms = value.terms_of(row, "decision__offer__")
        if offer:
            stat.deflected_offer += n
        else:
            stat.deflected_nevermind += n
        if row["confirmed"]:
            if offer:
                stat.saved_offer += n
            else:
                stat.saved_nevermind += n
            kept, invoiced, count = _kept(row, SESSION_GROUPS, paid, terms)
            stat.revenue_kept += kept
            stat.revenue_invoiced += invoiced
            stat.saved_invoiced += count
        else:  # still to prove itself: at stake
            stat.value_deflected += value.value_kept(row["value"], confirmed=False, **terms)
    return list(stats.values())


def _reason_stats(start: datetime, end: datetime) -> list[DailyReasonStat]:
    # The decision in force only: a save superseded by a later Cancel counts as that cancel.
    rows = (Decision.objects.filter(session__created_at__gte=start, session__created_at__lt=end,
                                    session__opened_at__isnull=False, in_force_for__isnull=False)
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
        return stats.setdefault((*key, code), DailyOfferStat(**_dims(key), offer_code=code, revenue_kept=Decimal(0),
                                                             revenue_invoiced=Decimal(0)))

    shown = (_opened().filter(created_at__gte=start, created_at__lt=end, offers_shown_at__isnull=False)
             .order_by().annotate(day=TruncDate("created_at", tzinfo=days.zone()))
             .values_list("day", *DIMENSIONS, "offers_shown"))
    for row in shown.iterator(chunk_size=5000):
        for code in set(row[-1] or ()):
            stat_for(row[:-1], code).shown += 1
    accepted = (with_outcomes(_opened().filter(created_at__gte=start, created_at__lt=end,
                                           decision__kind=Decision.Kind.ACCEPT).order_by())
                .annotate(day=TruncDate("created_at", tzinfo=days.zone()))
                .values(*OFFER_GROUPS)
                .annotate(n=Count("id"), value=Sum("monthly_value")))
    paid = _paid_saves(start, end, OFFER_GROUPS)
    for row in accepted:
        stat = stat_for(_session_key(row), row["decision__offer_code"])
        stat.accepted += row["n"]
        if row["superseded"]:
            continue
        stat.deflected += row["n"]
        if row["confirmed"]:
            stat.saved += row["n"]
            kept, invoiced, _count = _kept(row, OFFER_GROUPS, paid, value.terms_of(row, "decision__offer__"))
            stat.revenue_kept += kept
            stat.revenue_invoiced += invoiced
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


def days_superseded_since(since: datetime) -> set[date]:
    """The days of earlier decided sessions of the accounts decided since `since`: their last outcome
    moved to a later session, so those days' account counts change. One bounded read of recent decisions,
    then an indexed look-up per App (session_app_key_created)."""
    recent = (CancelSession.objects.filter(status=CancelSession.Status.DECIDED, decision__created_at__gte=since)
              .exclude(account_key="").order_by().values_list("app_id", "account_key", "created_at"))
    first_seen: dict[tuple[int, str], datetime] = {}
    for app_id, key, created in recent.iterator(chunk_size=5000):
        first_seen[(app_id, key)] = min(created, first_seen.get((app_id, key), created))
    by_app: dict[int, list[str]] = {}
    for app_id, key in first_seen:
        by_app.setdefault(app_id, []).append(key)
    found: set[date] = set()
    for app_id, keys in by_app.items():
        for chunk in range(0, len(keys), 1000):
            earlier = (CancelSession.objects.filter(app_id=app_id, account_key__in=keys[chunk:chunk + 1000],
                                                    status=CancelSession.Status.DECIDED, created_at__lt=since)
                       .order_by().values_list("account_key", "created_at"))
            found.update(days.day_of(created) for key, created in earlier if created < first_seen[(app_id, key)])
    return found


def days_reactivated_since(since: datetime) -> set[date]:
    """The days of sessions whose customer came back since `since` (session.reactivated): their account
    moved from canceled to saved, so those days' counts change."""
    created = (CancelSession.objects.filter(events__type=Event.Type.SESSION_REACTIVATED, events__created_at__gte=since)
               .order_by().values_list("created_at", flat=True))
    return {days.day_of(moment) for moment in created.iterator(chunk_size=5000)}


def rollups_refresh_recent(*, now: datetime | None = None) -> int:
    """Refresh the days that can still change, and the earlier days whose accounts decided again since;
    return how many days were rewritten."""
    now = now or timezone.now()
    ranges = days_that_can_change(today=days.today(now))
    # Decisions since the start of the earliest refreshed recent day (beat runs every few minutes).
    since = days.bounds(ranges[-1][0], ranges[-1][0])[0]
    ranges = _merge([*ranges, *((day, day) for day in days_superseded_since(since) | days_reactivated_since(since))])
    count = 0
    for first, last in ranges:
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
