"""Seeding the local Stripe (billing/testing/stripe_server.py): the requests a seeded subscription takes,
carried out over HTTP (`StripeFake.seed`) or straight in localstripe's store (`StripeFake.seed_in_store`).

Why two ways: localstripe finds objects by scanning its whole store, and every event it records exports
the customer, whose `subscriptions` is such a scan. Seeding over HTTP thus slows as the store grows
(four requests a subscription; some 3,600 took over 29 minutes). In the store, the same localstripe calls
run with the very parameters its HTTP handlers would pass them (the form encoding decoded by
localstripe's own `unflatten_data`), on the server's event loop, while the store holds only the
catalogue (products, plans, coupons, tax rates) and the customer being seeded; the rest is set aside and
put back, in its order, afterwards. A new customer's subscription reads nothing else: every lookup
localstripe makes while creating one is by id or filtered by that customer, its subscription or its
charge. The objects made are those the HTTP path makes, ids and timestamps aside
(billing/tests/test_stripe_seed.py compares them field by field).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from localstripe.resources import Customer, PaymentMethod, store
from multidict import MultiDict

from billing.testing import TRIAL_ENDED_DAYS_AGO
from billing.testing.stripe_resources import HarnessSubscription, ls_server

# The kinds of object that are not any customer's: kept in the store while new customers are seeded.
CATALOGUE_KINDS = frozenset({"product", "plan", "coupon", "tax_rate"})

# Customers seeded in one go on the server's loop; it serves requests between batches.
BATCH = 500

# (method, path, data) -> the id of the object the request made or changed.
Request = Callable[[str, str, dict[str, Any]], str]


def seed_requests(request: Request, customer_id: str, *, plan: str, quantity: int,
                  extra_items: Sequence[tuple[str, int]], trialing: bool) -> str:
    """Give an existing customer a card as its default payment method and a subscription to `plan` x
    `quantity` and the `extra_items`, through `request`; return the subscription's id."""
    card = {"number": "4242424242424242", "exp_month": "12", "exp_year": str(datetime.now(UTC).year + 3),
            "cvc": "123"}
    method = request("POST", "/v1/payment_methods", {"type": "card", "card": card})
    request("POST", f"/v1/payment_methods/{method}/attach", {"customer": customer_id})
    request("POST", f"/v1/customers/{customer_id}", {"invoice_settings": {"default_payment_method": method}})
    sub: dict[str, Any] = {"customer": customer_id, "items": [
        {"price": price, "quantity": count} for price, count in ((plan, quantity), *extra_items)]}
    if trialing:
        sub["trial_end"] = int(time.time()) + 14 * 86400
    return request("POST", "/v1/subscriptions", sub)


def in_store(method: str, path: str, data: dict[str, Any]) -> str:
    """Carry out one of seed_requests' requests as the server's handler for it does, without HTTP.
    Runs on the server's event loop (localstripe schedules its webhooks there)."""
    params = ls_server.unflatten_data(MultiDict(form(data)))
    made: Any
    match [method, *path.strip("/").split("/")]:
        case ["POST", "v1", "payment_methods"]:
            made = PaymentMethod._api_create(**params)
        case ["POST", "v1", "payment_methods", ident, "attach"]:
            made = PaymentMethod._api_attach(id=ident, **params)
        case ["POST", "v1", "customers", ident]:
            made = Customer._api_update(ident, **params)
        case ["POST", "v1", "subscriptions"]:
            made = HarnessSubscription._api_create(**params)
        case _:
            raise ValueError(f"seeding makes no {method} {path}")
    return str(made.id)


def customer_named(customer_id: str, email: str) -> None:
    """The customer `customer_id` (localstripe draws its own ids; the contract names customers)."""
    if "customer:" + customer_id in store:
        return
    customer = Customer(name=customer_id, email=email)
    del store["customer:" + customer.id]
    customer.id = customer_id
    store["customer:" + customer_id] = customer


def trial_ended_ago(subscription_id: str) -> None:
    """Stripe keeps trial_start and trial_end on a subscription after its trial: set them in the past."""
    sub = store["subscription:" + subscription_id]
    ended = int(time.time()) - TRIAL_ENDED_DAYS_AGO * 86400
    sub.trial_start, sub.trial_end = ended - 14 * 86400, ended


def seed_new_customers(customer_ids: Sequence[str], seed_one: Callable[[str], str]) -> list[str]:
    """`seed_one(customer_id)` for each customer, each run while the store holds only the catalogue and
    what it made itself; return what each returned. The customers must be new. Runs on the server's event
    loop and never awaits, so no request is served while the store is set aside."""
    everything = dict(store)
    taken = [c for c in customer_ids if "customer:" + c in everything]
    if taken or len(set(customer_ids)) != len(customer_ids):
        raise ValueError(f"seed_in_store seeds new customers, each once: {', '.join(taken) or 'a repeated id'}")
    made: dict[str, Any] = {}
    results = []
    try:
        store.clear()
        store.update((key, obj) for key, obj in everything.items() if key.partition(":")[0] in CATALOGUE_KINDS)
        catalogue = set(store)
        for customer_id in customer_ids:
            results.append(seed_one(customer_id))
            for key in [key for key in store if key not in catalogue]:
                made[key] = store.pop(key)
    finally:
        store.clear()
        store.update(everything)
        store.update(made)
    return results


def form(data: dict[str, Any] | list[Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding: items[0][price]=pro."""
    pairs: list[tuple[str, str]] = []
    entries = data.items() if isinstance(data, dict) else enumerate(data)
    for key, value in entries:
        name = f"{prefix}[{key}]" if prefix else str(key)
        if isinstance(value, (dict, list)):
            pairs.extend(form(value, name))
        else:
            pairs.append((name, str(value)))
    return pairs
