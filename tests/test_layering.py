"""Package layering: tools is a leaf and the agent never imports the eval harness (its commands plug in through an
entry point), and no module grows past the size a reader can hold."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 400


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def offending(package: str, forbidden: tuple[str, ...]) -> list[str]:
    return [f"{path.relative_to(ROOT)} imports {module}" for path in sorted((ROOT / package).rglob("*.py"))
            for module in sorted(imported_modules(path)) if module.split(".")[0] in forbidden
            or any(module == f or module.startswith(f"{f}.") for f in forbidden)]


@pytest.mark.parametrize(("package", "forbidden"), [
    ("tools", ("agent", "evals")),
    ("agent", ("evals",)),
])
def test_no_import_against_the_layering(package: str, forbidden: tuple[str, ...]) -> None:
    assert offending(package, forbidden) == []


def test_the_check_sees_an_import_loop() -> None:
    assert imported_modules(ROOT / "evals" / "cli" / "__init__.py") >= {"evals.cli.eval_cmd"}
    assert offending("evals", ("agent",)), "evals does import the agent, so the check can see such imports"


def test_no_module_over_the_limit() -> None:
    sizes = {str(p.relative_to(ROOT)): len(p.read_text(encoding="utf-8").splitlines())
             for package in ("agent", "tools", "evals") for p in (ROOT / package).rglob("*.py")}
    assert {name: n for name, n in sizes.items() if n > MAX_LINES} == {}
