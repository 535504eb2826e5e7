"""What the policy benchmarks share: a median per-call timing, and a throwaway Redis for the run."""

from __future__ import annotations

import contextlib
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator


def median_us(prepare: Callable[[], Callable[[], object]], per: int, repeat: int) -> float:
    """Median over ``repeat`` runs of microseconds per item (``per`` items a run).

    ``prepare()`` runs outside the timing and returns the run to time (so fresh inputs cost nothing).
    """
    times = []
    for _ in range(repeat):
        run = prepare()
        t0 = time.perf_counter()
        run()
        times.append((time.perf_counter() - t0) / per * 1e6)
    return statistics.median(times)


@contextlib.contextmanager
def redis_for_run(url: str | None) -> Iterator[str | None]:
    """``url`` if given; else a ``redis-server`` on a free loopback port for the run (None if not on PATH)."""
    exe = shutil.which("redis-server")
    if url is not None or exe is None:
        yield url
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        cwd=tempfile.mkdtemp(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(200):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            yield None
            return
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait(10)
