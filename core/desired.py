"""The one way loadmaster changes `cluster.toml`: edits that keep the file a person wrote.

The text of the cluster file is the desired state (DESIGN.md, "one desired-state
document"). Every writer — `loadmaster scale`, the console, the HTTP API, the autoscaler — goes
through an `Editor`: `FileEditor` (`edit()` below) for the file, or in clustered mode
core.store.desired_doc.StoredEditor for the document stored in etcd, which shares `revise()`.
The file's `edit()`

- keeps comments, key order and layout (tomlkit edits the parsed document in place);
- refuses a result the config reader rejects, with the same problem texts `validate` prints,
  so the file on disk is never left invalid by loadmaster;
- is a compare-and-swap on the file's revision (the sha256 of its bytes): a writer that read
  revision R and finds another one raises `RevisionConflict` carrying the current revision;
- replaces the file atomically (temporary file in the same directory, fsync, rename, fsync of
  the directory), keeping its mode, so a reader or a crash never sees half a file.

Writers in this and other processes serialise on an advisory lock of the file's directory
(flock), so the read-check-write is atomic among them. An editor that saves without the lock is
still caught by the revision check unless it saves inside the last microseconds before the rename.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import tomlkit
import tomlkit.exceptions
from tomlkit.items import AoT, Array, InlineTable, Table

from core import config as config_io
from core.errors import ConfigError, ConfigProblem, RevisionConflict, UnknownService
from core.model import ClusterConfig

_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Document:
    """The cluster file as read (or as written): its text, revision and validated config."""

    path: Path
    text: str
    revision: str
    config: ClusterConfig


def revision_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def read(path: str | os.PathLike[str]) -> Document:
    """The file with its revision; raises ConfigError (the `validate` texts) when it is invalid."""
    name = str(path)
    target = _target(path)
    raw = _read_bytes(target, name)
    text = config_io.decode(raw, name)
    return Document(target, text, revision_of(raw), config_io.parse(text, name))


Change = Callable[[tomlkit.TOMLDocument], None]


class Editor(Protocol):
    """Where the desired state is written: the cluster file (`FileEditor`), or in clustered mode the document
    stored in etcd (core.store.desired_doc.StoredEditor). Both are compare-and-swaps on the revision (the
    sha256 of the text), and both refuse a result the config reader rejects."""

    @property
    def name(self) -> str:
        """How messages name the document."""
        ...

    def read(self) -> Document: ...

    def edit(self, change: Change, expect: str | None) -> Document: ...


@dataclass(frozen=True, slots=True)
class FileEditor:
    path: Path

    @property
    def name(self) -> str:
        return str(self.path)

    def read(self) -> Document:
        return read(self.path)

    def edit(self, change: Change, expect: str | None) -> Document:
        return edit(self.path, change, expect=expect)


Target = str | os.PathLike[str] | Editor  # a path is the cluster file's editor


def editor_of(target: Target) -> Editor:
    return FileEditor(Path(target)) if isinstance(target, str | os.PathLike) else target


def revise(text: str, name: str, change: Change) -> tuple[str, ClusterConfig]:
    """The text after `change`, and its config; ConfigError (the `validate` texts) when the text is invalid
    now — half-saved by an editor, say: a person fixes it, nothing edits it blind — or would be after."""
    config_io.parse(text, name)
    doc = _parse(text, name)
    change(doc)
    new_text = tomlkit.dumps(doc)
    return new_text, config_io.parse(new_text, name)  # ConfigError lists every problem, as `validate` does


def edit(
    path: str | os.PathLike[str],
    change: Change,
    *,
    expect: str | None = None,
) -> Document:
    """Apply `change` to the parsed document and write the result, if it is valid.

    `expect` is the revision the caller based its change on; None means "whatever is there now"
    (still serialised with other writers, so no update is lost, only not checked against a read).
    """
    name = str(path)
    target = _target(path)
    with _locked(target.parent) as dir_fd:
        raw = _read_bytes(target, name)
        current = revision_of(raw)
        if expect is not None and expect != current:
            raise RevisionConflict(name, expect, current)
        new_text, config = revise(config_io.decode(raw, name), name, change)
        data = (_BOM if raw.startswith(_BOM) else b"") + new_text.encode("utf-8")
        _replace(target, data, dir_fd, current, name)
    return Document(target, new_text, revision_of(data), config)


# -- the operations -----------------------------------------------------------------------


def scale(target: Target, service: str, replicas: int, *, expect: str | None = None) -> Document:
    """Set `replicas` of one service (the value is validated like the file's own)."""
    editor = editor_of(target)

    def change(doc: tomlkit.TOMLDocument) -> None:
        _find_service(doc, service, editor.name)[1]["replicas"] = replicas

    return editor.edit(change, expect)


def put_service(
    target: Target, name: str, definition: Mapping[str, Any], *, expect: str | None = None
) -> tuple[Document, bool]:
    """Create or replace the service `name` with `definition` (its keys as in `[[services]]`).

    A replaced service keeps its place in the file and the comments of the keys it keeps.
    Returns the new document and whether the service was created.
    """
    editor = editor_of(target)
    file = editor.name
    body = {"name": name, **definition}
    entry = f'services "{name}"'
    if body["name"] != name:
        raise ConfigError([ConfigProblem(file, entry, "name", f"{body['name']!r} differs from the service named")])
    items = {key: _toml_item(value, file, entry, key) for key, value in body.items()}
    created = False

    def change(doc: tomlkit.TOMLDocument) -> None:
        nonlocal created
        try:
            _, table = _find_service(doc, name, file)
        except UnknownService:
            created = True
            table = tomlkit.table()
            for key, item in items.items():
                table[key] = item
            table.add(tomlkit.nl())  # a blank line before whatever section follows
            services = doc.get("services")
            if isinstance(services, AoT):
                services.append(table)
            else:
                doc.append("services", tomlkit.aot())
                doc["services"].append(table)
            return
        for key in [k for k in table if k not in items]:
            del table[key]
        for key, item in items.items():
            table[key] = item

    document = editor.edit(change, expect)
    return document, created


def delete_service(target: Target, name: str, *, expect: str | None = None) -> Document:
    """Remove the service (a service that `avoid`s it makes the result invalid, and it is refused)."""
    editor = editor_of(target)

    def change(doc: tomlkit.TOMLDocument) -> None:
        index, _ = _find_service(doc, name, editor.name)
        del doc["services"][index]

    return editor.edit(change, expect)


# -- helpers ------------------------------------------------------------------------------------


def _target(path: str | os.PathLike[str]) -> Path:
    # Write through a symlink to the file it names, so the link stays a link.
    return Path(os.path.realpath(Path(path).expanduser()))


def _read_bytes(target: Path, name: str) -> bytes:
    try:
        return target.read_bytes()
    except FileNotFoundError:
        raise ConfigError([ConfigProblem(name, "", "", "not found (create it, pass -c FILE)")]) from None
    except OSError as exc:
        raise ConfigError([ConfigProblem(name, "", "", f"cannot be read: {exc.strerror or exc}")]) from None


def _parse(text: str, name: str) -> tomlkit.TOMLDocument:
    try:
        return tomlkit.parse(text)
    except tomlkit.exceptions.ParseError as exc:
        config_io.parse(text, name)  # the reader's message, as `validate` prints it
        raise ConfigError([ConfigProblem(name, "", "", f"is not valid TOML: {exc}")]) from None


def _find_service(doc: tomlkit.TOMLDocument, name: str, file: str) -> tuple[int, Table | InlineTable]:
    services = doc.get("services")
    tables = list(services) if isinstance(services, AoT | Array) else []
    for index, table in enumerate(tables):
        if isinstance(table, Table | InlineTable) and table.get("name") == name:
            return index, table
    raise UnknownService(file, name, [str(t.get("name")) for t in tables if isinstance(t, Table | InlineTable)])


def _toml_item(value: Any, file: str, entry: str, key: str) -> Any:
    """A JSON value as the TOML the file would hold: tables inline, like `require = { zone = "a" }`."""
    if value is None:
        raise ConfigError([ConfigProblem(file, entry, key, "is null; leave the key out to use its default")])
    if isinstance(value, Mapping):
        table = tomlkit.inline_table()
        for k, v in value.items():
            table[str(k)] = _toml_item(v, file, entry, f"{key}.{k}")
        return table
    if isinstance(value, list):
        array = tomlkit.array()
        array.extend(_toml_item(v, file, entry, key) for v in value)
        return array
    return value


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[int]:
    """An exclusive flock on the directory: one writer at a time, across threads and processes."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # closing releases the lock


def _replace(target: Path, data: bytes, dir_fd: int, read_revision: str, name: str) -> None:
    st = target.stat()
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        try:
            os.fchmod(fd, st.st_mode & 0o7777)
            with contextlib.suppress(PermissionError):  # only root may give the file back to its owner
                os.fchown(fd, st.st_uid, st.st_gid)
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        # An editor that saved meanwhile (it does not take our lock) must not be overwritten.
        now = revision_of(_read_bytes(target, name))
        if now != read_revision:
            raise RevisionConflict(name, read_revision, now)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    os.fsync(dir_fd)  # the rename itself survives a power loss
