"""The CSV export, and report pages whose query count does not grow with the data."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from flows.models import Audience, Flow, Variant
from reports import services

pytestmark = pytest.mark.django_db

DAY = datetime(2026, 3, 10, 9, 0, tzinfo=UTC)


def exported(client: Client, query: dict) -> list[dict]:
    response = client.get(reverse("reports:sessions_csv"), query)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_the_export_lists_sessions_with_their_decisions(admin_client: Client, make_session):
    make_session(at=DAY, value=100, decision="accept", reason="too-expensive", offer="discount-30",
                 shown=["discount-30"], feedback="Fine, I'll stay")
    make_session(at=DAY + timedelta(hours=1), value=None, decision="cancel", reason="other", feedback="=HYPERLINK(1)")
    make_session(at=DAY + timedelta(days=40))
    rows = exported(admin_client, {"start": "2026-03-01", "end": "2026-03-31"})
    assert len(rows) == 2
    first, second = rows
    assert (first["decision"], first["reason_code"], first["offer_code"], first["discount_percent"],
            first["monthly_value"], first["value_kept"], first["offers_shown"]) == (
        "accept", "too-expensive", "discount-30", "30", "100.00", "70.00", "discount-30")
    assert (second["decision"], second["value_kept"], second["monthly_value"]) == ("cancel", "", "")
    # A spreadsheet must not run a customer's note as a formula.
    assert second["feedback"] == "'=HYPERLINK(1)"


def add_rows(make_session, demo_app, start: datetime, count: int) -> None:  # noqa: ANN001
    flow = Flow.objects.get(app=demo_app)
    audience, _ = Audience.objects.get_or_create(app=demo_app, name=f"A{count}", defaults={"rules": {"all": []}})
    variant, _ = Variant.objects.get_or_create(flow=flow, code=f"v{count}", defaults={"is_control": False})
    kinds = ["nevermind", "accept", "cancel", None]
    for n in range(count):
        kind = kinds[n % 4]
        session = make_session(at=start + timedelta(days=n % 9, minutes=n), value=10 + n, variant=variant,
                               decision=kind, reason="too-expensive" if kind else "",
                               offer="discount-30" if kind == "accept" else "", feedback=f"note {n}" if kind else "",
                               shown=["discount-30"] if n % 2 else None, confirmed=kind == "accept")
        session.audience = audience
        session.save(update_fields=["audience"])


PAGES = ["overview", "reasons", "offers", "experiments", "watch_list"]


def test_report_pages_make_the_same_number_of_queries_however_many_rows(admin_client: Client, demo_app,
                                                                          make_session):  # noqa: ANN001
    now = datetime.now(UTC)
    query = {"start": (now - timedelta(days=60)).date().isoformat(), "end": now.date().isoformat()}

    def queries() -> dict[str, int]:
        services.rollups_refresh(first_day=(now - timedelta(days=60)).date(), last_day=now.date())
        counts = {}
        for page in PAGES:
            with CaptureQueriesContext(connection) as captured:
                assert admin_client.get(reverse(f"reports:{page}"), query).status_code == 200
            counts[page] = len(captured)
        with CaptureQueriesContext(connection) as captured:
            response = admin_client.get(reverse("reports:sessions_csv"), query)
            b"".join(response.streaming_content)
        counts["csv"] = len(captured)
        return counts

    add_rows(make_session, demo_app, now - timedelta(days=20), 8)
    few = queries()
    add_rows(make_session, demo_app, now - timedelta(days=40), 120)
    assert queries() == few


def test_the_export_starts_before_any_query_and_reads_through_an_iterator(admin_client: Client, make_session):
    for n in range(5):
        make_session(at=DAY + timedelta(minutes=n), decision="cancel")
    with CaptureQueriesContext(connection) as captured:
        response = admin_client.get(reverse("reports:sessions_csv"), {"start": "2026-03-01", "end": "2026-03-31"})
        before = len(captured)
        content = iter(response.streaming_content)
        header = next(content)
        # The header leaves before the sessions are asked for: the download starts at once, whatever the range.
        assert len(captured) == before and header.startswith(b"session_id,started_at,opened_at")
        rows = b"".join(content).splitlines()  # lines, handed over in blocks of many rows
    reads = [q["sql"] for q in captured.captured_queries[before:]
             if "SAVEPOINT" not in q["sql"] and not q["sql"].startswith("SET LOCAL")]
    assert len(rows) == 5 and len(reads) == 1  # one query (in its own transaction), read in chunks by its cursor
