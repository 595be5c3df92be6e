"""Serve the explorer page and its JSON on localhost with the standard library.

`GET /` renders a fresh snapshot as HTML, `GET /api/snapshot` returns the same snapshot as JSON;
anything else is 404. Snapshots are built per request from a callable, so the server knows
nothing about chains or hubs. A chain or hub that fails answers 503 with one line, and the
server keeps serving. The server runs in a daemon thread and `stop()` shuts it down.
"""

import logging
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from blockzero.chain.errors import ChainError
from blockzero.explorer.page import render_page
from blockzero.explorer.snapshot import ExplorerSnapshot
from blockzero.hub.errors import HubError

logger = logging.getLogger(__name__)

SnapshotFn = Callable[[], ExplorerSnapshot]


class ExplorerServer:
    """`ExplorerServer(build).start()` serves until `stop()`; port 0 picks a free port."""

    def __init__(self, build: SnapshotFn, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._build = build
        # One snapshot at a time: the adapters are not built for concurrent reads of one object.
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), self._handler())
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}/"

    def start(self) -> "ExplorerServer":
        self._thread.start()
        logger.info("explorer serving on %s", self.url)
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    def __enter__(self) -> "ExplorerServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def snapshot(self) -> ExplorerSnapshot:
        with self._lock:
            return self._build()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?", 1)[0]
                if path not in ("/", "/api/snapshot"):
                    self._send(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")
                    return
                try:
                    snap = server.snapshot()
                except (ChainError, HubError) as e:
                    logger.warning("snapshot failed: %s", e)
                    body = f"{type(e).__name__}: {e}\n".encode()
                    self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", body)
                    return
                if path == "/":
                    self._send(HTTPStatus.OK, "text/html", render_page(snap).encode())
                else:
                    self._send(HTTPStatus.OK, "application/json", snap.model_dump_json().encode())

            def _send(self, status: HTTPStatus, kind: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", f"{kind}; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.send_header(
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
                )
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("%s " + format, self.address_string(), *args)

        return Handler
