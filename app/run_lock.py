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
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from app.errors import PairsyncError


class ConnectionBusy(PairsyncError):
    """Another process is writing this connection right now."""

    code = "busy"


def lock_path(folder: Path, connection_id: int) -> Path:
    return folder / f"connection-{connection_id}.lock"


@contextmanager
def connection_lock(folder: Path, connection_id: int, name: str) -> Iterator[None]:
    """Hold connection ``connection_id``'s writer lock, or raise ``ConnectionBusy`` at once."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(folder, connection_id)))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise ConnectionBusy(
            f"Another Pairsync run (the desktop app, or pairsync sync in another window or "
            f"from cron) is syncing {name!r} right now; this one was skipped. Nothing was "
            f"read or written."
        ) from None
    try:
        yield
    finally:
        lock.release()


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
            lock = FileLock(str(storage_lock_path(folder, key)))
            try:
                lock.acquire(timeout=0)
            except Timeout:
                raise StorageBusy(
                    f"Another Pairsync run (another connection using {words}, the desktop "
                    f"app, or pairsync sync from cron) is writing {words} right now; {name!r} "
                    f"was skipped and syncs at its next run. Nothing was read or written."
                ) from None
            stack.callback(lock.release)
        yield
