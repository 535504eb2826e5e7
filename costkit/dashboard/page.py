"""The dashboard page: one HTML document, the same for the live server and the static report.

Charts are drawn by plotly.js, read from the ``plotly`` Python package's own copy
(``plotly/package_data/plotly.min.js``): the live server serves it at ``/plotly.min.js``, the
static page inlines it. Nothing is fetched from the network. Without plotly installed the page
says so and still shows every number in its tables.

Data from the ledger (tag values, notes) is untrusted: the JSON is embedded with ``<`` escaped,
tables are filled with ``textContent``, and names given to plotly (which reads a little HTML in
labels) have ``& < >`` escaped. After drawing, the page writes the numbers it plotted, read back
from the charts, into ``<pre id="plotted">``, so a headless browser test can compare them with
the report.
"""

from __future__ import annotations

import importlib.util
import json
from html import escape
from pathlib import Path
from typing import Any

PLOTLY_MISSING = "Charts need plotly: pip install 'costkit[dashboard]'. Every number is in the tables below."


def plotly_js_path() -> Path | None:
    """Where the installed ``plotly`` package keeps plotly.min.js (None when it is not installed)."""
    spec = importlib.util.find_spec("plotly")
    if spec is None or not spec.submodule_search_locations:
        return None
    for root in spec.submodule_search_locations:
        path = Path(root) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    return None


def json_for_script(data: Any) -> str:
    """JSON safe inside a ``<script>`` element (no ``</script>``, no ``<!--``)."""
    text = json.dumps(data, ensure_ascii=False, allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


_HERE = Path(__file__).resolve().parent


def _asset(name: str) -> str:
    return (_HERE / name).read_text(encoding="utf-8")


def render_page(
    data: dict[str, Any] | None,
    *,
    title: str = "costkit dashboard",
    live: bool = False,
    refresh_s: float = 5.0,
    plotly_js: str | None = None,
) -> str:
    """The page. Static (``live=False``): ``data`` is embedded and ``plotly_js`` (the library's text)
    inlined. Live: the page loads ``plotly.min.js`` and ``data.json`` from the server that sent it."""
    config = {"live": live, "refresh_s": refresh_s, "missing": PLOTLY_MISSING}
    if live:
        library = '<script src="plotly.min.js"></script>'
        csp = "default-src 'none'; script-src 'self' 'unsafe-inline'; connect-src 'self'"
    else:
        library = f"<script>{plotly_js}</script>" if plotly_js else ""
        csp = "default-src 'none'; script-src 'unsafe-inline'; connect-src 'none'"
    csp += "; style-src 'unsafe-inline'; img-src data: blob:; font-src data:"
    data_block = "" if live else f'<script type="application/json" id="data">{json_for_script(data)}</script>'
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{csp}">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_asset('page.css')}</style>{library}</head><body>"
        + _asset("page.html").replace("{title}", escape(title))
        + f'<script type="application/json" id="config">{json_for_script(config)}</script>{data_block}'
        + f"<script>{_asset('page.js')}</script></body></html>\n"
    )


def static_page(data: dict[str, Any], *, title: str = "costkit report") -> str:
    """A self-contained page (data and plotly.js inlined) that needs no server and no network."""
    path = plotly_js_path()
    library = path.read_text(encoding="utf-8").replace("</script", "<\\/script") if path else None
    return render_page(data, title=title, live=False, plotly_js=library)


__all__ = ["PLOTLY_MISSING", "json_for_script", "plotly_js_path", "render_page", "static_page"]
