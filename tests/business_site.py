"""A subscription business's own site for browser tests: a second local HTTP server, on another origin
(http://127.0.0.1:<port>, where the live server is http://localhost:<port>, another site too), serving
account pages that load the snippet from the live server, as a real business's pages would."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Your account</title></head>
<body><main><h1>Your account</h1><p>Plan: Pro, monthly.</p>
<p><a id="bb-cancel" href="/fallback-cancel">Cancel subscription</a></p>
<p><button id="other" type="button">Something else</button></p></main>
<script src="%(server)s/js/brightback.js"></script>
<script>
window.bbLog = [];
document.addEventListener("brightback:decision", function (e) {
  window.bbLog.push(e.detail);
  if (window.keepPage) { e.preventDefault(); }
});
window.bbAnswer = window.Brightback.handleDataPromise(%(data)s)
  .then(function (a) { window.bbResult = {resolved: a}; return a; },
        function (e) { window.bbResult = {rejected: String(e.message)}; });
</script></body></html>"""


class BusinessSite:
    def __init__(self, server: ThreadingHTTPServer) -> None:
        self.server = server
        self.url = f"http://127.0.0.1:{server.server_address[1]}"
        self.pages: dict[str, str] = {}

    def account_page(self, *, snippet_server: str, data: dict, path: str = "/account") -> str:
        """Serve an account page calling handleDataPromise(data); return its URL."""
        self.pages[path] = PAGE % {"server": snippet_server, "data": json.dumps(data).replace("<", "\\u003c")}
        return self.url + path


@pytest.fixture
def business_site() -> Iterator[BusinessSite]:
    site: BusinessSite

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            path = self.path.split("?", 1)[0]
            html = site.pages.get(path, f"<!doctype html><title>{path}</title><h1 id=here>{path}</h1>")
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    site = BusinessSite(server)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()
