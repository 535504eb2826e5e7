"""What the fake provider costs per request, against baselines measured in the same run.

    python benchmarks/bench_fake_provider.py [--n 2000] [--repeat 5]

1. The handler alone (``FakeProvider.handle``: parse, script, count tokens, render), per API.
2. Over HTTP with one keep-alive httpx client, the variants interleaved request by request (so
   machine load hits them alike): a floor server that reads each request and writes one fixed,
   pre-built response and nothing else; ``serve()`` with a handler returning that same prebuilt
   response (the server's own parsing and writing); ``serve()`` with a real FakeProvider. The
   median per-round difference to the floor is what each adds to a round trip.
3. The openai SDK end to end: in process (``FakeOpenAI``) and over HTTP (``serve()``).

Sections 1 and 3: medians over ``--repeat`` runs of ``--n`` requests (after a warm-up), in
microseconds, with ratios to the baseline. Not a test: timings depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import socketserver
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import httpx

from costkit.testing import FakeOpenAI, FakeProvider, serve

CHAT = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of France?"}]}
MESSAGES = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": CHAT["messages"]}


class _Floor(socketserver.StreamRequestHandler):
    """Reads a request (line, headers, body) and writes one fixed response: the cheapest server."""

    rbufsize = 65536
    wbufsize = 0
    disable_nagle_algorithm = True
    reply = b""

    def handle(self) -> None:
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            length = 0
            while (h := self.rfile.readline(65536)) not in (b"\r\n", b""):
                if h[:15].lower() == b"content-length:":
                    length = int(h[15:])
            self.rfile.read(length)
            self.connection.sendall(self.reply)


def floor_server(body: bytes) -> socketserver.ThreadingTCPServer:
    head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n\r\n"
    handler = type("Floor", (_Floor,), {"reply": head.encode() + body})
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def median_us(fn: Callable[[], object], n: int, repeat: int) -> float:
    for _ in range(min(200, n)):
        fn()
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        for _ in range(n):
            fn()
        runs.append((time.perf_counter() - t) / n * 1e6)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    n, repeat = args.n, args.repeat

    fake = FakeProvider()
    print(f"1. handler only (FakeProvider.handle), median of {repeat} x {n}")
    bodies = {
        "chat": ("/v1/chat/completions", json.dumps(CHAT).encode()),
        "chat stream": ("/v1/chat/completions", json.dumps({**CHAT, "stream": True}).encode()),
        "responses": ("/v1/responses", json.dumps({"model": "gpt-4o-mini", "input": "What is the capital?"}).encode()),
        "anthropic": ("/v1/messages", json.dumps(MESSAGES).encode()),
    }
    for name, (path, body) in bodies.items():
        us = median_us(lambda p=path, b=body: fake.handle("POST", p, {}, b), n, repeat)
        fake.reset()
        print(f"   {name:<12} {us:8.1f} us/request")

    print(f"\n2. HTTP round trip, one keep-alive httpx client, {n} rounds, variants interleaved per round")
    payload = json.dumps(CHAT).encode()
    prebuilt = fake.handle("POST", "/v1/chat/completions", {}, payload)
    floor = floor_server(prebuilt.body)
    canned = type("Canned", (FakeProvider,), {"handle": lambda self, *a: prebuilt})()
    headers = {"content-type": "application/json"}
    with serve(canned) as canned_srv, serve(fake) as srv, httpx.Client() as http:
        urls = {
            "floor server (fixed bytes)": f"http://127.0.0.1:{floor.server_address[1]}/v1/chat/completions",
            "serve(), prebuilt response": f"{canned_srv.base_url}/chat/completions",
            "serve(), FakeProvider": f"{srv.base_url}/chat/completions",
        }
        times: dict[str, list[float]] = {name: [] for name in urls}
        for r in range(200 + n):
            for name, url in urls.items():
                t = time.perf_counter()
                http.post(url, content=payload, headers=headers)
                if r >= 200:
                    times[name].append(time.perf_counter() - t)
        fake.reset()
    floor.shutdown()
    floor.server_close()
    base = times["floor server (fixed bytes)"]
    base_med = statistics.median(base) * 1e6
    for name, ts in times.items():
        paired = statistics.median(t - b for t, b in zip(ts, base)) * 1e6
        med = statistics.median(ts) * 1e6
        print(f"   {name:<28} {med:8.1f} us/request   ratio {med / base_med:.2f}   paired +{paired:.1f} us")

    print(f"\n3. openai SDK end to end, median of {repeat} x {n // 4}")
    client = FakeOpenAI(fake)
    inproc = median_us(lambda: client.chat.completions.create(**CHAT), n // 4, repeat)
    fake.reset()
    with serve(fake) as srv:
        http_client = srv.openai_client()
        over_http = median_us(lambda: http_client.chat.completions.create(**CHAT), n // 4, repeat)
    print(f"   FakeOpenAI (in process)    {inproc:8.1f} us/call")
    print(f"   openai.OpenAI -> serve()   {over_http:8.1f} us/call   ratio {over_http / inproc:.2f}")


if __name__ == "__main__":
    main()
