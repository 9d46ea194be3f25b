"""A local Stripe server to try billing by hand: `python -m billing.testing.stripe_local`.

The same server the tests use (stripe_server.StripeFake: localstripe, with what the current API adds and
every request checked against Stripe's description), on a fixed port of 127.0.0.1, with a few test
customers and subscriptions seeded, some of them set to cancel at the end of the period. It prints its
address, its API key, the subscriptions, and the commands that connect the demo App to it; then it serves
until Ctrl-C. Its state lives in memory: a restart starts from scratch.

Needs the test dependencies (`pip install -e ".[test]"`, which `make run` installs).
"""

from __future__ import annotations

import argparse
import os
import signal
import threading
from dataclasses import dataclass

import django

DEFAULT_PORT = 12111


@dataclass(frozen=True)
class Seeded:
    """One seeded subscription: its customer, and whether it was set to cancel at the end of the period."""

    subscription_id: str
    customer_id: str
    set_to_cancel: bool


def start(*, port: int = DEFAULT_PORT, subscriptions: int = 3, set_to_cancel: int = 2):  # noqa: ANN201
    """Start the server and seed it: `subscriptions` active ones on the `basic` plan, the first
    `set_to_cancel` of them set to cancel at the end of the period. Returns (server, [Seeded])."""
    from billing.testing.stripe_server import StripeFake

    server = StripeFake(port=port)
    seeded = []
    try:
        for index in range(1, subscriptions + 1):
            customer = f"cus_local_{index}"
            subscription = server.seed(customer_id=customer)
            cancelling = index <= set_to_cancel
            if cancelling:
                server._call("POST", f"/v1/subscriptions/{subscription}", {"cancel_at_period_end": "true"})
            seeded.append(Seeded(subscription, customer, cancelling))
    except BaseException:
        server.close()
        raise
    return server, seeded


def instructions(base_url: str, api_key: str, seeded: list[Seeded], *, site: str = "http://127.0.0.1:8000") -> str:
    """What to paste to connect the demo App to this server and play each subscription's account page."""
    lines = [
        f"Local Stripe server at {base_url} (API key {api_key}).",
        "",
        "Connect the demo App (the web server and the worker need the address allowed too):",
        f"  export BILLING_ALLOWED_API_BASES={base_url}",
        f"  STRIPE_KEY={api_key} python manage.py billing_connect demo stripe --api-key-env STRIPE_KEY "
        f"--api-base {base_url} --check",
        "",
        "Subscriptions (open the demo account page of one):",
    ]
    for item in seeded:
        state = "set to cancel at period end" if item.set_to_cancel else "renewing"
        lines.append(f"  {item.subscription_id} ({item.customer_id}, {state}): "
                     f"{site}/demo/?subscription_id={item.subscription_id}")
    lines += ["", "Read one back with the stripe SDK:",
              f"  stripe.StripeClient({api_key!r}, base_addresses={{'api': {base_url!r}}})"
              ".v1.subscriptions.retrieve('sub_…')",
              "", "Ctrl-C stops the server (its state is kept in memory only)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m billing.testing.stripe_local", description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")
    parser.add_argument("--subscriptions", type=int, default=3, help="subscriptions to seed (default 3)")
    parser.add_argument("--set-to-cancel", type=int, default=2,
                        help="how many of them are set to cancel at the end of the period (default 2)")
    parser.add_argument("--site", default=os.environ.get("SITE_URL", "http://127.0.0.1:8000"),
                        help="this console's address, for the demo links (default SITE_URL, else :8000)")
    args = parser.parse_args(argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "brightback_site.settings")
    os.environ.setdefault("DEBUG", "1")
    django.setup()
    server, seeded = start(port=args.port, subscriptions=args.subscriptions, set_to_cancel=args.set_to_cancel)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        credentials = server.credentials()
        print(instructions(server.base_url, credentials.api_key, seeded, site=args.site.rstrip("/")), flush=True)
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.close()


if __name__ == "__main__":
    main()
