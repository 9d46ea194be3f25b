"""selectors.session_by_token builds its query once; it must hand back exactly what the ORM would."""

from __future__ import annotations

import pytest

from flows import selectors, services
from flows.models import CancelSession
from flows.snippet_data import clean_snippet_data

pytestmark = pytest.mark.django_db


def same_fields(ours: object, orm: object) -> None:
    assert type(ours) is type(orm)
    for field in orm._meta.concrete_fields:  # type: ignore[attr-defined]
        assert getattr(ours, field.attname) == getattr(orm, field.attname), field.name
    assert ours._state.adding is False and ours._state.db == orm._state.db  # type: ignore[attr-defined]


@pytest.mark.parametrize("decided", [False, True])
def test_session_by_token_matches_the_orm_field_for_field(demo_app, snippet_data, decided):
    session = services.session_start(app=demo_app, data=clean_snippet_data(snippet_data(
        custom={"seats": 3, "team": {"name": "Blue"}})))
    if decided:
        services.decision_record(session=session, kind="cancel", reason_code="too-expensive", feedback="pricey")
    orm = CancelSession.objects.select_related("app", "flow", "decision").get(token=session.token)
    ours = selectors.session_by_token(session.token)

    same_fields(ours, orm)
    same_fields(ours.app, orm.app)
    assert ours.app.secret == demo_app.secret  # decrypted, as the ORM does
    same_fields(ours.flow, orm.flow)
    assert ours.data["custom"]["team"] == {"name": "Blue"}
    if decided:
        same_fields(ours.decision, orm.decision)
        assert ours.decision.session is ours
    else:
        assert getattr(ours, "decision", None) is None


def test_an_unknown_or_malformed_token_is_none(db):
    assert selectors.session_by_token("A" * 43) is None
    assert selectors.session_by_token("../../etc/passwd") is None


def test_an_app_change_in_another_process_retires_this_process_copy(demo_app, django_capture_on_commit_callbacks):
    from flows.models import App

    first = selectors.app_by_public_id("demo")
    assert selectors.app_by_public_id("demo") is first  # served from memory
    version, _ = selectors._apps["demo"]

    with django_capture_on_commit_callbacks(execute=True):
        App.objects.filter(pk=demo_app.pk).update(mode=App.Mode.LIVE)
        selectors.app_changed(app_id="demo")
    # Another process still holds the copy it read under the old version: it must not be served.
    selectors._apps["demo"] = (version, first)
    fresh = selectors.app_by_public_id("demo")
    assert fresh is not first and fresh.is_live


def test_saving_an_app_anywhere_retires_the_copies(demo_app, django_capture_on_commit_callbacks):
    assert selectors.app_by_public_id("demo").support_email != "new-help@example.com"
    with django_capture_on_commit_callbacks(execute=True):
        demo_app.support_email = "new-help@example.com"
        demo_app.save()
    assert selectors.app_by_public_id("demo").support_email == "new-help@example.com"


def test_a_rotated_secret_is_the_one_precancel_checks_at_once(client, demo_app, snippet_data,
                                                               django_capture_on_commit_callbacks):
    import json
    import time

    from flows import signing
    from flows.models import App

    App.objects.filter(pk=demo_app.pk).update(mode=App.Mode.LIVE)
    selectors.app_changed(app_id="demo")
    old = selectors.app_by_public_id("demo").secret
    with django_capture_on_commit_callbacks(execute=True):
        new = services.app_rotate_secret(app=App.objects.get(pk=demo_app.pk))
    expires = int(time.time()) + 600

    def post(secret: str) -> int:
        auth = {"expires": expires, "hash": signing.embed_hash(secret=secret, app_id="demo", internal_id="acct_42",
                                                               expires=expires, subscription_id="sub_1",
                                                               email="jane@example.com")}
        return client.post("/precancel", data=json.dumps({**snippet_data(), "auth": auth}),
                           content_type="application/json").status_code

    assert post(old) == 403
    assert post(new) == 200


def test_without_a_cache_that_answers_the_app_is_read_from_the_database(demo_app, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                                   "LOCATION": "redis://127.0.0.1:1/0",
                                   "OPTIONS": {"socket_connect_timeout": 0.2, "socket_timeout": 0.2}}}
    assert selectors.app_by_public_id("demo").pk == demo_app.pk
    assert "demo" not in selectors._apps


def test_the_page_query_is_prepared_once_per_connection_and_answers_as_the_plain_one(client, demo_app, snippet_data,
                                                                                    settings):
    import json

    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from conftest import need, prepared_runs

    need(connection.vendor == "postgresql", "prepared statements are PostgreSQL's")
    response = client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    token = response.json()["url"].rsplit("/", 1)[1]
    with CaptureQueriesContext(connection) as first:
        prepared = selectors.session_by_token(token)
    [ran] = [q["sql"] for q in first]
    assert "$1" in ran and token not in ran  # the token sent apart from the statement
    (_, runs_before), = prepared_runs(ran)  # prepared by the driver, one statement per connection
    with CaptureQueriesContext(connection) as second:
        assert selectors.session_by_token(token).pk == prepared.pk
    assert [q["sql"] for q in second] == [ran]
    assert prepared_runs(ran) == [(False, runs_before + 1)]

    settings.DB_PREPARED_STATEMENTS = False  # behind a pooler
    with CaptureQueriesContext(connection) as plain_queries:
        plain = selectors.session_by_token(token)
    assert plain_queries[0]["sql"].startswith("SELECT")
    for model_a, model_b in [(plain, prepared), (plain.app, prepared.app), (plain.flow, prepared.flow)]:
        fields = [f.attname for f in type(model_a)._meta.concrete_fields]
        assert [getattr(model_a, f) for f in fields] == [getattr(model_b, f) for f in fields]
