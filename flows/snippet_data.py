"""Validation of the data a page hands to /precancel through the snippet (DESIGN §1 and §2).

Messages name the offending path (`custom.plan.tags`) so a developer can fix the call from the
response alone. Brightback's own wording is kept where it had one.
"""

from __future__ import annotations

import math
import re
from datetime import datetime
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import validate_email

from brightback_site.text import unstorable
from compliance.regions import country_of, country_problem, region_problem

MAX_STRING = 2000
MAX_DEPTH = 6
MAX_KEYS = 200
MAX_KEY = 200
# account.value: a weekly plan's value per month (x 52/12) must still fit the session's monthly_value
# column (14 digits, 2 after the point), whatever plan_term says.
MAX_ACCOUNT_VALUE = 10**11

STRING_FIELDS = ("email", "subscription_id", "first_name", "last_name", "full_name")
# Fields a session keeps in columns of their own, and those columns' widths (flows.models.CancelSession).
COLUMN_WIDTHS = {"email": 254, "subscription_id": 255, "account.internal_id": 255}
URL_FIELDS = ("save_return_url", "cancel_confirmation_url")
APP_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
OFFER_URL = re.compile(r"offer_([1-9][0-9]?)_url")  # use fullmatch: "$" would allow a trailing newline
ACCOUNT_STRINGS = ("internal_id", "billing_id", "company_name", "company_domain", "plan", "plan_term",
                   "created_at")
CONTEXT_STRINGS = ("locale", "timezone", "user_agent", "url", "referrer")


class SnippetDataError(ValueError):
    """The data is malformed; the message is safe to show to the page's developer."""


def _string(value: object, path: str, *, allow_number: bool = False) -> str:
    if allow_number and isinstance(value, int | float) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        raise SnippetDataError(f"{path} must be a string")
    longest = COLUMN_WIDTHS.get(path, MAX_STRING)
    if len(value) > longest:
        raise SnippetDataError(f"{path} is longer than {longest} characters")
    _check_text(value, path)
    return value.strip()


def _check_text(value: str, path: str) -> None:
    problem = unstorable(value)
    if problem:
        raise SnippetDataError(f"{path} {problem}")


# Browsers read a backslash as a slash and drop whitespace and control characters inside a URL, where
# Python's urlsplit does not: "https://evil.example\\@app.example/" is app.example to urlsplit and
# evil.example to a browser. Such URLs, and any with a user name or password, are refused outright.
_AMBIGUOUS_URL = re.compile(r"[\\\s\x00-\x1f\x7f]")


def _key(key: str, path: str) -> None:
    if len(key) > MAX_KEY:
        raise SnippetDataError(f"{path} has a key longer than {MAX_KEY} characters")
    _check_text(key, f"{path} key")


def _url(value: object, path: str) -> str:
    url = _string(value, path)
    # Non-ASCII in the host is where browsers and Python part ways: a browser normalises "\uff0f" to "/"
    # and "\uff20" to "@" (so evil.example\uff0f@app.example is evil.example to it), and urlsplit refuses
    # some such hosts outright. Domain names have an ASCII form (xn--) that means one thing to both.
    netloc = url.partition("://")[2].split("/", 1)[0].split("?", 1)[0].split("#", 1)[0]
    if not netloc.isascii():
        raise SnippetDataError(f"{path} must be a plain http(s) URL whose host is ASCII "
                               "(write an international domain name in its xn-- form)")
    try:
        parts = urlsplit(url)
    except ValueError:
        raise SnippetDataError(f"{path} must be an absolute http(s) URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SnippetDataError(f"{path} must be an absolute http(s) URL")
    if _AMBIGUOUS_URL.search(url) or "@" in parts.netloc:
        raise SnippetDataError(f"{path} must be a plain http(s) URL (no backslash, spaces or user name)")
    return url


def _plain(value: object, path: str, depth: int = 0) -> object:
    """custom: nested objects of strings, numbers, booleans and ISO dates; no arrays."""
    if isinstance(value, list):
        raise SnippetDataError(f"{path}: arrays are not supported")
    if isinstance(value, dict):
        if depth >= MAX_DEPTH:
            raise SnippetDataError(f"{path} is nested more than {MAX_DEPTH} levels deep")
        if len(value) > MAX_KEYS:
            raise SnippetDataError(f"{path} has more than {MAX_KEYS} keys")
        cleaned = {}
        for key, item in value.items():
            _key(key, path)
            cleaned[key] = _plain(item, f"{path}.{key}", depth + 1)
        return cleaned
    if isinstance(value, str):
        return _string(value, path)
    if value is None or isinstance(value, bool | int | float):
        return value
    raise SnippetDataError(f"{path} has an unsupported type")


def _account_value(value: object) -> float:
    """account.value as a float the session can store: finite (jsonb has no NaN or Infinity) and small
    enough for monthly_value. Brightback pages send it as a number or a numeric string."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise SnippetDataError("account.value must be a number")
    if isinstance(value, str) and len(value) > 100:
        raise SnippetDataError("account.value must be a number")
    if isinstance(value, int) and abs(value) > MAX_ACCOUNT_VALUE:
        # Checked before float(): an int of 400 digits does not convert at all (OverflowError).
        raise SnippetDataError(f"account.value is out of range (at most {MAX_ACCOUNT_VALUE} either way)")
    try:
        number = float(value)
    except ValueError:
        raise SnippetDataError("account.value must be a number") from None
    if not math.isfinite(number):
        raise SnippetDataError("account.value must be a finite number")
    if abs(number) > MAX_ACCOUNT_VALUE:
        raise SnippetDataError(f"account.value is out of range (at most {MAX_ACCOUNT_VALUE} either way)")
    return number


def _place(value: object, path: str) -> str:
    """account.country (ISO 3166-1 alpha-2, "DE") or account.region (ISO 3166-2, "US-CA"), upper case.
    The customer's rules depend on it, so a value that names no place is refused rather than ignored."""
    if not isinstance(value, str):
        raise SnippetDataError(f"{path} must be a string")
    code = value.upper() if value.isascii() else ""  # "ﬁ".upper() is "FI": only ASCII letters are codes
    problem = region_problem(code) if path == "account.region" else country_problem(code)
    if problem:
        raise SnippetDataError(f"{path} {problem}")
    return code


def clean_snippet_data(body: object) -> dict:
    """Return the snippet data we keep, or raise SnippetDataError.

    Unknown top-level keys are dropped rather than refused, as Brightback.js pages pass extra keys.
    """
    if not isinstance(body, dict):
        raise SnippetDataError("request body must be a JSON object")
    app_id = body.get("app_id")
    if not isinstance(app_id, str) or not APP_ID.match(app_id.strip()):
        raise SnippetDataError("valid app_id is required")
    data: dict = {"app_id": app_id.strip()}

    for name in STRING_FIELDS:
        if body.get(name) is not None:
            data[name] = _string(body[name], name, allow_number=(name == "subscription_id"))
    if data.get("email"):
        try:
            validate_email(data["email"])
        except DjangoValidationError:
            raise SnippetDataError("email is not a valid email address") from None

    for name, value in body.items():
        if value is None:
            continue
        if name in URL_FIELDS or OFFER_URL.fullmatch(name):
            data[name] = _url(value, name)

    account = body.get("account")
    if account is not None:
        if not isinstance(account, dict):
            raise SnippetDataError("account must be an object")
        cleaned_account: dict = {}
        if len(account) > MAX_KEYS:
            raise SnippetDataError(f"account has more than {MAX_KEYS} keys")
        for key, value in account.items():
            _key(key, "account")
            if value is None:
                continue
            path = f"account.{key}"
            if key in ACCOUNT_STRINGS:
                cleaned_account[key] = _string(value, path, allow_number=True)
            elif key == "value":
                cleaned_account[key] = _account_value(value)
            elif key in ("country", "region"):
                cleaned_account[key] = _place(value, path)
            else:
                cleaned_account[key] = _plain(value, path, 1)
        if "created_at" in cleaned_account and cleaned_account["created_at"]:
            try:
                datetime.fromisoformat(cleaned_account["created_at"].replace("Z", "+00:00"))
            except ValueError:
                raise SnippetDataError("account.created_at must be an ISO 8601 date") from None
        region, country = cleaned_account.get("region"), cleaned_account.get("country")
        if region and country and country_of(region) != country:
            raise SnippetDataError(f"account.region {region} is not in account.country {country}")
        data["account"] = cleaned_account

    # Brightback required an email unless a subscription_id was given; an account id serves as well.
    if not data.get("email") and not data.get("account", {}).get("internal_id") and not data.get("subscription_id"):
        raise SnippetDataError("valid email, account.internal_id or subscription_id is required")

    custom = body.get("custom")
    if custom is not None:
        if not isinstance(custom, dict):
            raise SnippetDataError("custom must be an object")
        data["custom"] = _plain(custom, "custom")

    context = body.get("context")
    if context is not None:
        if not isinstance(context, dict):
            raise SnippetDataError("context must be an object")
        data["context"] = {k: _string(context[k], f"context.{k}") for k in CONTEXT_STRINGS
                           if context.get(k) is not None}

    if body.get("timestamp") is not None:
        data["timestamp"] = _string(body["timestamp"], "timestamp")

    auth = body.get("auth")
    if auth is not None:
        if not isinstance(auth, dict):
            raise SnippetDataError("auth must be an object with expires and hash")
        expires, digest = auth.get("expires"), auth.get("hash")
        # ASCII digits only ("²" is a digit to str.isdigit), and few enough for int() to read.
        if isinstance(expires, str) and expires.isascii() and expires.isdigit() and len(expires) <= 20:
            expires = int(expires)
        if not isinstance(expires, int) or isinstance(expires, bool) or not isinstance(digest, str):
            raise SnippetDataError("auth must be an object with expires (unix seconds) and hash (hex)")
        data["auth"] = {"expires": expires, "hash": digest[:128]}
    return data
