"""The hosted page's first view (the reasons step, as a customer first sees it), rendered once per flow
content and language in each process's memory, then filled in with each customer's own two values.

Every customer of a flow sees the same first page but for their CSRF token and the page's own URL, and
rendering the template took about as long as the rest of the request. The copy is keyed by everything
else the page shows: the language, the flow's row version (selectors.flow_version, read afresh with the
session by every request, so any change to the row, saved by staff or not, is a new key), the variant's
title and intro, the App's support address, what the customer's rules ask of the page (Cancel on every
step, and what it will do: cancel_terms.page_rules), and the flow's published reasons (selectors.published_reasons:
a new list whenever they change). On PostgreSQL the view that finds its copy here reads only those values
(selectors.first_view_state) and builds no model at all.

That read also writes the view's step for the session's evidence when it can say beforehand which
controls the page will show (flows.steps.statement_insert): the controls of the copies served so far, by what
decides them (the flow's row version and the session's rules), are handed to it as `expected_steps()`.
The view checks what was written against the copy it then serves, and writes it afresh where they differ.
"""

from __future__ import annotations

import json
import secrets
from html import escape
from typing import NamedTuple

from . import cancel_terms, selectors
from .models import CancelSession, Reason

# Stand-ins rendered where the customer's values go: random per process, so no flow copy can contain them.
CSRF_SLOT = f"bbcsrf{secrets.token_hex(16)}"
ACTION_SLOT = f"/bbaction{secrets.token_hex(16)}"

_pages: dict[tuple, tuple[list[Reason], str]] = {}
_PAGES_CACHE_SIZE = 500


def key(*, language: str, title: str, intro: str, support_email: str, flow_id: int, flow_version: object,
        compliance: dict) -> tuple:
    return (language, title, intro, support_email, flow_id, flow_version, cancel_terms.page_rules(compliance))


def key_of(*, session: CancelSession, language: str) -> tuple:
    return key(language=language, title=session.title, intro=session.intro, support_email=session.app.support_email,
               flow_id=session.flow_id, flow_version=selectors.flow_version(session.flow),
               compliance=session.compliance)


def rendered(page_key: tuple, reasons: list[Reason]) -> str | None:
    """The page rendered with the slots, if it was rendered for these very reasons."""
    cached = _pages.get(page_key)
    return cached[1] if cached is not None and cached[0] is reasons else None


def keep(page_key: tuple, reasons: list[Reason], html: str) -> None:
    if len(_pages) >= _PAGES_CACHE_SIZE:
        _pages.clear()
    _pages[page_key] = (reasons, html)


def fill(html: str, *, csrf_token: str, action_url: str) -> str:
    # The template escapes both values; so does this (a CSRF token is alphanumeric, a path may not be), as
    # Django's escape() does, without its lazy-string wrapper (the values are plain strings).
    return html.replace(CSRF_SLOT, escape(csrf_token)).replace(ACTION_SLOT, escape(action_url))


class Expected(NamedTuple):
    """The controls each copy served so far showed, by the flow, its row version and the session's rules: as
    the JSON array the first view's read is handed ([{place, flow, version, compliance, controls}, …]),
    and each entry's controls by its place in that array."""

    json: str
    controls: tuple[tuple[str, ...], ...]


_expected: dict[tuple[int, str, str], tuple[str, ...]] = {}
_expected_now: Expected | None = None
_EXPECTED_SIZE = 32


def expect(*, flow_id: int, flow_version: str, compliance: dict, controls: tuple[str, ...]) -> None:
    """Note the controls a first view of this flow version under these rules showed."""
    global _expected_now
    entry = (flow_id, flow_version, json.dumps(compliance, sort_keys=True))
    if _expected.get(entry) == controls:
        return
    if len(_expected) >= _EXPECTED_SIZE:
        _expected.clear()
    _expected[entry] = controls
    _expected_now = Expected(
        json=json.dumps([{"place": place, "flow": flow, "version": version, "compliance": json.loads(rules),
                          "controls": list(shown)}
                         for place, ((flow, version, rules), shown) in enumerate(_expected.items())]),
        controls=tuple(_expected.values()))


def expected_steps() -> Expected | None:
    """What expect() noted; None: nothing yet."""
    return _expected_now


def forget() -> None:
    global _expected_now
    _pages.clear()
    _expected.clear()
    _expected_now = None
