"""A real webhook receiver for tests and the benchmark: an HTTP server on 127.0.0.1 that verifies each
delivery with the `standardwebhooks` package, as a customer's receiver would, and records it.

    with Receiver(secrets=[endpoint.secret]) as receiver:
        ...  # point an endpoint at receiver.url
        receiver.wait_for(lambda got: len(got) >= 3, timeout=10)

`respond` decides each answer (default 200): a function of the Received request returning
(status, headers, body). It runs in the server's thread, so it may block to simulate a slow receiver.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from brightback_site.testing import Answer, LocalReceiver


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float  # time.time() when the request was read
    verified: bool
    payload: dict | None = None
    answered: int | None = None

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


Respond = Callable[[Received], Answer]


def always(status: int = 200, headers: dict[str, str] | None = None, body: bytes = b"") -> Respond:
    return lambda received: (status, headers or {}, body)


def in_turn(*answers: Answer, then: Answer = (200, {}, b"ok")) -> Respond:
    """Answer each request with the next answer of the list, then always `then`."""
    remaining = list(answers)
    lock = threading.Lock()

    def respond(received: Received) -> Answer:
        with lock:
            return remaining.pop(0) if remaining else then

    return respond


@dataclass
class Receiver(LocalReceiver):
    path = "/hooks"
    secrets: list[str] = field(default_factory=list)
    respond: Respond = field(default_factory=always)
    # Answer 401 to a delivery whose signature does not verify, as a real receiver must.
    reject_unverified: bool = True

    def __post_init__(self) -> None:
        self.received: list[Received] = []
        self._changed = threading.Condition()

    def answer_post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        got = Received(path=path, headers=headers, body=body, at=time.time(), verified=False)
        got.payload = self.verify(body, headers)
        got.verified = got.payload is not None
        self._record(got)
        answer = (401, {}, b"bad signature") if not got.verified and self.reject_unverified else self.respond(got)
        got.answered = answer[0]
        return answer

    # -- what arrived --
    def verify(self, body: bytes, headers: dict[str, str]) -> dict | None:
        for secret in self.secrets:
            try:
                return Webhook(secret).verify(body, headers)
            except WebhookVerificationError:
                continue
        return None

    def _record(self, got: Received) -> None:
        with self._changed:
            self.received.append(got)
            self._changed.notify_all()

    def snapshot(self) -> list[Received]:
        with self._changed:
            return list(self.received)

    def wait_for(self, predicate: Callable[[list[Received]], bool], *, timeout: float) -> list[Received]:
        """Wait until predicate(received) holds; raise TimeoutError (with what did arrive) otherwise."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(self.received):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"receiver: condition not met after {timeout} s; "
                                       f"{len(self.received)} requests arrived")
                self._changed.wait(min(left, 0.5))
            return list(self.received)

    def ids(self) -> set[str]:
        return {got.webhook_id for got in self.snapshot() if got.verified}
