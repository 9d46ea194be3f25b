"""Which subscriptions a billing action is for: the one the page named (its owner checked against the
signed `account.billing_id`), every active one of the customer when the App says so, or the only one of
the only customer with the page's email. Anything else is an `ActionImpossible` naming what was found:
billing never guesses.
"""

from __future__ import annotations

from .models import BillingAction
from .providers.base import BillingProvider


class ActionImpossible(Exception):
    """The action cannot be carried out as asked (no subscription, several, missing terms): not retried."""


def same_customer(one: str, other: str) -> bool:
    # Recurly names an account by its code, which its API also takes as `code-<code>`.
    return one.removeprefix("code-") == other.removeprefix("code-")


def owned(provider: BillingProvider, subscription_id: str, customer: str) -> None:
    """The second line of defence behind the embed's signature: never act on a subscription the billing
    system says belongs to another customer than the page's `account.billing_id`."""
    owner = provider.subscription_get(subscription_id).customer_id
    if not same_customer(owner, customer):
        raise ActionImpossible(
            f"subscription {subscription_id} belongs to customer {owner or '(none)'} in {provider.name}, not to "
            f"{customer}, the customer the page named (account.billing_id); nothing was changed")


def subscriptions_for(action: BillingAction, provider: BillingProvider) -> list[str]:
    if action.subscription_ids:
        return list(action.subscription_ids)  # found, and their owner checked, by an earlier attempt
    request = action.request
    named, customer = request.get("subscription_id", ""), request.get("customer_id", "")
    wants_all = bool(request.get("all_subscriptions"))
    if named and customer:
        owned(provider, named, customer)
    if named and not (wants_all and customer):
        return [named]
    if not customer and request.get("email"):
        return by_email(action, provider, request["email"])
    if not customer:
        raise ActionImpossible("the page passed neither subscription_id nor account.billing_id nor email, so there "
                               "is no subscription to act on")
    subscriptions = provider.subscriptions_for_customer(customer)
    if action.kind == BillingAction.Kind.REACTIVATE:
        # A save keeps the customer's subscription that is set to end; none set so: nothing to undo.
        subscriptions = [s for s in subscriptions if s.cancel_at_period_end]
        if not subscriptions:
            return []
    found = [s.id for s in subscriptions]
    if wants_all:
        found = list(dict.fromkeys([*([named] if named else []), *found]))
    if not found:
        raise ActionImpossible(f"customer {customer} has no active subscription in {provider.name}")
    if len(found) > 1 and not wants_all:
        raise ActionImpossible(
            f"customer {customer} has {len(found)} active subscriptions in {provider.name} "
            f"({', '.join(found)}); the page must pass subscription_id, or the App must cancel all of them")
    return found


def by_email(action: BillingAction, provider: BillingProvider, email: str) -> list[str]:
    """A customer the page named by email alone: acted on only when exactly one customer of the provider
    has that email and exactly one active subscription; anything else is a failure naming what was found."""
    customers = provider.customers_by_email(email)
    if not customers:
        raise ActionImpossible(f"no {provider.name} customer has the email {email}; nothing was changed")
    if len(customers) > 1:
        raise ActionImpossible(
            f"{len(customers)} {provider.name} customers have the email {email} ({', '.join(customers)}); the page "
            "must pass account.billing_id or subscription_id to say which; nothing was changed")
    subscriptions = provider.subscriptions_for_customer(customers[0])
    if len(subscriptions) != 1:
        found = f" ({', '.join(s.id for s in subscriptions)})" if subscriptions else ""
        raise ActionImpossible(
            f"customer {customers[0]} (email {email}) has {len(subscriptions) or 'no'} active subscription"
            f"{'' if len(subscriptions) == 1 else 's'} in {provider.name}{found}; by email alone billing acts only on "
            "exactly one, so the page must pass subscription_id; nothing was changed")
    if action.kind == BillingAction.Kind.REACTIVATE and not subscriptions[0].cancel_at_period_end:
        return []  # a save with nothing to undo
    return [subscriptions[0].id]
