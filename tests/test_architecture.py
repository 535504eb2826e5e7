"""The house rules that keep the package's shape: layers point one way, public paths only, small modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "costkit"
MAX_LINES = 600


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def _is_type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _imported(path: Path, *, runtime_only: bool = False) -> list[str]:
    """Absolute names of every module ``path`` imports (relative imports resolved); ``runtime_only``
    leaves out the imports under ``if TYPE_CHECKING:`` (only type checkers run them)."""
    tree = ast.parse(path.read_text(), str(path))
    if runtime_only:
        tree.body = [n for n in tree.body if not _is_type_checking_block(n)]
    package = ".".join(path.relative_to(ROOT).with_suffix("").parts[:-1])
    if path.name == "__init__.py":
        package = ".".join(path.relative_to(ROOT).parent.parts)
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            names.append(mod)
            names += [f"{mod}.{a.name}" for a in node.names]
    return names


def test_nothing_outside_policies_imports_the_policies():
    """The core (call, pipeline, recorder, ledger ...), providers, sinks, report, batch and testing
    never import costkit.policies: policies get what they need through bind(env). The two public
    facades (costkit and costkit.backends) name policy classes only as strings for their lazy
    imports, and for type checkers."""
    facades = {Path("__init__.py"), Path("backends.py")}
    offenders = []
    for path in _modules():
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "policies":
            continue
        for name in _imported(path, runtime_only=rel in facades):
            if name == "costkit.policies" or name.startswith("costkit.policies."):
                offenders.append(f"{rel}: {name}")
    assert offenders == []


_PRIVATE = re.compile(r"\bcostkit(?:\.[A-Za-z0-9_]+)*\._[A-Za-z]")


def test_readme_docs_and_examples_use_public_paths_only():
    """What users read and copy never reaches into a module or name with a leading underscore."""
    # docs/mutation.md lists mutmut's mutant ids (module paths of the code under test), not user code
    docs = [p for p in sorted((ROOT / "docs").rglob("*.md")) if p.name != "mutation.md"]
    texts = [ROOT / "README.md", *docs, *sorted((ROOT / "examples").rglob("*.py"))]
    offenders = []
    for path in texts:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if _PRIVATE.search(line) or re.search(r"from costkit(\.\w+)* import _", line):
                offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert offenders == []


def test_no_module_is_over_600_lines_without_a_reason_at_its_top():
    """A long module either splits by job or says, in its docstring, why it is one piece."""
    offenders = []
    for path in _modules():
        lines = path.read_text().splitlines()
        if len(lines) <= MAX_LINES:
            continue
        doc = ast.get_docstring(ast.parse("\n".join(lines))) or ""
        if "one module because" not in doc.lower() and "over 600 lines on purpose" not in doc.lower():
            offenders.append(f"{path.relative_to(ROOT)} ({len(lines)} lines)")
    assert offenders == []


def test_every_public_name_resolves():
    import costkit

    for name in costkit.__all__:
        assert getattr(costkit, name) is not None, name
    for sub in ("backends", "sinks", "testing"):
        module = getattr(costkit, sub)
        for name in module.__all__:
            assert getattr(module, name) is not None, f"{sub}.{name}"
