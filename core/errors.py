"""Typed errors that carry what a person needs to act on them."""

from __future__ import annotations

from dataclasses import dataclass


class LoadmasterError(Exception):
    """Base of every error loadmaster reports to a person instead of a traceback."""

    exit_code = 1


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    file: str
    entry: str  # e.g. 'services "web"', 'hosts[3]', 'cluster'
    field: str  # e.g. 'mem'; "" for the entry as a whole
    message: str

    def __str__(self) -> str:
        where = f"{self.entry}: " if self.entry else ""
        what = f"{self.field} " if self.field else ""
        return f"{self.file}: {where}{what}{self.message}"


class ConfigError(LoadmasterError):
    """`cluster.toml` is missing or invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[ConfigProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class HostUnreachable(LoadmasterError):
    def __init__(self, host: str, reason: str):
        self.host, self.reason = host, reason
        super().__init__(f"{host}: unreachable: {reason}")


class HostKeyMismatch(LoadmasterError):
    """The host presented a key that differs from the recorded one: possibly an attack."""

    def __init__(self, host: str, expected: str, presented: str):
        self.host, self.expected, self.presented = host, expected, presented
        super().__init__(
            f"{host}: host key changed (known {expected}, presented {presented}); "
            "refusing to connect. If the host was reinstalled, remove its old key from known_hosts."
        )


class HostKeyUnknown(LoadmasterError):
    def __init__(self, host: str, presented: str):
        self.host, self.presented = host, presented
        super().__init__(
            f"{host}: host key {presented} is not in known_hosts; add it (ssh-keyscan) "
            'or set host_key_policy = "accept-new" to record it on first connect'
        )


class StalePlan(LoadmasterError):
    """The fleet or config changed since the plan was computed."""

    exit_code = 3

    def __init__(self, reasons: list[str]):
        self.reasons = reasons
        super().__init__("plan is stale: " + "; ".join(reasons) + " (re-plan, or --force)")


class ReadOnly(LoadmasterError):
    def __init__(self, what: str):
        super().__init__(f"{what}: refused, loadmaster runs with --read-only")


class InvalidProblem(LoadmasterError):
    """A placement problem the optimizer cannot accept; the message names the host or service to fix."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("cannot plan: " + "; ".join(problems))


class HostCommandFailed(LoadmasterError):
    """A command loadmaster ran on a reachable host (start, stop, list a replica) failed there."""

    def __init__(self, host: str, what: str, detail: str):
        self.host, self.what, self.detail = host, what, detail
        super().__init__(f"{host}: {what} failed: {detail}")


class Fenced(HostCommandFailed):
    """The host refused an action: another controller's token there is higher (it took the cluster)."""

    def __init__(self, host: str, what: str, epoch: int, holder: str):
        self.epoch, self.holder = epoch, holder
        super().__init__(host, what, f"fenced: controller {holder} holds this host (epoch {epoch})")


class NotHolder(LoadmasterError):
    """This controller does not hold the cluster: another one, live, does; nothing may be changed from here."""

    exit_code = 6

    def __init__(self, what: str, holder: str, epoch: int):
        self.holder, self.epoch = holder, epoch
        super().__init__(
            f"{what}: refused, controller {holder} holds the cluster (epoch {epoch}); this one runs read-only "
            "until it is gone (stop it, or start this one with --take-over)"
        )


class RevisionConflict(LoadmasterError):
    """The desired-state document changed since the writer read it (compare-and-swap failed)."""

    exit_code = 5

    def __init__(self, file: str, expected: str, current: str):
        self.file, self.expected, self.current = file, expected, current
        super().__init__(
            f"{file} changed since it was read (expected revision {expected}, now {current}); "
            "read it again and retry the change"
        )


class UnknownHost(LoadmasterError):
    """A command names a host the cluster file does not declare."""

    def __init__(self, file: str, name: str, known: list[str]):
        self.file, self.name, self.known = file, name, known
        listed = ", ".join(known[:20]) + (f" and {len(known) - 20} more" if len(known) > 20 else "")
        super().__init__(f"{file}: no host {name!r} (hosts: {listed or 'none'})")


class UnknownService(LoadmasterError):
    """A change names a service the desired-state document does not declare."""

    def __init__(self, file: str, name: str, known: list[str]):
        self.file, self.name, self.known = file, name, known
        listed = ", ".join(f'"{k}"' for k in known) or "none"
        super().__init__(f'{file}: no service "{name}" (services: {listed})')


class JournalError(LoadmasterError):
    """The controller's journal cannot be opened or read: names the file and what to do about it."""

    def __init__(self, path: str, problem: str, fix: str):
        self.path, self.problem, self.fix = path, problem, fix
        super().__init__(f"journal {path}: {problem}; {fix}")


class InvalidPlan(LoadmasterError):
    """A plan (from a file) that this config could not have produced: refused before anything runs."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, problems
        super().__init__(f"{source}: refused, nothing was changed:\n" + "\n".join(f"  {p}" for p in problems))


class BadLoad(LoadmasterError):
    """A demo load (`loadmaster demo --load web=0.9`, the console's load control) that cannot be set."""

    def __init__(self, given: str, problem: str):
        self.given, self.problem = given, problem
        super().__init__(f"--load {given}: {problem}")


class StoreError(LoadmasterError):
    """The cluster's etcd store cannot be reached or refused a request: names the endpoints and the fix."""

    exit_code = 7

    def __init__(self, where: str, problem: str, fix: str):
        self.where, self.problem, self.fix = where, problem, fix
        super().__init__(f"store {where}: {problem}; {fix}")
