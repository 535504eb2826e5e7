"""A request's Redis work in two round trips: its layers' checks before the provider call, their writes after.

Every Redis-backed layer used to make its own round trips; a call through Dedup, a Redis cache,
a budget and a circuit breaker paid four before the provider and four after. Here they are gathered:

* :class:`RedisCheck`: a script call whose answer decides whether the call goes on (a claim, a
  lookup, a reservation, an admission). A flow yields it inside :class:`~costkit._pipeline.Ahead`;
  the request's :class:`~costkit._precall.PreCall` holds the checks of consecutive layers and
  :func:`run_checks` sends them as one composed script that stops where the first check stops
  the call, so a check below one that stops it never runs, as when each went alone.
* :class:`RedisWrite`: a script call nothing waits for (a settlement, a lock release, a counter),
  sent with the request's other writes in one pipeline when the request ends (:func:`flush_writes`).

A Redis that is down costs one failed round trip; each check then gets the degraded answer it
would have had alone (its guard's fail-open fallback, or the error failing closed).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
from collections.abc import Callable, Generator
from typing import Any

import attrs

from ._redis import RedisGuard
from ._warn import warn_once
from .errors import RedisUnavailable, StateUnavailable

# ----------------------------------------------------------------------------- one round trip before the call


@attrs.frozen(slots=True, eq=False)
class RedisCheck:
    """One script call whose answer decides whether a call goes on (Dedup's claim, a budget
    reservation, a circuit's admission, a cache lookup): an effect (``yield``-ed inside
    :class:`~costkit._pipeline.Ahead`) that the request's other checks can join, so that the checks
    of every layer go to Redis in one script before the provider call (:func:`run_checks`).

    ``go_if`` is a Lua expression over the script's answer ``r`` that is true when the call goes on
    (a lead, a reservation, an admission, a miss); the composed script stops at the first check
    where it is false, so a check below one that stops the call never runs, as when each went alone.
    ``read`` turns the answer into what the flow gets (and does the check's bookkeeping: it runs
    once per answer); ``go`` says the same as ``go_if`` on what ``read`` returned. ``on_error`` is
    what the flow gets when Redis is unavailable (``guard.recover`` with a fallback, or an error to
    raise). ``undo`` gives back what an answer holds (a reservation, a lock) when nobody will
    read it (the awaiting task was cancelled meanwhile).
    """

    guard: RedisGuard
    script: Any  # a redis-py Script (it knows its client)
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    go_if: str
    read: Callable[[Any], Any]
    go: Callable[[Any], bool]
    on_error: Callable[[RedisUnavailable], Any]
    undo: Callable[[Any], None] | None = None

    def resolve(self, answer: Any) -> Any:
        """What the flow gets for the script's ``answer`` (or the ``RedisUnavailable`` sending it raised)."""
        if isinstance(answer, RedisUnavailable):
            return self.on_error(answer)
        try:
            return self.read(answer)
        except RedisUnavailable as exc:  # a follow-up inside read (a corrupt entry's delete ...)
            return self.on_error(exc)

    def run(self) -> Any:
        """The check alone: one script call through its guard."""
        try:
            answer = self.guard.call(lambda: self.script(keys=list(self.keys), args=list(self.args)))
        except RedisUnavailable as exc:
            answer = exc
        return self.resolve(answer)

    async def arun(self) -> Any:
        """:meth:`run` in a worker thread (redis-py's client blocks)."""
        return await asyncio.to_thread(self.run)

    @staticmethod
    def run_all(checks: list[RedisCheck]) -> list[tuple[Any, BaseException | None]]:
        """:func:`run_checks` (the hook :class:`~costkit._pipeline.PreCall` calls)."""
        return run_checks(checks)

    @staticmethod
    def undo_all(checks: list[RedisCheck], outcomes: list[tuple[Any, BaseException | None]]) -> None:
        """:func:`undo_checks` (for a request cancelled while its checks ran)."""
        undo_checks(checks, outcomes)


_COMPOSED: dict[tuple[int, tuple[tuple[str, str], ...]], Any] = {}
_COMPOSED_LOCK = threading.Lock()


def _composed(client: Any, checks: list[RedisCheck]) -> Any:
    """One script that runs ``checks``' scripts in order and stops after the first whose ``go_if``
    is false; registered once per client and combination. ARGV starts with each check's key and
    argument counts; the answer is the list of the answers of the checks that ran."""
    shape = tuple((c.script.sha, c.go_if) for c in checks)
    found = _COMPOSED.get((id(client), shape))
    if found is not None:
        return found
    parts = [
        "local out, kp, ap = {}, 0, 2 * " + str(len(checks)),
        "local function slice(t, from, n) local s = {} for i = 1, n do s[i] = t[from + i] end return s end",
    ]
    for i, c in enumerate(checks, start=1):
        parts.append(f"local function check{i}(KEYS, ARGV)\n{c.script.script}\nend")
    for i, c in enumerate(checks, start=1):
        parts.append(
            f"do local nk, na = tonumber(ARGV[{2 * i - 1}]), tonumber(ARGV[{2 * i}])\n"
            f"local r = check{i}(slice(KEYS, kp, nk), slice(ARGV, ap, na))\n"
            f"kp, ap = kp + nk, ap + na\nout[{i}] = r\nif not ({c.go_if}) then return out end end"
        )
    parts.append("return out")
    script = client.register_script("\n".join(parts))
    with _COMPOSED_LOCK:
        if len(_COMPOSED) > 256:  # combinations are few; a bound all the same
            _COMPOSED.clear()
        _COMPOSED[(id(client), shape)] = script
    return script


def _batchable(client: Any) -> bool:
    """A client one script may span keys of several layers on (a cluster would refuse them: other slots)."""
    return callable(getattr(client, "register_script", None)) and not hasattr(client, "get_nodes")


def run_checks(checks: list[RedisCheck]) -> list[tuple[Any, BaseException | None]]:
    """Run the checks in chain order, in one script per server, and stop after the first whose answer
    stops the call: ``(value, error)`` for each check that ran, the flow's answer or what to throw in.

    The checks of consecutive layers on one server go in one script (one round trip); a check
    that the script stopped at but whose answer lets the call go on after all (a budget whose
    counters were lost, failing open) leaves the rest for another script. When Redis is
    unavailable each check gets its own degraded answer, as when it went alone.
    """
    out: list[tuple[Any, BaseException | None]] = []
    i = 0
    while i < len(checks):
        first = checks[i]
        client = first.script.registered_client
        run = [first]
        for c in checks[i + 1 :]:
            if c.guard.health is not first.guard.health:  # another server: its own script, after this one's
                break
            run.append(c)
        if len(run) == 1 or not _batchable(client) or not first.guard.available():
            answers: list[Any] = [_outcome(first.run)]
        else:
            answers = [_outcome(functools.partial(c.resolve, a)) for c, a in zip(run, _send(client, run), strict=False)]
        for k, (check, (value, error)) in enumerate(zip(run, answers, strict=False)):
            out.append((value, error))
            if error is not None or not check.go(value):
                undo_checks(run[k + 1 :], answers[k + 1 :])  # ran though the script said stop: given back
                return out
        i += len(answers)
    return out


def _send(client: Any, run: list[RedisCheck]) -> list[Any]:
    """The composed script's answers (fewer than ``run`` when it stopped), or the failure for the first."""
    script = _composed(client, run)
    keys: list[Any] = []
    args: list[Any] = []
    for c in run:
        args += [len(c.keys), len(c.args)]
    for c in run:
        keys += c.keys
        args += c.args
    try:
        return list(run[0].guard.call(lambda: script(keys=keys, args=args)))
    except RedisUnavailable as exc:
        return [exc]  # the rest find the server marked down and degrade on their own, as when alone


def _outcome(get: Callable[[], Any]) -> tuple[Any, BaseException | None]:
    try:
        return get(), None
    except Exception as exc:  # what the flow would have got thrown in at its yield
        return None, exc


def undo_checks(checks: list[RedisCheck], outcomes: list[tuple[Any, BaseException | None]]) -> None:
    """Give back what answers nobody will read hold (a cancelled request's reservation, lock); never raises."""
    for check, (value, error) in zip(checks, outcomes, strict=False):
        if error is None and check.undo is not None:
            try:
                check.undo(value)
            except Exception as exc:
                warn_once(f"redis-undo:{type(exc).__name__}", f"costkit: giving back a Redis check's hold: {exc!r}")


# ----------------------------------------------------------------------------- one round trip after the call


@attrs.frozen(slots=True)
class RedisWrite:
    """One script call whose answer nothing waits for (a settlement, a lock release, a counter):
    gathered with the request's other writes and sent in one pipeline when the request ends.

    ``then`` gets the script's answer (bookkeeping: alerts, counters); ``fallback`` runs instead
    when Redis is unavailable (the same fail-open handling the write would have had alone).
    """

    guard: RedisGuard
    script: Any  # a redis-py Script (it knows its client)
    keys: tuple[str, ...]
    args: tuple[Any, ...]
    then: Callable[[Any], None] | None = None
    fallback: Callable[[], None] | None = None

    def run(self) -> None:
        """Send it alone (when there is no request to gather it with)."""
        flush_writes([self])


def write_now_or_later(scope: Any, write: RedisWrite) -> Generator[Any, Any, None]:
    """A sub-flow: ``write`` goes into the request's end-of-request batch when the wrapper gathers
    one (``scope.writes``), else it is sent now, as an I/O step."""
    writes = getattr(scope, "writes", None)
    if writes is not None:
        writes.append(write)
        return
    from ._pipeline import Io

    yield Io(write.run)


def flush_writes(writes: list[RedisWrite]) -> None:
    """Send ``writes`` in one pipeline per Redis server, then hand each answer on; never raises."""
    by_server: dict[str, list[RedisWrite]] = {}
    for w in writes:
        by_server.setdefault(w.guard.health.endpoint, []).append(w)
    for group in by_server.values():
        _flush_group(group)


def _fallback(w: RedisWrite) -> None:
    if w.fallback is not None:
        with contextlib.suppress(Exception):  # a fallback is bookkeeping: it never fails the call
            w.fallback()


def _send_alone(w: RedisWrite) -> Any:
    try:
        return w.guard.call(lambda: w.script(keys=list(w.keys), args=list(w.args)))
    except Exception as exc:
        return exc


def _flush_group(group: list[RedisWrite]) -> None:
    """One round trip: EVALSHA of every write in one pipeline on one client of the server (redis-py's
    own script pipelining would add a SCRIPT EXISTS round trip per batch). A script the server does
    not know yet (a restart, the first use) is loaded and that write sent again, on its own."""
    guard = group[0].guard
    client = group[0].script.registered_client

    def send() -> list[Any]:
        pipe = client.pipeline(transaction=False)
        for w in group:
            pipe.evalsha(w.script.sha, len(w.keys), *w.keys, *w.args)
        return list(pipe.execute(raise_on_error=False))

    try:
        answers = guard.call(send)
    except StateUnavailable:
        for w in group:
            _fallback(w)
        return
    except Exception as exc:  # a bug in a write's arguments: said once, never the call's failure
        warn_once(f"redis-writes:{type(exc).__name__}", f"costkit: a batch of Redis writes failed ({exc!r})")
        for w in group:
            _fallback(w)
        return
    from redis.exceptions import NoScriptError

    for w, answer in zip(group, answers, strict=False):
        if isinstance(answer, NoScriptError):  # its first use on this server: the script object loads itself
            answer = _send_alone(w)
        if isinstance(answer, Exception):
            _fallback(w)
        elif w.then is not None:
            try:
                w.then(answer)
            except Exception as exc:
                warn_once(f"redis-write-then:{type(exc).__name__}", f"costkit: a Redis write's follow-up: {exc!r}")


__all__ = ["RedisCheck", "RedisWrite", "flush_writes", "run_checks", "undo_checks", "write_now_or_later"]
