"""Headless Chromium driven over the DevTools protocol on a pipe (stdlib only, no websocket client).

``--window-size`` cannot go under 500 px wide in headless Chromium, so a phone's 390 px is set
with ``Emulation.setDeviceMetricsOverride``; the protocol also reports every request the page
makes (the tests check that none leaves the machine) and reads back what the page plotted.
Chromium runs as root here, hence ``--no-sandbox``; each run gets a fresh profile directory.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--hide-scrollbars",
    "--remote-debugging-pipe",
]


def _high(fds: tuple[int, int]) -> tuple[int, int]:
    """The pipe's ends moved to fds >= 10, so placing them at 3 and 4 in the child cannot clobber them."""
    import fcntl

    out = tuple(fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds)
    for fd in fds:
        os.close(fd)
    return out  # type: ignore[return-value]


def executable() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


class Browser:
    """One Chromium process; :meth:`open` loads a page at a viewport size and waits until it drew."""

    def __init__(self) -> None:
        exe = executable()
        if exe is None:
            raise RuntimeError("chromium is not installed (scripts/test installs Debian's chromium package)")
        self._profile = tempfile.mkdtemp(prefix="costkit-chromium-")
        to_child_r, self._to_child = _high(os.pipe())
        self._from_child, from_child_w = _high(os.pipe())

        # the protocol: commands on the child's fd 3, answers on its fd 4 (bash puts the pipes there)
        wire = f'exec "$0" "$@" 3<&{to_child_r} 4>&{from_child_w} {to_child_r}<&- {from_child_w}>&-'
        self.proc = subprocess.Popen(
            ["bash", "-c", wire, exe, *FLAGS, f"--user-data-dir={self._profile}", "about:blank"],
            pass_fds=(to_child_r, from_child_w),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_child_r)
        os.close(from_child_w)
        self._buf = b""
        self._id = 0
        self.events: list[dict[str, Any]] = []

    # -- protocol --------------------------------------------------------------------------------

    def _read(self, timeout_s: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while b"\0" not in self._buf:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise TimeoutError("chromium did not answer")
            import select

            ready, _, _ = select.select([self._from_child], [], [], 0.2)
            if ready:
                chunk = os.read(self._from_child, 1 << 20)
                if not chunk:
                    raise RuntimeError("chromium closed the pipe")
                self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def send(
        self, method: str, params: dict[str, Any] | None = None, *, session: str | None = None, timeout_s: float = 60
    ) -> Any:
        self._id += 1
        msg: dict[str, Any] = {"id": self._id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        while True:
            got = self._read(timeout_s)
            if got.get("id") == self._id:
                if "error" in got:
                    raise RuntimeError(f"{method}: {got['error']}")
                return got.get("result", {})
            self.events.append(got)

    def wait_event(self, method: str, timeout_s: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout_s
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method:
                    return self.events.pop(i)
            self.events.append(self._read(max(0.1, deadline - time.monotonic())))

    # -- pages -----------------------------------------------------------------------------------

    def open(self, url: str, *, width: int, height: int, mobile: bool = False, timeout_s: float = 60) -> Page:
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        page = Page(self, session)
        page.call(
            "Emulation.setDeviceMetricsOverride",
            {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
        )
        page.call("Network.enable")
        page.call("Page.enable")
        page.call("Page.navigate", {"url": url})
        deadline = time.monotonic() + timeout_s
        while page.eval("document.body && document.body.getAttribute('data-drawn')") is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the page at {url} did not draw its charts")
            time.sleep(0.2)
        return page

    def close(self) -> None:
        try:
            self.send("Browser.close", timeout_s=10)
        except Exception:
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self._profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Page:
    def __init__(self, browser: Browser, session: str) -> None:
        self.browser = browser
        self.session = session

    def call(self, method: str, params: dict[str, Any] | None = None, *, timeout_s: float = 120) -> Any:
        return self.browser.send(method, params, session=self.session, timeout_s=timeout_s)

    def eval(self, expression: str) -> Any:
        got = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True})
        return got.get("result", {}).get("value")

    def screenshot(self, path: Path, *, full_page: bool = False) -> Path:
        params: dict[str, Any] = {"format": "png"}
        if full_page:  # the whole page, not only what fits the screen
            size = self.call("Page.getLayoutMetrics")["cssContentSize"]
            params.update(
                captureBeyondViewport=True,
                clip={"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1},
            )
        data = self.call("Page.captureScreenshot", params)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def plotted(self) -> dict[str, Any]:
        return json.loads(self.eval("document.getElementById('plotted').textContent"))

    def requested_urls(self) -> list[str]:
        """Every URL the page asked for so far (from the protocol's Network events)."""
        return [
            e["params"]["request"]["url"]
            for e in self.browser.events
            if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == self.session
        ]
