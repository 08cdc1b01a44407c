"""The architecture contract: which package may import which, checked on every test run (and so in CI).

- `core` never imports the console or Textual/Rich: the daemon, the CLI and the HTTP API use core without a
  terminal UI, and core must stay testable without one.
- `core.optimizer` is pure computation: no SSH (`asyncssh`), no storage (`sqlite3`), nothing of the engine or
  hostlink. Checked through every chain of project imports, because `core.optimizer` importing a core
  module that imports `asyncssh` loads `asyncssh` all the same.
- Screens (`console/screens/`) see the engine only through what a front end is given: the engine API
  (`core.engine.api`, plus `core.engine.events`, the types its event stream yields) and the model
  (`core.model`). Any other core module (the engine itself, the optimizer, hostlink, config) is reached
  through the app, by posting a message; console-internal modules and libraries are free.

Every import statement counts, wherever it is: inside a function (a lazy import is a dependency all the
same) or under `if TYPE_CHECKING:` (a type names a dependency even when nothing loads it).

The checker is this file's own small AST walk rather than import-linter: the screens' rule is an allow-list,
which import-linter's forbidden/layers contracts can only express as a deny-list that a new core module
would silently slip past. `test_each_contract_can_fail` runs the same checker on a tiny package with one
violating import per contract, so none of them passes because it looks at nothing.
"""

from __future__ import annotations

import ast
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROJECT = ("core", "console")  # the packages whose modules the checker reads and follows


@dataclass(frozen=True, slots=True)
class Forbidden:
    """No module under `sources` imports any of `forbidden`, directly or (with `indirect`) through project modules."""

    name: str
    sources: tuple[str, ...]
    forbidden: tuple[str, ...]
    indirect: bool = False


@dataclass(frozen=True, slots=True)
class OnlyFrom:
    """Modules under `sources` import, of the `restricted` packages, only modules under `allowed`."""

    name: str
    sources: tuple[str, ...]
    restricted: tuple[str, ...]
    allowed: tuple[str, ...]


Contract = Forbidden | OnlyFrom

CONTRACTS: tuple[Contract, ...] = (
    Forbidden("core never imports the console or Textual", ("core",), ("console", "textual", "rich")),
    Forbidden(
        "the optimizer is pure computation",
        ("core.optimizer",),
        ("asyncssh", "sqlite3", "core.engine", "core.hostlink"),
        indirect=True,
    ),
    OnlyFrom(
        "screens see only the engine API and the model",
        ("console.screens",),
        restricted=("core",),
        allowed=("core.engine.api", "core.engine.events", "core.model"),
    ),
)


def under(module: str, prefixes: tuple[str, ...]) -> bool:
    """`module` is one of `prefixes` or inside one (`core.engine.x` is under `core.engine`, `core.enginex` is not)."""
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


@dataclass(frozen=True, slots=True)
class Import:
    target: str
    line: int


class Project:
    """The modules of `PROJECT` under `root` and what each imports."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files: dict[str, Path] = {}
        for package in PROJECT:
            for path in sorted((root / package).rglob("*.py")):
                parts = path.relative_to(root).with_suffix("").parts
                if parts[-1] == "__init__":
                    parts = parts[:-1]
                self.files[".".join(parts)] = path
        self._imports: dict[str, tuple[Import, ...]] = {}

    def imports(self, module: str) -> tuple[Import, ...]:
        if module not in self._imports:
            self._imports[module] = tuple(self._scan(module))
        return self._imports[module]

    def _scan(self, module: str) -> Iterator[Import]:
        path = self.files[module]
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(alias.name, node.lineno)
            elif isinstance(node, ast.ImportFrom):
                base = self._absolute(module, is_package, node.level, node.module)
                for alias in node.names:
                    # `from core.engine import api` imports the module core.engine.api; `from core.model import
                    # Host` imports core.model. Only project modules can be told apart, which is all that matters.
                    submodule = f"{base}.{alias.name}"
                    yield Import(submodule if submodule in self.files else base, node.lineno)

    @staticmethod
    def _absolute(module: str, is_package: bool, level: int, name: str | None) -> str:
        if level == 0:
            return name or ""
        package = module.split(".") if is_package else module.split(".")[:-1]
        base = package[: len(package) - (level - 1)]
        return ".".join([*base, name] if name else base)

    def loaded_with(self, module: str) -> Iterator[str]:
        """The project modules that importing `module` runs: its packages' `__init__`s and what it imports."""
        parts = module.split(".")
        for depth in range(1, len(parts)):
            package = ".".join(parts[:depth])
            if package in self.files:
                yield package
        for imp in self.imports(module):
            if imp.target in self.files:
                yield imp.target


def violations(project: Project, contract: Contract) -> list[str]:
    sources = [module for module in project.files if under(module, contract.sources)]
    if not sources:  # a renamed package must not leave its contract checking nothing
        return [f"no module under {', '.join(contract.sources)} in {project.root}"]
    if isinstance(contract, OnlyFrom):
        return [
            f"{project.files[module].relative_to(project.root)}:{imp.line} imports {imp.target}"
            for module in sources
            for imp in project.imports(module)
            if under(imp.target, contract.restricted) and not under(imp.target, contract.allowed)
        ]
    # Each offending import once, with the shortest chain from the first source that reaches it.
    found: dict[str, str] = {}
    for module in sources:
        for offence, chain in forbidden_chains(project, module, contract).items():
            found.setdefault(offence, chain)
    return [f"{chain} imports {offence}" for offence, chain in found.items()]


def forbidden_chains(project: Project, start: str, contract: Forbidden) -> dict[str, str]:
    """Forbidden imports reached from `start` ("target (file:line)") → the chain of project modules to them."""
    found: dict[str, str] = {}
    seen = {start}
    frontier = deque([(start,)])
    while frontier:  # breadth first, so each chain is a shortest one
        chain = frontier.popleft()
        module = chain[-1]
        for imp in project.imports(module):
            if under(imp.target, contract.forbidden):
                where = f"{project.files[module].relative_to(project.root)}:{imp.line}"
                found.setdefault(f"{imp.target} ({where})", " -> ".join(chain))
        if contract.indirect:
            for nxt in project.loaded_with(module):
                if nxt not in seen and not under(nxt, contract.forbidden):
                    seen.add(nxt)
                    frontier.append((*chain, nxt))
    return found


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.name)
def test_contract_holds(contract: Contract) -> None:
    found = violations(Project(ROOT), contract)
    assert not found, f"{contract.name}, broken by:\n" + "\n".join(found)


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


# A tiny project that keeps every contract; each case below adds one violating file or line.
CLEAN = {
    "core/__init__.py": "",
    "core/model.py": "import enum\n",
    "core/units.py": "from core.model import enum\n",
    "core/config.py": "import tomllib\n",
    "core/engine/__init__.py": "",
    "core/engine/api.py": "from core.model import enum\nfrom . import events\n",
    "core/engine/events.py": "",
    "core/engine/engine.py": "import asyncssh\nimport sqlite3\nfrom core.optimizer import solve\n",
    "core/optimizer/__init__.py": "from .solve import solve\n",
    "core/optimizer/solve.py": "from ortools.sat.python import cp_model\nfrom core import units\n",
    "console/__init__.py": "",
    "console/app.py": "import textual\nfrom core.engine.engine import Engine\n",
    "console/screens/__init__.py": "",
    "console/screens/fleet.py": (
        "from textual.screen import Screen\nfrom core.engine.api import Snapshot\nfrom core.engine import events\n"
        "from core.model import Host\nfrom console.app import App\nfrom ..app import App\n"
    ),
}

VIOLATIONS = {
    "core never imports the console or Textual": {
        "core/model.py": "import enum\n\ndef lazily():\n    import textual.app\n",
    },
    "the optimizer is pure computation": {
        # indirect: the optimizer's own code is clean, a core module it imports is not
        "core/units.py": "from core.model import enum\nimport asyncssh\n",
    },
    "screens see only the engine API and the model": {
        "console/screens/plan.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core import config\n",
    },
}


def test_the_tiny_project_keeps_every_contract(tmp_path: Path) -> None:
    project = Project(write(tmp_path, CLEAN))
    assert {contract.name: violations(project, contract) for contract in CONTRACTS} == {
        contract.name: [] for contract in CONTRACTS
    }


@pytest.mark.parametrize("contract", CONTRACTS, ids=lambda contract: contract.name)
def test_each_contract_can_fail(tmp_path: Path, contract: Contract) -> None:
    project = Project(write(tmp_path, {**CLEAN, **VIOLATIONS[contract.name]}))
    failing = {other.name for other in CONTRACTS if violations(project, other)}
    assert contract.name in failing


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"core/optimizer/solve.py": "import sqlite3\n"}, "core.optimizer.solve imports sqlite3"),
        (
            {"core/optimizer/solve.py": "from ..engine import engine\n"},
            "core.optimizer.solve imports core.engine.engine",
        ),
        ({"core/optimizer/solve.py": "from core.hostlink.link import Link\n"}, "imports core.hostlink.link"),
        # core/__init__.py runs with every core module, so with the optimizer's
        ({"core/__init__.py": "from core.engine import api\n"}, "core.optimizer -> core imports core.engine.api"),
    ],
)
def test_the_optimizer_rule_sees_each_form(tmp_path: Path, files: dict[str, str], expected: str) -> None:
    project = Project(write(tmp_path, {**CLEAN, **files}))
    found = "\n".join(violations(project, CONTRACTS[1]))
    assert expected in found


def test_a_missing_package_is_a_violation_not_a_pass(tmp_path: Path) -> None:
    files = {name: text for name, text in CLEAN.items() if not name.startswith("console/screens/")}
    project = Project(write(tmp_path, files))
    assert violations(project, CONTRACTS[2]) == [f"no module under console.screens in {tmp_path}"]


def test_relative_imports_resolve_from_the_module(tmp_path: Path) -> None:
    project = Project(write(tmp_path, CLEAN))
    assert [imp.target for imp in project.imports("console.screens.fleet")] == [
        "textual.screen",
        "core.engine.api",
        "core.engine.events",
        "core.model",
        "console.app",
        "console.app",
    ]
    assert [imp.target for imp in project.imports("core.engine.api")] == ["core.model", "core.engine.events"]
