"""The receiver code in docs/webhooks.md works as printed: run it, deliver to it, watch it verify."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from webhooks import services
from webhooks.models import Delivery, DeliveryAttempt

pytestmark = pytest.mark.django_db

DOC = Path(settings.BASE_DIR) / "docs" / "webhooks.md"


def example(marker: str) -> str:
    match = re.search(rf"<!-- example: {marker} -->\n```\w+\n(.*?)```", DOC.read_text("utf-8"), re.S)
    assert match, f"docs/webhooks.md lost its {marker} example"
    return match.group(1)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def documented_receiver(tmp_path, make_endpoint) -> Iterator[tuple]:  # noqa: ANN001
    port = free_port()
    endpoint = make_endpoint(f"http://127.0.0.1:{port}/hooks")
    script = tmp_path / "receiver.py"
    script.write_text(example("python-receiver"), "utf-8")
    output = tmp_path / "out.txt"
    with open(output, "w") as out, open(tmp_path / "requests.log", "w") as log:
        process = subprocess.Popen([sys.executable, str(script)], stdout=out, stderr=log,
                                   env={**os.environ, "WEBHOOK_SECRET": endpoint.secret, "PORT": str(port)})
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, output.read_text()
                assert time.monotonic() < deadline, "the documented receiver did not start"
                time.sleep(0.05)
        yield endpoint, output
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_documented_python_receiver_verifies_and_dedupes(documented_receiver, delivery_for, monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False: 0)
    endpoint, output = documented_receiver
    delivery = delivery_for(endpoint, "cancel")

    services.delivery_attempt(delivery_id=delivery.pk)
    services.delivery_redeliver(delivery=delivery)
    services.delivery_attempt(delivery_id=delivery.pk)

    assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)) == [204, 204]
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SUCCEEDED
    deadline = time.monotonic() + 5
    while "cancel sub_1" not in output.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert output.read_text().splitlines() == ["cancel sub_1 for jane@example.com"]  # handled once


def test_documented_python_receiver_refuses_a_wrong_signature(documented_receiver, make_endpoint, delivery_for,
                                                              monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False: 0)
    endpoint, _ = documented_receiver
    services.endpoint_secret_rotate(endpoint=endpoint)
    endpoint.previous_secret = ""  # as if the overlap were over: only a secret the receiver lacks signs
    endpoint.save(update_fields=["previous_secret"])

    services.delivery_attempt(delivery_id=delivery_for(endpoint).pk)

    assert DeliveryAttempt.objects.get().status_code == 400
