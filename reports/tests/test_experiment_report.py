"""The experiment report: each variant's save rate, and its lift over the control with its interval."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from django.test import Client
from django.urls import reverse

from flows.models import Flow, Variant
from reports import services
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
    # Control: 40 saved of 100 decided (40%). Discount: 55 of 100 (55%). New copy: 4 of 12.
    for code, saved, decided in (("control", 40, 100), ("discount", 55, 100), ("new-copy", 4, 12)):
        for n in range(decided):
            make_session(at=DAY, variant=variants[code], decision="nevermind" if n < saved else "cancel")
    make_session(at=DAY, variant=variants["discount"])  # one that left without deciding
    services.rollups_refresh(first_day=DAY.date(), last_day=DAY.date())
    return variants


def test_each_variant_shows_its_lift_over_control_with_a_95_percent_interval(admin_client: Client, experiment):
    html = admin_client.get(reverse("reports:experiments"), MAY).content.decode()
    control = row(html, "variant", "control")
    assert control[:6] == ["No offers control (control)", "10", "100", "100", "40", "40.0%"]
    # By hand: lift 0.55 - 0.40 = +15 points; SE sqrt(.55·.45/100 + .40·.60/100) = 0.069821, so the interval
    # is 0.15 ± 1.96·0.069821 = (+1.3, +28.7) points; relative lift 0.15 / 0.40 = +37.5%.
    # Chance to beat: Beta(56, 46) against Beta(41, 61): Φ(0.147059 / 0.068832) = Φ(2.1365) = 98.4%.
    discount = row(html, "variant", "discount")
    assert discount[:6] == ["discount discount", "80", "101", "100", "55", "55.0%"]
    assert discount[6] == "+15.0 pts (+1.3 pts to +28.7 pts) +37.5% relative"
    assert discount[7] == "98.4%"
    assert re.search(r'<span class="bb-significant">\+15\.0 pts', html)


def test_a_variant_with_a_small_sample_says_not_enough_data_yet(admin_client: Client, experiment):
    html = admin_client.get(reverse("reports:experiments"), MAY).content.decode()
    small = row(html, "variant", "new-copy")
    assert small[:5] == ["new-copy new-copy", "10", "12", "12", "4"]
    assert small[5:8] == ["not enough data yet"] * 3


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
