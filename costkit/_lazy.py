"""A package's public names imported on first use, so ``import costkit`` stays fast.

Each package keeps a map of name -> module (absolute, or relative to the package) and gets its
``__getattr__`` and ``__dir__`` from :func:`lazy_exports`; a name is imported once, then cached
in the package's namespace.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Collection, Mapping
from typing import Any


def lazy_exports(
    package: str,
    names: Mapping[str, str],
    namespace: dict[str, Any],
    *,
    submodules: Collection[str] = (),
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: ``names`` maps a public name to the module that
    defines it (``"costkit.x.y"`` or ``"y"`` for ``package.y``); ``submodules`` are modules of the
    package imported as attributes."""

    def __getattr__(name: str) -> Any:
        if name in names:
            module = names[name]
            path = module if module.startswith("costkit") else f"{package}.{module}"
            value = getattr(importlib.import_module(path), name)
        elif name in submodules:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(namespace.get("__all__", ())))

    return __getattr__, __dir__
