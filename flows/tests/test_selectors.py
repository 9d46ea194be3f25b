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
