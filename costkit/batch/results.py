"""What a job's results are: the SDK's own answer objects, or :class:`ItemError` values.

``job.results()`` is a list in input order. An item that ran is the SDK's own object
(``ChatCompletion``, ``Response``, ``CreateEmbeddingResponse``, ``anthropic.types.Message``);
one that did not is an :class:`ItemError`, whose ``exception`` is what the same request would
have raised interactively: the SDK's own exception (``openai.BadRequestError``,
``anthropic.RateLimitError`` ...) for a provider error, costkit's for an item a policy refused
(``GuardrailViolation``) or that never ran (``BatchItemExpired``, ``BatchItemCancelled``).
``item_error.raise_()`` raises it.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ..errors import BudgetExceeded, CostkitError, GuardrailViolation
from .errors import BatchError, BatchItemCancelled, BatchItemExpired
from .methods import BatchMethod

ErrorKind = Literal["failed", "expired", "cancelled", "refused"]


@attrs.frozen(kw_only=True)
class ItemError:
    """An item without an answer: where it is (``index``), why (``kind``), and the exception
    the same request would have raised interactively (see the module docstring)."""

    index: int
    kind: ErrorKind
    message: str
    exception: BaseException = attrs.field(eq=False)
    status_code: int | None = None

    def raise_(self) -> None:
        raise self.exception


def item_error(index: int, kind: str, error: Mapping[str, Any], method: BatchMethod, client: Any) -> ItemError:
    """Rebuild an item's error from what the state file holds."""
    message = str(error.get("message") or kind)
    status = error.get("status_code")
    exc: BaseException
    if kind == "expired":
        exc = BatchItemExpired(message)
    elif kind == "cancelled":
        exc = BatchItemCancelled(message)
    elif kind == "refused":
        exc = _refusal(error)
    elif isinstance(status, int) and status >= 400:
        exc = sdk_status_error(client, method, status, error.get("body"))
    else:
        exc = BatchError(message)
    return ItemError(
        index=index,
        kind=kind,  # type: ignore[arg-type]
        message=message,
        exception=exc,
        status_code=status if isinstance(status, int) else None,
    )


def _refusal(error: Mapping[str, Any]) -> CostkitError:
    kind = error.get("type")
    message = str(error.get("message") or "refused")
    if kind == "GuardrailViolation":
        rule = str(error.get("code") or "guardrail")
        prefix = f"{rule}: "
        return GuardrailViolation(rule, message[len(prefix) :] if message.startswith(prefix) else message)
    if kind == "BudgetExceeded":
        return BudgetExceeded(message)
    return BatchError(message)


def _http_module(sdk: str) -> Any:
    """The httpx-compatible module an SDK builds its responses with (``httpx2`` in the 2026 SDKs)."""
    base = importlib.import_module(f"{sdk}._base_client")
    return getattr(base, "httpx2", None) or importlib.import_module("httpx")


def sdk_status_error(client: Any, method: BatchMethod, status: int, body: Any) -> BaseException:
    """The exception the SDK raises for an HTTP ``status`` with this error ``body``."""
    http = _http_module(method.provider)
    base = str(getattr(client, "base_url", "")).rstrip("/")
    url = base + (method.endpoint[3:] if base.endswith("/v1") else method.endpoint)
    request = http.Request("POST", url)
    response = http.Response(status, request=request, content=json.dumps(body).encode() if body is not None else b"")
    message = f"Error code: {status} - {body}"
    make = getattr(client, "_make_status_error", None)
    if callable(make):
        try:
            return make(message, body=body, response=response)  # type: ignore[no-any-return,unused-ignore]
        except Exception:  # an SDK without the helper, or with another signature
            pass
    sdk = importlib.import_module(method.provider)
    return sdk.APIStatusError(message, response=response, body=body)  # type: ignore[no-any-return,unused-ignore]


__all__ = ["ErrorKind", "ItemError", "item_error", "sdk_status_error"]
