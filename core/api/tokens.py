"""API bearer tokens: a read-write and a read-only token, kept in the state directory (mode 0600).

`LOADMASTER_API_TOKEN` (read-write) and `LOADMASTER_API_READ_TOKEN` (read-only) replace the file
when set, for deployments that hand secrets in through the environment. Tokens are compared in
constant time, and only their names ever reach a log or an event.
"""

from __future__ import annotations

import contextlib
import enum
import hmac
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from core.errors import LoadmasterError

ENV_TOKEN = "LOADMASTER_API_TOKEN"
ENV_READ_TOKEN = "LOADMASTER_API_READ_TOKEN"
TOKEN_FILE = "api-tokens.json"


class Access(enum.StrEnum):
    READ_ONLY = "read-only"
    READ_WRITE = "read-write"


@dataclass(frozen=True, slots=True)
class Token:
    name: str  # what the journal says made a change; never the secret
    access: Access
    secret: str = ""

    def __repr__(self) -> str:  # a token printed by accident shows no secret
        return f"Token({self.name!r}, {self.access.value})"


class TokenFileError(LoadmasterError):
    def __init__(self, path: Path, problem: str):
        super().__init__(f"{path}: {problem}")


def new_secret() -> str:
    return "lm_" + secrets.token_urlsafe(32)


class TokenStore:
    """The tokens the API accepts; re-read when the file changes, so a rotation needs no restart."""

    def __init__(self, path: Path, env: dict[str, str] | None = None):
        self.path = path
        environ = os.environ if env is None else env
        self._env = [
            Token(f"${name}", access, value)
            for name, access in ((ENV_TOKEN, Access.READ_WRITE), (ENV_READ_TOKEN, Access.READ_ONLY))
            if (value := environ.get(name, "").strip())
        ]
        self._cached: tuple[tuple[int, int, int], tuple[Token, ...]] | None = None

    @property
    def from_environment(self) -> bool:
        return bool(self._env)

    def ensure(self) -> None:
        """Create the file with fresh tokens on first start (nothing to do when the environment gives them)."""
        if not self._env and not self.path.exists():
            self._write({access: new_secret() for access in Access})

    def rotate(self, access: Access) -> Token:
        """A new secret for one access level; the old one stops working at once."""
        if self._env:
            raise TokenFileError(self.path, f"tokens come from ${ENV_TOKEN}; change the environment instead")
        secrets_by_access = {t.access: t.secret for t in self.tokens()} if self.path.exists() else {}
        secrets_by_access = {a: secrets_by_access.get(a) or new_secret() for a in Access}
        secrets_by_access[access] = new_secret()
        self._write(secrets_by_access)
        return self.token(access)

    def token(self, access: Access) -> Token:
        self.ensure()
        for t in self.tokens():
            if t.access is access:
                return t
        raise TokenFileError(self.path, f"has no {access.value} token (rotate it: loadmaster api-token --rotate)")

    def tokens(self) -> tuple[Token, ...]:
        if self._env:
            return tuple(self._env)
        try:
            st = self.path.stat()
        except FileNotFoundError:
            return ()
        key = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._cached is None or self._cached[0] != key:
            self._cached = (key, self._read(st))
        return self._cached[1]

    def check(self, presented: str) -> Token | None:
        """The token whose secret is `presented`, compared in constant time against every token."""
        found = None
        for t in self.tokens():
            if hmac.compare_digest(t.secret.encode(), presented.encode()):
                found = t
        return found

    def _read(self, st: os.stat_result) -> tuple[Token, ...]:
        if st.st_mode & 0o077:
            raise TokenFileError(
                self.path, f"is readable by others (mode {stat.S_IMODE(st.st_mode):o}); run chmod 600 on it"
            )
        try:
            doc = json.loads(self.path.read_text(encoding="utf-8"))
            return tuple(Token(access.value, access, str(doc[access.value])) for access in Access if doc.get(access))
        except (OSError, ValueError, AttributeError) as exc:
            raise TokenFileError(self.path, f"cannot be read ({exc}); delete it to have new tokens made") from None

    def _write(self, by_access: dict[Access, str]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump({a.value: s for a, s in by_access.items()}, out, indent=2)
                out.write("\n")
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        self._cached = None
