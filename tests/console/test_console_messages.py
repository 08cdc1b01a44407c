"""Screens talk to the app by messages (console/messages.py) and read only its `ConsoleView`.

What a screen may touch of `self.app` is Textual's navigation and the view; anything else (calling
`approve`, reading `snapshot`, handing the app itself around) is the coupling messages replace.
"""

from __future__ import annotations

import ast
from pathlib import Path

SCREENS = Path(__file__).resolve().parents[2] / "console" / "screens"
# Textual's own state: navigation, and the terminal's focus (a resumed screen restyles only when it changed).
NAVIGATION = frozenset({"push_screen", "pop_screen", "switch_mode", "screen_stack", "current_mode", "app_focus"})


def app_uses(path: Path) -> set[str]:
    """What a module does with `self.app`: the attribute it reads (`self.app.X`, `cast(..., self.app).X`),
    or "<escapes>" when the app itself is returned, stored or passed on (then anything could be called)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    used: set[str] = set()
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr == "app"):
            continue
        app: ast.expr = node
        user = parents.get(app)
        if isinstance(user, ast.Call) and isinstance(user.func, ast.Name) and user.func.id == "cast":
            app, user = user, parents.get(user)
        used.add(user.attr if isinstance(user, ast.Attribute) and user.value is app else "<escapes>")
    return used


def test_screens_post_messages_and_read_only_the_view() -> None:
    files = sorted(SCREENS.glob("*.py"))
    assert len(files) > 5, f"expected the screens at {SCREENS}"
    offenders = [
        f"{path.name} uses app.{name}" for path in files for name in sorted(app_uses(path) - NAVIGATION - {"view"})
    ]
    assert not offenders, "\n".join(offenders)


def test_the_app_scan_sees_calls_and_reads(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("self.app.approve(p)\nx = self.app.snapshot\ny = cast('A', self.app).view\n")
    assert app_uses(sample) == {"approve", "snapshot", "view"}
    sample.write_text("def loadmaster(self):\n    return cast('A', self.app)\n")
    assert app_uses(sample) == {"<escapes>"}
