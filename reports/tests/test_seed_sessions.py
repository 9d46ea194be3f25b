"""seed_sessions makes realistic data for the reports, quickly and in bulk."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db.models import Q

from flows.models import App, CancelSession, Decision, Event
from reports.models import DailyStat

pytestmark = pytest.mark.django_db


def seed(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("seed_sessions", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_seeding_makes_sessions_decisions_events_and_fresh_rollups() -> None:
    out, err = seed("600", "--days", "60", "--seed", "3")
    assert "Made 600 sessions for seed" in out and "100.0% 600/600 sessions" in err
    sessions = CancelSession.objects.filter(app__app_id="seed")
    assert sessions.count() == 600
    assert sessions.values("variant__code").distinct().count() >= 3        # the experiment's arms, and the
    assert sessions.filter(audience__isnull=False).exists()                # audiences' flows get traffic
    kinds = set(Decision.objects.values_list("kind", flat=True))
    assert kinds == {"nevermind", "accept", "cancel"}
    assert not Decision.objects.filter(session__variant__is_control=True, kind="accept").exists()
    assert Event.objects.filter(type="save.confirmed").exists()
    assert Event.objects.count() >= Decision.objects.count()
    # Variants come from the product's own assignment: each account's hash, by weight, the same arm on return.
    from flows.experiments import bucket, pick
    from flows.models import Variant

    for session in sessions.filter(variant__isnull=False).select_related("variant")[:200]:
        arms = list(Variant.objects.filter(flow_id=session.flow_id, is_active=True).order_by("id"))
        assert pick(arms, bucket(flow_id=session.flow_id, key=session.account_key)) == session.variant
    assert sessions.values("account_key").distinct().count() < 600  # some customers came back
    # Only the sessions whose page was opened count; the seed App is live, so all of them are counted.
    opened = sessions.filter(opened_at__isnull=False)
    assert 0 < opened.count() < 600 and not sessions.filter(opened_at__isnull=True, decision__isnull=False).exists()
    assert sum(DailyStat.objects.values_list("sessions", flat=True)) == opened.count()
    # Ids came from the sequences: the cancel flow's own inserts carry on after them.
    highest = sessions.order_by("-pk").first()
    later = CancelSession.objects.create(app=highest.app, flow=highest.flow, data={}, expires_at=highest.expires_at)
    assert later.pk > highest.pk


def test_seeding_an_existing_app_uses_its_flows(demo_app: App) -> None:
    seed("50", "--app", "demo", "--days", "3", "--no-refresh")
    assert CancelSession.objects.filter(app=demo_app, flow__name="Default").count() == 50
    assert not DailyStat.objects.exists()


def test_seeding_refuses_an_unknown_app_and_bad_counts() -> None:
    with pytest.raises(CommandError, match="No such app: nope"):
        seed("5", "--app", "nope")
    with pytest.raises(CommandError, match="at least 1"):
        seed("0")


def test_reports_refresh_rebuilds_the_rollups_it_is_asked_for() -> None:
    seed("120", "--days", "20", "--no-refresh", "--seed", "5")
    out = io.StringIO()
    call_command("reports_refresh", "--days", "3", stdout=out)
    assert out.getvalue() == "Rebuilt the report rollups of 3 days.\n"
    recent = sum(DailyStat.objects.values_list("sessions", flat=True))
    assert 0 < recent < 120
    call_command("reports_refresh", "--all", stdout=io.StringIO())
    opened = CancelSession.objects.filter(opened_at__isnull=False).count()
    assert sum(DailyStat.objects.values_list("sessions", flat=True)) == opened


def test_seeded_sessions_carry_the_pages_steps() -> None:
    """Each opened session has its page's view; each decided one its deciding click, after the opening: the
    effort figures read a realistic steps table, as a served database has."""
    from datetime import timedelta

    from django.utils import timezone

    from evidence.models import Step
    from evidence.selectors import cancel_effort

    seed("400", "--days", "20", "--seed", "5")
    opened = CancelSession.objects.filter(opened_at__isnull=False)
    assert Step.objects.filter(kind="view", name="reasons").count() == opened.count()
    for decision in Decision.objects.select_related("session")[:100]:
        click = Step.objects.get(session_id=decision.session_id, kind="click", action=decision.kind)
        assert click.status == 303 and click.at >= decision.session.opened_at
    canceled = Decision.objects.filter(kind="cancel").count()
    now = timezone.now()
    effort = cancel_effort(Q(), since=now - timedelta(days=30), until=now + timedelta(days=2))
    assert effort["total"] == canceled > 0 and effort["clicks"]["median"] >= 1
