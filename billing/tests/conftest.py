"""Fixtures of the billing channel: each provider's local server, started once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from billing.testing import FAKES, FakeBilling, fake_billing as start_fake


@pytest.fixture(scope="module", params=sorted(FAKES))
def fake_billing_server(request) -> Iterator[FakeBilling]:  # noqa: ANN001
    server = start_fake(request.param)
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def fake_billing(fake_billing_server) -> FakeBilling:  # noqa: ANN001
    fake_billing_server.reset()
    return fake_billing_server
