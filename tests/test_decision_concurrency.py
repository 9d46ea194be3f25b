"""A decision is recorded once even when several POSTs for it race (double clicks, replays)."""

from __future__ import annotations

import json
import threading

import pytest
from django.db import connection, connections
from django.test import Client

from conftest import need
from flows.models import CancelSession, Decision, Event
from flows.views import CONFIRM_LATER_CANCEL


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("actions", [["cancel"] * 8, ["cancel", "nevermind"] * 4])
def test_concurrent_decision_posts_record_one_decision_and_one_event(demo_app, snippet_data, actions):
    need(connection.vendor == "postgresql", "row locks under real concurrency need PostgreSQL")
    client = Client()
    client.post("/precancel", data=json.dumps(snippet_data()), content_type="application/json")
    session = CancelSession.objects.get()

    barrier = threading.Barrier(len(actions))
    locations: list[str] = []
    shown_earlier_choice: list[str] = []
    errors: list[BaseException] = []

    def decide(action: str) -> None:
        try:
            barrier.wait(timeout=10)
            response = Client().post(f"/c/{session.token}", {"action": action, "reason": "other"})
            if response.status_code == 200:
                # A Cancel that reads the session after a Never mind committed (not blocked on its row lock)
                # is shown the earlier choice with one button that cancels: a later Cancel needs that page's
                # confirmation, never a racing click. Recorded nothing; checked below.
                assert action == "cancel" and CONFIRM_LATER_CANCEL in response.content.decode(), action
                shown_earlier_choice.append(action)
                return
            assert response.status_code == 303, response.status_code
            locations.append(response["Location"])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=decide, args=(a,)) for a in actions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert not errors, errors
    # A racer still blocked on the row lock, or one that never got an answer, is a failure too.
    assert not any(thread.is_alive() for thread in threads), "a decision POST did not finish in 30s"
    assert len(locations) + len(shown_earlier_choice) == len(actions) and locations
    assert Decision.objects.count() == 1
    assert not shown_earlier_choice or Decision.objects.get().kind == "nevermind"
    assert Event.objects.filter(session=session).count() == 1
    # Every racer was sent where the one recorded decision sends people.
    assert len(set(locations)) == 1
    assert locations[0] == Decision.objects.get().redirect_url
