"""serve(): the same fake over real HTTP/1.1, driven by the SDKs' own network stack."""

from __future__ import annotations

import socket
import threading

import anthropic
import httpx
import openai
import pytest
from _sdk_errors import raises_mid_stream
from openai.types.chat import ChatCompletion

from costkit.testing import Failure, FakeProvider, serve
from costkit.tokens import count_messages, count_text

MODEL = "gpt-4o-mini"
CLAUDE = "claude-haiku-4-5"
Q = [{"role": "user", "content": "What is the capital of France?"}]
ANSWER = "Fake answer to: What is the capital of France?"


@pytest.fixture
def server():
    with serve() as s:
        yield s


def test_urls_and_repr(server):
    assert server.base_url == f"http://127.0.0.1:{server.port}/v1"
    assert server.anthropic_base_url == f"http://127.0.0.1:{server.port}"
    assert "127.0.0.1" in repr(server)


def test_openai_over_http(server):
    client = server.openai_client()
    reply = client.chat.completions.create(model=MODEL, messages=Q)
    assert isinstance(reply, ChatCompletion) and reply.choices[0].message.content == ANSWER
    assert reply.usage.prompt_tokens == count_messages(Q, MODEL)
    assert server.fake.last.headers["content-type"] == "application/json"
    assert server.fake.last.headers["authorization"] == "Bearer sk-costkit-fake"


def test_openai_sdk_with_only_base_url(server):
    client = openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0)
    chunks = list(
        client.chat.completions.create(model=MODEL, messages=Q, stream=True, stream_options={"include_usage": True})
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == ANSWER
    assert chunks[-1].usage.completion_tokens == count_text(ANSWER, MODEL)
    with client.responses.stream(model=MODEL, input="What is the capital of France?") as stream:
        final = stream.get_final_response()
    assert final.output_text == ANSWER


def test_anthropic_over_http(server):
    client = server.anthropic_client()
    m = client.messages.create(model=CLAUDE, max_tokens=100, messages=Q)
    assert m.content[0].text == ANSWER
    with client.messages.stream(model=CLAUDE, max_tokens=100, messages=Q) as stream:
        assert "".join(stream.text_stream) == ANSWER
    assert server.fake.count(api="messages") == 2


def test_errors_over_http(server):
    client = server.openai_client()
    server.fake.fail_next(1, 429, retry_after=3)
    with pytest.raises(openai.RateLimitError) as e:
        client.chat.completions.create(model=MODEL, messages=Q)
    assert e.value.response.headers["retry-after"] == "3"
    server.fake.fail_next(1, 503)
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model=MODEL, messages=Q)
    server.fake.fail_next(1, Failure.overloaded(529))
    with pytest.raises(anthropic.APIStatusError) as oe:
        server.anthropic_client().messages.create(model=CLAUDE, max_tokens=5, messages=Q)
    assert oe.value.status_code == 529
    # the connection survives an error response
    assert client.chat.completions.create(model=MODEL, messages=Q).choices[0].message.content == ANSWER


def test_timeout_disconnect_and_truncated_stream_over_http(server):
    impatient = server.openai_client(timeout=0.2)
    server.fake.fail_next(1, Failure.timeout(3.0))
    with pytest.raises(openai.APITimeoutError):
        impatient.chat.completions.create(model=MODEL, messages=Q)
    client = server.openai_client(timeout=30.0)
    server.fake.fail_next(1, Failure.disconnect())
    with pytest.raises(openai.APIConnectionError) as dropped:
        client.chat.completions.create(model=MODEL, messages=Q)
    assert not isinstance(dropped.value, openai.APITimeoutError)
    server.fake.fail_next(1, Failure.malformed())
    with raises_mid_stream(httpx.RemoteProtocolError):
        list(client.chat.completions.create(model=MODEL, messages=Q, stream=True))
    server.fake.fail_next(1, Failure.malformed())
    with pytest.raises(ValueError):
        client.chat.completions.create(model=MODEL, messages=Q)
    assert client.chat.completions.create(model=MODEL, messages=Q).choices[0].message.content == ANSWER


def test_keep_alive_reuses_one_connection(server):
    accepted = []
    original = server._server.process_request

    def counting(request, address):
        accepted.append(address)
        return original(request, address)

    server._server.process_request = counting
    with httpx.Client() as http:
        for _ in range(5):
            r = http.post(f"{server.base_url}/chat/completions", json={"model": MODEL, "messages": Q})
            assert r.status_code == 200 and r.headers["connection"] == "keep-alive"
            assert r.http_version == "HTTP/1.1"
    assert len(accepted) == 1


def test_raw_http_unknown_path_and_connection_close(server):
    with socket.create_connection((server.host, server.port)) as s:
        s.sendall(b"GET /v1/models HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 404 Not Found\r\n") and b"connection: close" in data


def test_concurrent_clients(server):
    errors = []

    def worker():
        client = server.openai_client()
        try:
            for _ in range(10):
                assert client.chat.completions.create(model=MODEL, messages=Q).choices[0].message.content == ANSWER
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and server.fake.count() == 60


async def test_async_clients_over_http(server):
    client = server.async_openai_client()
    reply = await client.chat.completions.create(model=MODEL, messages=Q)
    assert reply.choices[0].message.content == ANSWER
    m = await server.async_anthropic_client().messages.create(model=CLAUDE, max_tokens=10, messages=Q)
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 10


def test_close_stops_serving_and_wakes_hung_requests():
    fake = FakeProvider()
    server = serve(fake)
    fake.fail_next(1, Failure.disconnect(delay_s=30.0))
    client = server.openai_client(timeout=60.0)
    errors = []

    def hang():
        try:
            client.chat.completions.create(model=MODEL, messages=Q)
        except Exception as exc:
            errors.append(exc)

    t = threading.Thread(target=hang)
    t.start()
    while fake.count() == 0:
        threading.Event().wait(0.01)
    server.close()
    t.join(timeout=10)
    assert not t.is_alive() and isinstance(errors[0], openai.APIConnectionError)
    server.close()  # idempotent
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{server.base_url}/chat/completions", json={"model": MODEL, "messages": Q})


def test_a_given_port_and_a_shared_provider():
    fake = FakeProvider()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with serve(fake, port=port) as s:
        assert s.port == port
        s.openai_client().chat.completions.create(model=MODEL, messages=Q)
    assert fake.count() == 1


def test_command_line_server_runs_until_terminated():
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "costkit.testing", "--reply", "pong", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()
        assert first.startswith("OpenAI base_url:")
        base_url = first.split()[-1]
        client = openai.OpenAI(base_url=base_url, api_key="k", max_retries=0)
        assert client.chat.completions.create(model=MODEL, messages=Q).choices[0].message.content == "pong"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert "served 1 requests" in out and proc.returncode == 0


def test_chunked_request_bodies_and_expect_continue(server):
    body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of France?"}]}'

    def chunks():
        yield body[:10]
        yield body[10:]

    with httpx.Client() as http:
        r = http.post(f"{server.base_url}/chat/completions", content=chunks())
        assert r.request.headers["transfer-encoding"] == "chunked"
        assert r.json()["choices"][0]["message"]["content"] == ANSWER
        r = http.post(f"{server.base_url}/chat/completions", content=body, headers={"expect": "100-continue"})
    assert r.status_code == 200 and server.fake.count(status=200) == 2
