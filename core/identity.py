"""A controller's identity on the hosts' fences: `PID-STARTTIME@HOST`.

Unique on a machine even when pids are reused (STARTTIME is field 22 of /proc/PID/stat), a single
word (it is written into files on hosts), and enough for a controller on the same machine to tell
whether the process it names still runs — so a controller restarted after kill -9 need not wait for
its predecessor's fence to age out.
"""

from __future__ import annotations

import os
import re
import socket


def _hostname() -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", socket.gethostname()) or "host"


def _starttime(pid: int | str) -> str:
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[19]  # field 22: fields 3.. follow the last ")"


def controller_id() -> str:
    """This process as a fence holder."""
    return f"{os.getpid()}-{_starttime(os.getpid())}@{_hostname()}"


def gone_here(holder: str) -> bool:
    """True if `holder` names a process of this machine that no longer runs."""
    pid_start, _, host = holder.partition("@")
    pid, _, start = pid_start.partition("-")
    if host != _hostname() or not pid.isdigit():
        return False
    try:
        return _starttime(pid) != start
    except (OSError, IndexError):
        return True
