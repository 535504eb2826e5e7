"""Code in the docs runs as written: every ```python block of the pages listed here is executed."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = ["docs/architecture.md"]
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def _blocks() -> list[tuple[str, int, str]]:
    out = []
    for page in PAGES:
        text = (ROOT / page).read_text()
        for i, m in enumerate(_BLOCK.finditer(text)):
            out.append((page, i, m.group(1)))
    return out


@pytest.mark.parametrize(("page", "index", "code"), _blocks(), ids=lambda v: v if isinstance(v, str) else str(v))
def test_python_block_runs(page: str, index: int, code: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if "\n" not in code.strip() and code.strip().startswith("#"):
        pytest.skip("a comment-only block")
    monkeypatch.chdir(tmp_path)
    exec(compile(code, f"{page}[{index}]", "exec"), {"__name__": f"docs_{index}"})


def test_every_test_the_security_page_names_exists() -> None:
    """docs/security.md states each guarantee with the tests that hold it: those tests must exist."""
    text = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(r"\btest_[a-z0-9_]+(?!\.py)\b", re.sub(r"tests/[\w/]+\.py", "", text)))
    defined = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        defined |= set(re.findall(r"^(?:async )?def (test_[a-z0-9_]+)", path.read_text(), re.M))
    assert named and named <= defined, sorted(named - defined)
