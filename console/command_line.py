"""The `:` command mode (k9s): what an operator can type, its completion, and its parse into a `Command`.

Pure: no Textual here. The app asks `complete()` while the operator types and runs what `parse()`
returns; a line that means nothing says what would (`CommandError`, shown as a notification).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from core.errors import LoadmasterError


class CommandError(LoadmasterError):
    """A command line the console cannot run, with what would work."""


@dataclass(frozen=True, slots=True)
class Command:
    verb: str  # one of VERBS' keys
    args: tuple[str, ...] = ()


# verb → (what its argument is: "host", "service", "service count" or "", what it does)
VERBS: dict[str, tuple[str, str]] = {
    "hosts": ("", "the fleet screen"),
    "host": ("host", "one host's detail"),
    "svc": ("service", "the services screen (with a name: that service)"),
    "plan": ("", "the plan screen"),
    "failover": ("", "the failover screen"),
    "events": ("", "the events screen"),
    "reload": ("", "re-read the cluster file now"),
    "drain": ("host", "move every replica off a host and keep new ones away"),
    "cordon": ("host", "keep new replicas off a host (what runs there stays)"),
    "uncordon": ("host", "let a cordoned or drained host take replicas again"),
    "scale": ("service count", "set a service's replicas in the cluster file"),
    "restart": ("replica", "stop and start one replica where it runs, e.g. web/3"),
    "stop": ("replica", "stop one replica (the next plan places it again), e.g. web/3"),
    "load": ("service share", "demo fleets: a service's replicas burn that share of their cpu request, e.g. web 0.9"),
    "help": ("", "the keys and commands"),
    "q": ("", "quit"),
}
ALIASES = {"fleet": "hosts", "services": "svc", "service": "svc", "quit": "q", "q!": "q"}


def _names(kind: str, hosts: Sequence[str], services: Sequence[str]) -> Sequence[str]:
    return hosts if kind == "host" else services if kind == "service" else ()


def complete(line: str, hosts: Sequence[str], services: Sequence[str]) -> str | None:
    """The whole line completed with the first verb or name that starts with what was typed, or None."""
    words = line.split(" ")
    if len(words) == 1:
        return _first(line, [*VERBS, *ALIASES])
    verb = ALIASES.get(words[0], words[0])
    if verb not in VERBS or len(words) != 2:
        return None
    kind = VERBS[verb][0].split(" ")[0]
    found = _first(words[1], _names(kind, hosts, services))
    return None if found is None else f"{words[0]} {found}"


def _first(prefix: str, candidates: Iterable[str]) -> str | None:
    if not prefix:
        return None
    return next((c for c in candidates if c.startswith(prefix) and c != prefix), None)


def parse(line: str, hosts: Sequence[str], services: Sequence[str]) -> Command:
    """`line` as a command; CommandError names what is wrong and what would work."""
    words = line.split()
    if not words:
        raise CommandError("type a command: " + ", ".join(VERBS))
    verb, args = ALIASES.get(words[0], words[0]), tuple(words[1:])
    if verb not in VERBS:
        raise CommandError(f"unknown command {words[0]!r}; the commands are: {', '.join(VERBS)}")
    kinds = VERBS[verb][0].split()
    if verb == "svc" and not args:
        return Command(verb)
    if len(args) != len(kinds):
        usage = " ".join(k.upper() for k in kinds)
        example = f", e.g. :{verb} {_example(kinds, hosts, services)}" if kinds else ""
        raise CommandError(f":{verb} takes {usage or 'nothing'}{example}")
    for kind, arg in zip(kinds, args, strict=True):
        if kind in ("host", "service"):
            known = _names(kind, hosts, services)
            if arg not in known:
                raise CommandError(f"no {kind} named {arg!r}; the {kind}s are: {', '.join(known) or 'none'}")
        elif kind == "replica" and (arg.rpartition("/")[0] not in services or not arg.rpartition("/")[2].isdigit()):
            raise CommandError(
                f":{verb}: {arg!r} is not a replica: write SERVICE/INDEX, e.g. {services[0] if services else 'web'}/0"
            )
        elif kind == "share" and not _share(arg):
            raise CommandError(f":{verb}: {arg!r} is not a share of the cpu request (a number, 0 = idle, e.g. 0.9)")
        elif kind == "count" and not (arg.isascii() and arg.isdigit()):
            raise CommandError(f":{verb}: {arg!r} is not a number of replicas (a whole number, 0 or more)")
    return Command(verb, args)


def _share(text: str) -> bool:
    try:
        return 0 <= float(text) < float("inf")
    except ValueError:
        return False


def _example(kinds: Sequence[str], hosts: Sequence[str], services: Sequence[str]) -> str:
    out = []
    for kind in kinds:
        names = _names(kind, hosts, services)
        out.append(names[0] if names else {"count": "3", "share": "0.9"}.get(kind, kind.upper()))
    return " ".join(out)
