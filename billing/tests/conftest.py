"""Fixtures of the billing channel: each provider's local server, started once per module and reset
before every test that asks for it.

`<provider>_server` is the running server, `<provider>_fake` the same server reset (no customer,
subscription, invoice, recorded request or injected failure left by an earlier test; the plans and the
coupon remain). `fake_billing` is one of them per provider in turn, for the suites every provider must
pass. Module scope, not session: localstripe keeps one store per process, so only one StripeFake can run
at a time, and other modules (billing/tests/test_stripe_local.py, other channels' tests) start their own.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from billing.testing import FAKES, FakeBilling
from billing.testing.chargebee_server import ChargebeeFake
from billing.testing.paddle_server import PaddleFake
from billing.testing.recurly_server import RecurlyFake
from billing.testing.stripe_server import StripeFake

F = TypeVar("F", bound=FakeBilling)


def serve(start: Callable[[], F]) -> Iterator[F]:
    server = start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="module")
def stripe_server() -> Iterator[StripeFake]:
    yield from serve(StripeFake)


@pytest.fixture
def stripe_fake(stripe_server: StripeFake) -> StripeFake:
    stripe_server.reset()
    return stripe_server


@pytest.fixture(scope="module")
def recurly_server() -> Iterator[RecurlyFake]:
    yield from serve(RecurlyFake)


@pytest.fixture
def recurly_fake(recurly_server: RecurlyFake) -> RecurlyFake:
    recurly_server.reset()
    return recurly_server


@pytest.fixture(scope="module")
def chargebee_server() -> Iterator[ChargebeeFake]:
    yield from serve(ChargebeeFake)


@pytest.fixture
def chargebee_fake(chargebee_server: ChargebeeFake) -> ChargebeeFake:
    chargebee_server.reset()
    return chargebee_server


@pytest.fixture(scope="module")
def paddle_server() -> Iterator[PaddleFake]:
    yield from serve(PaddleFake)


@pytest.fixture
def paddle_fake(paddle_server: PaddleFake) -> PaddleFake:
    paddle_server.reset()
    return paddle_server


@pytest.fixture(scope="module", params=sorted(FAKES))
def fake_billing_server(request: pytest.FixtureRequest) -> FakeBilling:
    server: FakeBilling = request.getfixturevalue(f"{request.param}_server")
    return server


@pytest.fixture
def fake_billing(fake_billing_server: FakeBilling) -> FakeBilling:
    fake_billing_server.reset()
    return fake_billing_server
