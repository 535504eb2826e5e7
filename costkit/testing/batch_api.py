"""The fake provider's batch APIs: OpenAI's Files + Batches and Anthropic's Message Batches.

(One module because both providers' batch state machines share one store of jobs and files, one
clock and one log of submissions, which the tests read as a whole: "nothing submitted twice".)

Reached through :meth:`FakeProvider.handle` (``fake.batch_api``), so the real SDKs drive it in
process and over HTTP alike. Each item of a batch is answered by the same :class:`FakeProvider`
that answers interactive calls (its rules, failures and usage counting), so a scripted failure
becomes a per-item error and a batch item costs exactly the tokens the interactive call would.

Time is a clock (``time.time`` unless a :class:`ManualClock` is set) and :class:`BatchTiming`
says how long each phase lasts, so a test moves a job through its states with ``advance()``:

* OpenAI: ``validating`` -> ``in_progress`` -> ``finalizing`` -> ``completed``; ``expired`` when
  processing outlasts the completion window (or :meth:`BatchAPI.expire_next` says so),
  ``cancelling`` -> ``cancelled`` after a cancel, ``failed`` when the input file is invalid
  (bad JSON line, wrong url, duplicate custom_id, more than one model, over the limits).
* Anthropic: ``in_progress`` -> ``ended`` (``canceling`` after a cancel), results per request
  ``succeeded`` / ``errored`` / ``canceled`` / ``expired``.

Items finish one after another across the processing time; a cancelled or expired job returns
the items done by then and reports the rest as ``batch_cancelled`` / ``batch_expired`` (OpenAI's
error file) or ``canceled`` / ``expired`` (Anthropic). :attr:`BatchAPI.submissions` logs every
request of every batch created, for "nothing was submitted twice" assertions.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

import attrs

from ..errors import ConfigError
from . import wire

if TYPE_CHECKING:
    from .handler import FakeProvider, FakeResponse

BATCH_PATHS = ("/v1/files", "/v1/batches", "/v1/messages/batches")

OPENAI_MAX_REQUESTS = 50_000
OPENAI_MAX_FILE_BYTES = 200 * 1024 * 1024
OPENAI_MAX_EMBEDDING_INPUTS = 50_000
ANTHROPIC_MAX_REQUESTS = 100_000
ANTHROPIC_MAX_BYTES = 256 * 1024 * 1024
OPENAI_ENDPOINTS = ("/v1/chat/completions", "/v1/responses", "/v1/embeddings", "/v1/completions")
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ENDED_OPENAI = ("completed", "failed", "expired", "cancelled")


class ManualClock:
    """A clock that moves only when told: ``clock.advance(3600)`` (starts at the current time)."""

    def __init__(self, start: float | None = None) -> None:
        self.now = time.time() if start is None else float(start)
        self._lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        with self._lock:
            self.now += float(seconds)
            return self.now


@attrs.frozen(kw_only=True)
class BatchTiming:
    """How long each phase of a fake batch lasts, in seconds of the batch API's clock."""

    validating_s: float = 0.0
    in_progress_s: float = 0.0
    finalizing_s: float = 0.0
    cancelling_s: float = 0.0
    completion_window_s: float = 86_400.0

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(type(self)):
            value = getattr(self, field.name)
            if not isinstance(value, int | float) or value < 0 or math.isnan(value):
                raise ConfigError(field.name, f"must be seconds >= 0, got {value!r}")


@attrs.define
class FakeFile:
    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: int


@attrs.define
class FakeBatch:
    """One batch of either provider; its state is a function of the clock (see :meth:`BatchAPI.phase`)."""

    id: str
    provider: str
    created_at: float
    seq: int
    requests: list[dict[str, Any]]
    headers: dict[str, str]
    endpoint: str = ""
    input_file_id: str = ""
    metadata: dict[str, str] | None = None
    completion_window: str = "24h"
    expire_share: float | None = None
    cancelled_at: float | None = None
    errors: list[dict[str, Any]] | None = None  # OpenAI validation errors: the batch failed
    ended: bool = False
    outcomes: list[dict[str, Any]] = attrs.field(factory=list)  # index -> outcome, once ended
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: bytes = b""  # Anthropic's results JSONL, once ended


@attrs.frozen
class Submission:
    """One batch as created: which custom ids (and request bodies) went into it."""

    batch_id: str
    provider: str
    custom_ids: tuple[str, ...]
    bodies: tuple[Mapping[str, Any], ...]


def parse_multipart(content_type: str, body: bytes) -> dict[str, tuple[str | None, bytes]]:
    """``multipart/form-data`` fields: name -> (filename or None, bytes)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if match is None:
        raise ValueError("multipart body without a boundary")
    delimiter = b"--" + match.group(1).encode("latin-1")
    fields: dict[str, tuple[str | None, bytes]] = {}
    for part in body.split(delimiter)[1:]:
        if part.startswith(b"--"):
            break
        if part.startswith(b"\r\n"):
            part = part[2:]
        head, sep, data = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        if data.endswith(b"\r\n"):
            data = data[:-2]
        disposition = next(
            (line for line in head.decode("latin-1").split("\r\n") if line.lower().startswith("content-disposition")),
            "",
        )
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if name is not None:
            fields[name.group(1)] = (filename.group(1) if filename else None, data)
    return fields


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _int(ts: float | None) -> int | None:
    return None if ts is None else int(ts)


class BatchAPI:
    """The batch endpoints of one :class:`FakeProvider` (``fake.batch_api``); see the module docstring.

    Script it with :meth:`set_timing`, :attr:`clock` (a :class:`ManualClock` to step time),
    :meth:`expire_next`, :meth:`delay_next_create` and :meth:`drop_next_create_response`.
    """

    def __init__(self, provider: FakeProvider, *, clock: Callable[[], float] = time.time) -> None:
        self.provider = provider
        self.clock: Callable[[], float] = clock
        self.timing = BatchTiming()
        self.files: dict[str, FakeFile] = {}
        self.batches: dict[str, FakeBatch] = {}
        self.submissions: list[Submission] = []
        self._expire: list[float] = []
        self._create_delays: list[float] = []
        self._create_drops = 0
        self._create_failures: list[int] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._prefix = os.urandom(4).hex()

    # ---- scripting

    def set_timing(self, **timing: float) -> BatchTiming:
        """Change phase durations (``validating_s``, ``in_progress_s``, ``finalizing_s``,
        ``cancelling_s``, ``completion_window_s``) for batches from now on and those in flight."""
        self.timing = attrs.evolve(self.timing, **timing)
        return self.timing

    def use_manual_clock(self, start: float | None = None) -> ManualClock:
        """Step time by hand from now on (returns the clock; ``clock.advance(s)``)."""
        clock = ManualClock(start)
        self.clock = clock
        return clock

    def expire_next(self, n: int = 1, *, completed_share: float = 0.5) -> None:
        """The next ``n`` batches created expire instead of completing, with ``completed_share``
        of their requests (the first ones) done by then."""
        if n < 1 or not 0.0 <= completed_share <= 1.0:
            raise ConfigError("completed_share", "n >= 1 and a share in [0, 1]")
        with self._lock:
            self._expire.extend([completed_share] * n)

    def delay_next_create(self, seconds: float, n: int = 1, *, after: int = 0) -> None:
        """The ``n`` batch creations after the next ``after`` ones are made at once but answered
        after ``seconds`` (a client that dies meanwhile never learns the batch id)."""
        with self._lock:
            self._create_delays.extend([0.0] * after + [float(seconds)] * n)

    def fail_next_create(self, status: int = 500, n: int = 1) -> None:
        """The next ``n`` batch creations are refused with ``status`` (no batch is made)."""
        if not 400 <= status <= 599:
            raise ConfigError("status", f"an error status is 400..599, got {status}")
        with self._lock:
            self._create_failures.extend([status] * n)

    def drop_next_create_response(self, n: int = 1) -> None:
        """The next ``n`` batch creations are made, then the connection drops before the answer."""
        with self._lock:
            self._create_drops += n

    def submitted(self) -> Counter[str]:
        """How many times each custom id was submitted in a created batch."""
        with self._lock:
            return Counter(cid for s in self.submissions for cid in s.custom_ids)

    def reset(self) -> None:
        with self._lock:
            self.files.clear()
            self.batches.clear()
            self.submissions.clear()
            self._expire.clear()
            self._create_delays.clear()
            self._create_failures.clear()
            self._create_drops = 0

    # ---- dispatch

    def handle(
        self, method: str, path: str, query: str, headers: Mapping[str, str], body: bytes | Mapping[str, Any]
    ) -> FakeResponse:
        method = method.upper()
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        parts = [p for p in path.split("/") if p]  # ["v1", "files", ...]
        provider = "anthropic" if parts[1:2] == ["messages"] else "openai"
        try:
            if provider == "anthropic":
                return self._anthropic(method, parts[3:], params, headers, body)
            if parts[1] == "files":
                return self._files(method, parts[2:], params, headers, body)
            return self._openai_batches(method, parts[2:], params, headers, body)
        except _ApiError as exc:
            return self._json(exc.status, wire.error_body(provider, exc.status, exc.message), provider)

    # ---- responses

    def _json(self, status: int, doc: Any, provider: str = "openai", delay_s: float = 0.0) -> FakeResponse:
        from .handler import FakeResponse

        with self._lock:
            rid = f"req_fakebatch{next(self._ids):09d}"
        header = "request-id" if provider == "anthropic" else "x-request-id"
        return FakeResponse(
            status=status,
            headers={"content-type": "application/json", header: rid},
            body=json.dumps(doc, separators=(",", ":")).encode(),
            delay_s=delay_s,
        )

    def _bytes(self, data: bytes, content_type: str) -> FakeResponse:
        from .handler import FakeResponse

        return FakeResponse(status=200, headers={"content-type": content_type}, body=data)

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{self._prefix}{next(self._ids):012d}"

    # ---- OpenAI files

    def _files(
        self, method: str, rest: list[str], params: Mapping[str, str], headers: Mapping[str, str], body: Any
    ) -> FakeResponse:
        if method == "POST" and not rest:
            if not isinstance(body, bytes | bytearray):
                raise _ApiError(400, "a file upload is multipart/form-data")
            try:
                fields = parse_multipart(headers.get("content-type", ""), bytes(body))
            except ValueError as exc:
                raise _ApiError(400, str(exc)) from None
            if "file" not in fields or "purpose" not in fields:
                raise _ApiError(400, "file and purpose are required")
            filename, data = fields["file"]
            purpose = fields["purpose"][1].decode()
            if purpose == "batch" and len(data) > OPENAI_MAX_FILE_BYTES:
                raise _ApiError(400, f"a batch input file may be up to {OPENAI_MAX_FILE_BYTES} bytes")
            return self._json(200, self._file_doc(self._add_file(filename or "upload", purpose, bytes(data))))
        if method == "GET" and not rest:
            with self._lock:
                files = sorted(self.files.values(), key=lambda f: (f.created_at, f.id), reverse=True)
            wanted = params.get("purpose")
            listed = [self._file_doc(f) for f in files if wanted is None or f.purpose == wanted]
            return self._json(200, {"object": "list", "data": listed, "has_more": False})
        file = self.files.get(rest[0]) if rest else None
        if file is None:
            raise _ApiError(404, f"No such File object: {rest[0] if rest else ''}")
        if method == "GET" and rest[1:] == ["content"]:
            return self._bytes(file.data, "application/octet-stream")
        if method == "GET" and len(rest) == 1:
            return self._json(200, self._file_doc(file))
        if method == "DELETE" and len(rest) == 1:
            with self._lock:
                self.files.pop(file.id, None)
            return self._json(200, {"id": file.id, "object": "file", "deleted": True})
        raise _ApiError(404, f"no such endpoint: {method} /v1/files/{'/'.join(rest)}")

    def _add_file(self, filename: str, purpose: str, data: bytes) -> FakeFile:
        with self._lock:
            file = FakeFile(self._new_id("file-"), filename, purpose, data, int(self.clock()))
            self.files[file.id] = file
        return file

    def _file_doc(self, f: FakeFile) -> dict[str, Any]:
        return {
            "id": f.id,
            "object": "file",
            "bytes": len(f.data),
            "created_at": f.created_at,
            "filename": f.filename,
            "purpose": f.purpose,
            "status": "processed",
            "expires_at": f.created_at + 30 * 86_400,
            "status_details": None,
        }

    # ---- OpenAI batches

    def _openai_batches(
        self, method: str, rest: list[str], params: Mapping[str, str], headers: Mapping[str, str], body: Any
    ) -> FakeResponse:
        if method == "POST" and not rest:
            self._scripted_refusal()
            return self._openai_create(headers, _json_body(body))
        if method == "GET" and not rest:
            page, more = self._page("openai", params.get("after"), None, params.get("limit"), 20, 100)
            data = [self._openai_doc(b) for b in page]
            return self._json(
                200,
                {
                    "object": "list",
                    "data": data,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                    "has_more": more,
                },
            )
        batch = self._get_batch(rest[0] if rest else "", "openai")
        if method == "GET" and len(rest) == 1:
            return self._json(200, self._openai_doc(batch))
        if method == "POST" and rest[1:] == ["cancel"]:
            self._cancel(batch)
            return self._json(200, self._openai_doc(batch))
        raise _ApiError(404, f"no such endpoint: {method} /v1/batches/{'/'.join(rest)}")

    def _openai_create(self, headers: Mapping[str, str], doc: Mapping[str, Any]) -> FakeResponse:
        endpoint = doc.get("endpoint")
        if endpoint not in OPENAI_ENDPOINTS:
            raise _ApiError(400, f"endpoint must be one of {', '.join(OPENAI_ENDPOINTS)}, got {endpoint!r}")
        if doc.get("completion_window") != "24h":
            raise _ApiError(400, "completion_window: only '24h' is supported")
        metadata = doc.get("metadata")
        if metadata is not None and (
            not isinstance(metadata, Mapping)
            or len(metadata) > 16
            or any(not isinstance(v, str) or len(k) > 64 or len(v) > 512 for k, v in metadata.items())
        ):
            raise _ApiError(400, "metadata: up to 16 string pairs, keys <= 64 and values <= 512 characters")
        file = self.files.get(str(doc.get("input_file_id")))
        if file is None:
            raise _ApiError(404, f"No such File object: {doc.get('input_file_id')}")
        if file.purpose != "batch":
            raise _ApiError(400, "the input file must be uploaded with purpose 'batch'")
        requests, errors = _read_input_file(file.data, str(endpoint))
        batch = self._new_batch(
            "openai",
            self._new_id("batch_"),
            requests if not errors else [],
            headers,
            endpoint=str(endpoint),
            input_file_id=file.id,
            metadata=dict(metadata) if metadata else None,
            errors=errors or None,
        )
        return self._created(batch, self._openai_doc(batch, fresh=True), "openai")

    def _openai_doc(self, b: FakeBatch, *, fresh: bool = False) -> dict[str, Any]:
        now = self.clock()
        phase = self.phase(b, now) if not fresh else "failed" if b.errors else "validating"
        t = self._times(b)
        n = len(b.requests)
        if phase in _ENDED_OPENAI:
            self._end(b)
        done = sum(1 for o in b.outcomes if o["status"] == "succeeded") if b.ended else self._done_count(b, now)
        failed = sum(1 for o in b.outcomes if o["status"] == "errored") if b.ended else 0
        usage = None
        if b.ended:
            inp = out = cached = 0
            for o in b.outcomes:
                u = (o.get("body") or {}).get("usage") or {}
                inp += int(u.get("prompt_tokens", u.get("input_tokens", 0)) or 0)
                out += int(u.get("completion_tokens", u.get("output_tokens", 0)) or 0)
                details = u.get("prompt_tokens_details") or u.get("input_tokens_details") or {}
                cached += int(details.get("cached_tokens", 0) or 0)
            usage = {
                "input_tokens": inp,
                "input_tokens_details": {"cached_tokens": cached},
                "output_tokens": out,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": inp + out,
            }
        model = next((str(r["body"].get("model")) for r in b.requests if r.get("body")), None)
        return {
            "id": b.id,
            "object": "batch",
            "endpoint": b.endpoint,
            "model": model,
            "errors": {"object": "list", "data": b.errors} if b.errors else None,
            "input_file_id": b.input_file_id,
            "completion_window": b.completion_window,
            "status": phase,
            "output_file_id": b.output_file_id,
            "error_file_id": b.error_file_id,
            "created_at": int(b.created_at),
            "in_progress_at": _int(t.start) if b.errors is None and now >= t.start else None,
            "expires_at": int(b.created_at + self.timing.completion_window_s),
            "finalizing_at": _int(t.end) if phase in ("finalizing", "completed") else None,
            "completed_at": _int(t.end + self.timing.finalizing_s) if phase == "completed" else None,
            "failed_at": int(b.created_at) if phase == "failed" else None,
            "expired_at": _int(t.expire_at) if phase == "expired" else None,
            "cancelling_at": _int(b.cancelled_at) if b.cancelled_at is not None else None,
            "cancelled_at": _int((b.cancelled_at or 0) + self.timing.cancelling_s) if phase == "cancelled" else None,
            "request_counts": {"total": n, "completed": done, "failed": failed},
            "usage": usage,
            "metadata": b.metadata,
        }

    # ---- Anthropic message batches

    def _anthropic(
        self, method: str, rest: list[str], params: Mapping[str, str], headers: Mapping[str, str], body: Any
    ) -> FakeResponse:
        if method == "POST" and not rest:
            self._scripted_refusal()
            return self._anthropic_create(headers, _json_body(body, provider="anthropic"))
        if method == "GET" and not rest:
            page, more = self._page(
                "anthropic", params.get("after_id"), params.get("before_id"), params.get("limit"), 20, 1000
            )
            data = [self._anthropic_doc(b, headers) for b in page]
            return self._json(
                200,
                {
                    "data": data,
                    "has_more": more,
                    "first_id": data[0]["id"] if data else None,
                    "last_id": data[-1]["id"] if data else None,
                },
                "anthropic",
            )
        batch = self._get_batch(rest[0] if rest else "", "anthropic")
        if method == "GET" and len(rest) == 1:
            return self._json(200, self._anthropic_doc(batch, headers), "anthropic")
        if method == "POST" and rest[1:] == ["cancel"]:
            self._cancel(batch)
            return self._json(200, self._anthropic_doc(batch, headers), "anthropic")
        if method == "GET" and rest[1:] == ["results"]:
            if self.phase(batch, self.clock()) != "ended":
                raise _ApiError(400, f"Message Batch {batch.id} has not finished processing")
            self._end(batch)
            return self._bytes(batch.results, "application/binary")
        if method == "DELETE" and len(rest) == 1:
            with self._lock:
                self.batches.pop(batch.id, None)
            return self._json(200, {"id": batch.id, "type": "message_batch_deleted"}, "anthropic")
        raise _ApiError(404, f"no such endpoint: {method} /v1/messages/batches/{'/'.join(rest)}")

    def _anthropic_create(self, headers: Mapping[str, str], doc: Mapping[str, Any]) -> FakeResponse:
        requests = doc.get("requests")
        if not isinstance(requests, list) or not requests:
            raise _ApiError(400, "requests: at least one request is required")
        if len(requests) > ANTHROPIC_MAX_REQUESTS:
            raise _ApiError(400, f"requests: at most {ANTHROPIC_MAX_REQUESTS} requests per batch")
        size = len(json.dumps(doc, separators=(",", ":")).encode())
        if size > ANTHROPIC_MAX_BYTES:
            raise _ApiError(413, f"a Message Batch may be up to {ANTHROPIC_MAX_BYTES} bytes, got {size}")
        seen: set[str] = set()
        lines = []
        for i, r in enumerate(requests):
            cid = r.get("custom_id") if isinstance(r, Mapping) else None
            params = r.get("params") if isinstance(r, Mapping) else None
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                raise _ApiError(400, f"requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$")
            if cid in seen:
                raise _ApiError(400, f"requests.{i}.custom_id: {cid!r} is not unique in this batch")
            if not isinstance(params, Mapping):
                raise _ApiError(400, f"requests.{i}.params: Field required")
            if params.get("stream"):
                raise _ApiError(400, f"requests.{i}.params.stream: streaming is not supported in batches")
            seen.add(cid)
            lines.append({"custom_id": cid, "url": "/v1/messages", "body": dict(params)})
        batch = self._new_batch("anthropic", self._new_id("msgbatch_"), lines, headers)
        return self._created(batch, self._anthropic_doc(batch, headers, fresh=True), "anthropic")

    def _anthropic_doc(self, b: FakeBatch, headers: Mapping[str, str], *, fresh: bool = False) -> dict[str, Any]:
        now = self.clock()
        phase = self.phase(b, now) if not fresh else "in_progress"
        if phase == "ended":
            self._end(b)
        counts = {"processing": len(b.requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        if b.ended:
            counts["processing"] = 0
            for o in b.outcomes:
                counts[{"cancelled": "canceled"}.get(o["status"], o["status"])] += 1
        t = self._times(b)
        ended_at = None
        if phase == "ended":
            ended_at = (
                b.cancelled_at + self.timing.cancelling_s
                if b.cancelled_at is not None
                else t.expire_at
                if t.expire_at is not None
                else t.end + self.timing.finalizing_s
            )
        return {
            "id": b.id,
            "type": "message_batch",
            "processing_status": phase,
            "request_counts": counts,
            "ended_at": _iso(ended_at),
            "created_at": _iso(b.created_at),
            "expires_at": _iso(b.created_at + self.timing.completion_window_s),
            "archived_at": None,
            "cancel_initiated_at": _iso(b.cancelled_at),
            "results_url": f"{_origin(headers)}/v1/messages/batches/{b.id}/results" if phase == "ended" else None,
        }

    # ---- shared job logic

    def _new_batch(
        self, provider: str, batch_id: str, requests: list[dict[str, Any]], headers: Mapping[str, str], **fields: Any
    ) -> FakeBatch:
        keep = {k: v for k, v in headers.items() if k.lower() not in ("content-type", "content-length", "host")}
        with self._lock:
            expire = self._expire.pop(0) if self._expire and not fields.get("errors") else None
            batch = FakeBatch(
                id=batch_id,
                provider=provider,
                created_at=self.clock(),
                seq=next(self._ids),
                requests=requests,
                headers=keep,
                expire_share=expire,
                **fields,
            )
            self.batches[batch.id] = batch
            self.submissions.append(
                Submission(
                    batch.id,
                    provider,
                    tuple(str(r["custom_id"]) for r in requests),
                    tuple(r["body"] for r in requests),
                )
            )
        return batch

    def _created(self, batch: FakeBatch, doc: Mapping[str, Any], provider: str) -> FakeResponse:
        from .handler import FakeResponse

        with self._lock:
            delay = self._create_delays.pop(0) if self._create_delays else 0.0
            drop = self._create_drops > 0
            if drop:
                self._create_drops -= 1
        if drop:
            return FakeResponse(status=0, headers={}, delay_s=delay, drop=True)
        return self._json(200, doc, provider, delay_s=delay)

    def _scripted_refusal(self) -> None:
        with self._lock:
            status = self._create_failures.pop(0) if self._create_failures else None
        if status is not None:
            raise _ApiError(status, f"costkit fake provider: injected {status} on batch creation")

    def _get_batch(self, batch_id: str, provider: str) -> FakeBatch:
        batch = self.batches.get(batch_id)
        if batch is None or batch.provider != provider:
            raise _ApiError(404, f"No such batch: {batch_id}")
        return batch

    def _page(
        self, provider: str, after: str | None, before: str | None, limit: str | None, default: int, most: int
    ) -> tuple[list[FakeBatch], bool]:
        """Newest first; ``after`` = older than that id, ``before`` = newer than it."""
        try:
            size = default if limit is None else int(limit)
        except ValueError:
            raise _ApiError(400, f"limit must be an integer, got {limit!r}") from None
        if not 1 <= size <= most:
            raise _ApiError(400, f"limit must be within [1, {most}]")
        with self._lock:
            ordered = sorted(
                (b for b in self.batches.values() if b.provider == provider),
                key=lambda b: (b.created_at, b.seq),
                reverse=True,
            )
        ids = [b.id for b in ordered]
        if after is not None and after in ids:
            ordered = ordered[ids.index(after) + 1 :]
        elif before is not None and before in ids:
            kept = ordered[: ids.index(before)]
            return kept[-size:], len(kept) > size
        return ordered[:size], len(ordered) > size

    def _times(self, b: FakeBatch) -> _Times:
        t = self.timing
        start = b.created_at + t.validating_s
        end = start + t.in_progress_s
        deadline = b.created_at + t.completion_window_s
        expire_at: float | None = None
        if b.expire_share is not None:
            expire_at = min(end, deadline)
        elif end > deadline:
            expire_at = deadline
        return _Times(start, end, expire_at)

    def phase(self, b: FakeBatch, now: float) -> str:
        """The batch's status at ``now``: OpenAI's names, or Anthropic's processing_status."""
        t = self._times(b)
        if b.errors:
            openai = "failed"
        elif b.cancelled_at is not None:
            openai = "cancelling" if now < b.cancelled_at + self.timing.cancelling_s else "cancelled"
        elif now < t.start:
            openai = "validating"
        elif t.expire_at is not None:
            openai = "in_progress" if now < t.expire_at else "expired"
        elif now < t.end:
            openai = "in_progress"
        elif now < t.end + self.timing.finalizing_s:
            openai = "finalizing"
        else:
            openai = "completed"
        if b.provider == "openai":
            return openai
        if openai == "cancelling":
            return "canceling"
        return "ended" if openai in _ENDED_OPENAI else "in_progress"

    def _done_count(self, b: FakeBatch, at: float) -> int:
        """How many requests (the first ones) were processed by ``at``."""
        n = len(b.requests)
        t = self._times(b)
        if b.expire_share is not None:
            cap = math.floor(b.expire_share * n)
            expire_at = t.expire_at
            if expire_at is None or at >= expire_at:
                return cap
            span = expire_at - t.start
            return min(cap, n if span <= 0 else max(0, math.floor((at - t.start) / span * cap)))
        span = self.timing.in_progress_s
        if at < t.start:
            return 0
        if span <= 0:
            return n
        return min(n, max(0, math.floor((at - t.start) / span * n)))

    def _cancel(self, b: FakeBatch) -> None:
        with self._lock:
            if b.cancelled_at is None and not b.ended and not b.errors:
                now = self.clock()
                ended = self.phase(b, now) in ("completed", "expired", "ended")
                if not ended:
                    b.cancelled_at = now

    def _end(self, b: FakeBatch) -> None:
        """Answer the requests done by the end (once) and write the output files / results."""
        with self._lock:
            if b.ended:
                return
            if b.errors:  # failed validation: nothing ran, the errors are on the batch
                b.ended = True
                return
            t = self._times(b)
            if b.cancelled_at is not None:
                done = self._done_count(b, b.cancelled_at)
            elif t.expire_at is not None:
                done = self._done_count(b, t.expire_at)
            else:
                done = len(b.requests)
            cut = "cancelled" if b.cancelled_at is not None else "expired"
            outcomes = [self._answer(b, r) if i < done else {"status": cut} for i, r in enumerate(b.requests)]
            b.outcomes = outcomes
            if b.provider == "openai":
                self._write_openai_files(b)
            else:
                b.results = b"".join(
                    json.dumps(_anthropic_line(r["custom_id"], o), separators=(",", ":")).encode() + b"\n"
                    for r, o in zip(b.requests, outcomes, strict=True)
                )
            b.ended = True

    def _answer(self, b: FakeBatch, request: Mapping[str, Any]) -> dict[str, Any]:
        """One request answered by the fake provider, as an interactive call would be."""
        body = request["body"]
        if body.get("stream"):
            return {"status": "errored", "status_code": 400, "body": _error(b.provider, 400, "stream is not allowed")}
        reply = self.provider.handle("POST", request["url"], {**b.headers}, body)
        if reply.drop or reply.frames is not None:
            return {"status": "errored", "status_code": 500, "body": _error(b.provider, 500, "the request failed")}
        try:
            doc = json.loads(reply.body)
        except ValueError:
            return {"status": "errored", "status_code": 500, "body": _error(b.provider, 500, "the request failed")}
        status = "succeeded" if reply.status == 200 else "errored"
        rid = reply.headers.get("x-request-id") or reply.headers.get("request-id")
        return {"status": status, "status_code": reply.status, "body": doc, "request_id": rid}

    def _write_openai_files(self, b: FakeBatch) -> None:
        out: list[bytes] = []
        err: list[bytes] = []
        for i, (r, o) in enumerate(zip(b.requests, b.outcomes, strict=True)):
            line: dict[str, Any] = {"id": f"batch_req_{b.id[-12:]}{i:06d}", "custom_id": r["custom_id"]}
            if o["status"] in ("succeeded", "errored"):
                response = {"status_code": o["status_code"], "request_id": o.get("request_id"), "body": o["body"]}
                line["response"] = response
                line["error"] = None
            else:
                code = "batch_cancelled" if o["status"] == "cancelled" else "batch_expired"
                message = (
                    "This request was cancelled before it was executed."
                    if o["status"] == "cancelled"
                    else "This request could not be executed before the completion window expired."
                )
                line["response"] = None
                line["error"] = {"code": code, "message": message}
            encoded = json.dumps(line, separators=(",", ":")).encode() + b"\n"
            (out if o["status"] == "succeeded" else err).append(encoded)
        if out:
            b.output_file_id = self._add_file(f"{b.id}_output.jsonl", "batch_output", b"".join(out)).id
        if err:
            b.error_file_id = self._add_file(f"{b.id}_error.jsonl", "batch_output", b"".join(err)).id


@attrs.frozen
class _Times:
    """When a batch starts processing, ends it, and expires (None: it does not)."""

    start: float
    end: float
    expire_at: float | None


class _ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        self.status = status
        self.message = message
        super().__init__(message)


def _json_body(body: Any, provider: str = "openai") -> Mapping[str, Any]:
    if isinstance(body, Mapping):
        return body
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise _ApiError(400, f"invalid JSON body: {exc}") from None
    if not isinstance(doc, dict):
        raise _ApiError(400, "the body is not a JSON object")
    return doc


def _error(provider: str, status: int, message: str) -> dict[str, Any]:
    return wire.error_body(provider, status, message)


def _origin(headers: Mapping[str, str]) -> str:
    """Where the client reached us (the results URL points back here)."""
    host = headers.get("host") or "api.anthropic.com"
    local = host.startswith(("127.", "localhost", "[::1]", "0.0.0.0"))
    return f"{'http' if local else 'https'}://{host}"


def _read_input_file(data: bytes, endpoint: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The requests of an OpenAI batch input file, or the validation errors that fail the batch."""
    requests: list[dict[str, Any]] = []
    errors: list[dict[str, Any]] = []
    seen: set[str] = set()
    models: set[str] = set()
    embedding_inputs = 0
    for n, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:
            errors.append({"code": "invalid_json_line", "message": "This line is not valid JSON.", "line": n})
            continue
        cid = line.get("custom_id") if isinstance(line, dict) else None
        body = line.get("body") if isinstance(line, dict) else None
        if not isinstance(cid, str) or not cid:
            errors.append({"code": "missing_required_parameter", "message": "custom_id is required", "line": n})
        elif cid in seen:
            errors.append({"code": "duplicate_custom_id", "message": f"custom_id {cid!r} is not unique", "line": n})
        elif line.get("method") != "POST" or line.get("url") != endpoint:
            errors.append({"code": "invalid_url", "message": f"every request must POST to {endpoint}", "line": n})
        elif not isinstance(body, dict):
            errors.append({"code": "missing_required_parameter", "message": "body is required", "line": n})
        else:
            seen.add(cid)
            models.add(str(body.get("model")))
            if endpoint == "/v1/embeddings":
                given = body.get("input")
                embedding_inputs += len(given) if isinstance(given, list) else 1
            requests.append({"custom_id": cid, "url": endpoint, "body": body})
    if len(models) > 1:
        errors.append(
            {"code": "mixed_models", "message": f"a batch must use one model, got {sorted(models)}", "line": None}
        )
    if len(requests) > OPENAI_MAX_REQUESTS:
        errors.append(
            {"code": "too_many_requests", "message": f"at most {OPENAI_MAX_REQUESTS} requests per batch", "line": None}
        )
    if embedding_inputs > OPENAI_MAX_EMBEDDING_INPUTS:
        errors.append(
            {
                "code": "too_many_inputs",
                "message": f"at most {OPENAI_MAX_EMBEDDING_INPUTS} embedding inputs per batch",
                "line": None,
            }
        )
    if not requests and not errors:
        errors.append({"code": "empty_file", "message": "the input file has no requests", "line": None})
    return requests, errors


def _anthropic_line(custom_id: str, o: Mapping[str, Any]) -> dict[str, Any]:
    status = o["status"]
    if status == "succeeded":
        result: dict[str, Any] = {"type": "succeeded", "message": o["body"]}
    elif status == "errored":
        error = dict(o["body"]) if isinstance(o.get("body"), Mapping) else _error("anthropic", 500, "error")
        error.setdefault("type", "error")
        error["request_id"] = o.get("request_id")
        result = {"type": "errored", "error": error}
    else:
        result = {"type": "canceled" if status == "cancelled" else "expired"}
    return {"custom_id": custom_id, "result": result}


__all__ = [
    "ANTHROPIC_MAX_BYTES",
    "ANTHROPIC_MAX_REQUESTS",
    "BATCH_PATHS",
    "OPENAI_MAX_FILE_BYTES",
    "OPENAI_MAX_REQUESTS",
    "BatchAPI",
    "BatchTiming",
    "FakeBatch",
    "FakeFile",
    "ManualClock",
    "Submission",
    "parse_multipart",
]
