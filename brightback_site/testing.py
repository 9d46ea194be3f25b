"""What every channel's test fakes share: a real HTTP server on 127.0.0.1 (LocalHTTPServer: the Recurly
and Chargebee servers bring their own request handler), and the recording receiver built on it
(LocalReceiver: the webhook receiver and the Slack stand-in answer each POST).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self


class LocalHTTPServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], *, name: str) -> None:
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=name, daemon=True)
        self._thread.start()

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


Answer = tuple[int, dict[str, str], bytes]


class LocalReceiver(ABC):
    """The base of the tests' recording receivers (webhooks, Slack): it serves `answer_post` on
    127.0.0.1, from start() to stop() or for a with-block, and writes each answer back.
    Subclasses set `path` (what `url` points at) and answer each POST, recording what they need."""

    path = "/"
    _server: LocalHTTPServer | None = None

    @abstractmethod
    def answer_post(self, path: str, headers: dict[str, str], body: bytes) -> Answer:
        """(status, headers, body) for one POST; it runs on the server's thread."""

    def start(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as real receivers behind a proxy do
            # Headers and body go out in two writes: with Nagle's algorithm on, the body waited for the
            # sender's delayed ACK of the headers, 40 ms an answer on a kept-alive connection (the soak's
            # flaky endpoint could take no more than about 21 deliveries a second). Real servers set
            # TCP_NODELAY, as this does.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, extra, answer = receiver.answer_post(
                    self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    self.send_response(status)
                    for name, value in extra.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(answer)))
                    self.end_headers()
                    self.wfile.write(answer)
                except OSError:
                    pass  # the sender went away (a killed worker): nothing to answer

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = LocalHTTPServer(Handler, name=type(self).__name__)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the receiver first"
        return self._server.url(self.path)
