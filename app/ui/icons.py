"""The desktop app's icons: one SVG per app kind, plus Pairsync's own.

The SVG files live in the repository's top-level ``resources/icons/``, the one place they
exist. A wheel carries them too: ``pyproject.toml`` maps that folder into the package as
``app/ui/resources/`` (package-data), so an installed app finds them beside this module and a
source checkout (or an editable install) finds them in the repository. See
``resources/README.md``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from PySide6.QtGui import QIcon

_HERE = Path(__file__).resolve().parent
CANDIDATES = (_HERE / "resources" / "icons", _HERE.parents[1] / "resources" / "icons")


@cache
def icon_dir() -> Path:
    """The folder holding the SVG icons (installed wheel first, then source checkout)."""
    for folder in CANDIDATES:
        if (folder / "pairsync.svg").is_file():
            return folder
    raise FileNotFoundError(
        "Pairsync's icons are missing: expected resources/icons/ in the source tree or "
        "app/ui/resources/icons/ in an installed package."
    )


def icon_path(name: str) -> Path:
    """The SVG for ``name`` (an app kind or ``pairsync``), or the generic app icon."""
    path = icon_dir() / f"{name}.svg"
    return path if path.is_file() else icon_dir() / "app.svg"


@cache
def app_icon(kind: str) -> QIcon:
    """An app kind's icon; SVG, so it is sharp at any size and any display scaling."""
    return QIcon(str(icon_path(kind)))


def pairsync_icon() -> QIcon:
    return app_icon("pairsync")
