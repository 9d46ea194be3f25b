"""Real servers for testing alerts: an SMTP server (aiosmtpd) and a Slack-like HTTP receiver, both on
127.0.0.1, recording what they accept.

    with SmtpServer() as smtp:               # point EMAIL_HOST/EMAIL_PORT at smtp.host/smtp.port
        ...
        mail = smtp.wait_for(1, timeout=10)[0]   # an email.message.EmailMessage, parsed

`answers` are the replies to the first DATA commands in turn ("421 4.3.2 Try again later"), then every
message is accepted with 250. `hold` keeps the first DATA waiting (the client sees a slow server) until
`release()`, then refuses it with 451 (if the client went away meanwhile, aiosmtpd drops the command
unanswered): either way a message the sender never got a 250 for, which is not in `accepted`.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from brightback_site.testing import Answer, LocalReceiver


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Accepted:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes


class SmtpServer:
    def __init__(self, *, answers: list[str] | None = None, hold: bool = False) -> None:
        self.answers = list(answers or [])
        self.hold = hold
        self.accepted: list[Accepted] = []
        self.refused: list[str] = []  # the replies given to messages that were not accepted
        self.data_commands = 0
        self.holding = threading.Event()  # set while the first DATA is held
        self._release = threading.Event()
        self._changed = threading.Condition()
        self.host = "127.0.0.1"
        self.port = 0
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd's hook
        with self._changed:
            self.data_commands += 1
            number = self.data_commands
            answer = self.answers.pop(0) if self.answers else ""
        if self.hold and number == 1:
            self.holding.set()
            while not self._release.is_set():
                await asyncio.sleep(0.05)
            answer = "451 4.3.0 The sender went away"
        with self._changed:
            if answer:
                self.refused.append(answer)
            else:
                message = email.message_from_bytes(envelope.content, policy=email.policy.default)
                assert isinstance(message, EmailMessage)
                self.accepted.append(Accepted(envelope.mail_from, list(envelope.rcpt_tos), message,
                                              envelope.content))
            self._changed.notify_all()
        return answer or "250 2.0.0 Message accepted for delivery"

    def release(self) -> None:
        self._release.set()

    def start(self) -> SmtpServer:
        self.port = free_port()
        self._controller = Controller(self, hostname=self.host, port=self.port, ready_timeout=10)
        self._controller.start()
        return self

    def stop(self) -> None:
        self._release.set()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def messages(self) -> list[EmailMessage]:
        with self._changed:
            return [got.message for got in self.accepted]

    def wait_for(self, count: int, *, timeout: float) -> list[EmailMessage]:
        """Wait until `count` messages were accepted; raise TimeoutError saying what did arrive."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.accepted) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"SMTP server: {len(self.accepted)} of {count} messages accepted after "
                                       f"{timeout} s (refused: {self.refused})")
                self._changed.wait(min(left, 0.2))
            return [got.message for got in self.accepted]


@dataclass
class Posted:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def payload(self) -> Any:
        return json.loads(self.body)


class SlackReceiver(LocalReceiver):
    """An HTTP server standing in for Slack's incoming webhooks: it records each POST and answers
    `answers` in turn (status, headers, body), then 200 "ok" as Slack does."""

    path = "/services/T000/B000/XXXX"

    def __init__(self, *, answers: list[Answer] | None = None) -> None:
        self.answers = list(answers or [])
        self.posted: list[Posted] = []
        self._lock = threading.Lock()

    def _answer(self) -> Answer:
        with self._lock:
            return self.answers.pop(0) if self.answers else (200, {}, b"ok")

    def answer_post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        answer = self._answer()
        with self._lock:
            self.posted.append(Posted(path, headers, body, answer[0]))
        return answer

    def snapshot(self) -> list[Posted]:
        with self._lock:
            return list(self.posted)
