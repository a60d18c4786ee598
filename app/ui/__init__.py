"""The desktop app (PySide6): main window, connection wizard, connection dashboard.

The only package that imports Qt. It calls the same ``app.service.Service`` facade as the
CLI; anything that may touch an app (connecting, reading a schema, previewing, syncing) runs
on a worker thread through ``app.ui.tasks`` so that the window never freezes.

This module itself imports no Qt, so the CLI can ask whether a GUI could start at all
before paying for (or failing at) loading Qt's libraries.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping


def display_available(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> bool:
    """Whether a window can be shown: on Linux and the BSDs an X11 or Wayland display must
    be set, unless Qt is told to use another platform plugin (``QT_QPA_PLATFORM``, e.g.
    ``offscreen`` in tests). macOS and Windows always have one."""
    env = os.environ if environ is None else environ
    plat = sys.platform if platform is None else platform
    if env.get("QT_QPA_PLATFORM"):
        return True
    if plat.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))
    return True
