"""The experiment report: each arm's customers, deflect and save rates against the control with Newcombe
intervals, the exact chance to beat control, every arm shown however extreme, and a winner called only
by the rule it shows."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest
from django.test import Client
from django.urls import reverse
from statsmodels.stats.proportion import confint_proportions_2indep

from flows.models import Flow, Variant
from reports import services
from reports.models import DailyStat
from reports.tests.test_report_pages import row

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)
MAY = {"start": "2026-05-01", "end": "2026-05-31"}


@pytest.fixture
def experiment(demo_app, make_session) -> dict[str, Variant]:  # noqa: ANN001
    flow = Flow.objects.get(app=demo_app)
    variants = {
        "control": Variant.objects.create(flow=flow, code="control", name="No offers", weight=10, is_control=True),
        "discount": Variant.objects.create(flow=flow, code="discount", weight=80),
        "new-copy": Variant.objects.create(flow=flow, code="new-copy", weight=10),
    }
    # Control: 40 of 100 customers stayed (40%). Discount: 55 of 100 (55%). New copy: 4 of 12. Those who
    # stayed are still paying after the window.
    for code, saved, decided in (("control", 40, 100), ("discount", 55, 100), ("new-copy", 4, 12)):
        for n in range(decided):
            make_session(at=DAY, variant=variants[code], decision="nevermind" if n < saved else "cancel",
                         confirmed=n < saved)
    make_session(at=DAY, variant=variants["discount"])  # one that left without deciding
    # A customer of the discount arm who stayed twice is one customer.
    make_session(at=DAY, variant=variants["discount"], decision="nevermind", account="acct_twice")
    make_session(at=DAY, variant=variants["discount"], decision="cancel", account="acct_twice")
    services.rollups_refresh(first_day=DAY.date(), last_day=DAY.date())
    return variants


def points(value: float) -> str:
    return f"{value * 100:+.1f} pts"


def test_each_variant_shows_its_lift_over_control_with_newcombes_interval(admin_client: Client, experiment):
    html = admin_client.get(reverse("reports:experiments"), MAY).content.decode()
    control = row(html, "variant", "control")
    assert control[0] == "No offers control (control)"
    assert control[2].startswith("100 ") and control[3:5] == ["40", "40.0%"]
    discount = row(html, "variant", "discount")
    # 101 customers decided: the one who came back counts once, by their last outcome (a cancel).
    assert discount[2].startswith("101 ") and discount[3:5] == ["55", "54.5%"]
    low, high = confint_proportions_2indep(55, 101, 40, 100, method="newcomb", compare="diff")
    assert discount[5].startswith(f"{points(55 / 101 - 0.4)} ({points(low)} to {points(high)})")
    assert discount[7:9] == ["55 / 101", "54.5%"]  # the windows of May have closed: the save rate is shown
    # Split: 101 + 100 + 12 customers against weights 80/10/10.
    assert "47.4% of customers; weight 80.0%" in discount[2]


def test_an_arm_is_shown_however_small_or_extreme(admin_client: Client, demo_app) -> None:  # noqa: ANN001
    flow = Flow.objects.get(app=demo_app)
    control = Variant.objects.create(flow=flow, code="control", is_control=True)
    bad = Variant.objects.create(flow=flow, code="bad")
    day = date(2026, 5, 4)
    for variant, deflected in ((control, 200), (bad, 0)):
        DailyStat.objects.create(day=day, app=demo_app, flow=flow, variant=variant, sessions=1000,
                                 deflected_nevermind=deflected, canceled_accounts=1000 - deflected,
                                 saved_nevermind=deflected)
    html = admin_client.get(reverse("reports:experiments"), MAY).content.decode()
    cells = row(html, "variant", "bad")
    low, high = confint_proportions_2indep(0, 1000, 200, 1000, method="newcomb", compare="diff")
    assert high < 0
    assert cells[3:5] == ["0", "0.0%"]
    assert cells[5].startswith(f"-20.0 pts ({points(low)} to {points(high)})")
    assert cells[6] == "&lt;0.1%"  # as HTML escapes it
    assert "not enough data" not in html


def test_no_winner_before_the_sample_size_set_in_advance(admin_client: Client, experiment):
    html = admin_client.get(reverse("reports:experiments"), MAY).content.decode()
    assert 'data-winner=""' in html
    # 3 arms: two comparisons; 5 points at 80% power, 5% Holm-corrected: 1,902 per arm; the smallest arm has 12.
    assert "not yet: needs about 1,890 more decisions per arm (with closed watch windows) to detect 5 points" in html
    assert "Each arm needs 1,902 decisions" in html


def test_a_winner_is_called_when_the_rule_is_met_and_the_rule_is_shown(admin_client: Client, demo_app) -> None:  # noqa: ANN001
    flow = Flow.objects.get(app=demo_app)
    control = Variant.objects.create(flow=flow, code="control", is_control=True)
    better = Variant.objects.create(flow=flow, code="better")
    for variant, saved in ((control, 600), (better, 800)):
        DailyStat.objects.create(day=date(2026, 5, 4), app=demo_app, flow=flow, variant=variant, sessions=2000,
                                 deflected_offer=saved, canceled_accounts=2000 - saved, saved_offer=saved)
    html = admin_client.get(reverse("reports:experiments"), MAY).content.decode()
    assert 'data-winner="better"' in html
    assert "winner: better (decided on the data up to 2026-05-04)" in html
    assert "Holm-adjusted p &lt; 0.05 with a positive lift" in html
    assert "data-srm" not in html


def test_a_split_far_from_the_weights_warns_of_a_sample_ratio_mismatch(admin_client: Client, demo_app) -> None:  # noqa: ANN001
    flow = Flow.objects.get(app=demo_app)
    control = Variant.objects.create(flow=flow, code="control", is_control=True, weight=1)
    other = Variant.objects.create(flow=flow, code="other", weight=1)
    for variant, customers in ((control, 1000), (other, 1300)):
        DailyStat.objects.create(day=date(2026, 5, 4), app=demo_app, flow=flow, variant=variant, sessions=customers,
                                 deflected_offer=customers // 2, canceled_accounts=customers - customers // 2)
    html = admin_client.get(reverse("reports:experiments"), MAY).content.decode()
    assert re.search(r"data-srm>The split of customers differs from the weights", html)


def test_the_experiment_report_filters_by_variant(admin_client: Client, experiment):
    query = {**MAY, "variant": experiment["discount"].pk}
    html = admin_client.get(reverse("reports:experiments"), query).content.decode()
    assert 'data-variant="discount"' in html and 'data-variant="control"' not in html
    assert "no control in this period" in html


@pytest.mark.parametrize(("probability", "shown"), [(0.9999999, ">99.9%"), (0.984, "98.4%"), (1e-9, "<0.1%"),
                                                    (None, "—")])
def test_the_chance_to_beat_control_is_never_shown_as_a_certainty(probability, shown):
    from reports.templatetags.reports import chance

    assert chance(probability) == shown
