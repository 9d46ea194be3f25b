"""What a webhook carries: the JSON body of DESIGN §5, its bytes as signed and sent, and the data of the
admin's `webhook.test` event."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.core.serializers.json import DjangoJSONEncoder

from flows import ids

from .models import Endpoint


def utc_iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def webhook_body(*, event_type: str, created_at: datetime, data: dict) -> dict:
    """The JSON body of DESIGN §5: the same on every attempt."""
    return {"type": event_type, "timestamp": utc_iso(created_at), "data": data}


def body_bytes(payload: dict) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder).encode()


def test_event_data(*, endpoint: Endpoint, message_id: str) -> dict:
    return {
        "event_id": message_id, "app_id": endpoint.app.app_id, "session_id": ids.session_id(), "test": True,
        "email": "jane@example.com",
        "account": {"internal_id": "acct_test", "billing_id": "cus_test", "plan": "pro", "value": 49},
        "subscription_id": "sub_test",
        "reason": {"code": "too-expensive", "label": "It’s too expensive"},
        "feedback": "This is a test event sent from the admin.",
        "offer": {"code": "discount-30", "type": "discount", "title": "30% off for the next 3 months",
                  "terms": {"coupon": "SAVE30", "discount_percent": 30, "discount_months": 3}},
        "custom": {"seats": 3},
        "context": {"locale": "en-US"},
    }
