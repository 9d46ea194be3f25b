"""Whose personal data an erasure or an export is about, and the contract of the apps that keep it.

Every installed app that stores something about a customer has a `privacy` module (flows/privacy.py,
webhooks/privacy.py, …) with these functions over a `Subject`; privacy.services finds them by name, so a
new app that keeps customer data joins with one module and no setting:

    def identifiers(subject: Subject) -> set[str]: ...   (optional)
        More values that identify the person, found in this app's rows (the subscriptions a billing
        action found): redacted everywhere, in every app's rows.
    def busy(subject: Subject) -> list[str]: ...
        Rows of the subject that must not be changed now, each described for the operator (a billing
        action still to be carried out needs the subscription it names). Any: nothing is erased.
    def erase(subject: Subject, *, now: datetime) -> dict[str, int]: ...
        Remove the personal data of the subject's rows, inside the caller's transaction; return the rows
        changed per table ("webhooks.Delivery": 3). Counts, codes, kinds, values and dates stay, so reports
        read the same. Running it again changes nothing (and returns zeros).
    def export(subject: Subject) -> dict[str, list[dict]]: ...
        Every row held about the subject, as JSON-ready dicts, secrets left out.

A subject is the sessions in question (`session_ids`) and what identifies the person in them. For one
customer (`app` set), rows kept by customer rather than by session go too: experiment assignments, the
App's offer blocklist entries.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, quote_plus

if TYPE_CHECKING:
    from flows.models import App

ERASED = "[erased]"
# Values shorter than this are only redacted when they identify the person (an email, an id, a name): a
# plan called "pro" is not worth blanking in every error message.
MIN_INCIDENTAL_LENGTH = 4


@dataclass
class Subject:
    session_ids: list[int]
    emails: set[str] = field(default_factory=set)  # lower case
    account_ids: set[str] = field(default_factory=set)
    # Every other value that identifies the person (subscription and billing ids, names) or that they
    # wrote (feedback, custom data), redacted wherever it was copied into free text.
    identifiers: set[str] = field(default_factory=set)
    incidental: set[str] = field(default_factory=set)
    app: App | None = None  # one customer of this App: their customer-keyed rows go too

    @property
    def is_customer(self) -> bool:
        return self.app is not None

    @cached_property
    def _pattern(self) -> re.Pattern[str] | None:
        terms = {t for t in (*self.emails, *self.account_ids, *self.identifiers) if t.strip()}
        terms |= {t for t in self.incidental if len(t.strip()) >= MIN_INCIDENTAL_LENGTH}
        # The forms a value takes when copied into a URL or a JSON string, too.
        variants = {form for term in terms for form in (term, quote(term, safe=""), quote_plus(term),
                                                         json.dumps(term)[1:-1]) if form}
        if not variants:
            return None
        alternatives = "|".join(re.escape(v) for v in sorted(variants, key=len, reverse=True))
        # Not inside a longer word or id: erasing acct_4 leaves acct_42 alone.
        return re.compile(rf"(?<![A-Za-z0-9])(?:{alternatives})(?![A-Za-z0-9])", re.IGNORECASE)

    def redact(self, text: str) -> str:
        """The text with every value that identifies the subject replaced by [erased]."""
        if not text or self._pattern is None:
            return text
        return self._pattern.sub(ERASED, text)

    def redact_json(self, value: Any) -> Any:
        """A JSON value with every string (and every key) redacted; keys that become equal stay apart."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, list):
            return [self.redact_json(item) for item in value]
        if isinstance(value, dict):
            out: dict[str, Any] = {}
            for key, item in value.items():
                new = self.redact(str(key))
                while new in out:
                    new += "'"
                out[new] = self.redact_json(item)
            return out
        return value

    def names(self, text: str) -> bool:
        """Does the text name the subject?"""
        return bool(text) and self.redact(text) != text


def string_leaves(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        yield str(value)
    elif isinstance(value, list):
        for item in value:
            yield from string_leaves(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from string_leaves(item)


def rows(queryset: Any, *, exclude: Iterable[str] = ()) -> list[dict]:
    """A queryset's rows as dicts of their concrete columns (foreign keys as ids), for an export."""
    left_out = set(exclude)
    model = queryset.model
    names = [f.attname for f in model._meta.concrete_fields if f.name not in left_out and f.attname not in left_out]
    return [dict(row) for row in queryset.order_by("pk").values(*names)]
