"""The receiver code in docs/webhooks.md works as printed: run it, deliver to it, watch it verify."""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.conf import settings

from conftest import need
from webhooks import endpoints, services
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


NODE_MODULES = Path(settings.BASE_DIR) / "node_modules"
# Each documented receiver by language: its marker in the docs, the file it runs from, and the line it
# prints for the cancel decision `delivery_for` records.
RECEIVERS = {
    "python": ("python-receiver", "receiver.py", "cancel sub_1 for jane@example.com"),
    "node": ("node-receiver", "receiver.js", "session.canceled jane@example.com sub_1"),
}


def receiver_command(language: str, script: Path) -> list[str]:
    if language == "python":
        return [sys.executable, str(script)]
    node = shutil.which("node")
    need(node is not None, "the Node.js receiver example needs `node` on PATH")
    need((NODE_MODULES / "standardwebhooks" / "package.json").exists(),
         f"the Node.js receiver example needs standardwebhooks in {NODE_MODULES} (npm ci)")
    return [str(node), str(script)]


@pytest.fixture(params=sorted(RECEIVERS))
def documented_receiver(request, tmp_path, make_endpoint) -> Iterator[tuple]:  # noqa: ANN001
    marker, filename, expected = RECEIVERS[request.param]
    script = tmp_path / filename
    script.write_text(example(marker), "utf-8")
    command = receiver_command(request.param, script)
    port = free_port()
    endpoint = make_endpoint(f"http://127.0.0.1:{port}/hooks")
    output = tmp_path / "out.txt"
    log = tmp_path / "requests.log"
    # The script runs from a temporary directory, so require() finds the repository's node_modules
    # through NODE_PATH; the working directory is the repository root as well.
    env = {**os.environ, "WEBHOOK_SECRET": endpoint.secret, "PORT": str(port),
           "NODE_PATH": os.pathsep.join(filter(None, [str(NODE_MODULES), os.environ.get("NODE_PATH")]))}
    with open(output, "w") as out, open(log, "w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, cwd=settings.BASE_DIR, env=env)
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert process.poll() is None, output.read_text() + log.read_text()
                assert time.monotonic() < deadline, f"the documented {request.param} receiver did not start"
                time.sleep(0.05)
        yield endpoint, output, expected
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_documented_receiver_verifies_and_dedupes(documented_receiver, delivery_for, monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: 0)
    endpoint, output, expected = documented_receiver
    delivery = delivery_for(endpoint, "cancel")

    services.delivery_attempt(delivery_id=delivery.pk)
    services.delivery_redeliver(delivery=delivery)
    services.delivery_attempt(delivery_id=delivery.pk)

    assert list(DeliveryAttempt.objects.filter(delivery=delivery).values_list("status_code", flat=True)) == [204, 204]
    assert Delivery.objects.get(pk=delivery.pk).status == Delivery.Status.SUCCEEDED
    deadline = time.monotonic() + 5
    while expected not in output.read_text() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert output.read_text().splitlines() == [expected]  # handled once


def test_documented_receiver_refuses_a_wrong_signature(documented_receiver, delivery_for, monkeypatch):
    monkeypatch.setattr(services, "endpoints_wake", lambda ids, force=False, **_: 0)
    endpoint, _, _ = documented_receiver
    endpoints.endpoint_secret_rotate(endpoint=endpoint)
    endpoint.previous_secret = ""  # as if the overlap were over: only a secret the receiver lacks signs
    endpoint.save(update_fields=["previous_secret"])

    services.delivery_attempt(delivery_id=delivery_for(endpoint).pk)

    assert DeliveryAttempt.objects.get().status_code == 400
