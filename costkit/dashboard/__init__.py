"""costkit.dashboard: a local web page over the records, refreshing live.

``costkit dashboard costs.db`` (or a ``postgresql://`` URL, or a JSONL file) serves one page on
127.0.0.1: cost over time by feature, tenant and model; the savings stack by layer; cache hit rate
and the live false-hit estimate; cost per successful task by experiment arm; alerts; the
month-end forecast; the most expensive requests. Charts come from plotly.js as shipped inside the
``plotly`` Python package (``pip install 'costkit[dashboard]'``); nothing is fetched from the
network. ``costkit report --format html`` writes the same page as one static file.
"""

from __future__ import annotations

from .data import dashboard_data, default_rules
from .page import plotly_js_path, render_page, static_page
from .server import DashboardServer, serve

__all__ = [
    "DashboardServer",
    "dashboard_data",
    "default_rules",
    "plotly_js_path",
    "render_page",
    "serve",
    "static_page",
]
