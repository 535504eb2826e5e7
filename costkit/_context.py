"""Attribution in context: ``with costkit.tags(tenant="acme", feature="faq"): ...``.

Tags live in a contextvar, so they follow asyncio tasks (each task gets a copy of its creator's
context) and stay separate between threads. For a thread pool, submit work through
``contextvars.copy_context().run`` (or :func:`propagate`) to carry the caller's tags along.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from ._call import NO_TAGS, Tags

_TAGS: contextvars.ContextVar[Tags] = contextvars.ContextVar("costkit_tags", default=NO_TAGS)

P = ParamSpec("P")
R = TypeVar("R")


def current_tags() -> Tags:
    """The tags in force here (merged from every enclosing ``tags()`` block)."""
    return _TAGS.get()


@contextmanager
def tags(
    *,
    tenant: str | None = None,
    user: str | None = None,
    feature: str | None = None,
    route: str | None = None,
    prompt_version: str | None = None,
    corpus_version: str | None = None,
    idempotency_key: str | None = None,
    namespace: str | None = None,
    task: str | None = None,
) -> Iterator[Tags]:
    """Attribute every wrapped call inside the block; inner blocks override outer ones field by field."""
    given = Tags.from_mapping(
        {
            k: v
            for k, v in {
                "tenant": tenant,
                "user": user,
                "feature": feature,
                "route": route,
                "prompt_version": prompt_version,
                "corpus_version": corpus_version,
                "idempotency_key": idempotency_key,
                "namespace": namespace,
                "task": task,
            }.items()
            if v is not None
        }
    )
    merged = _TAGS.get().merged(given)
    token = _TAGS.set(merged)
    try:
        yield merged
    finally:
        _TAGS.reset(token)


def propagate(fn: Callable[P, R]) -> Callable[P, R]:
    """``fn`` carrying the tags in force here into a thread pool: ``pool.map(costkit.propagate(fn), items)``.

    The context is captured now; each call runs in a fresh copy of it, so any number of workers
    can run it at once and tags one call sets never reach another.
    """
    ctx = contextvars.copy_context()

    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


__all__ = ["current_tags", "propagate", "tags"]
