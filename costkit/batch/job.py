"""A batch job: its items in a state file, its chunks at the provider, and the handle to drive it.

(One module because the job handle and the functions that create and resume it share the state
file's invariants: what is written before an upload and what is reconciled after a restart.)

:func:`submit` prepares the items (policies, bodies), stores them, splits them at the provider's
limits and submits the chunks; :class:`Job` polls them, collects results as chunks end, records
each item, and returns the answers in input order. Every step reads and writes the state file
(:mod:`costkit.batch.state`), so :func:`resume` in a new process (or ``submit`` of the same job
again) picks the job up where it stopped, and never submits an item twice.

After a chunk's results are stored, each item's side effects run once: its cost record, the
caches' store, the budgets' settlement (an item stays "unrecorded" until then, so a crash in
between is redone on restart, at worst recording that item twice under the same request id).
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import attrs

from .._call import SOURCE_EXACT_CACHE, Tags
from .._context import current_tags
from .._warn import warn_once
from ..errors import ConfigError
from . import hooks, recording
from .errors import BatchError, JobNotFinished
from .lane import CLOCK_SKEW_S, ChunkRef, ItemResult, Lane, Lookup, ProviderBatch, lane_for
from .methods import METHODS, BatchMethod, resolve
from .poll import Backoff
from .prepare import Prepared, call_doc, call_of, job_id_for, prepare, reserve_all, to_calls
from .progress import Progress
from .results import item_error
from .split import Limits, Sized, split
from .state import (
    CACHED,
    CANCELLED,
    CHUNK_SUBMITTED,
    CHUNK_SUBMITTING,
    EXPIRED,
    FAILED,
    FINISHED,
    OPEN_STATUSES,
    PENDING,
    REFUSED,
    RESUBMITTABLE,
    SUBMITTED,
    SUBMITTING,
    SUCCEEDED,
    ChunkRow,
    ItemRow,
    JobRow,
    JobStore,
    Outcome,
    this_process,
)

DEFAULT_STATE = "costkit-batch.db"
#: how long a hold on a budget lasts: the 24 h completion window and an hour to collect
HOLD_TTL_S = 25 * 3600.0


@attrs.frozen(kw_only=True)
class JobStatus:
    """Where a job stands, from its state file: item counts by status, chunks, and spend."""

    job_id: str
    provider: str
    method: str
    total: int
    counts: Mapping[str, int]
    chunks_open: int
    chunks_ended: int
    cost_usd: float  # answered items at batch prices
    interactive_usd: float  # the same answers at interactive prices

    @property
    def finished(self) -> int:
        return sum(self.counts.get(s, 0) for s in FINISHED)

    @property
    def done(self) -> bool:
        return not any(self.counts.get(s, 0) for s in OPEN_STATUSES)

    @property
    def saved_usd(self) -> float:
        return self.interactive_usd - self.cost_usd

    @property
    def failed(self) -> int:
        return sum(self.counts.get(s, 0) for s in RESUBMITTABLE)


def _wrapped(client: Any) -> Any:
    from .._wrap import _is_async_client, _module_of, is_wrapped

    if not is_wrapped(client):
        raise ConfigError("client", "costkit.batch needs a wrapped client: costkit.wrap(client, policies=[...])")
    sdk = client.unwrapped
    if _module_of(sdk) not in ("openai", "anthropic"):
        raise ConfigError("client", "the batch APIs are OpenAI's and Anthropic's: wrap an openai or anthropic client")
    if _is_async_client(sdk):
        raise ConfigError("client", "the batch lane drives a sync client: wrap openai.OpenAI() / anthropic.Anthropic()")
    return client


def _short(job_id: str) -> str:
    return hashlib.blake2b(job_id.encode(), digest_size=6).hexdigest()


class Job:
    """A handle on one batch job (see the module docstring). Build it with :func:`submit` or :func:`resume`.

    ``poll()`` does one round (submit what is pending, reconcile, check chunks, collect),
    ``wait()`` polls with back-off until every item has an outcome, ``results()`` returns the
    answers in input order, ``resubmit_failed()`` sends failed, expired and cancelled items again
    (only those), ``cancel()`` cancels what is running.
    """

    def __init__(
        self,
        client: Any,
        store: JobStore,
        row: JobRow,
        *,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
        reconcile_after_s: float = 30.0,
        extra_policies: Sequence[Any] = (),
    ) -> None:
        self.client = client
        self.store = store
        self.id = row.id
        self.method: BatchMethod = METHODS[row.method]
        self.lane: Lane = lane_for(row.provider)
        limits = row.meta.get("limits")
        self.limits = Limits(**limits) if isinstance(limits, Mapping) else self.lane.limits
        self.total = row.n_items
        self.backoff = backoff or Backoff()
        self.reconcile_after_s = float(reconcile_after_s)
        self._sleep = sleep
        self._sdk = client.unwrapped
        self._policies = (*client.costkit_policies, *extra_policies)
        self._recorder = client.costkit_recorder
        self._owner = this_process()
        self._short = _short(row.id)

    def __repr__(self) -> str:
        return f"<costkit batch job {self.id} ({self.method.name}, {self.total} items) in {self.store.path}>"

    def __enter__(self) -> Job:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Give up this process's lease on the job (another process may then drive it)."""
        self.store.release(self.id, self._owner)

    # ------------------------------------------------------------------ status and results

    def status(self) -> JobStatus:
        """Counts and spend from the state file (no provider request)."""
        chunks = self.store.chunks(self.id)
        cost, interactive = self.store.spend(self.id)
        return JobStatus(
            job_id=self.id,
            provider=self.method.provider,
            method=self.method.name,
            total=self.total,
            counts=self.store.counts(self.id),
            chunks_open=sum(1 for c in chunks if c.status != "ended"),
            chunks_ended=sum(1 for c in chunks if c.status == "ended"),
            cost_usd=cost,
            interactive_usd=interactive,
        )

    def results(self, *, partial: bool = False) -> list[Any]:
        """The answers in input order: SDK objects, :class:`~costkit.batch.ItemError` for items
        without one, and (``partial=True`` only) ``None`` for items still running."""
        items = self.store.items(self.id)
        if not partial and any(i.status in OPEN_STATUSES for i in items):
            raise JobNotFinished(f"batch job {self.id} has items still running; wait() for it first")
        out: list[Any] = []
        for item in items:
            if item.status in (SUCCEEDED, CACHED) and item.result is not None:
                out.append(self.method.parse(item.result))
            elif item.status in (FAILED, EXPIRED, CANCELLED, REFUSED):
                kind = "failed" if item.status == FAILED else "refused" if item.status == REFUSED else item.status
                out.append(item_error(item.idx, kind, item.error or {}, self.method, self._sdk))
            else:
                out.append(None)
        return out

    # ------------------------------------------------------------------ driving

    def poll(self) -> JobStatus:
        """One round: submit pending items, reconcile chunks in doubt, collect chunks that ended."""
        self.store.claim(self.id, self._owner)
        self._submit_pending()
        for chunk in self.store.chunks(self.id, [CHUNK_SUBMITTING]):
            self._reconcile(chunk)
        for chunk in self.store.chunks(self.id, [CHUNK_SUBMITTED]):
            assert chunk.provider_batch is not None
            try:
                batch = self.lane.retrieve(self._sdk, chunk.provider_batch)
            except Exception as exc:  # a transient provider error: ask again next round
                warn_once(f"batch-retrieve:{type(exc).__name__}", f"costkit.batch: could not check a batch ({exc!r})")
                continue
            if batch.status != chunk.provider_status:
                self.store.chunk_status(self.id, chunk.seq, batch.status)
            if batch.ended:
                self._collect(chunk, batch)
        self._flush()
        status = self.status()
        self.store.set_job_status(self.id, "done" if status.done else "open")
        return status

    def wait(self, *, progress: bool = False, timeout_s: float | None = None) -> JobStatus:
        """Poll until every item has an outcome (or ``timeout_s`` passed), backing off while
        nothing changes; ``progress`` shows a bar on standard error."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        bar = Progress(self.total, enabled=progress, description=f"batch {self.id[-8:]}")
        quiet = 0
        try:
            seen = self.status().finished
            while True:
                status = self.poll()
                bar.update(status.finished, status.cost_usd)
                if status.done or (deadline is not None and time.monotonic() >= deadline):
                    return status
                quiet = 0 if status.finished > seen else quiet + 1
                seen = status.finished
                pause = self.backoff.delay(quiet)
                if deadline is not None:
                    pause = min(pause, max(0.0, deadline - time.monotonic()))
                self._sleep(pause)
        finally:
            bar.close()

    def resubmit_failed(self, kinds: Sequence[str] = RESUBMITTABLE) -> int:
        """Send the items that failed, expired or were cancelled again (those only); returns how many.

        Budgets hold their worst case again first (``BudgetExceeded``: nothing is resubmitted).
        """
        bad = [k for k in kinds if k not in RESUBMITTABLE]
        if bad:
            raise ConfigError("kinds", f"only {', '.join(RESUBMITTABLE)} items can be resubmitted, got {bad}")
        self.store.claim(self.id, self._owner)
        again = self.store.items(self.id, list(kinds))
        if not again:
            return 0
        items = [
            Prepared(
                idx=i.idx,
                status=PENDING,
                call=call_of(self.method, i.body, i.call, request_id=recording.item_request_id(self.id, i.idx)),
                body=i.body,
                tickets={"cache": list(i.tickets.get("cache") or [])},
            )
            for i in again
        ]
        held = reserve_all(items, self._policies, HOLD_TTL_S)
        n = self.store.requeue(self.id, list(kinds), {p.idx: dict(p.tickets) for p in held})
        self._submit_pending()
        return n

    def cancel(self) -> None:
        """Cancel the job's running provider batches; items not yet submitted are cancelled here."""
        self.store.claim(self.id, self._owner)
        pending = [i.idx for i in self.store.items(self.id, [PENDING])]
        if pending:
            self.store.mark(self.id, pending, CANCELLED, {"message": "the job was cancelled before this item was sent"})
        for chunk in self.store.chunks(self.id, [CHUNK_SUBMITTED]):
            assert chunk.provider_batch is not None
            self.lane.cancel(self._sdk, chunk.provider_batch)

    # ------------------------------------------------------------------ submission

    def custom_id(self, seq: int, idx: int) -> str:
        return f"ck-{self._short}-{seq}-{idx}"

    def _submit_pending(self) -> None:
        pending = self.store.items(self.id, [PENDING])
        if not pending:
            return
        by_idx = {i.idx: i for i in pending}
        sized = [
            Sized(
                index=i.idx,
                model=str(i.body.get("model")),
                size_bytes=self.lane.size(self.custom_id(999_999, i.idx), self.method, i.body),
                inputs=_inputs(i.body, self.method),
            )
            for i in pending
        ]
        chunks, too_large = split(sized, self.limits)
        if too_large:
            self.store.mark(
                self.id,
                too_large,
                REFUSED,
                {"type": "BatchError", "message": "this request alone is larger than a provider batch may be"},
            )
        for members in chunks:
            seq = self.store.next_seq(self.id)
            ids = {idx: self.custom_id(seq, idx) for idx in members}
            size = sum(s.size_bytes for s in sized if s.index in ids)
            chunk = ChunkRow(
                job_id=self.id,
                seq=seq,
                status=CHUNK_SUBMITTING,
                model=str(by_idx[members[0]].body.get("model")),
                n_items=len(members),
                n_bytes=size,
                intent_at=time.time(),
            )
            self.store.add_chunk(chunk, ids)  # committed before anything is sent: the intent
            self._send(seq)

    def _send(self, seq: int) -> None:
        items = self.store.items(self.id, [SUBMITTING], chunk=seq)
        requests = [(str(i.custom_id), i.body) for i in items]
        try:
            batch = self.lane.submit(self._sdk, self.method, requests, ChunkRef(self.id, seq))
        except Exception as exc:
            self.store.chunk_attempt(self.id, seq, repr(exc))
            status = getattr(exc, "status_code", None)
            if isinstance(status, int) and 400 <= status < 500 and status not in (408, 409, 429):
                # the provider refused the request outright: no batch was made, the items fail with its error
                body = getattr(exc, "body", None)
                error = {"status_code": status, "message": str(exc), "body": {"error": body} if body else None}
                self._fail_chunk(seq, items, error)
            else:  # the answer was lost, or the provider is unavailable: reconcile before sending again
                warn_once(f"batch-submit:{type(exc).__name__}", f"costkit.batch: submitting a chunk failed ({exc!r})")
            return
        self.store.chunk_submitted(self.id, seq, batch.id, batch.input_file)

    def _fail_chunk(self, seq: int, items: Sequence[ItemRow], error: Mapping[str, Any]) -> None:
        outcomes = [Outcome(idx=i.idx, status=FAILED, error=error) for i in items]
        self.store.finish_chunk(self.id, seq, "refused", outcomes)

    def _reconcile(self, chunk: ChunkRow) -> None:
        """A chunk whose batch may or may not exist: adopt it if it does, send it if it does not."""
        if time.time() - chunk.intent_at < self.reconcile_after_s:
            return
        custom_ids = self.store.custom_ids(self.id, chunk.seq, [SUBMITTING])
        try:
            lookup = Lookup(
                chunk=ChunkRef(self.id, chunk.seq),
                custom_ids=frozenset(custom_ids),
                since=chunk.intent_at - CLOCK_SKEW_S,
                claimed=frozenset(self.store.claimed_batches(self.method.provider)),
            )
            found = self.lane.find(self._sdk, lookup)
        except Exception as exc:
            warn_once(f"batch-reconcile:{type(exc).__name__}", f"costkit.batch: could not list batches ({exc!r})")
            return
        if found.answer == "yes":
            assert found.batch_id is not None
            self.store.chunk_submitted(self.id, chunk.seq, found.batch_id, None)
        elif found.answer == "no":
            self._send(chunk.seq)

    # ------------------------------------------------------------------ results

    def _collect(self, chunk: ChunkRow, batch: ProviderBatch) -> None:
        items = self.store.custom_ids(self.id, chunk.seq, [SUBMITTED, SUBMITTING])
        outcomes = []
        for line in self.lane.results(self._sdk, batch):
            idx = items.pop(line.custom_id, None)
            if idx is not None:
                outcomes.append(_outcome(idx, line))
        why = "; ".join(batch.errors) or f"the batch ended {batch.status} without a result for this item"
        outcomes.extend(Outcome(idx=idx, status=FAILED, error={"message": why}) for idx in items.values())
        self.store.finish_chunk(self.id, chunk.seq, batch.status, outcomes)

    def _flush(self) -> None:
        """Each newly finished item's record, cache store and budget settlement (once)."""
        chunks = {c.seq: c for c in self.store.chunks(self.id)}
        done = []
        for item in self.store.unrecorded(self.id):
            call = call_of(self.method, item.body, item.call, request_id=recording.item_request_id(self.id, item.idx))
            call = call.evolve(attempt=item.attempt)
            chunk = chunks.get(item.chunk) if item.chunk is not None else None
            batch_id = chunk.provider_batch if chunk is not None else None
            started = (chunk.submitted_at or chunk.intent_at) if chunk is not None else time.time()
            latency = max(0.0, (item.finished_at or time.time()) - started)
            cost = interactive = None
            if item.status == CACHED and item.result is not None:
                hit = self._result(call, item.result, source=SOURCE_EXACT_CACHE, cost=item.call.get("cached_cost_usd"))
                self._recorder.cache_hit(call, hit, time.perf_counter() - latency)
            elif item.status == SUCCEEDED and item.result is not None:
                result = self._result(call, item.result)
                priced = recording.price(self._recorder.pricing, call, result)
                cost, interactive = priced.batch_usd, priced.interactive_usd
                self._recorder.emit(
                    recording.answered(
                        self._recorder, call, result, priced, job_id=self.id, batch_id=batch_id, idx=item.idx,
                        latency_s=latency,
                    )
                )  # fmt: skip
                hooks.store(self._policies, item.tickets, result.evolve(cost_usd=cost))
                hooks.settle(self._policies, item.tickets, cost or 0.0, result.usage.total_tokens)
            elif item.status in (FAILED, EXPIRED, CANCELLED):
                kind = "failed" if item.status == FAILED else item.status
                error = item_error(item.idx, kind, item.error or {}, self.method, self._sdk).exception
                if item.chunk is not None:  # it reached the provider
                    self._recorder.emit(
                        recording.unanswered(
                            self._recorder, call, error, job_id=self.id, batch_id=batch_id, idx=item.idx,
                            latency_s=latency,
                        )
                    )  # fmt: skip
                hooks.settle(self._policies, item.tickets, 0.0, 0)
            done.append((item.idx, cost, interactive))
        if done:
            self.store.mark_recorded(self.id, done)

    def _result(self, call: Any, body: Mapping[str, Any], *, source: str = "provider", cost: Any = None) -> Any:
        result = self.method.adapter.to_result(call, self.method.parse(body))
        return result.evolve(source=source, cost_usd=cost if isinstance(cost, int | float) else None)


def _outcome(idx: int, line: ItemResult) -> Outcome:
    if line.status == "succeeded":
        return Outcome(idx=idx, status=SUCCEEDED, result=line.body)
    return Outcome(idx=idx, status=line.status, error=line.error)


def _inputs(body: Mapping[str, Any], method: BatchMethod) -> int:
    if method.name != "embeddings.create":
        return 1
    given = body.get("input")
    return len(given) if isinstance(given, list) and given and not isinstance(given[0], int) else 1


def submit(
    client: Any,
    method: str,
    requests: Iterable[Mapping[str, Any]],
    *,
    state: str = DEFAULT_STATE,
    job_id: str | None = None,
    tags: Mapping[str, str] | Tags | None = None,
    limits: Limits | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    reconcile_after_s: float = 30.0,
) -> Job:
    """Submit ``requests`` (keyword arguments of ``method``, one dict each) as a batch job.

    ``client`` is a wrapped client (``costkit.wrap``); its policies apply per item, its sink gets
    one record per item. ``state`` is the SQLite file that makes the job resumable. The job's id
    is derived from its requests unless given: submitting the same requests again (after a crash,
    from a new process) resumes that job instead of starting another. ``limits`` lowers the
    per-batch limits (:class:`Limits`). Returns the :class:`Job`; ``job.wait()`` then ``job.results()``.
    """
    wrapped = _wrapped(client)
    from .._wrap import _module_of

    batch_method = resolve(_module_of(wrapped.unwrapped), method)
    given = list(requests)
    for i, r in enumerate(given):
        if not isinstance(r, Mapping):
            raise ConfigError(f"requests[{i}]", f"each request is a dict of {method}() keyword arguments")
    if not given:
        raise ConfigError("requests", "a batch needs at least one request")
    base = current_tags()
    if tags is not None:
        base = base.merged(tags if isinstance(tags, Tags) else Tags.from_mapping(tags, where="tags"))
    jid = job_id or job_id_for(batch_method, given, base)
    return submit_calls(
        wrapped,
        batch_method,
        lambda: to_calls(batch_method, given, base),
        n=len(given),
        job_id=jid,
        state=state,
        limits=limits,
        backoff=backoff,
        sleep=sleep,
        reconcile_after_s=reconcile_after_s,
    )


def submit_calls(
    client: Any,
    method: BatchMethod,
    calls: Callable[[], Sequence[Any]],
    *,
    n: int,
    job_id: str,
    state: str = DEFAULT_STATE,
    limits: Limits | None = None,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    reconcile_after_s: float = 30.0,
    extra_policies: Sequence[Any] = (),
) -> Job:
    """The job ``job_id`` of ``state``, created from ``calls()`` (Calls already built) if it is new."""
    wrapped = _wrapped(client)
    store = JobStore(state)
    row = store.job(job_id)
    if row is None:
        row = _create(wrapped, store, job_id, method, calls(), limits, extra_policies)
    elif row.method != method.name or row.n_items != n:
        raise ConfigError("job_id", f"job {job_id} in {state} is {row.method} with {row.n_items} items, not this one")
    job = Job(wrapped, store, row, backoff=backoff, sleep=sleep, reconcile_after_s=reconcile_after_s,
              extra_policies=extra_policies)  # fmt: skip
    job.store.claim(job_id, job._owner)
    job._submit_pending()
    return job


def _create(
    wrapped: Any,
    store: JobStore,
    jid: str,
    method: BatchMethod,
    calls: Sequence[Any],
    limits: Limits | None,
    extra_policies: Sequence[Any] = (),
) -> JobRow:
    policies = (*wrapped.costkit_policies, *extra_policies)
    prepared = [prepare(i, c.evolve(request_id=recording.item_request_id(jid, i)), method, policies) for i, c in
                enumerate(calls)]  # fmt: skip
    prepared = reserve_all(prepared, policies, HOLD_TTL_S)
    row = JobRow(
        id=jid,
        provider=method.provider,
        method=method.name,
        created_at=time.time(),
        n_items=len(prepared),
        status="open",
        meta={"limits": attrs.asdict(limits) if limits is not None else None},
    )
    store.create_job(row, [_row(jid, p) for p in prepared])
    return row


def _row(jid: str, p: Prepared) -> ItemRow:
    hit = p.hit
    return ItemRow(
        job_id=jid,
        idx=p.idx,
        status=p.status,
        attempt=1,
        body=p.body,
        call=call_doc(p.call, cached_cost_usd=hit.cost_usd if hit is not None else None),
        tickets=p.tickets,
        result=hit.raw.model_dump(mode="json") if hit is not None and hit.raw is not None else None,
        error=p.error,
        cost_usd=0.0 if hit is not None else None,
    )


def resume(
    client: Any,
    job_id: str,
    *,
    state: str = DEFAULT_STATE,
    backoff: Backoff | None = None,
    sleep: Callable[[float], None] = time.sleep,
    reconcile_after_s: float = 30.0,
) -> Job:
    """The job ``job_id`` of ``state``, to drive from this process (after a restart)."""
    wrapped = _wrapped(client)
    store = JobStore(state)
    row = store.job(job_id)
    if row is None:
        raise BatchError(f"no batch job {job_id!r} in {state}")
    return Job(wrapped, store, row, backoff=backoff, sleep=sleep, reconcile_after_s=reconcile_after_s)


def run(
    client: Any,
    method: str,
    requests: Iterable[Mapping[str, Any]],
    *,
    state: str = DEFAULT_STATE,
    progress: bool = True,
    resubmit: int = 0,
    timeout_s: float | None = None,
    **options: Any,
) -> list[Any]:
    """Submit ``requests`` as one batch job, wait for it (a progress bar unless ``progress=False``)
    and return the answers in input order (see :meth:`Job.results`). ``resubmit`` rounds send
    failed, expired or cancelled items again. Run it again after a crash: it resumes."""
    job = submit(client, method, requests, state=state, **options)
    try:
        job.wait(progress=progress, timeout_s=timeout_s)
        for _ in range(resubmit):
            if not job.resubmit_failed():
                break
            job.wait(progress=progress, timeout_s=timeout_s)
        return job.results()
    finally:
        job.close()


__all__ = ["DEFAULT_STATE", "Job", "JobStatus", "resume", "run", "submit", "submit_calls"]
