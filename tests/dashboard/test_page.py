"""The page's template: static or live, data embedded safely, plotly.js found in the plotly package."""

from __future__ import annotations

import importlib.util
import json

from costkit.dashboard.page import json_for_script, plotly_js_path, render_page


def test_json_for_script_cannot_close_its_element() -> None:
    data = {"x": "</script><!-- & -->", "y": [1.5, None]}
    text = json_for_script(data)
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == data


def test_plotly_js_comes_from_the_installed_package(monkeypatch) -> None:
    path = plotly_js_path()
    assert path is not None and path.name == "plotly.min.js" and path.parent.parent.name == "plotly"
    assert path.read_text(encoding="utf-8")[:40].lstrip().startswith("/**\n* plotly.js v")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    assert plotly_js_path() is None


def test_live_and_static_pages() -> None:
    live = render_page(None, title="t", live=True, refresh_s=2)
    assert '<script src="plotly.min.js"></script>' in live and 'id="data"' not in live
    static = render_page({"a": 1}, title="<t>", plotly_js="var Plotly={};")
    assert "<script>var Plotly={};</script>" in static and '{"a": 1}' in static
    assert "<title>&lt;t&gt;</title>" in static and "connect-src 'none'" in static
