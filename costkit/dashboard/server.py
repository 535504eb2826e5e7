"""The live dashboard server: the page, plotly.js and the data, on 127.0.0.1 by default.

    costkit dashboard costs.db                      # http://127.0.0.1:8050/
    costkit dashboard postgresql://host/db --port 0 # a free port

Three routes: ``/`` (the page), ``/plotly.min.js`` (from the installed plotly package) and
``/data.json`` (built from the ledger on each request, so the page shows new records at its next
refresh). Anything else is a 404. Each request opens its own connection to the ledger.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .._warn import warn_once
from ..alerts import Rule
from ..report.store import Store, open_store
from ..sinks.postgres import is_postgres_url
from .data import dashboard_data
from .page import plotly_js_path, render_page

DEFAULT_PORT = 8050


class DashboardServer:
    """A running dashboard: ``url``, ``close()``; a context manager. Built by :func:`serve`."""

    def __init__(self, httpd: ThreadingHTTPServer, thread: threading.Thread) -> None:
        self._httpd = httpd
        self._thread = thread
        host, port = httpd.server_address[:2]
        self.url = f"http://{host.decode() if isinstance(host, bytes) else host}:{port}/"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(5)

    def wait(self) -> None:
        """Block until interrupted (the CLI)."""
        self._thread.join()

    def __enter__(self) -> DashboardServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def serve(
    source: str | os.PathLike[str],
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    refresh_s: float = 5.0,
    days: float = 7.0,
    rules: Sequence[Rule] | None = None,
    title: str | None = None,
) -> DashboardServer:
    """Serve the dashboard of ``source`` (a SQLite file, JSONL file or ``postgresql://`` URL) in a thread."""
    name = title or f"costkit dashboard: {'postgres' if is_postgres_url(source) else Path(source).name}"

    def data() -> dict[str, Any]:
        store: Store = open_store(source)
        try:
            return dashboard_data(store, days=days, rules=rules, title=name)
        finally:
            store.close()

    page = render_page(None, title=name, live=True, refresh_s=refresh_s).encode()
    handler = _handler(page, data)
    httpd = ThreadingHTTPServer((host, port), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, name="costkit-dashboard", daemon=True)
    thread.start()
    return DashboardServer(httpd, thread)


def _handler(page: bytes, data: Callable[[], dict[str, Any]]) -> type[BaseHTTPRequestHandler]:
    library = plotly_js_path()

    class Handler(BaseHTTPRequestHandler):
        server_version = "costkit-dashboard"

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path in ("/", "/index.html"):
                self._send(200, "text/html; charset=utf-8", page)
            elif path == "/data.json":
                try:
                    body = json.dumps(data(), default=str, allow_nan=False).encode()
                except Exception as exc:  # the ledger is busy or gone: the page says so and tries again
                    warn_once(
                        f"dashboard-data:{type(exc).__name__}", f"costkit dashboard: cannot read the records: {exc!r}"
                    )
                    self._send(503, "application/json", json.dumps({"error": str(exc)}).encode())
                    return
                self._send(200, "application/json", body)
            elif path == "/plotly.min.js" and library is not None:
                self._send(200, "text/javascript; charset=utf-8", library.read_bytes(), cache=True)
            else:
                self._send(404, "text/plain; charset=utf-8", b"not found")

        def _send(self, status: int, kind: str, body: bytes, *, cache: bool = False) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "max-age=86400" if cache else "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: a refreshing page would log a line every few seconds."""

    return Handler


__all__ = ["DEFAULT_PORT", "DashboardServer", "serve"]
