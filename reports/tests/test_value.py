"""Revenue kept, honestly: what a saved customer pays over the watch window net of the offer, in the
App's currency, never added across currencies."""

from __future__ import annotations

import io
import json
import re
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from flows.models import App, CancelSession
from reports import services
from reports.value import months_paid, value_kept

pytestmark = pytest.mark.django_db


def test_a_pause_keeps_nothing_for_its_paused_months(settings) -> None:  # noqa: ANN001
    settings.SAVE_WATCH_DAYS = 30
    assert value_kept(Decimal(49), offer_kind="pause", pause_months=2) == Decimal("0.00")
    settings.SAVE_WATCH_DAYS = 90  # three months watched: the customer pays for the third
    assert value_kept(Decimal(49), offer_kind="pause", pause_months=2) == Decimal("49.00")


def test_a_discount_costs_only_its_months(settings) -> None:  # noqa: ANN001
    settings.SAVE_WATCH_DAYS = 180  # six months: three at 30% off, three at full price
    assert value_kept(Decimal(100), offer_kind="discount", discount_percent=30, discount_months=3) == \
        Decimal("510.00")
    # Forever (no months given): every month of the window at the discount.
    assert value_kept(Decimal(100), offer_kind="discount", discount_percent=30) == Decimal("420.00")


def test_a_contact_support_request_keeps_nothing_until_confirmed(settings) -> None:  # noqa: ANN001
    settings.SAVE_WATCH_DAYS = 30
    assert value_kept(Decimal(49), offer_kind="contact_support", confirmed=False) == Decimal("0.00")
    assert value_kept(Decimal(49), offer_kind="contact_support", confirmed=True) == Decimal("49.00")
    assert months_paid(offer_kind="trial_extension", trial_days=15) == Decimal("0.5")
    assert value_kept(None, offer_kind=None) == Decimal(0)


def test_an_app_currency_must_be_iso_4217(demo_app: App) -> None:
    for bad in ("usd", "XYZ", "US", "$"):
        demo_app.currency = bad
        with pytest.raises(ValidationError) as caught:
            demo_app.full_clean()
        assert "ISO 4217" in str(caught.value.message_dict["currency"])
    demo_app.currency = "EUR"
    demo_app.full_clean()


def test_a_flow_document_with_a_bad_currency_is_refused_and_changes_nothing(demo_app: App) -> None:
    from flows.flow_document import document_export

    document = document_export(app=demo_app)
    document["app"]["currency"] = "EURO"
    with pytest.raises(CommandError, match=r"app\.currency: must be an ISO 4217 currency code"):
        call_command("flow_import", "-", stdin=io.StringIO(json.dumps(document)), stdout=io.StringIO())
    assert App.objects.get(pk=demo_app.pk).currency == "USD"
    document["app"]["currency"] = "GBP"
    call_command("flow_import", "-", stdin=io.StringIO(json.dumps(document)), stdout=io.StringIO())
    assert App.objects.get(pk=demo_app.pk).currency == "GBP"


def test_all_apps_shows_revenue_kept_per_currency_never_added(admin_client: Client, demo_app: App,
                                                               make_session) -> None:  # noqa: ANN001
    from flows.flow_document import document_export, document_import

    at = timezone.now() - timezone.timedelta(days=45)
    make_session(at=at, value=49, decision="nevermind", confirmed=True)
    document = document_export(app=demo_app)
    document["app"].update(app_id="euro", name="Euro shop", currency="EUR")
    euro = document_import(document=document).app
    euro.mode = App.Mode.LIVE
    euro.save()
    session = make_session(at=at, value=30, decision="nevermind", confirmed=True)
    CancelSession.objects.filter(pk=session.pk).update(app=euro, flow=euro.flows.get())
    services.rollups_refresh_all()
    html = admin_client.get(reverse("reports:overview"), {"start": at.date().isoformat(),
                                                          "end": at.date().isoformat()}).content.decode()
    kept = re.search(r'data-figure="revenue-kept">(.*?)</span>', html, re.S).group(1)
    assert kept.split("<br>") == ["49.00 USD", "30.00 EUR"]


def test_a_skip_keeps_nothing_for_its_free_renewals(settings) -> None:  # noqa: ANN001
    settings.SAVE_WATCH_DAYS = 30
    assert value_kept(Decimal(49), offer_kind="skip_renewal", skip_renewals=1) == Decimal("0.00")
    settings.SAVE_WATCH_DAYS = 90  # three months watched: two free, the third paid
    assert value_kept(Decimal(49), offer_kind="skip_renewal", skip_renewals=2) == Decimal("49.00")
    # Left blank, a skip is of one renewal (DESIGN §8).
    assert months_paid(offer_kind="skip_renewal", skip_renewals=None) == Decimal(2)
