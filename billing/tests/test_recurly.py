"""Recurly beyond the shared contract: what our provider puts on the wire, and that the local Recurly
refuses what Recurly's own description rules out (so the contract suite cannot pass on a wrong name)."""

from __future__ import annotations

import base64
import http.client
import json
from datetime import UTC, datetime, timedelta

import pytest

from billing.providers import ProviderError, provider_for
from billing.providers.base import Credentials, add_months
from billing.testing.recurly_server import RecurlyFake

pytestmark = pytest.mark.billing


def months_ahead(months: int) -> datetime:
    return add_months(datetime.now(UTC), months)


@pytest.fixture
def fake(recurly_fake: RecurlyFake) -> RecurlyFake:
    return recurly_fake  # conftest.py: the module's local Recurly, reset


def send(fake: RecurlyFake, method: str, path: str, body: dict | None = None, *, key: str | None = None,
         accept: str = "application/vnd.recurly.v2021-02-25") -> tuple[int, dict]:
    """One raw request, as any HTTP client would send it."""
    auth = base64.b64encode(f"{key or fake.api_key}:".encode()).decode()
    conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
    try:
        conn.request(method, path, json.dumps(body) if body is not None else None,
                     {"Authorization": f"Basic {auth}", "Accept": accept, "Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read())
    finally:
        conn.close()


def writes_sent(fake: RecurlyFake) -> list[dict]:
    return [r for r in fake.received if r["method"] != "GET"]


# --- the local Recurly holds requests to the spec ---------------------------------------------------

@pytest.mark.parametrize(("path", "body", "param"), [
    ("/cancel", {"timeframe": "now"}, ""),  # not in TimeframeEnum
    ("/cancel", {"time_frame": "term_end"}, "time_frame"),  # a name the spec does not have
    ("/pause", {}, ""),  # remaining_pause_cycles is required
    ("/pause", {"remaining_pause_cycles": "two"}, ""),
])
def test_a_request_that_breaks_the_spec_is_refused_and_changes_nothing(fake, path, body, param) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_spec")
    status, answer = send(fake, "PUT", f"/subscriptions/{sub}{path}", body)
    assert status == 422
    assert answer["error"]["type"] == "validation"
    assert answer["error"]["message"]
    if param:
        assert answer["error"]["params"] == [{"param": param}]
    assert fake.writes(sub) == 0
    assert fake.remote(sub).status == "active" and not fake.remote(sub).paused


def test_an_unknown_query_parameter_or_enum_value_is_refused(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_spec")
    assert send(fake, "DELETE", f"/subscriptions/{sub}?refund=everything")[0] == 422
    assert send(fake, "DELETE", f"/subscriptions/{sub}?prorate=true")[0] == 422
    assert not fake.remote(sub).canceled and fake.writes(sub) == 0


def test_a_wrong_key_gets_recurlys_401_and_no_api_version_gets_406(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_spec")
    status, answer = send(fake, "GET", f"/subscriptions/{sub}", key="not-the-key")
    assert (status, answer["error"]["type"]) == (401, "unauthorized")
    status, answer = send(fake, "GET", f"/subscriptions/{sub}", accept="application/json")
    assert (status, answer["error"]["type"]) == (406, "invalid_api_version")


def test_an_answer_that_breaks_the_spec_is_caught_before_it_leaves() -> None:
    from billing.testing.recurly_spec import SpecError, check_response

    check_response("get", "/subscriptions/abc", {}, 200, json.dumps({"id": "abc", "state": "active"}).encode())
    with pytest.raises(SpecError) as caught:
        check_response("get", "/subscriptions/abc", {}, 200, json.dumps({"id": "abc", "state": "asleep"}).encode())
    assert caught.value.status == 500 and "asleep" in caught.value.message


# --- what the provider sends ------------------------------------------------------------------------

def test_every_write_carries_the_actions_idempotency_key_and_the_sdks_auth(fake) -> None:  # noqa: ANN001
    provider = provider_for("recurly", fake.credentials())
    sub = fake.seed(customer_id="cus_wire")
    trial = fake.seed(customer_id="cus_wire", trialing=True)
    provider.coupon_apply(sub, coupon="SAVE30", idempotency_key="bb_test_coupon")
    provider.subscription_pause(sub, months=2, resumes_at=months_ahead(2), idempotency_key="bb_test_pause")
    provider.plan_change(sub, plan="pro", at_renewal=True, prorate=False, idempotency_key="bb_test_plan")
    until = fake.remote(trial).trial_end + timedelta(days=3)
    provider.trial_extend(trial, until=until, idempotency_key="bb_test_trial")
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False,
                                 idempotency_key="bb_test_cancel")
    sent = writes_sent(fake)
    assert [(r["method"], r["path"].rsplit("/", 1)[-1], r["headers"].get("idempotency-key")) for r in sent] == [
        ("POST", "active", "bb_test_coupon"),
        ("PUT", "pause", "bb_test_pause"),
        ("POST", "change", "bb_test_plan"),
        ("PUT", trial, "bb_test_trial"),
        ("PUT", "cancel", "bb_test_cancel"),
    ]
    assert [json.loads(r["body"]) for r in sent] == [
        {"coupon_id": json.loads(sent[0]["body"])["coupon_id"], "subscription_id": sub},
        {"remaining_pause_cycles": 2},
        {"plan_code": "pro", "quantity": 1, "timeframe": "renewal"},
        {"next_bill_date": until.replace(microsecond=0).isoformat()},
        {"timeframe": "term_end"},
    ]
    assert all(r["headers"]["authorization"] == "Basic " + base64.b64encode(f"{fake.api_key}:".encode()).decode()
               for r in fake.received)
    assert abs((fake.remote(trial).trial_end - until).total_seconds()) < 2


@pytest.mark.parametrize(("prorate", "refund", "invoice_now", "query", "money_back"), [
    (True, False, True, {"refund": "none", "charge": "true"}, False),  # prorate is a credit: Recurly has none
    (False, True, False, {"refund": "partial", "charge": "false"}, True),  # the App chose to refund
    (False, False, False, {"refund": "none", "charge": "false"}, False),
])
def test_cancel_now_refunds_money_only_when_the_app_chose_to_refund(fake, prorate, refund, invoice_now,  # noqa: ANN001
                                                                    query, money_back) -> None:
    provider = provider_for("recurly", fake.credentials())
    sub = fake.seed(customer_id="cus_now")
    result = provider.subscription_cancel(sub, at_period_end=False, prorate=prorate, invoice_now=invoice_now,
                                          idempotency_key="bb_test_now", refund=refund)
    [terminate] = writes_sent(fake)
    assert (terminate["method"], terminate["query"]) == ("DELETE", query)
    assert result.subscription.status == "expired" and fake.remote(sub).canceled
    refunded = fake.refunded(sub)
    assert refunded is not None and (refunded > 0) is money_back  # the server carried the refund out


def test_the_server_refunds_as_its_refund_parameter_says(fake) -> None:  # noqa: ANN001
    amounts = {}
    for refund in ("none", "partial", "full"):
        sub = fake.seed(customer_id=f"cus_{refund}", quantity=2)
        status, _ = send(fake, "DELETE", f"/subscriptions/{sub}?refund={refund}")
        assert status == 200
        amounts[refund] = fake.refunded(sub)
    assert amounts["none"] == 0.0 and 0 < amounts["partial"] <= amounts["full"] == 20.0


def test_a_plan_change_sends_the_quantity_recurly_would_otherwise_reset_to_one(fake) -> None:  # noqa: ANN001
    provider = provider_for("recurly", fake.credentials())
    sub = fake.seed(customer_id="cus_team", quantity=4, extra_items=(("seats", 2),))
    bare = fake.seed(customer_id="cus_bare", quantity=4)
    status, _ = send(fake, "POST", f"/subscriptions/{bare}/change", {"plan_code": "pro", "timeframe": "now"})
    assert status == 201 and fake.items(bare) == [("pro", 1)]  # the API's default: the seats are gone
    provider.plan_change(sub, plan="pro", at_renewal=False, prorate=True, idempotency_key="k")
    assert fake.items(sub) == [("pro", 4), ("seats", 2)]
    [change] = [r for r in writes_sent(fake) if r["path"].endswith(f"{sub}/change")]
    assert json.loads(change["body"]) == {"plan_code": "pro", "quantity": 4, "timeframe": "now"}


def test_the_server_refuses_a_plan_without_the_subscriptions_currency(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_usd")
    status, _ = send(fake, "POST", f"/subscriptions/{sub}/change", {"plan_code": "basic-eur", "timeframe": "now"})
    assert status == 422 and fake.items(sub) == [("basic", 1)]


def test_cancel_now_after_cancel_at_period_end_still_ends_it_now(fake) -> None:  # noqa: ANN001
    provider = provider_for("recurly", fake.credentials())
    sub = fake.seed(customer_id="cus_now")
    provider.subscription_cancel(sub, at_period_end=True, prorate=False, invoice_now=False, idempotency_key="k1")
    assert provider.subscription_cancel(sub, at_period_end=False, prorate=False, invoice_now=False,
                                        idempotency_key="k2").changed
    assert fake.remote(sub).canceled and fake.writes(sub) == 2


def test_a_pause_of_zero_months_is_refused_without_asking_recurly(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_pause")
    with pytest.raises(ProviderError) as caught:
        provider_for("recurly", fake.credentials()).subscription_pause(sub, months=0, resumes_at=months_ahead(0),
                                                                       idempotency_key="k")
    assert caught.value.retryable is False
    assert fake.received == []


def test_a_customers_subscriptions_are_read_across_pages_newest_first(fake) -> None:  # noqa: ANN001
    seeded = [fake.seed(customer_id="cus_many") for _ in range(203)]  # the provider asks for pages of 200
    got = provider_for("recurly", fake.credentials()).subscriptions_for_customer("cus_many")
    assert [s.id for s in got] == seeded[::-1]
    assert ["ids" in r["query"] for r in fake.received] == [False, True]  # the second page came from `next`


def test_an_unknown_customer_is_a_permanent_404_naming_them(fake) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider_for("recurly", fake.credentials()).subscriptions_for_customer("cus_nobody")
    assert (caught.value.status_code, caught.value.retryable) == (404, False)
    assert "cus_nobody" in caught.value.message
    assert fake.received[0]["path"] == "/accounts/code-cus_nobody/subscriptions"


def test_a_provider_recovers_its_connection_after_a_timeout(fake) -> None:  # noqa: ANN001
    provider = provider_for("recurly", fake.credentials(timeout=0.3))
    sub = fake.seed(customer_id="cus_slow")
    fake.stall_next(1.0)
    with pytest.raises(ProviderError) as caught:
        provider.subscription_get(sub)
    assert caught.value.retryable is True
    assert provider.subscription_get(sub).id == sub


def test_a_server_error_without_retry_after_is_retryable_with_no_delay_given(fake) -> None:  # noqa: ANN001
    sub = fake.seed(customer_id="cus_503")
    fake.fail_next(503)
    with pytest.raises(ProviderError) as caught:
        provider_for("recurly", fake.credentials()).subscription_get(sub)
    assert (caught.value.status_code, caught.value.retryable, caught.value.retry_after) == (503, True, None)
    assert "it will be tried again" in caught.value.message
    assert "Injected failure 503" in caught.value.detail


@pytest.mark.parametrize(("api_key", "api_base"), [("k", "127.0.0.1:9"), ("k", "http://127.0.0.1:port"),
                                                    ("clé", "http://127.0.0.1:9")])
def test_credentials_that_cannot_work_fail_for_good_without_a_request(api_key, api_base) -> None:  # noqa: ANN001
    with pytest.raises(ProviderError) as caught:
        provider_for("recurly", Credentials(api_key=api_key, api_base=api_base)).subscription_get("abc")
    assert caught.value.retryable is False


def test_an_api_base_with_a_path_keeps_it_in_front_of_every_request(fake) -> None:  # noqa: ANN001
    good = fake.credentials()
    prefixed = Credentials(api_key=good.api_key, api_base=good.api_base + "/recurly/", timeout=good.timeout)
    with pytest.raises(ProviderError):  # the local Recurly serves no prefix: proof the request went there
        provider_for("recurly", prefixed).subscription_get("abc")
    assert [r["path"] for r in fake.received] == ["/recurly/subscriptions/abc"]


@pytest.mark.parametrize(("region", "host"), [("us", "v3.recurly.com"), ("eu", "v3.eu.recurly.com")])
def test_a_site_is_reached_at_its_regions_host(region: str, host: str) -> None:
    # Recurly's own hosts cannot be reached from a test: the connection the SDK would use is inspected.
    provider = provider_for("recurly", Credentials(api_key="k", region=region))
    provider._client  # noqa: B018 - builds the SDK client and its connection
    assert (provider._conn.host, provider._conn.port, provider._conn.check_peer) == (host, 443, True)


def test_an_eu_connection_is_kept_from_the_command_to_the_document(demo_app, monkeypatch) -> None:  # noqa: ANN001
    import io

    from django.core.management import call_command

    from billing.models import BillingConnection
    from flows.flow_document import document_export, document_import

    monkeypatch.setenv("RECURLY_KEY", "recurly_key")
    call_command("billing_connect", "demo", "recurly", "--api-key-env", "RECURLY_KEY", "--region", "eu",
                 stdout=io.StringIO())
    connection = BillingConnection.objects.get()
    assert connection.region == "eu" and connection.credentials(timeout=1).region == "eu"
    document = document_export(app=demo_app)
    assert document["billing"]["region"] == "eu"
    document_import(document={**document, "billing": {**document["billing"], "region": "us"}})
    connection.refresh_from_db()
    assert connection.region == "us"


def test_a_pause_counts_whole_cycles_of_the_plan_and_never_three_years(fake) -> None:  # noqa: ANN001
    provider = provider_for("recurly", fake.credentials())
    yearly = fake.seed(customer_id="cus_yearly", plan="annual")
    with pytest.raises(ProviderError) as caught:
        provider.subscription_pause(yearly, months=3, resumes_at=months_ahead(3), idempotency_key="k3")
    assert caught.value.retryable is False and "one cycle is 12 months" in caught.value.message
    assert not fake.remote(yearly).paused and fake.writes(yearly) == 0

    result = provider.subscription_pause(yearly, months=12, resumes_at=months_ahead(12), idempotency_key="k12")
    assert result.changed and result.subscription.raw_status["remaining_pause_cycles"] == 1
    remote = fake.remote(yearly)
    assert remote.pause_resumes_at == add_months(remote.next_bill_at, 12)
