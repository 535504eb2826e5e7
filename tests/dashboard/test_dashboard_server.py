"""The live server: three routes, data built fresh from the ledger on each request, 127.0.0.1 by default."""

from __future__ import annotations

import json
import shutil
import urllib.error
import urllib.request

import pytest

from costkit.dashboard import dashboard_data, plotly_js_path, serve
from costkit.report.store import open_store


def _get(url: str) -> tuple[int, str, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return r.status, r.headers["Content-Type"], r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read()


def test_routes(ledger, tmp_path) -> None:
    path = tmp_path / "c.db"
    shutil.copy(ledger["path"], path)
    with serve(path, port=0, refresh_s=3) as server:
        assert server.url.startswith("http://127.0.0.1:")
        status, kind, body = _get(server.url)
        page = body.decode()
        assert (status, kind) == (200, "text/html; charset=utf-8")
        assert '<script src="plotly.min.js"></script>' in page and "connect-src 'self'" in page
        assert 'id="data"' not in page and '"refresh_s": 3' in page
        status, kind, body = _get(server.url + "plotly.min.js")
        assert (status, kind) == (200, "text/javascript; charset=utf-8") and body == plotly_js_path().read_bytes()
        status, kind, body = _get(server.url + "data.json")
        got = json.loads(body)
        with open_store(path) as store:
            want = dashboard_data(store, title=got["title"])
        assert status == 200 and {k: v for k, v in got.items() if k != "generated_at"} == json.loads(
            json.dumps({k: v for k, v in want.items() if k != "generated_at"})
        )
        assert got["since"] == "2026-11-03T20:00:00Z"  # the last 7 days by default
        assert _get(server.url + "../etc/passwd")[0] == 404 and _get(server.url + "costs.db")[0] == 404
        path.unlink()
        with pytest.warns(Warning, match="cannot read the records"):
            status, _, body = _get(server.url + "data.json")
        assert status == 503 and "no such file" in json.loads(body)["error"]
