"""Where Pairsync keeps its files.

By default the platform's places (platformdirs). ``PAIRSYNC_HOME`` or ``--home DIR`` puts
everything (database, config, logs) into one folder: for tests and portable use.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

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
        for folder in (self.data, self.config, self.logs):
            folder.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(OSError):
                folder.chmod(0o700)
        return self


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
