"""An experiment from its flow document to its report: customers split, stay split, and are counted."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from flows.models import CancelSession, Decision
from reports import services

pytestmark = pytest.mark.django_db

DEMO = Path(__file__).resolve().parents[1] / "flows" / "fixtures" / "demo-flow.json"


def test_an_experiment_with_a_control_runs_from_document_to_report(client: Client, admin_client: Client,
                                                                    snippet_data) -> None:  # noqa: ANN001
    document = json.loads(DEMO.read_text("utf-8"))
    document["flows"][0]["variants"] = [
        {"code": "control", "weight": 50, "is_control": True},
        {"code": "offers", "weight": 50},
    ]
    call_command("flow_import", "-", stdin=io.StringIO(json.dumps(document)), stdout=io.StringIO())

    for n in range(80):
        data = snippet_data(email=f"c{n}@example.com", account={"internal_id": f"acct_{n}", "value": 30})
        response = client.post("/precancel", json.dumps(data), content_type="application/json")
        token = response.json()["url"].rstrip("/").rsplit("/", 1)[-1]
        page = client.post(f"/c/{token}", {"reason": "too-expensive", "action": "continue"}).content.decode()
        session = CancelSession.objects.get(token=token)
        if session.variant.is_control:
            assert "data-bb-offer=" not in page
            client.post(f"/c/{token}", {"reason": "too-expensive", "action": "cancel" if n % 3 else "nevermind"})
        else:
            assert 'data-bb-offer="discount-30"' in page
            client.post(f"/c/{token}", {"reason": "too-expensive", "accept": "discount-30"} if n % 2
                        else {"reason": "too-expensive", "action": "cancel"})

    # Coming back, every customer gets the variant they had.
    again = snippet_data(email="c7@example.com", account={"internal_id": "acct_7", "value": 30})
    client.post("/precancel", json.dumps(again), content_type="application/json")
    first, last = CancelSession.objects.filter(account_internal_id="acct_7").order_by("pk")
    assert first.variant == last.variant

    today = timezone.now().date()
    services.rollups_refresh(first_day=today, last_day=today)
    # The demo App is in test mode: its sessions are counted when the report asks for them.
    html = admin_client.get(reverse("reports:experiments"), {"include_test": "on"}).content.decode()
    for code in ("control", "offers"):
        decided = Decision.objects.filter(session__variant__code=code)
        saved = decided.exclude(kind="cancel").count()
        cells = re.search(rf'<tr data-variant="{code}">(.*?)</tr>', html, re.S).group(1)
        numbers = [re.sub(r"<[^>]+>", "", cell).strip() for cell in re.findall(r"<td>(.*?)</td>", cells, re.S)]
        # Customers decided (each once) and those deflected.
        assert [numbers[1].split()[0], numbers[2]] == [str(decided.count()), str(saved)]
    offers_row = re.search(r'<tr data-variant="offers">(.*?)</tr>', html, re.S).group(1)
    assert "pts (" in offers_row  # every arm is compared, however few its customers
