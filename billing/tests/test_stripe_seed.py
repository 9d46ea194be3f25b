"""Subscriptions seeded straight in the local Stripe's store (`StripeFake.seed_in_store`, what the soak
seeds thousands with) are the ones seeded over HTTP (`seed`): read back through the official SDK, by the
Stripe adapter, and canceled by it, the two answer alike, ids and timestamps aside."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import replace
from typing import Any

import pytest
import stripe
from localstripe.resources import store

from billing.providers import provider_for
from billing.providers.base import ProviderError, Subscription
from billing.testing.stripe_seed import BATCH
from billing.testing.stripe_server import StripeFake

pytestmark = pytest.mark.billing

# localstripe's drawn ids (14 random characters after the kind), alone or inside a URL.
ID = re.compile(r"(?<![A-Za-z0-9])([a-z]+(?:_sched)?)_[A-Za-z0-9]{14,24}(?![A-Za-z0-9])")


@pytest.fixture
def fake(stripe_fake: StripeFake) -> StripeFake:
    return stripe_fake  # conftest.py: the module's local Stripe, reset


def client(fake: StripeFake) -> stripe.StripeClient:
    creds = fake.credentials()
    return stripe.StripeClient(creds.api_key, base_addresses={"api": creds.api_base}, max_network_retries=0)


def kinds_made(seed: Any) -> tuple[Any, Counter[str]]:  # noqa: ANN401
    before = set(store)
    made = seed()
    return made, Counter(key.partition(":")[0] for key in set(store) - before)


# Objects both subscriptions share (made once by the server, not by either seed): their timestamps are
# compared as they are, since the two subscriptions may be created in different seconds.
SHARED = {"plan", "price", "product"}


def same_shape(value: Any, customer: str, created: int) -> Any:  # noqa: ANN401
    """The SDK's answer with ids named by kind and order of appearance, the customer's id named, and
    timestamps taken from the subscription's creation (those of shared objects kept as they are)."""
    names: dict[str, str] = {}

    def name(found: re.Match[str]) -> str:
        kind = found.group(1)
        if found.group(0) not in names:
            names[found.group(0)] = f"<{kind} {sum(n.startswith(f'<{kind} ') for n in names.values())}>"
        return names[found.group(0)]

    def walk(item: Any, shared: bool = False) -> Any:  # noqa: ANN401
        if isinstance(item, dict):
            shared = shared or item.get("object") in SHARED
            return {key: walk(item[key], shared) for key in sorted(item)}
        if isinstance(item, list):
            return [walk(entry, shared) for entry in item]
        if isinstance(item, str):
            return ID.sub(name, item.replace(customer, "<customer>"))
        if isinstance(item, int) and not isinstance(item, bool) and item > 1_500_000_000 and not shared:
            # Made within the seed's few calls, which may straddle a second: "at creation".
            return ("t", 0 if abs(item - created) <= 2 else item - created)
        return item

    return walk(value)


def read(fake: StripeFake, subscription_id: str, customer: str) -> dict[str, Any]:
    api = client(fake)
    sub = api.v1.subscriptions.retrieve(subscription_id).to_dict()
    listed = api.v1.subscriptions.list(params={"customer": customer, "status": "all", "limit": 100,
                                               "expand": ["data.discounts"]}).to_dict()
    seen = {"subscription": sub, "customer": api.v1.customers.retrieve(customer).to_dict(), "listed": listed,
            "by_email": api.v1.customers.list(params={"email": f"{customer}@example.test"}).to_dict()}
    return same_shape(seen, customer, sub["created"])


def ours(subscription: Subscription) -> Subscription:
    return replace(subscription, id="<subscription>", customer_id="<customer>")


@pytest.mark.parametrize("at_period_end", [True, False])
def test_seeded_in_the_store_reads_and_cancels_through_the_sdk_as_seeded_over_http(fake: StripeFake,
                                                                                   at_period_end: bool) -> None:
    over_http, http_kinds = kinds_made(lambda: fake.seed(customer_id="cus_overhttp"))
    (in_store,), store_kinds = kinds_made(lambda: fake.seed_in_store(["cus_instore"]))
    assert store_kinds == http_kinds  # the same objects: customer, card, subscription, invoice, charge, events…
    assert fake.seen() == [] and fake.writes(in_store) == fake.writes(over_http) == 0  # neither is the adapter's
    assert read(fake, in_store, "cus_instore") == read(fake, over_http, "cus_overhttp")
    assert fake.remote(in_store) == fake.remote(over_http)

    provider = provider_for("stripe", fake.credentials())
    assert ours(provider.subscription_get(in_store)) == ours(provider.subscription_get(over_http))
    assert [ours(s) for s in provider.subscriptions_for_customer("cus_instore")] == [
        ours(s) for s in provider.subscriptions_for_customer("cus_overhttp")]
    assert provider.customers_by_email("cus_instore@example.test") == ["cus_instore"]

    results = [provider.subscription_cancel(sub, at_period_end=at_period_end, prorate=False, invoice_now=False,
                                            idempotency_key=f"bb_cancel_{sub}") for sub in (over_http, in_store)]
    assert [(r.changed, r.summary, ours(r.subscription)) for r in results] == [
        (True, results[0].summary, ours(results[0].subscription))] * 2
    assert results[1].subscription.cancel_at_period_end is at_period_end
    assert fake.remote(in_store) == fake.remote(over_http)
    assert fake.remote(in_store).canceled is not at_period_end
    assert fake.writes(in_store) == fake.writes(over_http) == 1
    assert read(fake, in_store, "cus_instore") == read(fake, over_http, "cus_overhttp")


def test_many_customers_are_seeded_in_their_order_and_listed_newest_first(fake: StripeFake) -> None:
    first = fake.seed(customer_id="cus_first")
    many = fake.seed_in_store([f"cus_many{n}" for n in range(BATCH + 2)])  # more than one batch
    last = fake.seed(customer_id="cus_last")
    assert len(set(many)) == BATCH + 2
    assert {fake.remote(sub).status for sub in many} == {"active"}
    listed = client(fake).v1.subscriptions.list(params={"limit": 100})
    ids = [sub.id for sub in listed.auto_paging_iter()]
    assert ids == [last, *reversed(many), first]
    assert client(fake).v1.subscriptions.retrieve(many[BATCH]).customer == f"cus_many{BATCH}"


def test_only_new_customers_each_once_and_a_refusal_changes_nothing(fake: StripeFake) -> None:
    fake.seed(customer_id="cus_known")
    before = dict(store)
    with pytest.raises(ValueError, match="cus_known"):
        fake.seed_in_store(["cus_new", "cus_known"])
    with pytest.raises(ValueError, match="each once"):
        fake.seed_in_store(["cus_twice", "cus_twice"])
    with pytest.raises(ValueError, match="connect_account"):
        fake.seed_in_store(["cus_elsewhere"], account="acct_unknown")
    assert dict(store) == before


def test_seeded_in_a_connected_account_lives_there(fake: StripeFake) -> None:
    fake.connect_account("acct_shop")
    (sub,) = fake.seed_in_store(["cus_shop"], account="acct_shop")
    creds = fake.credentials()
    platform = provider_for("stripe", creds)
    shop = provider_for("stripe", replace(creds, stripe_account="acct_shop"))
    assert shop.subscription_get(sub).customer_id == "cus_shop"
    with pytest.raises(ProviderError, match="was not found in Stripe"):
        platform.subscription_get(sub)


def test_trial_options_match_seeding_over_http(fake: StripeFake) -> None:
    options: dict[str, Any] = {"plan": "pro", "trialing": True, "extra_items": (("seats", 3),), "quantity": 2}
    over_http = fake.seed(customer_id="cus_trial_http", **options)
    (in_store,) = fake.seed_in_store(["cus_trial_store"], **options)
    assert fake.remote(in_store) == fake.remote(over_http)
    assert fake.remote(in_store).status == "trialing"
    ended_http = fake.seed(customer_id="cus_ended_http", trial_ended=True)
    (ended_store,) = fake.seed_in_store(["cus_ended_store"], trial_ended=True)
    assert fake.remote(ended_store) == fake.remote(ended_http)
    assert fake.remote(ended_store).trial_end is not None
