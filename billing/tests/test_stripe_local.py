"""`python -m billing.testing.stripe_local`: the local Stripe server for trying billing by hand."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import stripe

from billing.testing.stripe_local import instructions, start

pytestmark = pytest.mark.billing


def test_it_seeds_subscriptions_some_set_to_cancel_and_says_how_to_connect(db) -> None:  # noqa: ANN001
    server, seeded = start(port=0, subscriptions=3, set_to_cancel=2)
    try:
        client = stripe.StripeClient(server.credentials().api_key, base_addresses={"api": server.base_url},
                                     max_network_retries=0)
        read = {item.subscription_id: client.v1.subscriptions.retrieve(item.subscription_id) for item in seeded}
        assert [(read[i.subscription_id].customer, read[i.subscription_id].status,
                 read[i.subscription_id].cancel_at_period_end) for i in seeded] == [
            ("cus_local_1", "active", True), ("cus_local_2", "active", True), ("cus_local_3", "active", False)]
        text = instructions(server.base_url, server.credentials().api_key, seeded, site="http://127.0.0.1:8123")
        assert f"export BILLING_ALLOWED_API_BASES={server.base_url}" in text
        assert f"billing_connect demo stripe --api-key-env STRIPE_KEY --api-base {server.base_url}" in text
        assert f"http://127.0.0.1:8123/demo/?subscription_id={seeded[2].subscription_id}" in text
    finally:
        server.close()


def test_the_command_serves_until_stopped(tmp_path) -> None:  # noqa: ANN001
    # As a developer runs it: its own process, on the port asked, answering the SDK; SIGTERM ends it.
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": str(root)}
    process = subprocess.Popen([sys.executable, "-m", "billing.testing.stripe_local", "--port", "0",
                                "--subscriptions", "1", "--set-to-cancel", "0"],
                               cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()  # blocks until the server has printed its address
        assert first.startswith("Local Stripe server at http://127.0.0.1:"), first + process.stderr.read()
        base = first.split(" at ", 1)[1].split(" ", 1)[0]
        client = stripe.StripeClient("sk_test_brightback_local", base_addresses={"api": base},
                                     max_network_retries=0)
        assert client.v1.customers.retrieve("cus_local_1").id == "cus_local_1"
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
