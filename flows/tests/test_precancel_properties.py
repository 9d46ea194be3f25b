"""Whatever a page (or anyone) posts, /precancel answers 2xx or 4xx, and a 4xx opens nothing; the hosted
page's POST likewise never answers 5xx.

The snippet data is drawn from the schema /precancel publishes (flows/openapi.py's SNIPPET_DATA): each
field takes values of its own type and of every other, at their limits (huge integers and floats, "nan"
and "1e999" as strings, NaN and Infinity as JSON tokens), with NULs, lone surrogates, fullwidth "/" and
"@", right-to-left marks and combining characters in keys and values, nested objects and arrays where
objects belong.
"""

from __future__ import annotations

import json
from urllib.parse import quote_from_bytes

import pytest
from django.db import transaction
from django.db.models import Count
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows import openapi, services
from flows.models import App, CancelSession, Decision
from flows.snippet_data import clean_snippet_data

pytestmark = pytest.mark.django_db

ODD_CHARS = ["\x00", "\ud800", "\udfff", "\uff0f", "\uff20", "\u202e", "\ufeff", "\u0301", "\x7f", "\n", "\\",
             "@", "/", ":", "\U0001d54f", "\u00b2", "\u0660", "\u2028"]
odd_text = st.text(st.characters(exclude_categories=()) | st.sampled_from(ODD_CHARS), max_size=24)
long_text = st.sampled_from([2000, 2001, 5000]).map(lambda n: "x" * n)
numeric_strings = st.sampled_from(["nan", "NaN", "-nan", "inf", "-Infinity", "1e999", "-1e999", "1e-999", "0x10",
                                   "\uff11\uff12", "\u00b2", " 12 ", "1_000", "100000000000", "100000000001",
                                   "9" * 400, "9" * 5000, "", "-0"])
numbers = st.one_of(
    st.integers(),
    st.sampled_from([0, -1, 10**11, 10**11 + 1, 10**13, -(10**13), 2**63, 2**64, 10**400, -(10**400)]),
    st.floats(),  # with NaN and the infinities: json.dumps writes them as NaN / Infinity tokens
    st.sampled_from([1e308, -1e308, 5e-324, -0.0, 1e11, 1.0000000000001e11]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, numeric_strings, odd_text, long_text)
values = st.recursive(scalars, lambda children: st.lists(children, max_size=3)
                      | st.dictionaries(odd_text, children, max_size=4), max_leaves=10)
nested_objects = st.recursive(st.dictionaries(odd_text, scalars, max_size=4),
                              lambda children: st.dictionaries(odd_text, children | scalars, max_size=3),
                              max_leaves=12)
hosts = st.sampled_from(["127.0.0.1", "localhost", "evil.example", "127.0.0.1\uff0fevil.example",
                         "evil.example\uff0f@127.0.0.1", "evil.example\uff20127.0.0.1", "evil.example\\@127.0.0.1",
                         "b\u00fccher.example", "[::1]", "[::1", "127.0.0.1:99999", "127.0.0.1:x", ""]) | odd_text
urls = st.builds(lambda scheme, host, path: f"{scheme}{host}{path}",
                 st.sampled_from(["http://", "https://", "javascript:", "//", "", "HTTP://"]),
                 hosts, st.sampled_from(["", "/", "/account?tab=1", "/\x00", "#frag"]) | odd_text)
emails = st.sampled_from(["jane@example.com", "a@b.co", "JANE@EXAMPLE.COM", " jane@example.com "]) | odd_text
auth = st.one_of(
    st.fixed_dictionaries({"expires": st.one_of(numbers, numeric_strings, odd_text), "hash": odd_text | numbers}),
    values,
)


def field_values(schema: dict) -> st.SearchStrategy:
    """A strategy for one field: values shaped by its schema, and anything at all besides."""
    kinds = {schema.get("type")} | {option.get("type") for option in schema.get("oneOf", [])}
    shaped: list[st.SearchStrategy] = [values]
    if "string" in kinds:
        shaped += [odd_text, long_text, numeric_strings]
        if schema.get("format") == "uri":
            shaped.append(urls)
        if schema.get("format") == "email":
            shaped.append(emails)
    if "number" in kinds or "integer" in kinds:
        shaped += [numbers, numeric_strings]
    if "object" in kinds:
        if "properties" in schema:
            shaped.append(objects(schema))
        shaped.append(nested_objects)
    return st.one_of(shaped)


def objects(schema: dict) -> st.SearchStrategy:
    """Some of the schema's properties (each drawn from field_values), plus keys nobody expects."""
    known = {name: field_values(sub) for name, sub in schema["properties"].items()}
    return st.builds(lambda chosen, extra: {**extra, **chosen},
                     st.fixed_dictionaries({}, optional=known),
                     st.dictionaries(odd_text, values, max_size=2))


SCHEMA = openapi.SNIPPET_DATA["properties"]
# Where a hostile value may go: every field the schema names (those of account, context and auth too),
# and keys it does not name, at the top, in account and in custom.
PATHS: dict[tuple[str, ...], st.SearchStrategy] = {(name,): field_values(sub) for name, sub in SCHEMA.items()}
for parent in ("account", "context", "auth"):
    PATHS.update({(parent, name): field_values(sub) for name, sub in SCHEMA[parent]["properties"].items()})
PATHS[("auth",)] = auth
PATHS[("offer_7_url",)] = urls
PATHS[("offer_1_url\n",)] = urls
odd_keys = odd_text.filter(lambda key: key not in SCHEMA)


def valid_bodies() -> st.SearchStrategy:
    """Data the demo App accepts: the hostile values are put into these, so the checks after the first
    refusal are reached too."""
    return st.fixed_dictionaries(
        {"app_id": st.just("demo"), "account": st.fixed_dictionaries(
            {"internal_id": st.sampled_from(["acct_42", "42", "acct \u00e9"])},
            optional={"value": st.sampled_from([49, 0, 12.5, "49", 10**11]),
                      "plan_term": st.sampled_from(["month", "year", "week", ""]),
                      "billing_id": st.just("cus_1"), "plan": st.just("pro")})},
        optional={"email": st.just("jane@example.com"), "subscription_id": st.sampled_from(["sub_1", 123]),
                  "save_return_url": st.just("http://127.0.0.1/account"),
                  "offer_1_url": st.just("http://localhost/offer"),
                  "custom": st.just({"seats": 3, "team": {"name": "Blue"}}),
                  "context": st.just({"locale": "fr-FR"})})


@st.composite
def snippet_bodies(draw: st.DrawFn) -> str:
    if draw(st.integers(min_value=0, max_value=19)) == 0:  # now and then, no object at all
        return json.dumps(draw(values))
    body = draw(valid_bodies())
    for _ in range(draw(st.integers(min_value=0, max_value=3))):
        where = draw(st.sampled_from(sorted(PATHS)) | st.tuples(st.sampled_from(["account", "custom"]), odd_keys)
                     | st.tuples(odd_keys))
        value = draw(PATHS.get(where, values))
        target = body
        for key in where[:-1]:
            if not isinstance(target.get(key), dict):
                target[key] = {}
            target = target[key]
        target[where[-1]] = value
    if draw(st.integers(min_value=0, max_value=9)) == 0:  # now and then, any app_id at all
        body["app_id"] = draw(st.sampled_from([" demo ", "nope", "demo\x00"]) | odd_text | values)
    # ensure_ascii writes lone surrogates as \ud800 escapes, which a page's JSON.stringify can send too;
    # NaN and the infinities become the NaN / Infinity tokens JSON does not have.
    return json.dumps(body)


def post(client, raw: str):  # noqa: ANN001, ANN201
    # In a savepoint: a database error in one example must not abort the transaction the next one runs in
    # (Hypothesis would report the replay as inconsistent rather than show the failing body).
    with transaction.atomic():
        return client.post("/precancel", data=raw, content_type="application/json")


def settle(app: App) -> None:
    # A test's examples share one database transaction: each starts with the same App.
    App.objects.filter(pk=app.pk).update(mode=app.mode)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(raw=snippet_bodies())
def test_precancel_never_answers_5xx_and_a_refusal_opens_no_session(client, demo_app, raw):
    before = CancelSession.objects.count()
    response = post(client, raw)
    assert response.status_code in {200, 400, 403, 404}, (response.status_code, response.content)
    body = response.json()
    assert body["valid"] is (response.status_code == 200)
    assert isinstance(body["message"], str) and body["message"]
    assert CancelSession.objects.count() == before + (response.status_code == 200)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=snippet_bodies())
def test_a_live_app_refuses_unsigned_data_of_any_shape_without_a_5xx(client, demo_app, raw):
    demo_app.mode = App.Mode.LIVE
    settle(demo_app)
    body = json.loads(raw)
    if isinstance(body, dict):
        body.pop("auth", None)
    response = post(client, json.dumps(body))
    assert response.status_code in {400, 403, 404}, (response.status_code, response.content)
    assert not CancelSession.objects.exists()


# --- the hosted page's POST -----------------------------------------------------------------------

form_values = st.one_of(odd_text, long_text, numeric_strings, st.sampled_from(
    ["too-expensive", "nevermind", "cancel", "accept", "continue", "back", "x" * 5001, "pause-1"]))


def _field(name: str, value: str | bytes) -> str:
    raw = value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")
    return f"{name}={quote_from_bytes(raw)}"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fields=st.dictionaries(st.sampled_from(["reason", "feedback", "accept", "action", "reason\x00", "offer"]),
                              form_values | st.binary(max_size=12), max_size=5),
       repeat=st.sampled_from(["", "&reason=too-expensive", "&action=cancel&action=accept", "&%ff=%fe"]))
def test_the_hosted_page_never_answers_5xx_whatever_is_posted(client, demo_app, snippet_data, fields, repeat):
    session = services.session_start(app=demo_app, data=clean_snippet_data(snippet_data()))
    body = "&".join(_field(name, value) for name, value in fields.items()) + repeat
    with transaction.atomic():
        response = client.generic("POST", f"/c/{session.token}", body,
                                  content_type="application/x-www-form-urlencoded")
    assert response.status_code in {200, 303, 400}, (response.status_code, response.content[:500])
    decided = Decision.objects.filter(session=session).exists()
    assert decided is (response.status_code == 303)
    # Nothing recorded twice, whatever came in.
    assert not Decision.objects.values("session").annotate(n=Count("id")).filter(n__gt=1).exists()


@pytest.mark.parametrize("token", ["%00", "a%00b", "%ed%a0%80", "%ef%bc%8f", "x" * 5000, "..", "%20"])
def test_an_odd_page_token_is_the_unknown_link_page(client, db, token):
    for method in (client.get, client.post):
        response = method(f"/c/{token}")
        assert response.status_code in {403, 404}, (method, response.status_code)
