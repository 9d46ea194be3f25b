"""Slack incoming webhooks: one JSON POST (Block Kit) per alert, through the SSRF-checked session.

Slack answers 200 "ok" on success; 429 with Retry-After when rate limited (honoured); 5xx when it is
in trouble (retried); other 4xx (invalid_payload, no_service, channel_is_archived, …) when the
webhook or the message is wrong, which a retry cannot fix.
"""

from __future__ import annotations

import json
import threading

import requests
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from brightback_site.ssrf import UnsafeAddress, checked_session, parse_retry_after

from .base import Message, Sent, Transport, TransportError

USER_AGENT = "cancel-flow-alerts/1.0"
ANSWER_KEPT = 500

_local = threading.local()


def _session() -> requests.Session:
    session = getattr(_local, "session", None)
    if session is None:
        session = _local.session = checked_session(user_agent=USER_AGENT, pool_maxsize=2)
    return session


class SlackTransport(Transport):
    slug = "slack"

    def problems(self, message: Message) -> list[str]:
        return [] if message.url and message.chat else ["no Slack webhook URL"]

    def send(self, message: Message) -> Sent:
        body = json.dumps(message.chat, ensure_ascii=False).encode()
        timeout = settings.ALERT_TIMEOUT_SECONDS
        try:
            response = _session().post(message.url, data=body, timeout=(timeout, timeout), allow_redirects=False,
                                       headers={"Content-Type": "application/json; charset=utf-8"})
            answer = response.text[:ANSWER_KEPT].strip()
        except UnsafeAddress as exc:
            raise TransportError(f"refused: {exc}", permanent=True) from None
        except (requests.Timeout, SoftTimeLimitExceeded):
            raise TransportError(f"Slack did not answer within {timeout:g} s") from None
        except requests.ConnectionError:
            raise TransportError("could not connect to the Slack webhook's host") from None
        except requests.RequestException as exc:
            raise TransportError(f"the request to Slack failed: {exc}") from None
        status = response.status_code
        if 200 <= status < 300:
            return Sent(answer=f"HTTP {status} {answer}".strip())
        said = f"Slack answered HTTP {status}" + (f": {answer}" if answer else "")
        if status == 429:
            raise TransportError(said, retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status >= 500:
            raise TransportError(said)
        if 300 <= status < 400:
            raise TransportError(f"{said} (a redirect; use the webhook URL Slack gave)", permanent=True)
        raise TransportError(said, permanent=True)
