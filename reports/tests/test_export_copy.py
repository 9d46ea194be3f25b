"""PostgreSQL writes the sessions CSV itself (COPY): byte for byte what Python's csv module wrote from the
cursor before, on values chosen to break a naive CSV, a naive clock or a naive rounding."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from conftest import need
from flows.models import App, Audience, CancelSession, Decision, Flow, Variant
from offers.models import Offer
from privacy.services import customer_erase
from reports import export, selectors

pytestmark = pytest.mark.django_db

# The 8 March 2026 change in New York: the team's day is 23 hours long, cut at 05:00 UTC then 04:00 UTC.
DST_DAY = datetime(2026, 3, 8, 5, 0, tzinfo=UTC)

TRICKY_TEXT = [
    "plain", "comma, inside", 'a "quoted" word', "line\nbreak", "crlf\r\nbreak", "carriage\rreturn", '"', "",
    " spaced ", "=SUM(A1:A9)", "+1 555", "-minus", "@at", "\tTab first", "\rCR first", "\\.", "\\",
    "naïve café ☕ 日本語", "עברית", "😀 emoji", "semi;colon",
    "trailing,", ",", "'already quoted", "null", "NULL", "\\N",
    # What COPY's text format escapes (a backslash and these control characters) or passes as it is.
    "\x0bvertical\x0cform\x08back", "bell\x07 and\x01 start", "back\\slash, \"quoted\"\nand more",
]


@pytest.fixture
def tricky(demo_app: App, make_session) -> App:  # noqa: ANN001
    """Sessions with every awkward value: text, times (microseconds or none, both sides of a DST change),
    money (negative, a half-cent tie, none), each kind of offer and decision, erased and test-mode sessions."""
    flow = Flow.objects.get(app=demo_app, name="Default")
    audience = Audience.objects.create(app=demo_app, name="+Big, spenders", rules={"all": []})
    variant = Variant.objects.create(flow=flow, code="b", is_control=False)
    offers = {
        "discount-3m": dict(kind=Offer.Kind.DISCOUNT, discount_percent=33, discount_months=1, coupon="SAVE33"),
        "discount-forever": dict(kind=Offer.Kind.DISCOUNT, discount_percent=15, coupon="SAVE15"),
        "pause-2": dict(kind=Offer.Kind.PAUSE, pause_months=2),
        "trial-1": dict(kind=Offer.Kind.TRIAL_EXTENSION, trial_days=1),
        "trial-14": dict(kind=Offer.Kind.TRIAL_EXTENSION, trial_days=14),
        "support": dict(kind=Offer.Kind.CONTACT_SUPPORT),
        "plan": dict(kind=Offer.Kind.PLAN_CHANGE, plan="basic"),
        "gone": dict(kind=Offer.Kind.CUSTOM_LINK, link_url="https://example.com/x"),
    }
    for code, terms in offers.items():
        Offer.objects.get_or_create(flow=flow, code=code, defaults={"title": f"Offer {code}", **terms})
    values: list[float | None] = [49, 10.35, 0, None, 0.01, 99999999.99, 12.5, 7.77, 1]
    kinds = [None, "nevermind", "cancel", *(["accept"] * len(offers))]
    codes = ["", "", "", *offers]
    n = 0
    for text in TRICKY_TEXT:
        for i, (kind, code) in enumerate(zip(kinds, codes, strict=True)):
            n += 1
            # Microseconds on some times, none on others; sessions on, before and after the short day.
            at = DST_DAY + timedelta(hours=(n % 30) - 3, microseconds=(n * 7919) % 1_000_000 if n % 3 else 0)
            session = make_session(at=at, value=values[n % len(values)], decision=kind, offer=code,
                                   reason="too-expensive" if kind else "", feedback=text if kind else "",
                                   shown=[code, "pause-2"] if code else (["a", "b"] if n % 5 == 0 else
                                                                        ["a,b", 'c"d'] if n % 7 == 0 else None),
                                   variant=variant if n % 2 else None, is_test=n % 11 == 0,
                                   decided_at=at + timedelta(seconds=n % 7, microseconds=n % 2))
            session.email = f"{text}{n}@example.com" if n % 4 else text
            session.account_internal_id = text if n % 6 == 0 else f"acct,{n}"
            session.data = {**session.data, "account": {**session.data["account"], "plan": text,
                                                         "plan_term": i if n % 2 else "month"}}
            session.audience = audience if n % 3 == 0 else None
            if n % 10 in (0, 5):  # the page never stores one, but a value written otherwise still exports
                session.monthly_value = Decimal("-49.00") if n % 10 == 0 else Decimal("-0.01")
            session.save(update_fields=["email", "account_internal_id", "data", "audience", "monthly_value"])
            if kind and n % 4 == 0:
                Decision.objects.filter(session=session).update(reason_label=text)
    # A retired offer: decisions keep its code, the offer itself is gone.
    Offer.objects.filter(flow=flow, code="gone").delete()
    # An erased customer: their sessions keep their numbers without their personal data.
    erased = CancelSession.objects.filter(app=demo_app).exclude(email="").order_by("pk").first()
    customer_erase(app=demo_app, email=erased.email)
    assert CancelSession.objects.filter(app=demo_app, erased_at__isnull=False).exists()
    # Never opened: in no report, nor in the export.
    make_session(at=DST_DAY, opened=False)
    flow.name = '=Flow, "default"\nnew line'
    flow.save(update_fields=["name"])
    return demo_app


def python_csv(report: selectors.ReportFilter) -> bytes:
    return "".join(export.csv_stream(report, use_copy=False)).encode()


def copy_csv(report: selectors.ReportFilter) -> bytes:
    return b"".join(chunk if isinstance(chunk, bytes) else chunk.encode()
                    for chunk in export.csv_stream(report, use_copy=True))


@pytest.mark.parametrize("zone", ["America/New_York", "UTC", "Asia/Kolkata"])
def test_copy_writes_the_same_bytes_as_the_csv_module(tricky: App, settings, zone: str) -> None:
    need(connection.vendor == "postgresql", "COPY is PostgreSQL's")
    settings.TIME_ZONE = zone
    for report in [
        selectors.ReportFilter(first_day=date(2026, 3, 6), last_day=date(2026, 3, 10)),
        selectors.ReportFilter(first_day=date(2026, 3, 8), last_day=date(2026, 3, 8), include_test=True),
        selectors.ReportFilter(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), app_id=tricky.pk,
                               variant_id=Variant.objects.get(code="b").pk),
        selectors.ReportFilter(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), app_ids=frozenset()),
    ]:
        expected, got = python_csv(report), copy_csv(report)
        assert got == expected
    everything = python_csv(selectors.ReportFilter(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31),
                                                   include_test=True))
    assert everything == copy_csv(selectors.ReportFilter(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31),
                                                         include_test=True))
    rows = list(csv.DictReader(io.StringIO(everything.decode(), newline="")))
    # The sample covers what it claims to: every kind of line is in the compared output.
    assert len(rows) == CancelSession.objects.filter(opened_at__isnull=False).count() > 250
    assert {"", "-0.00", "0.00", "10.00"} <= {row["value_kept"] for row in rows}
    assert any("\n" in row["feedback"] for row in rows) and any(row["feedback"].startswith("'=") for row in rows)
    assert any("." in row["started_at"] for row in rows) and any("." not in row["started_at"] for row in rows)
    assert any(row["offer_code"] == "gone" for row in rows) and any(row["test"] == "yes" for row in rows)


def test_the_valuation_matches_to_the_cent_on_half_cent_ties(tricky: App) -> None:
    """10.35 a month with a one-day trial extension keeps 10.35 x 29/30 = 10.005 exactly: half to even."""
    need(connection.vendor == "postgresql", "COPY is PostgreSQL's")
    report = selectors.ReportFilter(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31), include_test=True)
    rows = list(csv.DictReader(io.StringIO(copy_csv(report).decode(), newline="")))
    ties = [row for row in rows if row["offer_code"] == "trial-1" and row["monthly_value"] == "10.35"]
    assert ties and {row["value_kept"] for row in ties} == {"10.00"}
    assert Decimal("10.35") * 29 / 30 == Decimal("10.005")


def test_the_export_view_streams_from_copy_with_the_readers_scope(admin_client: Client, tricky: App) -> None:
    need(connection.vendor == "postgresql", "COPY is PostgreSQL's")
    query = {"start": "2026-03-01", "end": "2026-03-31"}
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse("reports:sessions_csv"), query)
        body = b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in response.streaming_content)
    assert any(q["sql"].startswith("COPY (SELECT") for q in captured.captured_queries)
    report = selectors.ReportFilter(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31))
    assert body == python_csv(report)
    # Another App's sessions never leave through a scoped reader's export.
    other = selectors.ReportFilter(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31),
                                   app_ids=frozenset({tricky.pk + 1000}))
    assert copy_csv(other) == export.header_line().encode()


def test_an_offer_made_after_the_export_began_leaves_its_value_blank(tricky: App, make_session) -> None:
    need(connection.vendor == "postgresql", "COPY is PostgreSQL's")
    report = selectors.ReportFilter(first_day=date(2026, 3, 1), last_day=date(2026, 3, 31))
    stream = export.csv_stream(report, use_copy=True)  # the offers' months are read here
    flow = Flow.objects.get(app=tricky, name__startswith="=Flow")
    flow.name = "Default"  # as make_session finds it
    flow.save(update_fields=["name"])
    Offer.objects.create(flow=flow, code="late", title="Late", kind=Offer.Kind.PAUSE, pause_months=1)
    make_session(at=DST_DAY, value=30, decision="accept", offer="late")
    body = b"".join(chunk if isinstance(chunk, bytes) else chunk.encode() for chunk in stream)
    late = [row for row in csv.DictReader(io.StringIO(body.decode(), newline="")) if row["offer_code"] == "late"]
    assert len(late) == 1 and late[0]["value_kept"] == "" and late[0]["monthly_value"] == "30.00"
