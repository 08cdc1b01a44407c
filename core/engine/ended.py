"""How a replica that stopped running ended, in words and as `replica.crashed`'s fields (issue 12, item 14).

The host knows it when the kernel killed the replica for its memory limit (hostlink.limits) and, from the replica's
waiter (hostlink.runtime_shell.START), how its leader ended: an exit code, or the signal that ended it.
"""

from __future__ import annotations

from core.model import ReplicaStatus

# Linux's signal numbers (hosts are Linux; the controller's own platform may number them otherwise)
_SIGNALS = (
    "SIGHUP", "SIGINT", "SIGQUIT", "SIGILL", "SIGTRAP", "SIGABRT", "SIGBUS", "SIGFPE", "SIGKILL", "SIGUSR1", "SIGSEGV",
    "SIGUSR2", "SIGPIPE", "SIGALRM", "SIGTERM", "SIGSTKFLT", "SIGCHLD", "SIGCONT", "SIGSTOP", "SIGTSTP", "SIGTTIN",
    "SIGTTOU", "SIGURG", "SIGXCPU", "SIGXFSZ", "SIGVTALRM", "SIGPROF", "SIGWINCH", "SIGIO", "SIGPWR", "SIGSYS",
)  # fmt: skip


def ended(r: ReplicaStatus) -> str:
    """`exited with code 3`, `was killed by SIGKILL`, `was oom-killed (over its memory limit)`, or `exited` when
    the host does not know how."""
    if r.oom_killed:
        return "was oom-killed (over its memory limit)"  # by SIGKILL: said in the event's fields
    code, number = r.ended_by
    if code is not None:
        return f"exited with code {code}"
    return f"was killed by {signal_name(number)}" if number is not None else "exited"


def ended_fields(r: ReplicaStatus) -> dict[str, object]:
    """`replica.crashed`'s fields: exit_code or signal (its name, e.g. SIGKILL) when known, and oom_killed."""
    code, number = r.ended_by
    fields: dict[str, object] = {"exit_code": code} if code is not None else {}
    if number is not None:
        fields["signal"] = signal_name(number)
    if r.oom_killed:
        fields["oom_killed"] = True
    return fields


def signal_name(number: int) -> str:
    """SIGKILL for 9, SIGRTMIN+2 for 36, as Linux numbers them."""
    if 1 <= number <= len(_SIGNALS):
        return _SIGNALS[number - 1]
    return f"SIGRTMIN+{number - 34}" if 34 <= number <= 64 else f"signal {number}"
