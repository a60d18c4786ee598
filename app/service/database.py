"""Pairsync's database itself: its rolling backups and restoring one.

Usable while the database cannot be opened (no ``Service`` exists then): ``pairsync
restore`` and the desktop app's "Restore the newest backup" call these. See
``app.store.integrity``.
"""

from __future__ import annotations

from pathlib import Path

from app.paths import app_paths
from app.store.integrity import Backup, Restored, list_backups, restore


def database_backups(home: str | Path | None = None) -> list[Backup]:
    """The rolling backups of Pairsync's database, newest first."""
    return list_backups(app_paths(home).database)


def restore_database(
    home: str | Path | None = None, backup: str | None = None, *, fresh: bool = False
) -> Restored:
    """Put a backup (default: the newest) in place of the database, or start again empty
    (``fresh``); the replaced file is kept beside it (``pairsync.db.damaged-<time>``)."""
    paths = app_paths(home).ensure()
    return restore(paths.database, Path(backup) if backup else None, fresh=fresh)
