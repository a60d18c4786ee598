"""Start Pairsync at login (optional, off by default).

Linux and the BSDs: an XDG autostart entry, ``$XDG_CONFIG_HOME/autostart/pairsync.desktop``
(``~/.config/autostart`` when unset), which every freedesktop session (GNOME, KDE, Xfce…)
starts at login. ``--background`` starts Pairsync in the tray without opening its window.

Windows and macOS are handled by their installers (see ``installer/README.md``: a value
under ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``, and a LaunchAgent or a
login item); ``supported()`` is False there and the UI hides the option.

No Qt needed here; it lives in ``app.ui`` because only the desktop app uses it.
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path

ENTRY_NAME = "pairsync.desktop"
BACKGROUND_FLAG = "--background"


def supported(platform: str | None = None) -> bool:
    plat = sys.platform if platform is None else platform
    return plat.startswith(("linux", "freebsd", "openbsd", "netbsd"))


def autostart_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "autostart"


def entry_path(environ: Mapping[str, str] | None = None) -> Path:
    return autostart_dir(environ) / ENTRY_NAME


def launch_command() -> list[str]:
    """How to start Pairsync in the background: the installed ``pairsync`` script when on
    PATH, else this Python running the package."""
    script = shutil.which("pairsync")
    if script:
        return [script, BACKGROUND_FLAG]
    return [sys.executable, "-m", "app", BACKGROUND_FLAG]


def desktop_entry(command: list[str]) -> str:
    """The .desktop file's text (Desktop Entry Specification 1.5)."""
    exec_line = " ".join(_quote_exec(part) for part in command)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.5\n"
        "Name=Pairsync\n"
        "Comment=Keeps the contacts of two apps in sync\n"
        f"Exec={exec_line}\n"
        "Icon=pairsync\n"
        "Terminal=false\n"
        "Categories=Office;ContactManagement;\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def _quote_exec(arg: str) -> str:
    """Quote one Exec argument: the spec's reserved characters inside double quotes."""
    if arg and all(c.isalnum() or c in "-_./:=+@" for c in arg):
        return arg
    escaped = "".join("\\" + c if c in '"`$\\' else c for c in arg)
    return f'"{escaped}"'


def is_enabled(environ: Mapping[str, str] | None = None) -> bool:
    return entry_path(environ).is_file()


def set_enabled(
    enabled: bool,
    environ: Mapping[str, str] | None = None,
    command: list[str] | None = None,
) -> Path:
    """Write or remove the autostart entry; returns its path. Raises ``OSError`` when the
    file cannot be written (the caller says so), ``NotImplementedError`` off Linux/BSD."""
    if not supported():
        raise NotImplementedError("Start at login is set up by the installer on this system.")
    path = entry_path(environ)
    if not enabled:
        path.unlink(missing_ok=True)
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(desktop_entry(command or launch_command()), encoding="utf-8")
    os.replace(tmp, path)
    return path


def command_of(entry: str) -> list[str]:
    """The Exec line of an entry, split as a launcher would (tests, diagnostics)."""
    for line in entry.splitlines():
        if line.startswith("Exec="):
            return shlex.split(line.removeprefix("Exec="))
    return []
