"""Replacing a file without ever leaving half of it: what the single-file apps (CSV file,
vCard file) and the vCard folder share. Qt-free, engine-free: plain file system work."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
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


FSYNC_THREADS = 8
"""How many files are flushed at once by ``fsync_files``: the file system's journal commits
concurrent flushes together, so a batch costs a few disk flushes rather than one per file."""


def fsync_files(paths: Sequence[str | Path]) -> None:
    """Flush the contents of every file in ``paths`` to disk (each one exactly as
    ``os.fsync`` would), several at a time. Raises the first ``OSError`` met, after every
    flush has finished."""
    if not paths:
        return

    def flush(path: str | Path) -> None:
        fd = os.open(path, os.O_RDWR | getattr(os, "O_BINARY", 0))
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    if len(paths) == 1:
        flush(paths[0])
        return
    with ThreadPoolExecutor(min(FSYNC_THREADS, len(paths))) as pool:
        for _ in pool.map(flush, paths):
            pass


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


STALE_TEMP_AGE_S = 600.0
"""A temporary file of ours this old is stale whoever made it (a live process never takes
that long between writing its temporary file and moving it in place)."""


def temp_prefix(path: Path) -> str:
    """How our temporary files for ``path`` start: ``.<name>.<pid>.`` (then ``mkstemp``'s
    eight random characters and ``.tmp``), so a later run can tell whose they are."""
    return f".{path.name}.{os.getpid()}."


def _process_alive(pid: int) -> bool:
    if os.name != "posix":
        return True  # no cheap check: only the age decides
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def remove_stale_temps(path: Path) -> list[str]:
    """Remove the temporary files a killed write of ``path`` left beside it; the names
    removed. Only names made by ``replace_file`` for this very file count
    (``.<name>.<pid>.<8 random>.tmp``, or ``.<name>.<8 random>.tmp`` from before the pid was
    in the name), and only when the process that made it is gone or the file is older than
    ``STALE_TEMP_AGE_S``: a write in progress in another process is never disturbed."""
    pattern = re.compile(re.escape(f".{path.name}.") + r"(?:(\d+)\.)?[a-z0-9_]{8}\.tmp\Z")
    removed: list[str] = []
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = pattern.match(entry.name)
        if m is None:
            continue
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        if not entry.is_file(follow_symlinks=False):
            continue
        old = now - st.st_mtime > STALE_TEMP_AGE_S
        pid = int(m.group(1)) if m.group(1) else None
        dead = pid is not None and pid != os.getpid() and not _process_alive(pid)
        if old or dead:
            with contextlib.suppress(OSError):
                os.unlink(entry.path)
                removed.append(entry.name)
    return removed


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
    fd, tmp_name = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=folder)
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
