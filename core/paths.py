"""Paths the user names (config files, output folders, write targets), checked before any work.

One rule for every command: a missing output folder is created; a folder path taken by a
file, a file path taken by a folder, or a place nobody may write to is a `SlamError` that
names the path, the option or key it came from, and how to fix it. Files are written whole
or not at all (`write_text_atomic`), so a failure never leaves half a file behind.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from pathlib import Path

from core.errors import SlamError, short

_REASONS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.ENAMETOOLONG: "the name is too long",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "it is a folder, not a file",
    errno.ENOENT: "it does not exist",
    errno.EEXIST: "it already exists",
    errno.ELOOP: "too many symbolic links",
    errno.EADDRINUSE: "the address is already in use",
    errno.EADDRNOTAVAIL: "the address is not available",
    errno.ECONNREFUSED: "the connection was refused",
}


def os_reason(exc: OSError) -> str:
    """A short, human reason for an OSError ('permission denied', 'it is a folder', ...)."""
    if exc.errno in _REASONS:
        return _REASONS[exc.errno]
    return (exc.strerror or type(exc).__name__).lower()


def describe_os_error(exc: OSError, what: str = "") -> str:
    """One line for an OSError: the path (or address), why, and what to do."""
    hint = {
        errno.EACCES: "choose a place you may write to, or fix its permissions",
        errno.EPERM: "choose a place you may write to, or fix its permissions",
        errno.EROFS: "choose a folder on a writable file system",
        errno.ENOSPC: "free some space or choose another disk",
        errno.ENOENT: "check the path; create the folder first if it is missing",
        errno.ENOTDIR: "check the path: one of its folders is a file",
        errno.EISDIR: "name a file, not a folder",
        errno.EADDRINUSE: "another program listens there: choose another --port, or stop it",
        errno.EADDRNOTAVAIL: "this machine has no such address: check --host",
        errno.ECONNREFUSED: "nothing answers there: check the address and that the server runs",
    }.get(exc.errno or -1, "check the path or address and try again")
    if exc.filename is None:  # a socket or another resource without a path
        label = f"{what}: " if what else ""
        return f"{label}{os_reason(exc)}; {hint}"
    label = f"{what} " if what else ""
    return f"{label}{short(str(exc.filename), 200)}: {os_reason(exc)}; {hint}"


def _first_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _probe_writable(folder: Path) -> None:
    """Create and delete a file in `folder` (os.access lies for root and read-only mounts)."""
    fd, name = tempfile.mkstemp(prefix=".slam-write-test-", dir=folder)
    os.close(fd)
    os.unlink(name)


def writable_dir(path: Path | str, what: str, *, create: bool = True) -> Path:
    """A folder we can write in; SlamError otherwise. A missing folder is created, or with
    `create=False` only checked to be creatable (its nearest existing parent is a writable
    folder), so a command can check its output folder before the work and create it after.

    `what` names where the path came from, e.g. "--out" or "database folder".
    """
    p = Path(path).expanduser()
    shown = short(str(p), 200)
    if p.exists() and not p.is_dir():
        raise SlamError(
            f"{what} {shown} is a file, not a folder; choose another folder or move the file"
        )
    probe = p
    if not p.exists():
        base = _first_existing(p.parent)
        if base.exists() and not base.is_dir():
            raise SlamError(
                f"{what} {shown}: {short(str(base), 200)} is a file, not a folder; "
                "choose another path or move the file"
            )
        if create:
            try:
                p.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise SlamError(
                    f"{what} {shown}: cannot create the folder: {os_reason(exc)}; "
                    "choose a folder you may write to"
                ) from None
        else:
            probe = base
    try:
        _probe_writable(probe)
    except OSError as exc:
        where = "in this folder" if probe == p else f"in {short(str(probe), 200)}"
        raise SlamError(
            f"{what} {shown}: cannot write {where}: {os_reason(exc)}; "
            "choose a folder you may write to, or fix its permissions"
        ) from None
    return p


def writable_file(path: Path | str, what: str, *, overwrite: bool = True) -> Path:
    """A file path we may (over)write: its folder exists (or is created) and is writable,
    and the path is not a folder."""
    p = Path(path).expanduser()
    shown = short(str(p), 200)
    if p.is_dir():
        raise SlamError(f"{what} {shown} is a folder; name a file, e.g. {p / 'slam.toml'}".strip())
    if p.exists() and not p.is_file():  # a device, pipe or socket: never replace it
        raise SlamError(f"{what} {shown} is not a regular file; name a file".strip())
    if p.exists() and not overwrite:
        raise SlamError(f"{what} {shown} already exists; use --force to overwrite it".strip())
    writable_dir(p.parent, f"{what} {shown}: folder".strip())
    return p


def write_text_atomic(path: Path, text: str) -> None:
    """Write the whole file or nothing: a temp file in the same folder, then a rename."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def special_file(path: Path) -> bool:
    """Whether `path` exists but is no regular file or folder: a pipe, socket or device (also
    through a symlink). Reading one would wait for a writer, or never end (/dev/zero)."""
    try:
        return path.exists() and not path.is_dir() and not path.is_file()
    except OSError:
        return False


NOT_A_FILE = "is a pipe, socket or device, not a regular file; name a file"


def read_text_file(path: Path | str, what: str) -> str:
    """A UTF-8 text file's contents; SlamError naming `what` when it is missing, a folder,
    unreadable or not text."""
    p = Path(path).expanduser()
    shown = short(str(p), 200)
    if not p.exists():
        raise SlamError(f"{what} {shown}: file not found; check the path")
    if p.is_dir():
        raise SlamError(f"{what} {shown} is a folder; name a file")
    if special_file(p):
        raise SlamError(f"{what} {shown} {NOT_A_FILE}")
    try:
        return p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise SlamError(f"{what} {shown} is not a UTF-8 text file") from None
    except OSError as exc:
        raise SlamError(f"{what} {shown}: cannot read it: {os_reason(exc)}") from None


def read_import_file(path: Path, contents: str, max_bytes: int) -> str:
    """An import file's text (UTF-8, a BOM dropped); a SlamError when it is missing, a folder,
    a pipe or device, over `max_bytes`, unreadable, not text or empty (`contents`: what the
    file holds, for the messages: "answers", "battles")."""
    shown = short(str(path), 200)
    try:
        size = path.stat().st_size
        if path.is_dir():
            raise SlamError(f"{shown} is a folder; name the file of {contents}")
        if special_file(path):
            raise SlamError(f"{shown} {NOT_A_FILE}")
        if size > max_bytes:
            raise SlamError(f"{shown} is {size / 1e6:.0f} MB; at most {max_bytes / 1e6:.0f} MB "
                            "per import (split the file, e.g. with `split -l`)")  # fmt: skip
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise SlamError(f"{shown}: file not found") from None
    except UnicodeDecodeError:
        raise SlamError(f"{shown}: not a UTF-8 text file") from None
    except OSError as exc:
        raise SlamError(f"{shown}: cannot read it ({exc.strerror})") from None
    if not text.strip():
        raise SlamError(f"{shown}: no {contents} in the file (it is empty)")
    return text
