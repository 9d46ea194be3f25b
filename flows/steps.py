"""What the customer saw and did on the page, step by step, for a session's evidence.

The hosted page and the headless API describe each page shown and each click (each POST) as a `Step`
and hand them to the recorder named in settings.BRIGHTBACK_STEP_RECORDER (evidence.services.steps_record,
one INSERT however many steps a request makes), so flows never imports the app that keeps them. A
blank setting records nothing. A recorder that fails is logged and never fails the customer's request.
Where a request's one statement can carry its step (the hosted page's kept first view, read with its
step; a decision, written with the click that made it: flows/recording.py), the recorder's companion,
settings.BRIGHTBACK_STEP_STATEMENT (evidence.services.StepsInStatement), gives the INSERT that statement
ends with (statement_insert).

A step names the controls that were on screen by their stable hooks (DESIGN §3), read from the page's
own HTML, so a control added to the template is listed without a change here:
`reason:<code>` (a reason's radio button), `feedback`, and each `data-bb-action` (`continue`, `back`,
`nevermind`, `cancel`, `reactivate`, or `accept:<offer code>`).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

logger = logging.getLogger(__name__)


class Kind:
    VIEW = "view"    # a page shown (or described, by the headless API)
    CLICK = "click"  # a button pressed: a POST


class Source:
    PAGE = "page"
    API = "api"


@dataclass(frozen=True)
class Step:
    kind: str
    source: str
    at: datetime = field(default_factory=timezone.now)
    name: str = ""          # the page shown: "reasons", "offers", "done", "expired"
    action: str = ""        # the button pressed: "continue", "back", "nevermind", "accept", "cancel"
    reason_code: str = ""
    offer_code: str = ""
    controls: tuple[str, ...] = ()
    status: int | None = None  # the HTTP status answered


_TAG = re.compile(r"<(?:button|input|a|textarea)\b[^>]*>", re.IGNORECASE)
_ATTRIBUTE = re.compile(r'([a-z-]+)="([^"]*)"', re.IGNORECASE)


def controls_in(html: str) -> tuple[str, ...]:
    """The controls a page shows, in page order, each once."""
    found: list[str] = []
    for tag in _TAG.finditer(html):
        attributes = dict((name.lower(), value) for name, value in _ATTRIBUTE.findall(tag.group(0)))
        control = ""
        if attributes.get("name") == "reason" and attributes.get("type") == "radio":
            control = f"reason:{attributes.get('value', '')}"
        elif attributes.get("name") == "feedback" and attributes.get("type") != "hidden":
            control = "feedback"
        elif "data-bb-action" in attributes:
            action = attributes["data-bb-action"]
            offer = attributes.get("data-bb-offer")
            control = f"{action}:{offer}" if offer else action
        if control and control not in found:
            found.append(control)
    return tuple(found)


@lru_cache(maxsize=64)
def controls_kept(html: str) -> tuple[str, ...]:
    """controls_in for a page text kept in memory (flows.page_cache's first view, the same text object for
    every customer of a flow): read once, then found by the text's own cached hash."""
    return controls_in(html)


@lru_cache(maxsize=4)
def _recorder(path: str):  # noqa: ANN202
    return import_string(path) if path else None


def _in_statement():  # noqa: ANN202
    """The recorder's StepsInStatement (settings.BRIGHTBACK_STEP_STATEMENT), when steps are kept at all."""
    if _recorder(getattr(settings, "BRIGHTBACK_STEP_RECORDER", "")) is None:
        return None
    return _recorder(getattr(settings, "BRIGHTBACK_STEP_STATEMENT", ""))


def statement_insert(*, alias: str, rows: str) -> str | None:
    """The SQL of an INSERT … RETURNING id that keeps the steps a caller's own statement (a read, a
    decision's write) finds in its relation `rows` (columns: session_id, at, kind, source, name, action,
    reason_code, offer_code, controls, status), so that a request's statement and its step are one round
    trip; None where the recorder has none for the connection `alias` (then `record` keeps them)."""
    keeper = _in_statement()
    return keeper.insert(alias=alias, rows=rows) if keeper is not None else None


def withdraw(*, session_pk: int, step_id: int) -> None:
    """Take back a step statement_insert's statement wrote for a request that then showed another page."""
    keeper = _in_statement()
    if keeper is None:
        return
    try:
        keeper.withdraw(step_id=step_id)
    except Exception:
        logger.exception("step %s of session %s not withdrawn", step_id, session_pk)


def record(*, session_pk: int, steps: list[Step]) -> None:
    """Keep the steps of one request (in one INSERT), outside any transaction of the caller's choosing."""
    recorder = _recorder(getattr(settings, "BRIGHTBACK_STEP_RECORDER", ""))
    if recorder is None or not steps:
        return
    try:
        recorder(session_pk=session_pk, steps=steps)
    except Exception:
        # Evidence is kept for every step it can be; a customer's page never fails for it.
        logger.exception("steps of session %s not recorded", session_pk)
