"""Daily rollups: the numbers behind the report pages, one row per day and combination of App, flow,
audience and variant (and reason, or offer). Only sessions whose page was opened count
(CancelSession.opened_at). A day is the day the session was created in the team's time zone
(reports.days), so a session's decision and its save confirmation count on the day it began.

Rollups are derived data: services.rollups_refresh rewrites whole days from sessions, decisions and
events, so rebuilding any range is always safe.
"""

from __future__ import annotations

from django.db import models

from flows.models import App, Audience, Flow, Variant


class Dimensions(models.Model):
    day = models.DateField()
    app = models.ForeignKey(App, on_delete=models.CASCADE, related_name="+")
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="+")
    audience = models.ForeignKey(Audience, null=True, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(Variant, null=True, on_delete=models.CASCADE, related_name="+")
    # Sessions of an App in test mode: left out of the numbers unless a report asks for them.
    is_test = models.BooleanField(default=False)

    class Meta:
        abstract = True


class DailyStat(Dimensions):
    """Sessions (each visit) and accounts (each customer once, by their last outcome: a later decision
    of the same account, in any later session, replaces an earlier one) of a day."""

    # Sessions: every opened visit.
    sessions = models.PositiveIntegerField(default=0)
    reason_given = models.PositiveIntegerField(default=0)
    offers_shown = models.PositiveIntegerField(default=0)
    decided = models.PositiveIntegerField(default=0)
    nevermind = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    canceled = models.PositiveIntegerField(default=0)
    # Accounts, by their last outcome, counted on the day of the session that decided it.
    deflected_nevermind = models.PositiveIntegerField(default=0)
    deflected_offer = models.PositiveIntegerField(default=0)
    canceled_accounts = models.PositiveIntegerField(default=0)
    # Deflected accounts still paying after the watch window (their save.confirmed event).
    saved_nevermind = models.PositiveIntegerField(default=0)
    saved_offer = models.PositiveIntegerField(default=0)
    # In the App's currency (reports.value): what saved accounts pay over the window net of their offer,
    # and what the deflected accounts not confirmed (yet) would (contact-support requests: nothing).
    revenue_kept = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    value_deflected = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    # Of revenue_kept, what the billing system reports the saves actually paid (billing/payments.py), and
    # how many saves that covers; the rest of revenue_kept is estimated from the plan's value.
    revenue_invoiced = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    saved_invoiced = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "app"], name="dailystat_day_app")]

    def __str__(self) -> str:
        return f"{self.day} flow {self.flow_id}: {self.sessions} sessions"

    @property
    def deflected(self) -> int:
        return self.deflected_nevermind + self.deflected_offer

    @property
    def saved(self) -> int:
        return self.saved_nevermind + self.saved_offer


class DailyReasonStat(Dimensions):
    reason_code = models.CharField(max_length=64)
    reason_label = models.CharField(max_length=200)
    decided = models.PositiveIntegerField(default=0)
    saved = models.PositiveIntegerField(default=0)
    accepted = models.PositiveIntegerField(default=0)
    canceled = models.PositiveIntegerField(default=0)

    class Meta:
        indexes = [models.Index(fields=["day", "app"], name="dailyreason_day_app")]

    def __str__(self) -> str:
        return f"{self.day} {self.reason_code}: {self.decided} decided"


class DailyOfferStat(Dimensions):
    offer_code = models.CharField(max_length=64)
    shown = models.PositiveIntegerField(default=0)  # sessions that saw it
    accepted = models.PositiveIntegerField(default=0)  # sessions that took it
    deflected = models.PositiveIntegerField(default=0)  # accounts whose last outcome is taking it
    saved = models.PositiveIntegerField(default=0)  # of those, still paying after the watch window
    revenue_kept = models.DecimalField(max_digits=16, decimal_places=2, default=0)
    revenue_invoiced = models.DecimalField(max_digits=16, decimal_places=2, default=0)  # as DailyStat's

    class Meta:
        indexes = [models.Index(fields=["day", "app"], name="dailyoffer_day_app")]

    def __str__(self) -> str:
        return f"{self.day} {self.offer_code}: {self.accepted} of {self.shown}"


class RollupRun(models.Model):
    """One refresh of the rollups, so the pages can say how fresh their numbers are."""

    first_day = models.DateField()
    last_day = models.DateField()
    finished_at = models.DateTimeField(db_index=True)
    seconds = models.FloatField()

    class Meta:
        ordering = ["-finished_at"]

    def __str__(self) -> str:
        return f"{self.first_day}..{self.last_day} at {self.finished_at:%Y-%m-%d %H:%M}"
