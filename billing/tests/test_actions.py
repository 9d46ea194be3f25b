"""The billing channel end to end, for every provider: a decision on the hosted page's own services
becomes a BillingAction in the same transaction, a worker carries it out through the provider's
official SDK against its local server, and the test reads the effect back from that server."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from billing import services
from billing.models import BillingAction, BillingConnection
from conftest import worker_database_url
from flows import services as flow_services
from flows.models import Decision, Event
from flows.snippet_data import clean_snippet_data
from offers.models import Offer

pytestmark = pytest.mark.billing


@pytest.fixture
def connect(demo_app, fake_billing):  # noqa: ANN001, ANN201
    def make(**choices) -> BillingConnection:  # noqa: ANN003
        creds = fake_billing.credentials()
        return services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=creds.api_key,
                                        site=creds.site, api_base=creds.api_base, **choices)

    return make


@pytest.fixture
def decide(demo_app, snippet_data):  # noqa: ANN001, ANN201
    def record(kind: str = "cancel", *, subscription_id: str = "", billing_id: str = "", reason_code: str = "",
               offer_code: str = "", email: str = "jane@example.com") -> Decision:
        account = {"internal_id": "acct_42", "plan": "basic", "value": 49}
        if billing_id:
            account["billing_id"] = billing_id
        data = snippet_data(subscription_id=subscription_id or None, account=account, email=email)
        if not email:
            del data["email"]
        session = flow_services.session_start(app=demo_app, data=clean_snippet_data(data))
        return flow_services.decision_record(session=session, kind=kind, reason_code=reason_code,
                                             offer_code=offer_code)

    return record


def run(action: BillingAction) -> BillingAction:
    services.action_execute(action_id=action.pk)
    action.refresh_from_db()
    return action


def the_action(decision: Decision) -> BillingAction:
    """The decision's own action (an accepted offer's change comes before the reactivate of the save)."""
    action = BillingAction.objects.filter(session=decision.session).order_by("pk").first()
    assert action is not None, "no billing action"
    return action


def add_offer(demo_app, **fields) -> Offer:  # noqa: ANN001, ANN003
    flow = demo_app.flows.get()
    return Offer.objects.create(flow=flow, title=fields["code"], **fields)


# --- what each decision does --------------------------------------------------------------------

def test_a_cancel_ends_the_subscription_at_period_end_by_default(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    decision = decide("cancel", subscription_id=sub)
    action = the_action(decision)
    assert (action.kind, action.status, action.request["at_period_end"]) == ("cancel", "pending", True)

    action = run(action)

    assert action.status == BillingAction.Status.SUCCEEDED, action.last_error
    assert action.subscription_ids == [sub] and action.attempt_count == 1
    remote = fake_billing.remote(sub)
    assert remote.cancel_at_period_end and not remote.canceled


def test_an_immediate_cancel_is_the_apps_choice(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect(cancel_timing="immediately", cancel_prorate=True)
    sub = fake_billing.seed(customer_id="cus_jane")
    assert run(the_action(decide("cancel", subscription_id=sub))).status == "succeeded"
    assert fake_billing.remote(sub).canceled


def test_billing_says_when_a_cancel_takes_effect_as_the_provider_answered(connect, decide, fake_billing) -> None:  # noqa: ANN001
    from billing.handlers import event_billing

    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = the_action(decide("cancel", subscription_id=sub))
    assert event_billing(action.event)["effective_at"] is None  # not done yet: nothing to state
    action = run(action)
    stated = event_billing(action.event)["effective_at"]
    remote = fake_billing.remote(sub)
    assert abs((datetime.fromisoformat(stated) - remote.next_bill_at).total_seconds()) < 2


def test_an_immediate_cancel_takes_effect_when_it_was_carried_out(connect, decide, fake_billing) -> None:  # noqa: ANN001
    from billing.handlers import event_billing

    connect(cancel_timing="immediately")
    sub = fake_billing.seed(customer_id="cus_jane")
    action = run(the_action(decide("cancel", subscription_id=sub)))
    assert fake_billing.remote(sub).canceled
    stated = datetime.fromisoformat(event_billing(action.event)["effective_at"])
    assert abs((stated - action.finished_at).total_seconds()) < 2


def test_accepting_the_discount_applies_its_coupon(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = run(the_action(decide("accept", subscription_id=sub, reason_code="too-expensive",
                                   offer_code="discount-30")))
    assert (action.kind, action.status) == ("coupon", "succeeded"), action.last_error
    assert fake_billing.remote(sub).coupons == ("SAVE30",)


def test_accepting_a_pause_pauses_billing(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = run(the_action(decide("accept", subscription_id=sub, reason_code="not-using", offer_code="pause-2")))
    assert (action.kind, action.request["months"], action.status) == ("pause", 2, "succeeded"), action.last_error
    assert fake_billing.remote(sub).paused


def test_a_pause_starts_when_the_period_paid_for_ends_and_lasts_its_months(connect, decide, fake_billing) -> None:  # noqa: ANN001
    from billing.providers.base import add_months

    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    paid_until = fake_billing.remote(sub).next_bill_at
    action = run(the_action(decide("accept", subscription_id=sub, reason_code="not-using", offer_code="pause-2")))
    assert action.status == "succeeded", action.last_error
    remote = fake_billing.remote(sub)
    assert remote.paused and remote.status == "active"  # the customer keeps the period they paid for
    assert abs((remote.pause_resumes_at - add_months(paid_until, 2)).total_seconds()) < 2


@pytest.mark.parametrize("timing", ["", "renewal"])
def test_accepting_a_plan_change_moves_the_plan_now_or_at_renewal(connect, decide, demo_app, fake_billing,  # noqa: ANN001
                                                                  timing) -> None:
    connect()
    add_offer(demo_app, code="go-pro", kind=Offer.Kind.PLAN_CHANGE, plan="pro", plan_change_timing=timing)
    sub = fake_billing.seed(customer_id="cus_jane")
    action = run(the_action(decide("accept", subscription_id=sub, offer_code="go-pro")))
    if timing and fake_billing.slug == "paddle":  # Paddle cannot schedule an item change: a clear failure
        assert action.status == "failed" and "renewal" in action.last_error
        assert fake_billing.remote(sub).plan == "basic"
        return
    assert action.status == "succeeded", action.last_error
    remote = fake_billing.remote(sub)
    assert (remote.plan, remote.pending_plan) == (("basic", "pro") if timing else ("pro", ""))


def test_accepting_a_trial_extension_pushes_the_trial_end(connect, decide, demo_app, fake_billing) -> None:  # noqa: ANN001
    connect()
    add_offer(demo_app, code="more-trial", kind=Offer.Kind.TRIAL_EXTENSION, trial_days=7)
    sub = fake_billing.seed(customer_id="cus_jane", trialing=True)
    before = fake_billing.remote(sub).trial_end
    action = run(the_action(decide("accept", subscription_id=sub, offer_code="more-trial")))
    assert action.status == "succeeded", action.last_error
    assert abs((fake_billing.remote(sub).trial_end - before - timedelta(days=7)).total_seconds()) < 2
    assert sub in action.request["until"]


def test_a_trial_extension_after_the_trial_ended_pushes_the_next_bill(connect, decide, demo_app, fake_billing) -> None:  # noqa: ANN001
    connect()
    add_offer(demo_app, code="more-trial", kind=Offer.Kind.TRIAL_EXTENSION, trial_days=7)
    sub = fake_billing.seed(customer_id="cus_jane", trial_ended=True)
    before = fake_billing.remote(sub)
    assert before.trial_end is not None and before.trial_end < timezone.now()  # the provider kept it
    action = run(the_action(decide("accept", subscription_id=sub, offer_code="more-trial")))
    assert action.status == "succeeded", action.last_error
    assert action.result[sub]["changed"] is True
    after = fake_billing.remote(sub)
    assert abs((after.next_bill_at - before.next_bill_at - timedelta(days=7)).total_seconds()) < 2
    assert fake_billing.writes(sub) == 1


def test_nevermind_and_contact_support_change_nothing_in_billing_unless_a_cancel_is_scheduled(
        connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = run(the_action(decide("nevermind", subscription_id=sub)))
    assert action.kind == "reactivate"
    assert action.status == "succeeded" and action.result[sub]["changed"] is False, action.last_error
    talk = decide("accept", subscription_id=sub, reason_code="other", offer_code="talk-to-us")
    assert not BillingAction.objects.filter(session=talk.session).exists()  # a request to talk, not a save
    assert fake_billing.writes(sub) == 0


def test_nevermind_without_a_subscription_customer_or_email_asks_nothing_of_billing(connect, decide) -> None:  # noqa: ANN001
    connect()
    decide("nevermind", email="")
    assert not BillingAction.objects.exists()


def cancel_scheduled_elsewhere(fake_billing, sub: str) -> None:  # noqa: ANN001
    from billing.providers import provider_for

    provider_for(fake_billing.slug, fake_billing.credentials()).subscription_cancel(
        sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key=f"earlier_{sub}")
    assert fake_billing.remote(sub).cancel_at_period_end


def test_nevermind_removes_a_cancel_scheduled_for_the_period_end(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    cancel_scheduled_elsewhere(fake_billing, sub)
    action = run(the_action(decide("nevermind", subscription_id=sub)))
    assert (action.kind, action.status) == ("reactivate", "succeeded"), action.last_error
    remote = fake_billing.remote(sub)
    assert not remote.cancel_at_period_end and not remote.canceled
    assert services.action_retry(action=action)  # run again: nothing more is sent
    assert run(action).result[sub]["changed"] is False
    assert fake_billing.writes(sub) == 2  # the earlier cancel, and its removal


def test_an_accepted_discount_applies_the_coupon_and_removes_the_scheduled_cancel(connect, decide,  # noqa: ANN001
                                                                                  fake_billing) -> None:
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    cancel_scheduled_elsewhere(fake_billing, sub)
    decision = decide("accept", subscription_id=sub, reason_code="too-expensive", offer_code="discount-30")
    actions = list(BillingAction.objects.filter(session=decision.session).order_by("pk"))
    assert [a.kind for a in actions] == ["coupon", "reactivate"]
    for action in actions:
        assert run(action).status == "succeeded", action.last_error
    remote = fake_billing.remote(sub)
    assert remote.coupons == ("SAVE30",) and not remote.cancel_at_period_end


def test_a_customer_found_by_billing_id_keeps_the_subscription_set_to_cancel(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    kept, leaving = fake_billing.seed(customer_id="cus_two"), fake_billing.seed(customer_id="cus_two")
    cancel_scheduled_elsewhere(fake_billing, leaving)
    action = run(the_action(decide("nevermind", billing_id="cus_two")))
    assert (action.status, action.subscription_ids) == ("succeeded", [leaving]), action.last_error
    assert not fake_billing.remote(leaving).cancel_at_period_end and fake_billing.writes(kept) == 0


def test_an_app_without_a_connection_gets_no_actions(decide) -> None:  # noqa: ANN001
    decide("cancel", subscription_id="sub_x")
    assert not BillingAction.objects.exists()


def test_a_dry_run_records_what_it_would_do_and_sends_nothing(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect(dry_run=True)
    sub = fake_billing.seed(customer_id="cus_jane")
    action = run(the_action(decide("cancel", subscription_id=sub)))
    assert action.status == BillingAction.Status.SKIPPED
    assert "dry run" in action.summary and sub in action.summary
    assert fake_billing.writes(sub) == 0 and not fake_billing.remote(sub).cancel_at_period_end


# --- finding the subscription -------------------------------------------------------------------

def test_the_subscription_is_found_from_the_billing_customer(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_found")
    action = run(the_action(decide("cancel", billing_id="cus_found")))
    assert (action.status, action.subscription_ids) == ("succeeded", [sub]), action.last_error


def test_several_subscriptions_are_a_failure_not_a_guess(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    first, second = fake_billing.seed(customer_id="cus_two"), fake_billing.seed(customer_id="cus_two")
    action = run(the_action(decide("cancel", billing_id="cus_two")))
    assert action.status == "failed"
    assert "2 active subscriptions" in action.last_error
    assert fake_billing.writes(first) == fake_billing.writes(second) == 0


def test_cancel_all_subscriptions_when_the_app_says_so(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect(cancel_scope="all")
    subs = [fake_billing.seed(customer_id="cus_two"), fake_billing.seed(customer_id="cus_two")]
    action = run(the_action(decide("cancel", billing_id="cus_two")))
    assert action.status == "succeeded", action.last_error
    assert sorted(action.subscription_ids) == sorted(subs)
    assert all(fake_billing.remote(sub).cancel_at_period_end for sub in subs)


def test_no_way_to_find_the_subscription_fails_in_plain_words(connect, decide) -> None:  # noqa: ANN001
    connect()
    action = run(the_action(decide("cancel", email="")))
    assert action.status == "failed"
    assert "neither subscription_id nor account.billing_id" in action.last_error


# --- failures -----------------------------------------------------------------------------------

def test_an_unknown_coupon_fails_for_good_and_tells_every_channel(connect, decide, demo_app, fake_billing) -> None:  # noqa: ANN001
    connect()
    Offer.objects.filter(code="discount-30").update(coupon="NOPE99")
    sub = fake_billing.seed(customer_id="cus_jane")
    decision = decide("accept", subscription_id=sub, reason_code="too-expensive", offer_code="discount-30")
    action = run(the_action(decision))

    assert action.status == "failed" and "NOPE99" in action.last_error
    event = Event.objects.get(session=decision.session, type=Event.Type.BILLING_ACTION_FAILED)
    assert event.data["billing"]["error"] == action.last_error
    assert event.data["billing"]["action"] == "coupon" and event.data["offer"]["code"] == "discount-30"


def test_a_provider_outage_is_retried_later_then_succeeds(connect, decide, fake_billing, settings) -> None:  # noqa: ANN001
    # The schedule stretched tenfold (its first step, 2 s, becomes 20 s), so "not due yet" below holds on
    # however slow a machine.
    settings.BILLING_RETRY_SCALE = 10
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = the_action(decide("cancel", subscription_id=sub))
    fake_billing.fail_next(503)
    before = timezone.now()

    action = run(action)

    assert (action.status, action.attempt_count, action.last_status_code) == ("pending", 1, 503)
    # A blip is retried within seconds (the first step, 2 s with up to 10% jitter), not half a minute later.
    assert before + timedelta(seconds=20) <= action.next_attempt_at <= timezone.now() + timedelta(seconds=22)
    assert not Event.objects.filter(type=Event.Type.BILLING_ACTION_FAILED).exists()
    assert services.action_execute(action_id=action.pk).status == "skipped"  # not due yet

    BillingAction.objects.filter(pk=action.pk).update(next_attempt_at=timezone.now())
    action = run(action)
    assert (action.status, action.attempt_count) == ("succeeded", 2), action.log
    assert fake_billing.remote(sub).cancel_at_period_end and fake_billing.writes(sub) == 1


def test_a_429_waits_at_least_its_retry_after(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = the_action(decide("cancel", subscription_id=sub))
    fake_billing.fail_next(429, retry_after=900, times=3)
    before = timezone.now()
    action = run(action)
    assert action.status == "pending" and action.next_attempt_at >= before + timedelta(seconds=900)


def test_a_wrong_key_is_a_permanent_failure(demo_app, decide, fake_billing) -> None:  # noqa: ANN001
    bad = fake_billing.bad_credentials()
    services.connection_save(app=demo_app, provider=fake_billing.slug, api_key=bad.api_key, site=bad.site,
                             api_base=bad.api_base)
    action = run(the_action(decide("cancel", subscription_id=fake_billing.seed(customer_id="cus_jane"))))
    assert (action.status, action.last_status_code, action.attempt_count) == ("failed", 401, 1)


# --- exactly once -------------------------------------------------------------------------------

def test_running_an_action_twice_changes_billing_once(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    action = run(the_action(decide("accept", subscription_id=sub, reason_code="too-expensive",
                                   offer_code="discount-30")))
    assert services.action_execute(action_id=action.pk).status == "skipped"  # finished: not run again
    assert services.action_retry(action=action)  # a person presses Retry anyway
    action = run(action)

    assert action.status == "succeeded"
    assert action.result[sub]["changed"] is False
    assert fake_billing.writes(sub) == 1 and fake_billing.remote(sub).coupons == ("SAVE30",)


KILLED_AFTER_THE_ANSWER = textwrap.dedent("""
    import os, sys
    import django
    django.setup()
    from billing import services

    keep = services._keep

    def die_once_the_provider_answered(action, lease_until, **fields):
        if "result" in fields:
            os._exit(9)  # the provider changed the subscription; we die before our commit
        return keep(action, lease_until, **fields)

    services._keep = die_once_the_provider_answered
    services.action_execute(action_id=int(sys.argv[1]))
    sys.exit(3)  # not reached: the worker was meant to die
""")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("kind", ["cancel", "accept"])
def test_a_worker_killed_between_the_providers_answer_and_our_commit_changes_billing_once(
        connect, decide, fake_billing, kind) -> None:  # noqa: ANN001
    from django.db import connection

    from conftest import need

    need(connection.vendor == "postgresql", "a second process shares the test database only on PostgreSQL")
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    decision = decide(kind, subscription_id=sub, reason_code="too-expensive",
                      offer_code="discount-30" if kind == "accept" else "")
    action = the_action(decision)
    env = {**os.environ, "DATABASE_URL": worker_database_url(), "DJANGO_SETTINGS_MODULE": "brightback_site.settings"}
    worker = subprocess.run([sys.executable, "-c", KILLED_AFTER_THE_ANSWER, str(action.pk)], env=env,
                            capture_output=True, text=True, timeout=60)
    assert worker.returncode == 9, worker.stderr[-2000:]
    assert fake_billing.writes(sub) == 1  # the change went through
    action.refresh_from_db()
    assert action.status == BillingAction.Status.RUNNING  # and nothing of it was recorded

    # The dead worker's lease runs out; the next worker takes the action over.
    BillingAction.objects.filter(pk=action.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    action = run(action)

    assert action.status == "succeeded", action.last_error
    assert action.result[sub]["changed"] is False
    assert fake_billing.writes(sub) == 1


# --- the sweeper and confirmed saves ------------------------------------------------------------

def test_the_sweeper_publishes_an_action_the_broker_lost(connect, decide, fake_billing, settings) -> None:  # noqa: ANN001
    settings.CELERY_TASK_ALWAYS_EAGER = True
    from brightback_site.celery import app as celery_app

    celery_app.conf.task_always_eager = True
    try:
        connect()
        sub = fake_billing.seed(customer_id="cus_jane")
        action = the_action(decide("cancel", subscription_id=sub))
        BillingAction.objects.filter(pk=action.pk).update(next_attempt_at=timezone.now() - timedelta(minutes=5))
        assert services.actions_sweep() == 1
    finally:
        celery_app.conf.task_always_eager = False
    action.refresh_from_db()
    assert action.status == "succeeded" and fake_billing.remote(sub).cancel_at_period_end


@pytest.mark.parametrize("still_paying", [True, False])
def test_a_save_is_confirmed_only_while_the_billing_system_says_they_pay(connect, decide, fake_billing,  # noqa: ANN001
                                                                         settings, still_paying) -> None:
    connect()
    sub = fake_billing.seed(customer_id="cus_jane")
    decision = decide("nevermind", subscription_id=sub)
    saved_at = timezone.now() - timedelta(days=settings.SAVE_WATCH_DAYS + 1)
    Decision.objects.filter(pk=decision.pk).update(created_at=saved_at)
    if not still_paying:  # canceled in the billing system directly, not on our page
        from billing.providers import provider_for

        provider_for(fake_billing.slug, fake_billing.credentials()).subscription_cancel(
            sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key="direct")

    flow_services.saves_confirm_due()

    confirmed = Event.objects.filter(session=decision.session, type=Event.Type.SAVE_CONFIRMED).exists()
    assert confirmed is still_paying


def test_a_later_cancel_after_an_accepted_offer_cancels_as_the_app_says(connect, decide, fake_billing) -> None:  # noqa: ANN001
    from flows.later_cancel import decision_cancel_later

    connect(cancel_timing="immediately", cancel_prorate=True)
    sub = fake_billing.seed(customer_id="cus_jane")
    accepted = decide("accept", subscription_id=sub, reason_code="too-expensive", offer_code="discount-30")
    assert run(the_action(accepted)).status == "succeeded"

    cancel = decision_cancel_later(session=accepted.session)

    action = BillingAction.objects.get(session=accepted.session, kind="cancel")
    assert action.decision_id == cancel.pk and action.request["at_period_end"] is False
    assert run(action).status == BillingAction.Status.SUCCEEDED, action.last_error
    assert fake_billing.remote(sub).canceled


def test_the_cancel_button_says_now_only_when_billing_cancels_at_once(connect, client, demo_app,  # noqa: ANN001
                                                                       snippet_data) -> None:
    import json

    def label() -> str:
        answer = client.post("/precancel", json.dumps(snippet_data()), content_type="application/json").json()
        return client.get(answer["url"]).content.decode()

    assert "Cancel at the end of the billing period" in label()
    connect(cancel_timing="immediately")
    assert "Cancel my subscription now" in label()


def test_one_wake_up_carries_out_every_due_action(connect, decide, fake_billing) -> None:  # noqa: ANN001
    connect()
    subs = [fake_billing.seed(customer_id=f"cus_{n}") for n in range(3)]
    actions = [the_action(decide("cancel", subscription_id=sub, email=f"c{n}@example.com"))
               for n, sub in enumerate(subs)]

    done = services.actions_execute_due(action_id=actions[1].pk, eager=True)

    assert sorted(pk for pk, _ in done.results) == sorted(a.pk for a in actions)
    assert set(BillingAction.objects.values_list("status", flat=True)) == {BillingAction.Status.SUCCEEDED}
    assert [fake_billing.writes(sub) for sub in subs] == [1, 1, 1]


def test_which_billing_systems_keep_a_cancels_own_words_is_known_without_importing_them() -> None:
    from billing.providers import CANCEL_COMMENT_KEPT, PROVIDER_MODULES, provider_class

    assert {slug for slug in PROVIDER_MODULES if provider_class(slug).takes_cancel_comment} == CANCEL_COMMENT_KEPT
