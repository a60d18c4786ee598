"""One writer per connection, across processes.

The desktop app's sync worker, a ``pairsync sync`` from cron and a second terminal must never
write the same connection at the same time: two engines planning from the same index could
each create the same new contact in the other app. Every run that writes (sync, undo, "use
the other value") holds the connection's lock: an OS file lock in Pairsync's data folder,
which the OS frees when the process ends, so a crash or a kill never leaves it held. A run
that finds it held does not wait: it is skipped with a sentence saying why (the other run is
doing the work). Dry runs and previews only read, and take no lock.

Two *connections* can share an app's storage (the same folder, file or address book: cron
syncing one connection while the app syncs another over the same accounts). Each writing run
therefore also holds a lock per storage it uses (:func:`writer_lock`); a run that finds one
held is skipped in the same words, and the desktop app's scheduler tries again shortly.

The lock is the standard library's, not a package's: ``flock`` on macOS and Linux, a
one-byte ``LockFile`` range (``msvcrt.locking``) on Windows. Both belong to the open file,
so the OS drops them when the holder exits or is killed, and a second open of the same file
in the same process is refused like any other. These are the calls filelock made, so a run of
an older Pairsync (which used it) and a run of this one still exclude each other. Importing
filelock cost 13-50 ms on every cron run, for two system calls.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from app.errors import PairsyncError


class ConnectionBusy(PairsyncError):
    """Another process is writing this connection right now."""

    code = "busy"


LOCK_MODE = 0o600
"""Lock files, like every file in Pairsync's folder, are its owner's only."""


if sys.platform == "win32":
    import msvcrt

    _BUSY = frozenset({errno.EACCES, errno.EDEADLK})
    """What ``_locking`` answers when another handle holds the byte."""

    def _try_lock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)  # byte 0: the file is never written

    def _unlock(fd: int) -> None:
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    _BUSY = frozenset({errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES})
    """``flock`` says EWOULDBLOCK; some network file systems say EACCES."""

    def _try_lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


def _lock(fd: int) -> bool:
    """Take the lock on ``fd`` if no one holds it; never waits."""
    try:
        _try_lock(fd)
    except OSError as error:
        if error.errno in _BUSY:
            return False
        raise
    return True


@contextmanager
def held(path: Path) -> Iterator[bool]:
    """Hold ``path``'s lock while the block runs, if no one else holds it: yields whether
    it is held. Never waits. The descriptor is not inherited by child processes (Python's
    default), so a helper process started during a run cannot keep the lock after it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), LOCK_MODE)
    try:
        if not _lock(fd):
            yield False
            return
        try:
            yield True
        finally:
            _unlock(fd)
    finally:
        os.close(fd)


def lock_path(folder: Path, connection_id: int) -> Path:
    return folder / f"connection-{connection_id}.lock"


@contextmanager
def connection_lock(folder: Path, connection_id: int, name: str) -> Iterator[None]:
    """Hold connection ``connection_id``'s writer lock, or raise ``ConnectionBusy`` at once."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with held(lock_path(folder, connection_id)) as ours:
        if not ours:
            raise ConnectionBusy(
                f"Another Pairsync run (the desktop app, or pairsync sync in another window or "
                f"from cron) is syncing {name!r} right now; this one was skipped. Nothing was "
                f"read or written."
            )
        yield


class StorageBusy(ConnectionBusy):
    """Another process is writing an app (folder, file, address book) this run would write."""


def storage_lock_path(folder: Path, key: str) -> Path:
    digest = hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()[:24]
    return folder / f"storage-{digest}.lock"


@contextmanager
def writer_lock(
    folder: Path, connection_id: int, name: str, storages: Sequence[tuple[str, str]]
) -> Iterator[None]:
    """The connection's lock and one lock per storage (``(key, words)`` from
    ``registry.storage_of``), all or none: raises ``ConnectionBusy``/``StorageBusy`` at once
    when any is held elsewhere. Taken in key order, never waited for, so two runs cannot
    deadlock."""
    with ExitStack() as stack:
        stack.enter_context(connection_lock(folder, connection_id, name))
        for key, words in sorted(dict(storages).items()):
            if not stack.enter_context(held(storage_lock_path(folder, key))):
                raise StorageBusy(
                    f"Another Pairsync run (another connection using {words}, the desktop "
                    f"app, or pairsync sync from cron) is writing {words} right now; {name!r} "
                    f"was skipped and syncs at its next run. Nothing was read or written."
                )
        yield
