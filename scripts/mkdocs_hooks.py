"""mkdocs hooks (mkdocs.yml ``hooks:``): a nav entry for a page that is not written yet is dropped.

The strict build fails on a nav entry whose file is missing, and also on a page missing from the
nav. The pages in ``PAGES_TO_COME`` are being written on other branches: their entries stay in
mkdocs.yml and appear in the site the moment the file exists, with no edit to the nav.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PAGES_TO_COME = frozenset({"workload.md"})


def _present(items: list[Any], docs_dir: Path) -> list[Any]:
    kept: list[Any] = []
    for item in items:
        if isinstance(item, dict) and len(item) == 1:
            ((title, value),) = item.items()
            if isinstance(value, list):
                kept.append({title: _present(value, docs_dir)})
                continue
            path = value
        else:
            path = item
        if isinstance(path, str) and path in PAGES_TO_COME and not (docs_dir / path).is_file():
            continue
        kept.append(item)
    return kept


def on_config(config: Any) -> Any:
    if config.nav:
        config.nav = _present(config.nav, Path(config.docs_dir))
    return config
