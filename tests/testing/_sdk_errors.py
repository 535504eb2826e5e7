"""What the installed openai SDK raises when a stream breaks mid-body, whatever its version.

openai < 3.50 lets the transport's own error out of the stream (``httpx.RemoteProtocolError``,
``httpx.ReadTimeout``); newer releases wrap it as ``APIConnectionError`` / ``APITimeoutError`` with
the transport error as ``__cause__`` (over a real socket that error may come from the SDK's own
httpx fork, ``httpx2``, so the cause is matched by its name). The fake must produce the transport
failure; which wrapper the SDK puts around it is the SDK's business, so the tests check the cause.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import openai
import pytest


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


@contextlib.contextmanager
def raises_mid_stream(cause: type[BaseException]) -> Iterator[None]:
    """The block raises ``cause``, bare or inside the SDK's own connection error."""
    with pytest.raises((cause, openai.APIConnectionError)) as info:
        yield
    names = [type(e).__name__ for e in _chain(info.value)]
    assert cause.__name__ in names, f"{info.value!r} was not caused by a {cause.__name__} ({names})"
