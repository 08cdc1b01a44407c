"""`core/` is the engine: it must never depend on the console or on Textual."""

from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
FORBIDDEN = ("textual", "console", "rich")


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_core_never_imports_textual_or_console() -> None:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 5, f"expected the core package at {CORE}"
    offenders = [
        f"{path.relative_to(CORE.parent)} imports {name}"
        for path in files
        for name in sorted(imported_modules(path))
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not offenders, "\n".join(offenders)


def test_the_scan_sees_every_import_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import textual.app\nfrom console import app\ndef f():\n    from rich.text import Text\n")
    assert imported_modules(sample) == {"textual.app", "console", "rich.text"}
