"""Env: what ``costkit.wrap`` hands each policy once, through the policy's optional ``bind(env)``.

A policy that prices calls takes the wrapper's price book from here (unless it was given its
own); a policy that owns retries asks for the SDK's own retries to be turned off. This is the
only way the wrapper reaches into a policy: no attribute probing, no conventions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._recorder import Recorder
    from .pricing import PriceBook


class Env:
    """The wrapped client's shared services, handed to ``policy.bind(env)`` when the client is wrapped."""

    __slots__ = ("_sdk_retries_off", "client", "pricing", "recorder")

    def __init__(self, pricing: PriceBook | Any, recorder: Recorder, *, client: str | None = None) -> None:
        #: the price book the wrapped client records with (``costkit.wrap(pricing=...)`` or the default)
        self.pricing = pricing
        #: turns attempts and cache hits into cost records (``recorder.emit`` for a layer's own records)
        self.recorder = recorder
        #: the SDK being wrapped (``openai``, ``anthropic``, ``litellm``; None outside a wrapper)
        self.client = client
        self._sdk_retries_off = False

    def turn_off_sdk_retries(self) -> None:
        """Ask the wrapper to set the SDK's own retries to 0: this policy retries, and records each attempt."""
        self._sdk_retries_off = True

    @property
    def sdk_retries_off(self) -> bool:
        return self._sdk_retries_off


def bind_all(policies: Any, env: Env) -> None:
    """Call ``bind(env)`` on every policy that has one (outermost first)."""
    for policy in policies:
        bind = getattr(policy, "bind", None)
        if callable(bind):
            bind(env)


__all__ = ["Env", "bind_all"]
