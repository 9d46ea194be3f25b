"""Signatures a receiver can verify with the `standardwebhooks` package, and Brightback's legacy header."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from webhooks import signing


def headers_for(secrets: list[str], body: bytes, msg_id: str = "evt_01TEST") -> dict[str, str]:
    ts = int(time.time())
    return {"webhook-id": msg_id, "webhook-timestamp": str(ts),
            "webhook-signature": signing.signature_header(secrets=secrets, msg_id=msg_id, timestamp=ts, body=body)}


def test_new_secrets_are_whsec_prefixed_random_and_accepted_by_standardwebhooks():
    first, second = signing.secret_new(), signing.secret_new()
    assert first.startswith("whsec_") and first != second
    Webhook(first)  # parses: base64 after the prefix


def test_signature_verifies_with_standardwebhooks():
    secret = signing.secret_new()
    body = '{"type":"session.canceled","data":{"email":"zoë@example.com"}}'.encode()
    assert Webhook(secret).verify(body, headers_for([secret], body))["data"]["email"] == "zoë@example.com"


def test_signature_fails_for_another_secret_or_a_changed_body():
    secret = signing.secret_new()
    body = b'{"type":"session.canceled"}'
    headers = headers_for([secret], body)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.secret_new()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(b'{"type":"session.nevermind"}', headers)


def test_rotation_overlap_sends_two_signatures_each_verifying_on_its_own():
    old, new = signing.secret_new(), signing.secret_new()
    body = b'{"type":"offer.accepted"}'
    headers = headers_for([new, old], body)
    assert len(headers["webhook-signature"].split(" ")) == 2
    assert all(part.startswith("v1,") for part in headers["webhook-signature"].split(" "))
    Webhook(old).verify(body, headers)
    Webhook(new).verify(body, headers)


def test_hub_signature_is_hex_hmac_sha1_of_the_body_keyed_with_the_secret_as_shown():
    secret = signing.secret_new()
    body = b'{"type":"session.canceled"}'
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
    assert signing.hub_signature(secret=secret, body=body) == f"sha1={expected}"
