"""A wake-up starts a run: it sends every due alert, several at once, and rows written while a wake-up
waits in the queue publish no other (brightback_site.outbox_runs)."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from django.utils import timezone

from alerts import services
from alerts.models import AlertDelivery
from brightback_site import outbox, outbox_runs

Status = AlertDelivery.Status


@pytest.fixture
def published(monkeypatch) -> list[tuple[str, list]]:  # noqa: ANN001
    """The messages the outbox publishes, caught before the broker."""
    sent: list[tuple[str, list]] = []
    monkeypatch.setattr(outbox, "publish", lambda task, *, args, countdown=None: sent.append((task.name, args)) or True)
    return sent


@pytest.fixture
def published_with_countdown(monkeypatch) -> list[tuple[str, list, float | None]]:  # noqa: ANN001
    sent: list[tuple[str, list, float | None]] = []
    monkeypatch.setattr(outbox, "publish",
                        lambda task, *, args, countdown=None: sent.append((task.name, args, countdown)) or True)
    return sent


def alert_wake_ups(published: list[tuple[str, list]]) -> int:
    return sum(1 for name, _ in published if name == "alerts.send")


@pytest.mark.django_db(transaction=True)
def test_one_wake_up_sends_every_due_alert_and_a_slow_one_holds_up_no_other(smtp, settings, make_rule, decide,
                                                                             monkeypatch):
    settings.EMAIL_TIMEOUT = 30  # the held message waits for release(), not for the client to give up
    monkeypatch.setattr(outbox_runs, "RUN_SECONDS", 60.0)
    smtp.hold = True  # the first message sent waits until released
    make_rule()
    for n in range(5):
        decide("cancel", email=f"c{n}@example.com")
    first = AlertDelivery.objects.order_by("pk").first()
    assert AlertDelivery.objects.filter(status=Status.PENDING).count() == 5

    done: list[outbox_runs.Run] = []
    run = threading.Thread(target=lambda: done.append(services.deliveries_send_due(delivery_id=first.pk)))
    run.start()
    try:
        smtp.holding.wait(10)
        # While one SMTP conversation hangs, the run's other threads send the other four.
        assert len(smtp.wait_for(4, timeout=15)) == 4
        assert run.is_alive()
    finally:
        smtp.release()
        run.join(30)

    [result] = done
    assert len(result.results) == 5 and not result.out_of_time
    statuses = sorted(AlertDelivery.objects.values_list("status", flat=True))
    assert statuses == [Status.PENDING] + [Status.SUCCEEDED] * 4  # the held one is retried (a 451)


@pytest.mark.django_db(transaction=True)
def test_a_run_out_of_time_gives_back_nothing_unsent_and_wakes_its_channel_again(smtp, make_rule, decide,
                                                                                 monkeypatch, published):
    monkeypatch.setattr(outbox_runs, "RUN_SECONDS", 0.0)  # every run stops after its first row
    make_rule()
    for n in range(3):
        decide("cancel", email=f"c{n}@example.com")
    first = AlertDelivery.objects.order_by("pk").first()
    published.clear()

    result = services.deliveries_send_due(delivery_id=first.pk, eager=True)

    assert [pk for pk, _ in result.results] == [first.pk] and result.out_of_time
    assert AlertDelivery.objects.filter(status=Status.PENDING).count() == 2  # never claimed: free for any run
    assert [(name, args) for name, args in published if name == "alerts.send"] == [("alerts.send", [first.pk])]


def test_rows_written_while_a_wake_up_waits_publish_no_other(make_rule, decide, published,
                                                             django_capture_on_commit_callbacks):
    make_rule(recipients=["help@desk.example.com"], slack_webhook_url="https://hooks.slack.com/services/T000/B000/XXXX")
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="a@example.com")
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="b@example.com")
    assert AlertDelivery.objects.count() == 4  # email and Slack for each decision
    assert alert_wake_ups(published) == 1  # one wake-up waits for all four

    outbox_runs.gate_open("alerts.send")  # a run took it: the next row wakes another
    with django_capture_on_commit_callbacks(execute=True):
        decide("cancel", email="c@example.com")
    assert alert_wake_ups(published) == 2


def test_the_sweeper_wakes_lost_alerts_whatever_the_gate(make_rule, decide, published, settings):
    settings.OUTBOX_PUBLISH_GRACE_SECONDS = 60
    make_rule()
    for n in range(outbox_runs.RUN_THREADS + 1):
        decide("cancel", email=f"c{n}@example.com")
    AlertDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    published.clear()

    # One wake-up for every RUN_THREADS rows: each run sends any due row, several at once.
    assert services.deliveries_sweep() == 2
    assert alert_wake_ups(published) == 2


def test_retries_falling_due_together_share_one_wake_up(smtp, make_rule, decide, published_with_countdown):
    smtp.answers = ["421 4.3.2 Busy, try again"] * 3
    make_rule()
    for n in range(3):
        decide("cancel", email=f"c{n}@example.com")
    first = AlertDelivery.objects.order_by("pk").first()
    published_with_countdown.clear()

    services.deliveries_send_due(delivery_id=first.pk, eager=True)

    assert AlertDelivery.objects.filter(status=Status.PENDING, attempt_count=1).count() == 3
    [(name, countdown)] = [(n, c) for n, _, c in published_with_countdown if n == "alerts.send"]
    due = AlertDelivery.objects.order_by("-next_attempt_at").values_list("next_attempt_at", flat=True).first()
    # Woken when the last of them is due, so its run finds all three due.
    assert 2 <= countdown <= 2.2 and due <= timezone.now() + timedelta(seconds=countdown)


def test_one_sweep_message_a_tick_sweeps_every_channel(make_rule, decide, published, settings):
    from brightback_site.celery import outbox_sweep

    settings.OUTBOX_PUBLISH_GRACE_SECONDS = 60
    make_rule()
    decide("cancel")
    AlertDelivery.objects.update(next_attempt_at=timezone.now() - timedelta(minutes=5))
    published.clear()

    assert [entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()].count("outbox.sweep") == 1
    assert not {"webhooks.sweep", "billing.sweep", "alerts.sweep", "receipts.sweep"} & {
        entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}
    assert outbox_sweep() >= 1
    assert alert_wake_ups(published) == 1
