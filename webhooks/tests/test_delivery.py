"""One delivery attempt against a real receiver on 127.0.0.1: what is sent, and what each answer does."""

from __future__ import annotations

import random
import threading
import time
from datetime import timedelta

import pytest
from django.core import mail
from django.db.models import Q
from django.utils import timezone

from webhooks import attempts, endpoints, services
from webhooks.models import Delivery, DeliveryAttempt, Endpoint
from webhooks.testing import always, in_turn

pytestmark = pytest.mark.django_db

Outcome = DeliveryAttempt.Outcome


def test_delivery_carries_everything_a_billing_update_needs_and_verifies(receiver, make_endpoint, delivery_for):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint, "cancel", reason_code="too-expensive", feedback="Too pricey",
                            custom={"seats": 3, "team": {"name": "Blue"}})

    assert services.delivery_attempt(delivery_id=delivery.pk).outcome == Outcome.SUCCEEDED

    [got] = receiver.snapshot()
    assert got.verified, "standardwebhooks could not verify the delivery"
    event = delivery.event
    assert got.headers["webhook-id"] == event.id
    assert abs(int(got.headers["webhook-timestamp"]) - time.time()) < 10
    assert got.headers["content-type"] == "application/json"
    assert "x-hub-signature" not in got.headers
    body = got.payload
    assert body["type"] == "session.canceled"
    assert body["timestamp"].endswith("Z")
    data = body["data"]
    assert data["event_id"] == event.id
    assert data["app_id"] == "demo" and data["session_id"] == event.session.public_id
    assert data["email"] == "jane@example.com" and data["subscription_id"] == "sub_1"
    assert data["account"]["internal_id"] == "acct_42"
    assert data["reason"] == {"code": "too-expensive", "label": "It’s too expensive"}
    assert data["feedback"] == "Too pricey"
    assert data["offer"] is None
    assert data["custom"] == {"seats": 3, "team": {"name": "Blue"}}
    stored = Delivery.objects.get(pk=delivery.pk)
    assert stored.status == Delivery.Status.SUCCEEDED and stored.delivered_at is not None
    assert stored.last_status_code == 200


def test_accepted_offer_is_in_the_payload(receiver, make_endpoint, delivery_for):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint, "accept", reason_code="too-expensive", offer_code="discount-30")
    services.delivery_attempt(delivery_id=delivery.pk)
    data = receiver.snapshot()[0].payload["data"]
    assert receiver.snapshot()[0].payload["type"] == "offer.accepted"
    assert data["offer"]["code"] == "discount-30" and data["offer"]["type"] == "discount"
    assert data["offer"]["terms"]["coupon"] == "SAVE30"


def test_hub_signature_is_sent_when_the_endpoint_asks_for_it(receiver, make_endpoint, delivery_for):
    from webhooks import signing

    endpoint = make_endpoint(receiver.url, receiver=receiver, send_hub_signature=True)
    services.delivery_attempt(delivery_id=delivery_for(endpoint).pk)
    [got] = receiver.snapshot()
    assert got.headers["x-hub-signature"] == signing.hub_signature(secret=endpoint.secret, body=got.body)


def test_attempt_row_records_status_duration_and_first_kb_of_the_answer(receiver, make_endpoint, delivery_for):
    receiver.respond = always(500, body=b"x" * 5000)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.number == 1 and attempt.status_code == 500 and attempt.error == "HTTP 500"
    assert attempt.response_body == "x" * 1024
    assert attempt.duration_ms is not None and attempt.outcome == Outcome.RETRYING


def test_receiver_error_schedules_the_next_attempt_on_the_standard_webhooks_schedule(
        receiver, make_endpoint, delivery_for):
    receiver.respond = always(500)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    before = timezone.now()

    result = services.delivery_attempt(delivery_id=delivery.pk)

    assert result.outcome == Outcome.RETRYING and 5 <= result.retry_in <= 5.5
    stored = Delivery.objects.get(pk=delivery.pk)
    assert stored.status == Delivery.Status.PENDING and stored.attempt_count == 1
    assert before + timedelta(seconds=5) <= stored.next_attempt_at <= timezone.now() + timedelta(seconds=5.5)
    # Not due yet: a message arriving now sends nothing.
    assert services.delivery_attempt(delivery_id=delivery.pk).outcome == "skipped"
    assert len(receiver.snapshot()) == 1


def test_retry_schedule_follows_standard_webhooks_and_lasts_about_three_days():
    steady = random.Random(0)
    steady.uniform = lambda a, b: 0.0  # no jitter: the bare schedule
    delays = [services.retry_delay(attempt_number=n, rng=steady) for n in range(1, services.MAX_ATTEMPTS + 1)]
    assert delays[:7] == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert delays[-1] is None  # the last attempt is final
    total_days = sum(d for d in delays if d) / 86400
    assert 2.5 < total_days < 3.2


def test_retry_delays_have_jitter_and_are_scaled_by_the_setting(settings):
    delays = {services.retry_delay(attempt_number=3) for _ in range(20)}
    assert len(delays) > 1 and all(1800 <= d <= 1980 for d in delays)
    settings.WEBHOOK_RETRY_SCALE = 0.001
    assert 1.8 <= services.retry_delay(attempt_number=3) <= 1.98


def test_302_is_a_failure_and_the_redirect_is_not_followed(receiver, make_endpoint, delivery_for):
    receiver.respond = lambda got: (302, {"Location": "/elsewhere"}, b"") if got.path == "/hooks" else (200, {}, b"")
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)

    result = services.delivery_attempt(delivery_id=delivery.pk)

    assert result.outcome == Outcome.RETRYING
    assert [got.path for got in receiver.snapshot()] == ["/hooks"]
    attempt = DeliveryAttempt.objects.get(delivery=delivery)
    assert attempt.status_code == 302 and "not followed" in attempt.error
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.PENDING


def test_410_disables_the_endpoint_and_tells_the_team(receiver, make_endpoint, delivery_for, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    receiver.respond = always(410)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    second = delivery_for(endpoint, "nevermind")

    result = services.delivery_attempt(delivery_id=delivery.pk)

    assert result.outcome == Outcome.FAILED and result.retry_in is None
    endpoint.refresh_from_db()
    assert not endpoint.is_active and endpoint.state == "disabled"
    assert endpoint.disabled_reason.startswith("webhook.endpoint_disabled: the receiver answered 410")
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.FAILED
    [message] = mail.outbox
    assert message.to == ["support@example.com"] and endpoint.url in message.subject
    # What was still queued for it is not sent, and no new event is queued for it.
    assert services.delivery_attempt(delivery_id=second.pk).outcome == Outcome.FAILED
    assert Delivery.objects.get(pk=second.pk).last_error == "endpoint disabled"
    assert len(receiver.snapshot()) == 1


def test_no_deliveries_are_written_for_a_disabled_endpoint(receiver, make_endpoint, decide):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    endpoints.endpoint_disable(endpoint=endpoint, reason="testing")
    decide()
    assert not Delivery.objects.filter(endpoint=endpoint).exists()


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured_on_429_and_503(receiver, make_endpoint, delivery_for, status):
    receiver.respond = always(status, {"Retry-After": "120"})
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    result = services.delivery_attempt(delivery_id=delivery_for(endpoint).pk)
    assert 120 <= result.retry_in <= 132  # instead of the schedule's 5 s


def test_retry_after_as_an_http_date_is_honoured(receiver, make_endpoint, delivery_for):
    from email.utils import format_datetime

    when = timezone.now() + timedelta(minutes=10)
    receiver.respond = always(503, {"Retry-After": format_datetime(when, usegmt=True)})
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    result = services.delivery_attempt(delivery_id=delivery_for(endpoint).pk)
    assert 590 <= result.retry_in <= 660


def test_retry_after_on_a_500_is_ignored(receiver, make_endpoint, delivery_for):
    receiver.respond = always(500, {"Retry-After": "3600"})
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    assert services.delivery_attempt(delivery_id=delivery_for(endpoint).pk).retry_in <= 5.5


def test_a_receiver_that_does_not_answer_in_time_is_a_retryable_failure(receiver, make_endpoint, delivery_for,
                                                                        settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.5
    release = threading.Event()
    receiver.respond = lambda got: (release.wait(5), (200, {}, b""))[1]
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    try:
        result = services.delivery_attempt(delivery_id=delivery_for(endpoint).pk)
    finally:
        release.set()
    assert result.outcome == Outcome.RETRYING
    assert DeliveryAttempt.objects.get().error == "timed out after 0.5 s"


def test_a_refused_connection_is_a_retryable_failure(make_endpoint, delivery_for):
    import socket

    with socket.socket() as placeholder:  # a port nobody listens on
        placeholder.bind(("127.0.0.1", 0))
        port = placeholder.getsockname()[1]
    endpoint = make_endpoint(f"http://127.0.0.1:{port}/hooks")
    result = services.delivery_attempt(delivery_id=delivery_for(endpoint).pk)
    assert result.outcome == Outcome.RETRYING
    assert DeliveryAttempt.objects.get().error.startswith("connection failed")


def test_the_last_attempt_failing_marks_the_delivery_failed(receiver, make_endpoint, delivery_for):
    receiver.respond = always(500)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(attempt_count=services.MAX_ATTEMPTS - 1)

    result = services.delivery_attempt(delivery_id=delivery.pk)

    assert result.outcome == Outcome.FAILED and result.retry_in is None
    stored = Delivery.objects.get(pk=delivery.pk)
    assert stored.status == Delivery.Status.FAILED and stored.attempt_count == services.MAX_ATTEMPTS


def test_a_delivery_failing_for_good_is_logged_with_its_ids(receiver, make_endpoint, delivery_for, caplog):
    import json
    import logging

    from pythonjsonlogger.json import JsonFormatter

    receiver.respond = always(500)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    Delivery.objects.filter(pk=delivery.pk).update(attempt_count=services.MAX_ATTEMPTS - 1)

    with caplog.at_level(logging.WARNING, logger="webhooks.services"):
        services.delivery_attempt(delivery_id=delivery.pk)

    record = next(r for r in caplog.records if "failed for good" in r.getMessage())
    line = json.loads(JsonFormatter("%(levelname)s %(message)s").format(record))  # as production writes it
    assert (line["delivery_id"], line["event_id"], line["endpoint_id"]) == (delivery.pk, delivery.message_id,
                                                                             endpoint.pk)


def test_an_endpoint_failing_for_days_is_disabled(receiver, make_endpoint, delivery_for, settings):
    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    receiver.respond = always(500)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    endpoint.refresh_from_db()
    assert endpoint.state == "failing" and endpoint.is_active

    Endpoint.objects.filter(pk=endpoint.pk).update(
        failing_since=timezone.now() - timedelta(hours=settings.WEBHOOK_DISABLE_AFTER_HOURS + 1))
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    services.delivery_attempt(delivery_id=delivery.pk)

    endpoint.refresh_from_db()
    assert endpoint.state == "disabled" and "every attempt failed since" in endpoint.disabled_reason
    assert len(mail.outbox) == 1


def test_a_success_clears_the_failing_state(receiver, make_endpoint, delivery_for):
    receiver.respond = in_turn((500, {}, b""))
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)
    Delivery.objects.filter(pk=delivery.pk).update(next_attempt_at=timezone.now())
    services.delivery_attempt(delivery_id=delivery.pk)
    endpoint.refresh_from_db()
    assert endpoint.state == "active" and endpoint.failing_since is None


def test_running_the_task_twice_sends_once(receiver, make_endpoint, delivery_for):
    from webhooks.tasks import webhook_deliver

    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    assert webhook_deliver.run(endpoint.pk) == 1
    assert webhook_deliver.run(endpoint.pk) == 0
    assert len(receiver.snapshot()) == 1
    assert DeliveryAttempt.objects.filter(delivery=delivery).count() == 1


def test_concurrent_claims_send_once(receiver, make_endpoint, delivery_for):
    # The compare-and-set claim: of two workers handed the same message, one sends.
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    now = timezone.now()
    claim = Delivery.objects.filter(pk=delivery.pk, status=Delivery.Status.PENDING)
    assert claim.update(status=Delivery.Status.SENDING, lease_expires_at=now + timedelta(minutes=1)) == 1
    assert services.delivery_attempt(delivery_id=delivery.pk).outcome == "skipped"
    assert receiver.snapshot() == []


def test_an_expired_lease_is_taken_over_and_the_lost_attempt_marked_interrupted(
        receiver, make_endpoint, delivery_for):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    # What a worker killed mid-POST leaves behind: a claim and an unfinished attempt row.
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENDING,
                                                   lease_expires_at=timezone.now() - timedelta(seconds=1))
    DeliveryAttempt.objects.create(delivery=delivery, number=1, url=endpoint.url)

    assert services.delivery_attempt(delivery_id=delivery.pk).outcome == Outcome.SUCCEEDED

    outcomes = list(DeliveryAttempt.objects.filter(delivery=delivery).order_by("number")
                    .values_list("number", "outcome"))
    assert outcomes == [(1, Outcome.INTERRUPTED), (2, Outcome.SUCCEEDED)]
    assert receiver.ids() == {delivery.message_id}
    assert Delivery.objects.get(pk=delivery.pk).attempt_count == 2


def test_redelivery_sends_again_under_the_same_webhook_id(receiver, make_endpoint, delivery_for,
                                                           django_capture_on_commit_callbacks, monkeypatch):
    published: list[list[int]] = []
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: published.append(ids) or len(ids))
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    services.delivery_attempt(delivery_id=delivery.pk)

    with django_capture_on_commit_callbacks(execute=True):
        assert services.delivery_redeliver(delivery=delivery)
    assert published == [[endpoint.pk]]
    services.delivery_attempt(delivery_id=delivery.pk)

    got = receiver.snapshot()
    assert len(got) == 2 and {g.webhook_id for g in got} == {delivery.event_id}
    assert got[0].body == got[1].body  # the same payload, byte for byte
    stored = Delivery.objects.get(pk=delivery.pk)
    assert stored.status == Delivery.Status.SUCCEEDED and stored.attempt_count == 1
    assert stored.attempts.count() == 2


def test_redelivery_is_refused_while_the_delivery_is_being_sent(make_endpoint, delivery_for, receiver):
    delivery = delivery_for(make_endpoint(receiver.url, receiver=receiver))
    Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SENDING)
    assert not services.delivery_redeliver(delivery=delivery)


def test_test_events_are_tried_once_and_do_not_count_against_the_endpoint(receiver, make_endpoint):
    receiver.respond = always(500)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = services.endpoint_send_test(endpoint=endpoint)

    result = services.delivery_attempt(delivery_id=delivery.pk)

    assert result.outcome == Outcome.FAILED and result.retry_in is None
    [got] = receiver.snapshot()
    assert got.verified and got.payload["type"] == "webhook.test" and got.payload["data"]["test"] is True
    assert got.webhook_id == got.payload["data"]["event_id"]
    endpoint.refresh_from_db()
    assert endpoint.failing_since is None and endpoint.is_active


def test_test_event_reaches_a_disabled_endpoint(receiver, make_endpoint):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    endpoints.endpoint_disable(endpoint=endpoint, reason="testing")
    delivery = services.endpoint_send_test(endpoint=endpoint)
    assert services.delivery_attempt(delivery_id=delivery.pk).outcome == Outcome.SUCCEEDED


def test_secret_rotation_signs_with_both_secrets_during_the_overlap_then_only_the_new(
        receiver, make_endpoint, delivery_for, settings):
    endpoint = make_endpoint(receiver.url)
    old = endpoint.secret
    new = endpoints.endpoint_secret_rotate(endpoint=endpoint)
    assert new != old and new.startswith("whsec_")

    receiver.secrets[:] = [old]  # a receiver not yet updated
    services.delivery_attempt(delivery_id=delivery_for(endpoint).pk)
    receiver.secrets[:] = [new]  # one already updated
    services.delivery_attempt(delivery_id=delivery_for(endpoint, "nevermind").pk)
    assert [g.verified for g in receiver.snapshot()] == [True, True]
    assert len(receiver.snapshot()[0].headers["webhook-signature"].split(" ")) == 2

    Endpoint.objects.filter(pk=endpoint.pk).update(previous_secret_expires_at=timezone.now())
    receiver.secrets[:] = [old]
    services.delivery_attempt(delivery_id=delivery_for(endpoint, "accept", offer_code="discount-30").pk)
    assert receiver.snapshot()[-1].verified is False
    assert len(receiver.snapshot()[-1].headers["webhook-signature"].split(" ")) == 1


def test_sweeper_wakes_endpoints_of_lost_and_orphaned_deliveries_once_per_grace_period(
        make_endpoint, delivery_for, receiver, monkeypatch, settings):
    settings.WEBHOOK_PUBLISH_GRACE_SECONDS = 60
    woken: list[tuple[list[int], bool]] = []
    monkeypatch.setattr(services, "endpoints_wake",
                        lambda ids, force=False, **_: woken.append((ids, force)) or len(ids))
    lost_to, orphaned_to, quiet = (make_endpoint(f"{receiver.url}/{n}", receiver=receiver) for n in range(3))
    now = timezone.now()
    delivery_for(quiet)  # just woken on commit: not the sweeper's business yet
    lost = delivery_for(lost_to, "nevermind")
    orphaned = delivery_for(orphaned_to, "accept", offer_code="discount-30")
    held = delivery_for(quiet, "cancel", email="held@example.com")
    done = delivery_for(quiet, "cancel", email="done@example.com")
    Delivery.objects.filter(pk=lost.pk).update(next_attempt_at=now - timedelta(minutes=5))
    Delivery.objects.filter(pk=orphaned.pk).update(status=Delivery.Status.SENDING,
                                                   lease_expires_at=now - timedelta(seconds=1))
    Delivery.objects.filter(pk=held.pk).update(status=Delivery.Status.SENDING,
                                               lease_expires_at=now + timedelta(minutes=5))
    Delivery.objects.filter(pk=done.pk).update(status=Delivery.Status.SUCCEEDED,
                                               next_attempt_at=now - timedelta(minutes=5))

    assert services.deliveries_sweep(now=now) == 2
    # Forced: a wake-up flag left set by a lost message must not stop the sweeper.
    assert woken == [(sorted([lost_to.pk, orphaned_to.pk]), True)]
    # Swept rows do not wake their endpoint on every beat tick while the wake-up is still queued...
    woken.clear()
    assert services.deliveries_sweep(now=now + timedelta(seconds=30)) == 0
    # ...but again once the grace period has passed without a worker taking them (and by now the
    # fresh one is overdue too). A live lease and a finished delivery are never the reason.
    assert services.deliveries_sweep(now=now + timedelta(seconds=61)) == 3
    assert woken == [(sorted([lost_to.pk, orphaned_to.pk, quiet.pk]), True)]


def test_an_endpoint_is_woken_once_however_many_deliveries_wait(make_endpoint, decide, monkeypatch,
                                                                  django_capture_on_commit_callbacks):
    from webhooks.tasks import webhook_deliver

    sent: list[list] = []
    monkeypatch.setattr(webhook_deliver, "apply_async", lambda args, countdown=None, **kwargs: sent.append(args))
    endpoint = make_endpoint("http://127.0.0.1:9/hooks")
    for n in range(5):
        with django_capture_on_commit_callbacks(execute=True):
            decide("cancel", email=f"c{n}@example.com")
    assert sent == [[endpoint.pk]]  # one queued wake-up covers all five
    services.endpoint_deliver_due(endpoint_id=endpoint.pk, budget_seconds=0)  # a worker takes it...
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="after@example.com")
    assert sent == [[endpoint.pk], [endpoint.pk]]  # ...so the next event wakes it again


def test_draining_an_endpoint_sends_everything_due_and_running_it_again_sends_nothing(
        receiver, make_endpoint, decide, monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: 0)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    other = make_endpoint(f"{receiver.url}/other", receiver=receiver)
    for n in range(7):
        decide("cancel", email=f"c{n}@example.com")

    result = services.endpoint_deliver_due(endpoint_id=endpoint.pk, batch_size=3)

    assert result.sent == 7
    assert len([g for g in receiver.snapshot() if g.path == "/hooks"]) == 7
    assert set(Delivery.objects.filter(endpoint=endpoint).values_list("status", flat=True)) == {"succeeded"}
    assert set(Delivery.objects.filter(endpoint=other).values_list("status", flat=True)) == {"pending"}
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 0
    assert len(receiver.snapshot()) == 7


def test_a_drain_out_of_time_gives_back_what_it_did_not_send(receiver, make_endpoint, decide, monkeypatch):
    woken: list[list[int]] = []
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: woken.append(ids) or 1)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(3):
        decide("cancel", email=f"c{n}@example.com")
    receiver.respond = lambda got: (time.sleep(0.3), (200, {}, b""))[1]  # each answer outlasts the budget

    result = services.endpoint_deliver_due(endpoint_id=endpoint.pk, budget_seconds=0.2)

    assert result.sent == 1
    statuses = sorted(Delivery.objects.values_list("status", flat=True))
    assert statuses == ["pending", "pending", "succeeded"]
    assert not Delivery.objects.filter(lease_expires_at__isnull=False).exists()
    assert woken == [[endpoint.pk]]  # another run picks up the rest


def test_a_receiver_answering_5xx_backs_off_as_a_whole_after_a_few_attempts(
        receiver, make_endpoint, decide, monkeypatch):
    woken: list[tuple[list[int], float | None]] = []
    monkeypatch.setattr(services, "endpoints_wake",
                        lambda ids, force=False, countdown=None: woken.append((ids, countdown)) or 1)
    receiver.respond = always(503)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(6):
        decide("cancel", email=f"c{n}@example.com")

    result = services.endpoint_deliver_due(endpoint_id=endpoint.pk)

    assert result.sent == services.TROUBLE_IN_A_ROW == len(receiver.snapshot())
    # The others were given back untouched: still due, no attempt spent, nobody holding them.
    untouched = Delivery.objects.filter(attempt_count=0)
    assert untouched.count() == 3 and set(untouched.values_list("status", flat=True)) == {"pending"}
    assert not Delivery.objects.filter(lease_expires_at__isnull=False).exists()
    # The endpoint backs off as a whole; its one next look is queued for the backoff's end.
    endpoint.refresh_from_db()
    assert endpoint.troubled_runs == 1 and endpoint.backoff_until is not None
    assert woken == [([endpoint.pk], result.backoff)] and 5 <= result.backoff <= 5.5
    # A wake-up meanwhile (a new event's, a stray one) sends nothing to it.
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 0
    assert len(receiver.snapshot()) == services.TROUBLE_IN_A_ROW


def test_a_receiver_that_does_not_answer_costs_one_timeout_per_backoff(receiver, make_endpoint, decide,
                                                                      monkeypatch, settings):
    settings.WEBHOOK_TIMEOUT_SECONDS = 0.3
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, countdown=None: 1)
    answered = threading.Event()
    receiver.respond = lambda got: (answered.wait(5), (200, {}, b""))[1]  # hangs past the timeout
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(4):
        decide("cancel", email=f"c{n}@example.com")
    try:
        first = services.endpoint_deliver_due(endpoint_id=endpoint.pk)
        assert first.sent == 1 and first.backoff is not None
        # Back after the backoff (time moved on by hand): one more attempt, and a doubled backoff.
        Endpoint.objects.filter(pk=endpoint.pk).update(backoff_until=timezone.now() - timedelta(seconds=1))
        second = services.endpoint_deliver_due(endpoint_id=endpoint.pk)
    finally:
        answered.set()
    assert second.sent == 1 and 10 <= second.backoff <= 11
    assert Delivery.objects.filter(attempt_count=0).count() == 2


def test_a_receiver_refusing_one_message_does_not_hold_up_the_others(receiver, make_endpoint, decide):
    receiver.respond = in_turn((400, {}, b"bad customer id"))
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(3):
        decide("cancel", email=f"c{n}@example.com")

    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 3
    assert sorted(Delivery.objects.values_list("status", flat=True)) == ["pending", "succeeded", "succeeded"]


def test_a_lost_attempt_stays_counted_when_its_takeover_is_given_back_unsent(
        receiver, make_endpoint, decide, monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: 0)
    monkeypatch.setattr(services, "TROUBLE_IN_A_ROW", 1)  # the first 503 stops the run
    receiver.respond = in_turn((503, {}, b"busy"))
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    decide("cancel", email="first@example.com")
    decide("cancel", email="orphan@example.com")
    first, orphan = Delivery.objects.filter(endpoint=endpoint).order_by("next_attempt_at")
    # A worker killed mid-POST left the second one claimed, with an unfinished attempt.
    Delivery.objects.filter(pk=orphan.pk).update(status=Delivery.Status.SENDING,
                                                 lease_expires_at=timezone.now() - timedelta(seconds=1))
    DeliveryAttempt.objects.create(delivery=orphan, number=1, url=endpoint.url)

    # The next run takes both over, but the receiver is in trouble: the orphan goes back unsent...
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 1
    # ...and the run after the endpoint's backoff sends it.
    Endpoint.objects.filter(pk=endpoint.pk).update(backoff_until=None)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 1

    outcomes = list(orphan.attempts.order_by("number").values_list("number", "outcome"))
    assert outcomes == [(1, Outcome.INTERRUPTED), (2, Outcome.SUCCEEDED)]
    assert Delivery.objects.get(pk=orphan.pk).attempt_count == 2
    assert Delivery.objects.get(pk=first.pk).status == Delivery.Status.PENDING


def test_deliveries_queued_for_a_disabled_endpoint_all_fail_in_one_run(receiver, make_endpoint, decide, monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: 0)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(3):
        decide("cancel", email=f"c{n}@example.com")
    endpoints.endpoint_disable(endpoint=endpoint, reason="testing")

    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 3

    assert set(Delivery.objects.values_list("status", "last_error")) == {(Delivery.Status.FAILED, "endpoint disabled")}
    assert receiver.snapshot() == []


def test_successes_recorded_together_keep_each_answer(receiver, make_endpoint, decide, monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: 0)
    receiver.respond = in_turn((200, {}, b"first"), (201, {}, b"second"), (202, {}, b"third"))
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(3):
        decide("cancel", email=f"c{n}@example.com")
    started = timezone.now()

    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 3

    deliveries = list(Delivery.objects.filter(endpoint=endpoint).order_by("next_attempt_at", "pk"))
    assert [d.last_status_code for d in deliveries] == [200, 201, 202]
    for delivery, body in zip(deliveries, ["first", "second", "third"], strict=True):
        assert delivery.status == Delivery.Status.SUCCEEDED and delivery.attempt_count == 1
        assert delivery.lease_expires_at is None and delivery.last_error == ""
        assert started <= delivery.delivered_at <= timezone.now()
        attempt = delivery.attempts.get()
        assert (attempt.number, attempt.outcome, attempt.response_body) == (1, Outcome.SUCCEEDED, body)
        assert attempt.status_code == delivery.last_status_code and attempt.duration_ms is not None


def test_a_worker_lost_before_recording_its_successes_leaves_every_attempt_counted(
        receiver, make_endpoint, decide, monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: 0)
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    for n in range(2):
        decide("cancel", email=f"c{n}@example.com")
    # The worker POSTs both, then dies before recording the answers.
    record = attempts.Successes.record
    monkeypatch.setattr(attempts.Successes, "record", lambda self: None)
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 2
    assert set(Delivery.objects.values_list("status", flat=True)) == {Delivery.Status.SENDING}
    assert set(DeliveryAttempt.objects.values_list("outcome", flat=True)) == {Outcome.IN_PROGRESS}

    monkeypatch.setattr(attempts.Successes, "record", record)
    Delivery.objects.update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.endpoint_deliver_due(endpoint_id=endpoint.pk).sent == 2

    for delivery in Delivery.objects.all():
        outcomes = list(delivery.attempts.order_by("number").values_list("number", "outcome"))
        assert outcomes == [(1, Outcome.INTERRUPTED), (2, Outcome.SUCCEEDED)]
        assert delivery.status == Delivery.Status.SUCCEEDED and delivery.attempt_count == 2
    # Sent again under the same webhook-id, byte for byte, as after a worker killed mid-POST.
    by_id: dict[str, set[bytes]] = {}
    for got in receiver.snapshot():
        by_id.setdefault(got.webhook_id, set()).add(got.body)
    assert len(receiver.snapshot()) == 4 and all(len(bodies) == 1 for bodies in by_id.values())


def test_successes_recorded_after_another_worker_took_the_claim_over_change_nothing(
        receiver, make_endpoint, delivery_for):
    endpoint = make_endpoint(receiver.url, receiver=receiver)
    delivery = delivery_for(endpoint)
    claim = services._claim(Q(pk=delivery.pk), limit=1)
    successes = attempts.Successes(claim.lease_until)
    services._send(claim.rows[0], endpoint=endpoint, lease_until=claim.lease_until, successes=successes)
    # Its lease ran out before it recorded the answer: another worker took it over.
    Delivery.objects.filter(pk=delivery.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    assert services.delivery_attempt(delivery_id=delivery.pk).outcome == Outcome.SUCCEEDED
    after_takeover = Delivery.objects.get(pk=delivery.pk)

    successes.record()

    assert Delivery.objects.get(pk=delivery.pk).updated_at == after_takeover.updated_at
    outcomes = list(delivery.attempts.order_by("number").values_list("number", "outcome"))
    assert outcomes == [(1, Outcome.INTERRUPTED), (2, Outcome.SUCCEEDED)]
