"""The dashboard as a person sees it: headless Chromium draws the static report and the live page at
desktop (1280x900) and phone (390x844) sizes; the charts hold the records' numbers; nothing is
fetched from the network; new records show at the next refresh.

Screenshots go to this test's output directory (and, when ``COSTKIT_DOCS_IMG`` names a directory,
are copied there: that is how docs/img/ was made).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import expected
import pytest
from chromium import Browser, executable

from costkit.alerts import Burst, CacheHealth, CostAnomaly
from costkit.dashboard import serve
from costkit.records import CostRecord
from costkit.report.aggregate import aggregate
from costkit.report.cli import main
from costkit.sinks import SQLiteSink

SIZES = {"desktop": (1280, 900, False), "phone": (390, 844, True)}
ALERT_ARGS = ["--burst-usd", "0.05", "--anomaly-min-usd", "0.01"]


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if executable() is None:
        pytest.fail("chromium is not installed; scripts/test installs it (apt-get install chromium)")
    with Browser() as b:
        yield b


def _keep(shot: Path) -> None:
    docs = os.environ.get("COSTKIT_DOCS_IMG")
    if docs:
        Path(docs).mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, Path(docs) / shot.name)


def _by_name(traces: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    return {(t["name"], x): y for t in traces for x, y in zip(t["x"], t["y"], strict=True)}


def _check_charts(plotted: dict[str, Any], ledger: dict[str, Any]) -> None:
    records = ledger["records"]
    for dim in ("feature", "tenant", "model"):
        drawn = _by_name(plotted[f"cost_{dim}"])
        for key, usd in expected.cost_by(records, dim).items():
            assert drawn[key] == pytest.approx(usd, abs=1e-12), (dim, key)
    drawn = _by_name(plotted["savings"])
    for key, usd in expected.savings_by_layer(records).items():
        assert drawn[key] == pytest.approx(usd, abs=1e-12), key
    cache = {t["name"]: dict(zip(t["x"], t["y"], strict=True)) for t in plotted["cache"]}
    for day, want in expected.cache_by_day(records).items():
        assert cache["hit rate"][day] == pytest.approx(want["hit_rate"], abs=1e-15)
        assert cache["live false-hit estimate"][day] == pytest.approx(want["false_hit_estimate"], abs=1e-15)
    (arms,) = plotted["arms"]
    per_task: dict[tuple[str, str], float] = {}
    for r in records:
        if r.task:
            per_task[(r.arm, r.task)] = per_task.get((r.arm, r.task), 0.0) + (r.cost_usd or 0.0)
    ok = {o.task for o in ledger["outcomes"] if o.success}
    for name, y in zip(arms["name"], arms["y"], strict=True):
        arm = name.split(" / ")[1]
        cost = sum(c for (a, _), c in per_task.items() if a == arm)
        wins = sum(1 for (a, t) in per_task if a == arm and t in ok)
        assert y == pytest.approx(cost / wins, abs=1e-12), name


def _shoot(browser: Browser, url: str, out: Path, stem: str, ledger: dict[str, Any]) -> dict[str, Any]:
    drawn = {}
    for size, (w, h, mobile) in SIZES.items():
        page = browser.open(url, width=w, height=h, mobile=mobile)
        shot = page.screenshot(out / f"{stem}-{size}.png")
        assert shot.stat().st_size > 20_000  # a drawn page, not a blank one
        _keep(shot)
        assert page.eval("document.documentElement.scrollWidth") == w  # nothing wider than the screen
        drawn[size] = page
        _check_charts(page.plotted(), ledger)
    return drawn


def test_the_static_report_draws_the_records_numbers(browser, ledger, tmp_path) -> None:
    html = tmp_path / "report.html"
    assert main(["report", str(ledger["path"]), "--format", "html", "-o", str(html), *ALERT_ARGS]) == 0
    pages = _shoot(browser, html.as_uri(), tmp_path, "report", ledger)
    page = pages["desktop"]
    if os.environ.get("COSTKIT_DOCS_IMG"):  # the whole page, for the docs only (slow on a loaded machine)
        _keep(page.screenshot(tmp_path / "report-desktop-full.png", full_page=True))
    assert {urlsplit(u).scheme for u in page.requested_urls()} == {"file"}  # not one request beyond the file
    assert page.eval("document.body.getAttribute('data-drawn')") == "8"  # 7 charts + 1 grouping
    drawn = {(t["name"], y): x for t in page.plotted()["report_chart_0"] for x, y in zip(t["x"], t["y"], strict=True)}
    for g in aggregate(ledger["records"], by="feature").groups:
        assert drawn[("cost", g.key[0])] == pytest.approx(g.cost_usd, abs=1e-12)
    alerts = page.eval("document.getElementById('alerts').textContent")
    assert "tenant=initech" in alerts and "live false-hit estimate" in alerts


def test_the_live_page_refreshes_from_the_ledger(browser, ledger, tmp_path) -> None:
    path = tmp_path / "live.db"
    shutil.copy(ledger["path"], path)
    rules = [CostAnomaly(min_usd=0.01), Burst(max_usd=0.05), CacheHealth()]  # as ALERT_ARGS ask
    with serve(path, port=0, refresh_s=1, days=36500, rules=rules) as server:
        pages = _shoot(browser, server.url, tmp_path, "dashboard", ledger)
        page = pages["desktop"]
        assert {urlsplit(u).netloc for u in page.requested_urls()} == {urlsplit(server.url).netloc}
        assert page.eval("document.getElementById('status').textContent").startswith("live · refreshing every 1 s")
        cards = page.eval("document.getElementById('cards').textContent")
        last = ledger["records"][-1]
        with SQLiteSink(path) as sink:  # the application keeps writing
            for i in range(5):
                sink.emit(
                    CostRecord(
                        request_id=f"new{i}",
                        attempt=1,
                        kind="call",
                        timestamp=last.timestamp + 1 + i,
                        provider="openai",
                        requested_model="gpt-4o",
                        model="gpt-4o",
                        feature="support",
                        tenant="acme",
                        cost_usd=1.0,
                    )
                )
        requests = len({r.request_id for r in ledger["records"]}) + 5
        assert f"requests{requests - 5:,}" in cards
        deadline = time.monotonic() + 20
        while f"requests{requests:,}" not in page.eval("document.getElementById('cards').textContent"):
            assert time.monotonic() < deadline, "the page did not show the new records"
            time.sleep(0.25)


def test_tag_values_are_shown_as_text(browser, tmp_path) -> None:
    evil = '<img src=x onerror="document.title=1">&amp;'
    path = tmp_path / "evil.db"
    with SQLiteSink(path) as sink:
        for i in range(3):
            sink.emit(
                CostRecord(
                    request_id=f"r{i}",
                    attempt=1,
                    kind="call",
                    timestamp=1_793_491_200.0 + i * 3600,
                    provider="openai",
                    requested_model="m",
                    model="m",
                    feature=evil,
                    tenant=evil,
                    cost_usd=0.5,
                    notes={"cache_verified": True},
                )
            )
    html = tmp_path / "evil.html"
    assert main(["report", str(path), "--format", "html", "-o", str(html), "--by", "tenant"]) == 0
    page = browser.open(html.as_uri(), width=1280, height=900)
    assert page.eval("document.querySelectorAll('img').length") == 0 and page.eval("document.title") != "1"
    assert {t["name"] for t in page.plotted()["cost_feature"]} == {evil}
    ticks = page.eval("[...document.querySelectorAll('#report_chart_0 .ytick text')].map(e => e.textContent)")
    assert ticks == [evil]  # the group's name on the chart's axis, as text
    assert evil in page.eval("document.getElementById('top').textContent")
