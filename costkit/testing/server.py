"""The fake provider over real HTTP on 127.0.0.1, so the SDKs run their whole network stack.

``serve()`` starts a threaded HTTP/1.1 server (keep-alive, TCP_NODELAY, one ``sendall`` per
response, SSE as chunked transfer) in front of the same :class:`FakeProvider` the in-process
clients use. Benchmarks measure costkit's overhead against it, so the request path is kept to a
hand-written parser and no per-request allocation beyond the bodies.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from typing import Any

from ..errors import ConfigError
from .handler import FakeProvider, FakeResponse

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
    529: "Overloaded",
}
_MAX_LINE = 65536


class _Connection(socketserver.StreamRequestHandler):
    """One keep-alive connection: parse requests, hand them to the fake, write what it decided."""

    rbufsize = 65536
    wbufsize = 0
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, add=True)

    def finish(self) -> None:
        self.server.track(self.connection, add=False)
        with contextlib.suppress(OSError):
            super().finish()

    def handle(self) -> None:
        try:
            while not self.server.stopping.is_set():
                if not self._one_request():
                    return
        except (OSError, ValueError):
            return

    def _one_request(self) -> bool:
        line = self.rfile.readline(_MAX_LINE)
        while line in (b"\r\n", b"\n"):
            line = self.rfile.readline(_MAX_LINE)
        if not line:
            return False
        method, target, version = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            h = self.rfile.readline(_MAX_LINE)
            if h in (b"\r\n", b"\n", b""):
                break
            name, _, value = h.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("expect", "").lower() == "100-continue":  # curl, for bodies over 1 KB
            self.connection.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        else:
            length = int(headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
        keep_alive = version.strip() == "HTTP/1.1" and headers.get("connection", "").lower() != "close"
        plan = self.server.fake.handle(method, target, headers, body)  # the query too (batch list pages)
        return self._send(plan, keep_alive) and keep_alive

    def _read_chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self.rfile.readline(_MAX_LINE).split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while self.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(_MAX_LINE)

    def _send(self, plan: FakeResponse, keep_alive: bool) -> bool:
        stopping = self.server.stopping
        if plan.delay_s and stopping.wait(plan.delay_s):
            return False
        if plan.drop and plan.frames is None:
            return False  # close without a response
        head = [f"HTTP/1.1 {plan.status} {_REASONS.get(plan.status, 'Status')}"]
        head.extend(f"{k}: {v}" for k, v in plan.headers.items())
        head.append("connection: keep-alive" if keep_alive else "connection: close")
        sock = self.connection
        if plan.frames is None:
            head.append(f"content-length: {len(plan.body)}")
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + plan.body)
            return True
        head.append("transfer-encoding: chunked")
        prefix = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        for i, frame in enumerate(plan.frames):
            if i and plan.chunk_delay_s and stopping.wait(plan.chunk_delay_s):
                return False
            sock.sendall(prefix + b"%x\r\n" % len(frame) + frame + b"\r\n")
            prefix = b""
        if plan.drop:
            return False  # the stream stops mid-body
        sock.sendall(prefix + b"0\r\n\r\n")
        return True


class _Server(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], fake: FakeProvider) -> None:
        self.fake = fake
        self.stopping = threading.Event()
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Connection)

    def track(self, sock: socket.socket, *, add: bool) -> None:
        with self._open_lock:
            if add:
                self._open.add(sock)
            else:
                self._open.discard(sock)

    def close_connections(self) -> None:
        with self._open_lock:
            socks, self._open = list(self._open), set()
        for s in socks:
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


class FakeServer:
    """A running fake provider on 127.0.0.1: point an SDK's ``base_url`` at it.

    ``base_url`` is the OpenAI one (``http://127.0.0.1:PORT/v1``), ``anthropic_base_url`` the
    Anthropic one (the SDK adds ``/v1``). ``fake`` is the script and the call log. Close it (or use
    it as a context manager) to stop the server and drop open connections.
    """

    def __init__(self, fake: FakeProvider | None = None, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.fake = fake if fake is not None else FakeProvider()
        self._server = _Server((host, port), self.fake)
        address = self._server.server_address
        self.host: str = str(address[0])
        self.port: int = int(address[1])
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="costkit-fake-server", daemon=True
        )
        self._thread.start()
        self._closed = False

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.url

    def openai_client(self, **kwargs: Any) -> Any:
        """A real ``openai.OpenAI`` pointed at this server (``max_retries=0`` unless given)."""
        import openai

        return _pointed(openai.OpenAI, self.base_url, "sk-costkit-fake", kwargs)

    def async_openai_client(self, **kwargs: Any) -> Any:
        import openai

        return _pointed(openai.AsyncOpenAI, self.base_url, "sk-costkit-fake", kwargs)

    def anthropic_client(self, **kwargs: Any) -> Any:
        import anthropic

        return _pointed(anthropic.Anthropic, self.anthropic_base_url, "sk-ant-costkit-fake", kwargs)

    def async_anthropic_client(self, **kwargs: Any) -> Any:
        import anthropic

        return _pointed(anthropic.AsyncAnthropic, self.anthropic_base_url, "sk-ant-costkit-fake", kwargs)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        self._server.stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<FakeServer {self.base_url}{' closed' if self._closed else ''}>"


def _pointed(cls: Any, base_url: str, api_key: str, kwargs: dict[str, Any]) -> Any:
    """An SDK client on ``base_url``; a fake key and no retries unless the caller says otherwise."""
    kwargs.setdefault("api_key", api_key)
    kwargs.setdefault("max_retries", 0)
    return cls(base_url=base_url, **kwargs)


def serve(fake: FakeProvider | None = None, *, host: str = "127.0.0.1", port: int = 0) -> FakeServer:
    """Start the fake provider on ``host`` (a free port unless given) and return its handle."""
    return FakeServer(fake, host=host, port=port)


def main(argv: list[str] | None = None) -> None:
    """``python -m costkit.testing``: run the fake provider for any HTTP client until Ctrl-C."""
    import argparse
    import signal
    import time

    ap = argparse.ArgumentParser(prog="python -m costkit.testing", description="Run costkit's fake LLM provider.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=0, help="0 picks a free port")
    ap.add_argument("--reply", default=None, help="answer every request with this text")
    ap.add_argument("--latency", type=float, default=0.0, help="seconds before each response")
    ap.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between SSE events")
    ap.add_argument("--failure-rate", type=float, default=0.0, help="share of requests that fail (429/500/503/drop)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--prompt-caching", action="store_true", help="simulate provider prompt caching")
    args = ap.parse_args(argv)
    try:
        fake = FakeProvider(
            default=args.reply,
            latency_s=args.latency,
            chunk_delay_s=args.chunk_delay,
            failure_rate=args.failure_rate,
            seed=args.seed,
            prompt_caching=args.prompt_caching,
        )
    except ConfigError as exc:
        ap.error(str(exc))

    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    with serve(fake, host=args.host, port=args.port) as server:
        print(f"OpenAI base_url:    {server.base_url}", flush=True)
        print(f"Anthropic base_url: {server.anthropic_base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            print(f"served {fake.count()} requests", flush=True)


__all__ = ["FakeServer", "main", "serve"]
