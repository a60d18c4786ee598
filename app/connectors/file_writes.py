"""Replacing a file without ever leaving half of it: what the single-file apps (CSV file,
vCard file) and the vCard folder share. Qt-free, engine-free: plain file system work."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO


def umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def new_file_mode() -> int:
    """The mode a new file gets under this process's umask."""
    return 0o666 & ~umask()


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX; elsewhere, and on failure, a no-op)."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def is_read_only(path: Path) -> bool:
    """Is ``path`` a file its owner marked read-only (no write bit, e.g. mode 444), or one
    this process may not write? Checked explicitly before replacing it: ``os.replace`` needs
    only a writable folder, and root may write anything, so neither would stop a write the
    user has forbidden. A missing file is not read-only (it is created)."""
    try:
        st = os.stat(path)
    except OSError:
        return False
    return not st.st_mode & 0o222 or not os.access(path, os.W_OK)


def read_only_message(path: Path) -> str:
    return (
        f"The file {path.name} is read-only, so the contact was not written to it. "
        "Make the file writable (its permissions) and the contact syncs at the next run."
    )


def replace_file(
    path: Path,
    write: Callable[[BinaryIO], None],
    *,
    before_replace: Callable[[], None] | None = None,
    catch_up: Callable[[str], None] | None = None,
) -> os.stat_result:
    """Write a new version of ``path`` atomically: ``write`` fills a temporary file in the
    same folder, which is fsynced, given the old file's mode (a new file: the umask's),
    brought up to date by ``catch_up`` (given the temporary file's name: it may append to
    it what another program appended to ``path`` meanwhile, or raise to give up), checked
    by ``before_replace`` (which may raise to give up), moved over ``path`` with
    ``os.replace`` and made durable with an fsync of the folder. Whatever is raised, the
    temporary file is removed and ``path`` is as it was; the exception goes to the caller.
    Returns the new file's status as it was moved in place (a ``stat`` of ``path`` after the
    move could already show another program's next write)."""
    folder = path.parent
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = new_file_mode()
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        if catch_up is not None:
            catch_up(tmp_name)
        if before_replace is not None:
            before_replace()
        done = os.stat(tmp_name)
        os.replace(tmp_name, path)
        tmp_name = ""
    finally:
        if tmp_name:
            with contextlib.suppress(OSError):
                os.unlink(tmp_name)
    fsync_dir(folder)
    return done
