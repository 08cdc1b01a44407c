"""Host key trust: known_hosts parsed once per fleet, strict or accept-new, never silent.

Passing a path to asyncssh re-reads the file on every connect (1,000 connects
took 12–17 s that way against 3.6 s parsed once), so the files are read here
once and each connection asks `HostKeys.check`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import asyncssh

from core.errors import HostKeyMismatch, HostKeyUnknown, LoadmasterError
from core.model import HostKeyPolicy

OWN_KNOWN_HOSTS = "~/.loadmaster/known_hosts"


def host_pattern(address: str, port: int) -> str:
    return address if port == 22 else f"[{address}]:{port}"


@dataclass(frozen=True, slots=True)
class Verdict:
    trusted: bool
    recorded: bool = False  # accept-new wrote the key to loadmaster's known_hosts
    error: HostKeyMismatch | HostKeyUnknown | None = None


class HostKeys:
    """The trusted keys of a fleet: the user's known_hosts plus the file accept-new records to (loadmaster's own,
    or the one the cluster file names, which may be the same file)."""

    def __init__(self, user_file: str | None, policy: HostKeyPolicy, own_file: str | None = None) -> None:
        self.user_file = Path(os.path.expanduser(user_file or "~/.ssh/known_hosts"))
        self.own_file = Path(os.path.expanduser(own_file or OWN_KNOWN_HOSTS))
        self.policy = policy
        files = list(dict.fromkeys(str(f) for f in (self.user_file, self.own_file) if f.is_file()))
        self._known = asyncssh.read_known_hosts(files) if files else asyncssh.import_known_hosts("")
        self._accepted: dict[str, asyncssh.SSHKey] = {}
        self._presented: dict[str, asyncssh.SSHKey] = {}  # pattern → the last key refused there (see `trust`)

    def check(self, name: str, host: str, addr: str, port: int, key: asyncssh.SSHKey) -> Verdict:
        """Decide on a key a server presented; `name` is the host's name in cluster.toml, for messages."""
        trusted = list(self._known.match(host, addr, port)[0])
        pattern = host_pattern(host, port)
        if pattern in self._accepted:
            trusted.append(self._accepted[pattern])
        presented = key.get_fingerprint()
        if key.public_data in {k.public_data for k in trusted}:
            return Verdict(True)
        if trusted:
            self._presented[pattern] = key
            expected = ", ".join(sorted({k.get_fingerprint() for k in trusted}))
            return Verdict(False, error=HostKeyMismatch(name, expected, presented))
        if self.policy is not HostKeyPolicy.ACCEPT_NEW:
            self._presented[pattern] = key
            return Verdict(False, error=HostKeyUnknown(name, presented))
        self._record(pattern, key)
        return Verdict(True, recorded=True)

    def trust(self, name: str, pattern: str, fingerprint: str) -> Path:
        """An operator trusts the key `pattern` presented and was refused, after seeing `fingerprint`: recorded
        where accept-new records (the known_hosts the cluster file names, else loadmaster's own), replacing that
        file's lines for the pattern (a changed key's old one). The file written; LoadmasterError when the host
        presented no refused key, or another one than the operator saw."""
        key = self._presented.get(pattern)
        if key is None:
            raise LoadmasterError(f"{name}: no refused host key to trust (it presented none since loadmaster started)")
        if key.get_fingerprint() != fingerprint:
            raise LoadmasterError(
                f"{name}: the host now presents {key.get_fingerprint()}, not the {fingerprint} you confirmed; "
                "nothing recorded — look at it again"
            )
        if self.own_file.is_file():
            kept = [line for line in self.own_file.read_text(encoding="utf-8").splitlines(keepends=True)
                    if line.split(" ", 1)[0] != pattern]  # fmt: skip
            self.own_file.write_text("".join(kept), encoding="utf-8")
        self._known = asyncssh.import_known_hosts(
            "".join(line for line in self._known_lines() if line.split(" ", 1)[0] != pattern)
        )
        self._record(pattern, key)
        del self._presented[pattern]
        return self.own_file

    def _known_lines(self) -> list[str]:
        files = list(dict.fromkeys(f for f in (self.user_file, self.own_file) if f.is_file()))
        return [line for f in files for line in f.read_text(encoding="utf-8").splitlines(keepends=True)]

    def _record(self, pattern: str, key: asyncssh.SSHKey) -> None:
        self._accepted[pattern] = key
        self.own_file.parent.mkdir(parents=True, exist_ok=True)
        line = f"{pattern} {key.export_public_key('openssh').decode().strip()}\n"
        with self.own_file.open("a", encoding="utf-8") as f:
            f.write(line)
        os.chmod(self.own_file, 0o600)
