"""Which price book a policy uses: the one it was given, else the one ``costkit.wrap(pricing=)``
hands it, else the process-wide default (loaded on first use, so building a policy stays cheap)."""

from __future__ import annotations

from typing import Any


class PricingRef:
    def __init__(self, pricing: Any = None) -> None:
        self._pricing = pricing
        self._explicit = pricing is not None

    def adopt_pricing(self, pricing: Any) -> None:
        """Use ``pricing`` unless a book was given explicitly (``costkit.wrap(pricing=...)`` calls this)."""
        if not self._explicit:
            self._pricing = pricing

    @property
    def pricing(self) -> Any:
        if self._pricing is None:
            from .pricing import default_pricebook

            self._pricing = default_pricebook()
        return self._pricing


__all__ = ["PricingRef"]
