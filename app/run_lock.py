"""One writer per connection, across processes.

The desktop app's sync worker, a ``pairsync sync`` from cron and a second terminal must never
write the same connection at the same time: two engines planning from the same index could
each create the same new contact in the other app. Every run that writes (sync, undo, "use
the other value") holds the connection's lock: an OS file lock in Pairsync's data folder,
which the OS frees when the process ends, so a crash or a kill never leaves it held. A run
that finds it held does not wait: it is skipped with a sentence saying why (the other run is
doing the work). Dry runs and previews only read, and take no lock.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from app.errors import PairsyncError


class ConnectionBusy(PairsyncError):
    """Another process is writing this connection right now."""

    code = "busy"


LOCK_MODE = 0o600
"""Lock files, like every file in Pairsync's folder, are its owner's only."""


def lock_path(folder: Path, connection_id: int) -> Path:
    return folder / f"connection-{connection_id}.lock"


@contextmanager
def connection_lock(folder: Path, connection_id: int, name: str) -> Iterator[None]:
    """Hold connection ``connection_id``'s writer lock, or raise ``ConnectionBusy`` at once."""
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    lock = FileLock(str(lock_path(folder, connection_id)), mode=LOCK_MODE)
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
