"""Standard Webhooks signatures (https://www.standardwebhooks.com), plus Brightback's X-Hub-Signature.

The signed content is "{webhook-id}.{webhook-timestamp}.{body}", HMAC-SHA256 keyed with the base64
bytes after the secret's `whsec_` prefix, sent as `v1,<base64>`. Several signatures (during a secret
rotation) are separated by spaces; receivers accept the message if any one matches.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def secret_new() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _key(secret: str) -> bytes:
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("webhook secrets start with whsec_")
    return base64.b64decode(secret[len(SECRET_PREFIX):])


def signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signature_header(*, secrets: list[str], msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` value: one `v1,` signature per secret, space-separated."""
    return " ".join(signature(secret=s, msg_id=msg_id, timestamp=timestamp, body=body) for s in secrets)


def hub_signature(*, secret: str, body: bytes) -> str:
    """Brightback's legacy `X-Hub-Signature`: hex HMAC-SHA1 of the body, keyed with the secret as shown."""
    return "sha1=" + hmac.new(secret.encode(), body, hashlib.sha1).hexdigest()
