"""Where Pairsync keeps its files.

By default the platform's places (platformdirs). ``PAIRSYNC_HOME`` or ``--home DIR`` puts
everything (database, config, logs) into one folder: for tests and portable use.
"""

from __future__ import annotations

import contextlib
import errno
import logging.handlers
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from app.errors import StorageError

APP_NAME = "pairsync"


@dataclass(frozen=True, slots=True)
class AppPaths:
    data: Path
    config: Path
    logs: Path

    @property
    def database(self) -> Path:
        return self.data / "pairsync.db"

    def ensure(self) -> AppPaths:
        """The folders, created private (0700) where missing; StorageError in one sentence
        when one cannot be a folder of Pairsync's (a file, /proc, a read-only disk)."""
        for folder in (self.data, self.config, self.logs):
            try:
                folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError as err:
                raise StorageError(unusable_folder(folder, err)) from None
            with contextlib.suppress(OSError):
                folder.chmod(0o700)
            if not os.access(folder, os.W_OK | os.X_OK):
                raise StorageError(
                    unusable_folder(folder, OSError(errno.EACCES, "it cannot be written to"))
                )
        return self


def unusable_folder(folder: Path, err: OSError) -> str:
    """One sentence saying why Pairsync cannot keep its files in ``folder``."""
    blocker = next((p for p in (folder, *folder.parents) if p.exists()), None)
    if blocker is not None and not blocker.is_dir():
        why = f"{blocker} is a file, not a folder"
    elif err.errno == errno.ENOSPC:
        why = "the disk is full"
    elif err.errno == errno.EROFS:
        why = "the disk is read-only"
    else:
        why = (err.strerror or str(err)).rstrip(".").lower()
    return (
        f"Pairsync cannot keep its files in {folder}: {why}. Choose another folder with "
        "--home (or PAIRSYNC_HOME)."
    )


class PrivateLogFile(logging.handlers.RotatingFileHandler):
    """A rotating log file only its owner can read (0600): logs name contacts and servers."""

    def _open(self):  # type: ignore[no-untyped-def]
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with contextlib.suppress(OSError):
            os.chmod(self.baseFilename, 0o600)  # one made before by an older version
        return open(fd, self.mode.replace("w", "a"), encoding=self.encoding, errors=self.errors)


def app_paths(home: str | os.PathLike[str] | None = None) -> AppPaths:
    chosen = home if home is not None else os.environ.get("PAIRSYNC_HOME") or None
    if chosen:
        root = Path(chosen).expanduser().resolve()
        return AppPaths(data=root, config=root, logs=root / "logs")
    return AppPaths(
        data=Path(platformdirs.user_data_dir(APP_NAME, appauthor=False)),
        config=Path(platformdirs.user_config_dir(APP_NAME, appauthor=False)),
        logs=Path(platformdirs.user_log_dir(APP_NAME, appauthor=False)),
    )
