"""`manage.py report_summary` and the admin's JSON download: the numbers, by DESIGN §8's names."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse

from flows.models import App, Flow, Variant
from reports import services
from reports.models import DailyStat

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def summary(*args: str) -> dict:
    out = io.StringIO()
    call_command("report_summary", *args, stdout=out)
    return json.loads(out.getvalue())


@pytest.fixture
def numbers(demo_app: App, make_session) -> None:  # noqa: ANN001
    # acct_a stayed, then canceled in a later session: one canceled account, not a save.
    make_session(at=DAY, value=49, decision="nevermind", account="acct_a")
    make_session(at=DAY + timedelta(days=2), value=49, decision="cancel", account="acct_a")
    # acct_b took 30% off for 3 months and still pays after the window: saved, keeps $35.00 of $50.
    make_session(at=DAY, value=50, decision="accept", offer="discount-30", reason="too-expensive",
                 shown=["discount-30"], confirmed=True, account="acct_b")
    make_session(at=DAY, value=20, decision="nevermind", account="acct_c")  # deflected, not confirmed
    make_session(at=DAY, opened=False)  # the account page loaded; the page was never opened
    make_session(at=DAY, decision="cancel", is_test=True)  # test mode
    flow = Flow.objects.get(app=demo_app)
    control = Variant.objects.create(flow=flow, code="control", is_control=True)
    bad = Variant.objects.create(flow=flow, code="bad")
    services.rollups_refresh(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31))
    # An experiment's arms as rollups: 0 of 1,000 against 200 of 1,000.
    for variant, deflected in ((control, 200), (bad, 0)):
        DailyStat.objects.create(day=date(2026, 3, 20), app=demo_app, flow=flow, variant=variant, sessions=1000,
                                 deflected_nevermind=deflected, canceled_accounts=1000 - deflected,
                                 saved_nevermind=deflected)


def test_report_summary_prints_every_figure_by_its_fixed_name(numbers) -> None:  # noqa: ANN001
    result = summary("demo", "--from", "2026-03-01", "--to", "2026-03-31")
    assert list(result) == ["sessions_opened", "deflected", "saved", "canceled", "save_rate", "revenue_kept",
                            "watch_list", "experiments"]
    # Sessions: 4 opened live ones (the two of acct_a, b, c) plus 2,000 in the experiment's rollups.
    assert result["sessions_opened"] == 4 + 2000
    assert (result["deflected"], result["saved"], result["canceled"]) == (2 + 200, 1 + 200, 1 + 1800)
    assert result["save_rate"] == pytest.approx(201 / 2003)
    # DESIGN §8's {currency, amount}, and how much of it was paid (read from billing) or estimated.
    assert result["revenue_kept"] == [{"currency": "USD", "amount": 35.0, "from_invoices": 0.0, "estimated": 35.0}]
    assert result["watch_list"] == {"count": 0, "at_stake": []}
    [experiment] = result["experiments"]
    assert (experiment["flow"], experiment["winner"]) == ("Default", None)
    control, bad = experiment["variants"]
    assert list(bad) == ["code", "is_control", "decisions", "deflected", "saved"]
    assert list(bad["deflected"]) == ["count", "rate", "lift", "interval", "p_beat_control"]
    assert (control["code"], control["is_control"], control["decisions"]) == ("control", True, 1000)
    assert control["deflected"] == {"count": 200, "rate": 0.2, "lift": None, "interval": None,
                                    "p_beat_control": None}
    assert (bad["code"], bad["decisions"], bad["deflected"]["count"], bad["deflected"]["rate"]) == ("bad", 1000, 0, 0.0)
    assert bad["deflected"]["lift"] == pytest.approx(-0.2)
    low, high = bad["saved"]["interval"]
    assert low < high < 0  # a fraction, and it excludes zero
    assert bad["saved"]["p_beat_control"] < 1e-9


def test_test_mode_sessions_are_counted_only_when_asked(numbers) -> None:  # noqa: ANN001
    with_test = summary("demo", "--from", "2026-03-01", "--to", "2026-03-31", "--include-test")
    assert with_test["sessions_opened"] == 5 + 2000 and with_test["canceled"] == 2 + 1800


def test_the_admin_offers_the_same_summary_as_a_download(admin_client: Client, demo_app: App, numbers) -> None:  # noqa: ANN001
    response = admin_client.get(reverse("reports:summary_json"),
                                {"app": demo_app.pk, "start": "2026-03-01", "end": "2026-03-31"})
    assert response.status_code == 200 and response["Content-Type"] == "application/json"
    assert response["Content-Disposition"] == 'attachment; filename="summary-2026-03-01-2026-03-31.json"'
    assert json.loads(response.content) == summary("demo", "--from", "2026-03-01", "--to", "2026-03-31")
    page = admin_client.get(reverse("reports:overview")).content.decode()
    assert "/admin/reports/summary.json" in page


def test_bad_summary_requests_are_refused_clearly(admin_client: Client, demo_app: App) -> None:
    with pytest.raises(CommandError, match="No such app: nope"):
        summary("nope")
    with pytest.raises(CommandError, match="Enter a valid date"):
        summary("demo", "--from", "March")
    with pytest.raises(CommandError, match="must not be after"):
        summary("demo", "--from", "2026-03-31", "--to", "2026-03-01")
    response = admin_client.get(reverse("reports:summary_json"), {"start": "2026-03-31", "end": "2026-03-01"})
    assert response.status_code == 400 and "must not be after" in response.content.decode()


def test_a_later_cancel_on_the_same_page_counts_as_canceled_not_saved(demo_app: App, make_session) -> None:  # noqa: ANN001
    from flows.later_cancel import decision_cancel_later
    from flows.models import CancelSession

    # The page is still open when the customer comes back to cancel: the session's day is a recent one.
    now = datetime.now(UTC)
    session = make_session(at=now - timedelta(hours=1), value=50, decision="accept", offer="discount-30",
                           reason="too-expensive", shown=["discount-30"], account="acct_d")
    decision_cancel_later(session=CancelSession.objects.get(pk=session.pk))
    services.rollups_refresh_recent(now=now)
    today = now.date().isoformat()
    result = summary("demo", "--from", (now - timedelta(days=2)).date().isoformat(), "--to", today)
    assert (result["deflected"], result["saved"], result["canceled"]) == (0, 0, 1)
