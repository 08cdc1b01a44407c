"""Every action of the console, once: its keys, its words, where it works and whether it changes anything.

The screens' key bindings, the footer, the help screen and the command palette are all built from
`ACTIONS`, so a new action is added here and appears everywhere at once, in the same words. A scope
is where the action is bound: "app" (works on every screen), "screen" (every live screen, e.g. Esc),
or one screen's `SCOPE` ("fleet", "host", "services", "service", "plan", "failover", "events").
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.actions import parse
from textual.binding import Binding, BindingType

SCOPE_TITLES = {
    "fleet": "Fleet (1)",
    "host": "Host detail",
    "services": "Services (2)",
    "service": "Service detail",
    "plan": "Plan (3)",
    "failover": "Failover (4)",
    "events": "Events (5)",
    "detail": "Detail views",
    "log": "Replica log",
    "app": "Everywhere",
    "screen": "Everywhere",
}


@dataclass(frozen=True, slots=True)
class ConsoleAction:
    action: str  # the Textual action string: `filter`, `switch_mode('fleet')`, `sort('cpu')`
    keys: str  # Textual key names, comma-separated: the first is the one shown
    title: str  # the palette's and the help's words, in loadmaster's terms
    scope: str  # "app", "screen", or a screen's SCOPE
    footer: str = ""  # the short footer label; empty: not in the footer (help and palette still list it)
    changes: bool = False  # changes hosts or the engine's plan: hidden and refused under --read-only
    palette: bool = True  # offered in Ctrl+P (cursor movement and Esc are keys, not commands)

    @property
    def name(self) -> str:
        """The action's method name without arguments (`switch_mode`), as `check_action` receives it."""
        return parse(self.action)[1]

    @property
    def parameters(self) -> tuple[object, ...]:
        return parse(self.action)[2]

    @property
    def shown_keys(self) -> str:
        return " ".join(key_label(k) for k in self.keys.split(","))


_KEY_NAMES = {
    "slash": "/",
    "question_mark": "?",
    "colon": ":",
    "escape": "Esc",
    "enter": "Enter",
    "space": "Space",
    "tab": "Tab",
    "up": "↑",
    "down": "↓",
    "home": "Home",
    "end": "End",
    "pageup": "PgUp",
    "pagedown": "PgDn",
}


def key_label(key: str) -> str:
    """A Textual key name as people type it: `slash` → `/`, `ctrl+p` → `Ctrl+P`, `O` → `Shift+O`."""
    key = key.strip()
    if key in _KEY_NAMES:
        return _KEY_NAMES[key]
    if len(key) == 1 and key.isupper():
        return f"Shift+{key}"
    if "+" in key:
        *mods, last = key.split("+")
        return "+".join([m.capitalize() for m in mods] + [_KEY_NAMES.get(last, last.upper())])
    return key


def _sort(scope: str, what: str, column: str, key: str, words: str) -> ConsoleAction:
    return ConsoleAction(f"sort('{column}')", key, f"Sort {what} by {words}", scope)


def _holds(scope: str, which: str) -> tuple[ConsoleAction, ...]:
    return (
        ConsoleAction("hold('drain')", "d", f"Drain {which}: its replicas move off (asks first)", scope,
                      footer="Drain", changes=True),
        ConsoleAction("hold('cordon')", "c", f"Cordon {which}: it takes no new replicas", scope, changes=True),
        ConsoleAction("hold('uncordon')", "u", f"Uncordon {which}: it takes replicas again", scope, changes=True),
    )  # fmt: skip


FLEET_SORTS = (
    ("host", "H", "host name"),
    ("state", "S", "state"),
    ("labels", "Z", "zone and labels"),
    ("cpu_req", "C", "cpu requested"),
    ("mem_req", "M", "memory requested"),
    ("cpu", "U", "cpu use"),
    ("trend", "T", "cpu trend"),
    ("mem", "E", "memory use"),
    ("replicas", "P", "replica count"),
    ("seen", "N", "last seen"),
)
SERVICE_SORTS = (
    ("service", "S", "name"),
    ("desired", "D", "desired replicas"),
    ("running", "R", "running replicas"),
    ("healthy", "E", "healthy replicas"),
    ("hosts", "H", "host count"),
    ("unplaced", "U", "unplaced replicas"),
    ("cpu", "C", "measured/target cpu of autoscaled services"),
)

ACTIONS: tuple[ConsoleAction, ...] = (
    # everywhere
    ConsoleAction("go('fleet')", "1", "Go to Fleet: every host", "app"),
    ConsoleAction("go('services')", "2", "Go to Services", "app"),
    ConsoleAction("go('plan')", "3", "Go to Plan: the pending plan", "app"),
    ConsoleAction("go('failover')", "4", "Go to Failover: what losing a host would do", "app"),
    ConsoleAction("go('events')", "5", "Go to Events: what the engine saw and did", "app"),
    ConsoleAction("help", "question_mark", "Show the keys (this help)", "app", footer="Help"),
    # Textual's footer shows this one on its right, under its footer label.
    ConsoleAction("command_palette", "ctrl+p", "Search every command", "app", footer="Commands", palette=False),
    ConsoleAction(
        "command_line",
        "colon",
        "Command line: :hosts, :svc web, :scale web 8, :drain node-c, :reload, :q …",
        "app",
        footer="Command",
    ),
    ConsoleAction("reload", "ctrl+r", "Re-read the cluster file now (edits are followed anyway)", "app"),
    ConsoleAction("vim('down')", "j", "Down one row (vim)", "app", palette=False),
    ConsoleAction("vim('up')", "k", "Up one row (vim)", "app", palette=False),
    ConsoleAction("vim('top')", "g", "First row (vim)", "app", palette=False),
    ConsoleAction("vim('bottom')", "G", "Last row (vim)", "app", palette=False),
    ConsoleAction("quit", "q", "Quit loadmaster", "app", footer="Quit"),
    ConsoleAction("back", "escape", "Back one level (or clear the filter)", "screen", palette=False),
    # fleet
    ConsoleAction("filter", "slash", "Filter hosts by name or label (substring or regex)", "fleet", footer="Filter"),
    ConsoleAction("details", "enter", "Open the host under the cursor", "fleet", palette=False),
    ConsoleAction("what_if", "s", "What if the host under the cursor died now", "fleet", footer="What if"),
    ConsoleAction("sort_reverse", "O", "Reverse the sort order of hosts", "fleet"),
    *(_sort("fleet", "hosts", column, key, words) for column, key, words in FLEET_SORTS),
    *_holds("fleet", "the host under the cursor"),
    ConsoleAction(
        "demo_toggle",
        "x",
        "Stop (asks first) or restart the demo host under the cursor",
        "fleet",
        footer="Demo stop",
        changes=True,
    ),
    # host detail
    ConsoleAction("what_if", "s", "What if this host died now", "host", footer="What if"),
    *_holds("host", "this host"),
    ConsoleAction(
        "replica('restart')",
        "r",
        "Restart the replica under the cursor (asks first)",
        "host",
        footer="Restart",
        changes=True,
    ),
    ConsoleAction(
        "trust_key",
        "t",
        "Trust the host key this host presents (shows its fingerprint, asks first)",
        "host",
        changes=True,
    ),
    ConsoleAction(
        "replica_log", "l", "Show the log of the replica under the cursor: last lines, then live", "host", footer="Log"
    ),
    ConsoleAction(
        "replica('stop')",
        "ctrl+k",
        "Stop the replica under the cursor (asks first; the next plan places it again)",
        "host",
        changes=True,
    ),
    ConsoleAction(
        "demo_toggle", "x", "Stop (asks first) or restart this demo host", "host", footer="Demo stop", changes=True
    ),
    ConsoleAction(
        "demo_wedge",
        "w",
        "Wedge the replica under the cursor (demo: its check fails, it is restarted)",
        "host",
        changes=True,
    ),
    # services
    ConsoleAction("filter", "slash", "Filter services by name", "services", footer="Filter"),
    ConsoleAction("details", "enter", "Open the service: replicas, events, constraints", "services", palette=False),
    ConsoleAction("sort_reverse", "O", "Reverse the sort order of services", "services"),
    ConsoleAction(
        "scale", "s", "Scale the service under the cursor (:scale NAME N)", "services", footer="Scale", changes=True
    ),
    ConsoleAction(
        "load",
        "l",
        "Demo: set the load of the service under the cursor (:load NAME SHARE of its cpu request)",
        "services",
        footer="Load",
        changes=True,
    ),
    *(_sort("services", "services", column, key, words) for column, key, words in SERVICE_SORTS),
    # plan
    ConsoleAction("approve", "a", "Approve and apply the pending plan", "plan", footer="Approve", changes=True),
    ConsoleAction("reject", "r", "Reject the pending plan", "plan", footer="Reject", changes=True),
    ConsoleAction("export", "e", "Export the plan to a file (json, csv or toml)", "plan", footer="Export"),
    ConsoleAction("replan", "p", "Plan now (fewest moves)", "plan", footer="Plan now"),
    ConsoleAction("repack", "R", "Repack: plan onto the fewest hosts even if replicas move", "plan"),
    ConsoleAction(
        "details", "enter", "Open the plan action under the cursor: why, and the plan's JSON", "plan", palette=False
    ),
    # failover
    ConsoleAction("what_if", "s", "What if the host under the cursor died now", "failover", footer="What if"),
    ConsoleAction("details", "enter", "Open the host under the cursor", "failover", palette=False),
    # events
    ConsoleAction("filter", "slash", "Filter events (substring or regex)", "events", footer="Filter"),
    ConsoleAction("details", "enter", "Open the event under the cursor: the whole message", "events", palette=False),
    # a detail view (plan action, event, service)
    ConsoleAction("close", "escape", "Close the detail view", "detail", palette=False),
    # a replica's log
    ConsoleAction("filter", "slash", "Filter the log's lines (substring or regex)", "log", footer="Filter"),
    ConsoleAction("close", "escape", "Close the log (or clear the filter)", "log", palette=False),
)

# Actions that change a host or the engine's pending plan: hidden and refused under --read-only.
CHANGING_ACTIONS = frozenset(a.name for a in ACTIONS if a.changes)


def actions_in(scope: str) -> tuple[ConsoleAction, ...]:
    return tuple(a for a in ACTIONS if a.scope == scope)


def bindings(scope: str) -> list[BindingType]:
    """The key bindings of one scope, labelled as people type the keys."""
    return [
        Binding(
            a.keys,
            a.action,
            a.footer or a.title,
            show=bool(a.footer) and a.action != "command_palette",  # the footer puts that one on the right
            key_display=key_label(a.keys.split(",")[0]),
        )
        for a in actions_in(scope)
    ]
