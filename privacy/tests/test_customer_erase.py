"""customer_erase removes one customer's personal data from every table, and customer_export prints it all.

The central promise is checked the way an auditor would: every row of every table of the database, as
text, before and after. Rows are made by the flow's own services (a session, a decision, its event and
each channel's outbox rows), then finished as a worker would leave them, with answers that echo the
customer's data, as receivers and mail servers do.
"""

from __future__ import annotations

import io
import json
from datetime import timedelta
from decimal import Decimal

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.management import CommandError, call_command
from django.db import connection
from django.utils import timezone

from alerts.models import AlertDelivery, AlertRule, AlertSettings
from billing.models import BillingAction, BillingConnection, SavePayment
from evidence.models import Step
from flows import services
from flows.models import App, CancelSession, Decision, Event, Flow, Variant, VariantAssignment
from reports import services as reports
from reports.models import DailyOfferStat, DailyReasonStat, DailyStat
from webhooks.models import Delivery, DeliveryAttempt, Endpoint

from .test_inventory import EXPORTED_WITH_SESSIONS

pytestmark = pytest.mark.django_db

JANE = {"email": "Jane.Doe@example.com", "account": "acct_4242", "subscription": "sub_jane77",
        "billing": "cus_janebilling", "feedback": "Your support ignored my ticket about invoices twice"}
BOB = {"email": "bob.smith@example.org", "account": "acct_7007", "subscription": "sub_bob88",
       "billing": "cus_bobbilling", "feedback": "Too expensive for our small team of bakers"}


def customer_data(snippet_data, who: dict) -> dict:  # noqa: ANN001
    return snippet_data(
        email=who["email"], subscription_id=who["subscription"], first_name=who["email"].split(".")[0],
        account={"internal_id": who["account"], "billing_id": who["billing"], "plan": "pro", "value": 49,
                 "company_name": f"{who['account']} Bakery"},
        custom={"phone": f"+1 555 {who['account'][-4:]}"},
        context={"locale": "en", "url": f"https://app.example.com/account?user={who['account']}"},
    )


def cancel(app: App, data: dict, feedback: str) -> CancelSession:
    session = services.session_start(app=app, data=data)
    services.decision_record(session=session, kind="cancel", reason_code="too-expensive", feedback=feedback)
    return session


def finish_as_workers_do(session: CancelSession, who: dict) -> None:
    """What workers leave behind: receivers' answers echoing the body, a mail server naming the address,
    the billing system's answer naming the subscription."""
    now = timezone.now()
    for delivery in Delivery.objects.filter(event__session=session):
        DeliveryAttempt.objects.create(
            delivery=delivery, number=1, url=delivery.endpoint.url, status_code=200,
            outcome=DeliveryAttempt.Outcome.SUCCEEDED,
            response_body=json.dumps({"received": delivery.payload["data"]})[:1000], error="")
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SUCCEEDED, delivered_at=now)
    AlertDelivery.objects.filter(event__session=session).update(
        status=AlertDelivery.Status.SUCCEEDED, sent_at=now,
        last_answer=f"250 2.0.0 Ok: queued for <{who['email']}>")
    BillingAction.objects.filter(session=session).update(
        status=BillingAction.Status.SUCCEEDED, finished_at=now, subscription_ids=[who["subscription"]],
        result={who["subscription"]: {"status": "canceled", "customer": who["billing"]}},
        summary=f"Canceled {who['subscription']} of {who['billing']} at the end of the period",
        log=[{"attempt": 1, "at": now.isoformat(), "outcome": "succeeded",
              "detail": f"found {who['subscription']} for {who['billing']}"}])


@pytest.fixture
def two_customers(demo_app: App, snippet_data, django_user_model, settings):  # noqa: ANN001, ANN201
    settings.BRIGHTBACK_CUSTOMER_EMAILS = []  # the alerts channel's own receipt, not the receipts channel's
    staff = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    Endpoint.objects.create(app=demo_app, url="https://hooks.example.com/bb")
    AlertRule.objects.create(app=demo_app, events=["session.canceled"], recipients=["team@example.com"])
    AlertSettings.objects.create(app=demo_app, cancellation_receipt=True)
    BillingConnection.objects.create(app=demo_app, provider="stripe", dry_run=True)
    for flow in Flow.objects.filter(app=demo_app):  # an experiment: each customer's variant is kept for them
        Variant.objects.create(flow=flow, code="a", weight=1)
    demo_app.offer_blocklist = f"someone@example.net\n{JANE['email'].upper()}\n{BOB['account']}"
    demo_app.save()
    sessions = {}
    for who in (JANE, BOB):
        sessions[who["email"]] = [cancel(demo_app, customer_data(snippet_data, who), who["feedback"])]
        assert VariantAssignment.objects.filter(account_key=f"id:{who['account']}").exists()
    # Jane came back under a new address: the account id ties this session to her too.
    moved = customer_data(snippet_data, JANE) | {"email": "jane.new@example.com"}
    sessions[JANE["email"]].append(services.session_start(app=demo_app, data=moved))
    for who in (JANE, BOB):
        for session in sessions[who["email"]]:
            finish_as_workers_do(session, who)
        # Staff resent the receipt: the admin's history describes an alert by its recipient.
        receipt = AlertDelivery.objects.get(event__session=sessions[who["email"]][0], kind=AlertDelivery.Kind.RECEIPT)
        LogEntry.objects.log_actions(user_id=staff.pk, queryset=[receipt], action_flag=CHANGE,
                                     change_message="Resent", single_object=True)
    return sessions


def database_dump() -> str:
    """Every row of every table, as PostgreSQL writes it out (what pg_dump would carry)."""
    if connection.vendor != "postgresql":
        pytest.skip("the dump reads every table as text through PostgreSQL")
    lines = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f"SELECT t::text FROM {connection.ops.quote_name(table)} t")
            lines += [f"{table}: {row[0]}" for row in cursor.fetchall()]
    return "\n".join(lines)


def naming(dump: str, who: dict) -> list[str]:
    values = [who["email"].lower(), who["account"].lower(), who["feedback"].lower(), who["subscription"],
              who["billing"], "jane.new@example.com" if who is JANE else who["email"].lower()]
    return [line[:200] for line in dump.lower().splitlines() if any(value in line for value in values)]


def report_numbers() -> list:
    def values(model) -> list:  # noqa: ANN001
        return sorted(tuple(v for k, v in row.items() if k != "id") for row in model.objects.values())
    return [values(DailyStat), values(DailyReasonStat), values(DailyOfferStat)]


def erase(*args: str) -> str:
    out = io.StringIO()
    call_command("customer_erase", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_after_customer_erase_no_row_of_the_database_names_the_customer(two_customers):
    reports.rollups_refresh_all()
    numbers, dump = report_numbers(), database_dump()
    assert naming(dump, JANE), "the test must start with Jane's data in the database"
    bob_before = naming(dump, BOB)

    printed = erase("--app", "demo", "--email", "jane.doe@EXAMPLE.com")

    after = database_dump()
    assert naming(after, JANE) == []
    assert naming(after, BOB) == bob_before  # another customer's data is untouched
    assert report_numbers() == numbers  # the rollups are not touched…
    reports.rollups_refresh_all()
    assert report_numbers() == numbers  # …and counting again from the rows gives the same numbers
    assert "flows.CancelSession: 2 changed" in printed
    assert "webhooks.DeliveryAttempt: 1 changed" in printed
    assert "billing.BillingAction: 1 changed" in printed
    assert "admin.LogEntry: 1 changed" in printed


def test_erasing_keeps_what_reports_count(two_customers):
    erase("--app", "demo", "--account-id", JANE["account"])
    session = CancelSession.objects.get(pk=two_customers[JANE["email"]][0].pk)
    decision = Decision.objects.get(session=session)
    assert session.erased_at is not None and session.email == "" and session.subscription_id == ""
    assert session.account_internal_id.startswith("erased-")
    # One customer stays one account for reports that count accounts.
    assert {s.account_internal_id for s in CancelSession.objects.filter(erased_at__isnull=False)} \
        == {session.account_internal_id}
    assert session.data == {"app_id": "demo", "account": {"plan": "pro", "value": 49}, "context": {"locale": "en"}}
    assert session.monthly_value == Decimal("49.00") and session.status == CancelSession.Status.DECIDED
    assert (decision.kind, decision.reason_code, decision.feedback, decision.redirect_url) == \
        ("cancel", "too-expensive", "", "")
    event = Event.objects.get(session=session)
    assert event.type == "session.canceled" and event.data["reason"]["code"] == "too-expensive"
    assert event.data["email"] is None and event.data["feedback"] == ""
    action = BillingAction.objects.get(session=session)
    assert (action.kind, action.status, action.provider) == ("cancel", "succeeded", "stripe")
    assert action.summary == "Canceled [erased] of [erased] at the end of the period"
    receipt = AlertDelivery.objects.get(event=event, kind=AlertDelivery.Kind.RECEIPT)
    assert receipt.recipients == [] and receipt.status == AlertDelivery.Status.SUCCEEDED
    team = AlertDelivery.objects.get(event=event, kind=AlertDelivery.Kind.TEAM_EMAIL)
    assert team.recipients == ["team@example.com"]
    assert not VariantAssignment.objects.filter(account_key=f"id:{JANE['account']}").exists()
    assert VariantAssignment.objects.filter(account_key=f"id:{BOB['account']}").exists()
    assert App.objects.get(app_id="demo").offer_blocklist == f"someone@example.net\n{BOB['account']}"


def test_customer_erase_twice_changes_nothing_the_second_time(two_customers):
    erase("--app", "demo", "--email", JANE["email"])
    dump = database_dump()
    printed = erase("--app", "demo", "--email", JANE["email"])
    assert "Nothing left to erase." in printed and "Sessions of this customer: 0" in printed
    assert database_dump() == dump


def test_an_open_page_stops_working_once_its_customer_is_erased(demo_app: App, snippet_data, client):  # noqa: ANN001
    session = services.session_start(app=demo_app, data=customer_data(snippet_data, JANE))
    erase("--app", "demo", "--email", JANE["email"])
    page = client.get(f"/c/{session.token}")
    assert JANE["email"].lower() not in page.content.decode().lower()
    assert not CancelSession.objects.get(pk=session.pk).is_open


def test_a_billing_action_still_to_be_carried_out_holds_the_erasure_back(demo_app: App, snippet_data):  # noqa: ANN001
    BillingConnection.objects.create(app=demo_app, provider="stripe", dry_run=True)
    session = cancel(demo_app, customer_data(snippet_data, JANE), JANE["feedback"])
    action = BillingAction.objects.get(session=session)
    assert action.status == BillingAction.Status.PENDING
    with pytest.raises(CommandError, match=f"Nothing was erased: billing action {action.public_id}"):
        erase("--app", "demo", "--email", JANE["email"])
    assert CancelSession.objects.get(pk=session.pk).email == JANE["email"]
    assert Decision.objects.get(session=session).feedback == JANE["feedback"]

    BillingAction.objects.filter(pk=action.pk).update(status=BillingAction.Status.SKIPPED)
    erase("--app", "demo", "--email", JANE["email"])
    assert BillingAction.objects.get(pk=action.pk).request["subscription_id"] == "[erased]"


def test_a_pending_receipt_to_an_erased_customer_is_not_sent(demo_app: App, snippet_data, settings):  # noqa: ANN001
    settings.BRIGHTBACK_CUSTOMER_EMAILS = []  # the alerts channel's own receipt, not the receipts channel's
    AlertSettings.objects.create(app=demo_app, cancellation_receipt=True)
    session = cancel(demo_app, customer_data(snippet_data, JANE), "")
    erase("--app", "demo", "--email", JANE["email"])
    receipt = AlertDelivery.objects.get(event__session=session, kind=AlertDelivery.Kind.RECEIPT)
    assert receipt.status == AlertDelivery.Status.FAILED and receipt.recipients == []
    assert "erased" in receipt.last_error


@pytest.mark.parametrize("args, message", [
    (["--app", "nope", "--email", "a@example.com"], "No such app: nope"),
    (["--app", "demo", "--email", "  "], "Give the customer's --email or --account-id"),
])
def test_customer_erase_refuses_unclear_arguments(demo_app: App, args: list[str], message: str):
    with pytest.raises(CommandError, match=message):
        erase(*args)


def test_customer_erase_wants_exactly_one_way_to_find_the_customer(demo_app: App):
    with pytest.raises(CommandError):
        erase("--app", "demo", "--email", "a@example.com", "--account-id", "x")
    with pytest.raises(CommandError):
        erase("--app", "demo")


def paid_after_the_save(session: CancelSession) -> SavePayment:
    """What the billing system reported paid over the watch window, and a step of the session's page."""
    Step.objects.create(session=session, at=session.created_at, kind="view", source="page", name="reasons",
                        controls=["reason:too-expensive", "cancel"])
    return SavePayment.objects.create(session=session, currency="USD", amount=Decimal("49.00"), invoices=1,
                                      window_end=session.created_at + timedelta(days=30))


def test_customer_export_prints_all_that_is_held_about_the_customer(two_customers):
    payment = paid_after_the_save(two_customers[JANE["email"]][0])
    paid_after_the_save(two_customers[BOB["email"]][0])
    out = io.StringIO()
    call_command("customer_export", "--app", "demo", "--email", JANE["email"], stdout=out)
    held = json.loads(out.getvalue())
    assert held["app_id"] == "demo"
    assert set(held["identifiers"]["emails"]) == {JANE["email"].lower(), "jane.new@example.com"}
    assert held["identifiers"]["account_ids"] == [JANE["account"]]
    assert len(held["flows"]["sessions"]) == 2 and all("token" not in s for s in held["flows"]["sessions"])
    assert [d["feedback"] for d in held["flows"]["decisions"]] == [JANE["feedback"]]
    assert held["flows"]["variant_assignments"][0]["account_key"] == f"id:{JANE['account']}"
    assert held["flows"]["offer_blocklist"] == [{"entry": JANE["email"].upper()}]
    assert held["webhooks"]["deliveries"][0]["payload"]["data"]["email"] == JANE["email"]
    assert JANE["email"] in held["webhooks"]["attempts"][0]["response_body"]
    assert {a["kind"] for a in held["alerts"]["deliveries"]} == {"team_email", "receipt"}
    assert all("slack_webhook_url" not in a for a in held["alerts"]["deliveries"])
    assert held["billing"]["actions"][0]["request"]["subscription_id"] == JANE["subscription"]
    assert [(p["id"], p["amount"], p["currency"], p["invoices"]) for p in held["billing"]["save_payments"]] == \
        [(payment.pk, "49.00", "USD", 1)]
    assert [step["name"] for step in held["evidence"]["steps"]] == ["reasons"]
    for app_label, name in EXPORTED_WITH_SESSIONS.values():  # every table of the sessions has its place
        assert isinstance(held[app_label][name], list), (app_label, name)
    text = out.getvalue().lower()
    assert BOB["email"] not in text and BOB["feedback"].lower() not in text


def test_customer_export_of_an_erased_customer_finds_nothing(two_customers):
    payment = paid_after_the_save(two_customers[JANE["email"]][0])
    erase("--app", "demo", "--email", JANE["email"])
    # What was paid stays for revenue kept (it names nobody once the session is erased)…
    kept = SavePayment.objects.get(pk=payment.pk)
    assert (kept.amount, kept.currency, kept.session_id) == (payment.amount, "USD", payment.session_id)
    out = io.StringIO()
    call_command("customer_export", "--app", "demo", "--email", JANE["email"], stdout=out)
    held = json.loads(out.getvalue())
    assert held["flows"]["sessions"] == [] and held["billing"]["actions"] == []
    assert held["billing"]["save_payments"] == [] and held["evidence"]["steps"] == []  # …and is no one's now
