"""Private files: the controller's journal, tokens and plan exports are readable by their owner only.

Modes are set explicitly (mkdir/open modes are masked by the umask, which may be 022 or worse),
so a file is 0600 and its directory 0700 whatever the umask of the process that made them.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

DIR_MODE = 0o700
FILE_MODE = 0o600


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) as 0700; an existing `path` is tightened to 0700 too.

    Parents that already exist are left alone: they may be the user's home or a shared directory.
    """
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        if p.parent == p:
            break
        p = p.parent
    for d in reversed(missing):
        with contextlib.suppress(FileExistsError):  # made by a concurrent process meanwhile
            d.mkdir(mode=DIR_MODE)
        os.chmod(d, DIR_MODE)
    if not missing:
        os.chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> Path:
    """Make sure `path` exists as a 0600 file (created empty if absent) in a 0700 directory."""
    private_dir(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, FILE_MODE)
    os.close(fd)
    os.chmod(path, FILE_MODE)
    return path


def write_private(path: Path, text: str) -> None:
    """Write `path` atomically (temp file, fsync, rename) as a 0600 file; its directory is left as it is."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")  # two writers never share a temp file
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())  # else the rename may reach the disk before the contents: a crash leaves it empty
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
