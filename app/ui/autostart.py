"""Start Pairsync at login (optional, off by default). ``--background`` starts Pairsync in the
tray without opening its window.

- Linux and the BSDs: an XDG autostart entry, ``$XDG_CONFIG_HOME/autostart/pairsync.desktop``
  (``~/.config/autostart`` when unset), which every freedesktop session (GNOME, KDE, Xfce…)
  starts at login. Its ``TryExec`` makes a session skip it once the app is uninstalled.
- Windows: the string value ``Pairsync`` under
  ``HKEY_CURRENT_USER\\Software\\Microsoft\\Windows\\CurrentVersion\\Run`` (per user, no
  elevation): the same value the installer's "Start Pairsync when I sign in" task writes and
  its uninstaller removes. Reached through ``RunKey`` (``winreg`` on Windows; tests give a fake).
- macOS: a LaunchAgent, ``~/Library/LaunchAgents/org.pairsync.Pairsync.plist``, that launchd
  runs at login (``RunAtLoad``) in the user's GUI session, with ``--background``.

The command is the installed app: a bundle's own executable (``/usr/bin/pairsync`` when that
is the link to it), else the ``pairsync`` script on PATH, else this Python with ``-m app``.
No Qt needed here; it lives in ``app.ui`` because only the desktop app uses it.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

ENTRY_NAME = "pairsync.desktop"
BACKGROUND_FLAG = "--background"
RUN_KEY = r"Software\Microsoft\Windows\CurrentVersion\Run"
RUN_VALUE = "Pairsync"
AGENT_LABEL = "org.pairsync.Pairsync"


def _platform(platform: str | None) -> str:
    return sys.platform if platform is None else platform


def _is_xdg(plat: str) -> bool:
    return plat.startswith(("linux", "freebsd", "openbsd", "netbsd"))


def supported(platform: str | None = None) -> bool:
    plat = _platform(platform)
    return _is_xdg(plat) or plat in ("win32", "darwin")


# --- the command ------------------------------------------------------------------------------


def launch_command(platform: str | None = None) -> list[str]:
    """How to start Pairsync in the background."""
    plat = _platform(platform)
    if getattr(sys, "frozen", False):  # an installer-built bundle (installer/pairsync.spec)
        exe = Path(sys.executable)
        if plat == "win32" and exe.stem.lower() == "pairsync-cli":
            exe = exe.with_name("Pairsync.exe")  # the windowed one: no console at sign-in
        script = shutil.which("pairsync") if _is_xdg(plat) else None
        if script and Path(script).resolve() == exe.resolve():
            return [script, BACKGROUND_FLAG]  # /usr/bin/pairsync, stable across updates
        return [str(exe), BACKGROUND_FLAG]
    script = shutil.which("pairsync")
    if script:
        return [script, BACKGROUND_FLAG]
    python = Path(sys.executable)
    if plat == "win32" and python.with_name("pythonw.exe").is_file():
        python = python.with_name("pythonw.exe")  # no console window at sign-in
    return [str(python), "-m", "app", BACKGROUND_FLAG]


# --- Linux and the BSDs: XDG autostart ----------------------------------------------------------


def autostart_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "").strip()
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "autostart"


def entry_path(environ: Mapping[str, str] | None = None) -> Path:
    return autostart_dir(environ) / ENTRY_NAME


def desktop_entry(command: list[str]) -> str:
    """The .desktop file's text (Desktop Entry Specification 1.5)."""
    exec_line = " ".join(_quote_exec(part) for part in command)
    try_exec = f"TryExec={command[0]}\n" if command and os.path.isabs(command[0]) else ""
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        "Version=1.5\n"
        "Name=Pairsync\n"
        "Comment=Keeps the contacts of two apps in sync\n"
        f"Exec={exec_line}\n"
        f"{try_exec}"
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


def command_of(entry: str) -> list[str]:
    """The Exec line of an entry, split as a launcher would (tests, diagnostics)."""
    for line in entry.splitlines():
        if line.startswith("Exec="):
            return shlex.split(line.removeprefix("Exec="))
    return []


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


# --- Windows: the per-user Run key ----------------------------------------------------------------


class RunKey(Protocol):
    """The values of ``HKCU\\Software\\Microsoft\\Windows\\CurrentVersion\\Run``. Errors are
    ``OSError`` (what ``winreg`` raises)."""

    def get(self, name: str) -> str | None: ...

    def set(self, name: str, value: str) -> None: ...

    def delete(self, name: str) -> None:
        """Remove the value; no error when it is not there."""
        ...


class WindowsRunKey:
    """``RunKey`` through ``winreg`` (Windows only)."""

    def get(self, name: str) -> str | None:
        if sys.platform != "win32":
            raise NotImplementedError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY) as key:
                value, _kind = winreg.QueryValueEx(key, name)
        except FileNotFoundError:
            return None
        return str(value)

    def set(self, name: str, value: str) -> None:
        if sys.platform != "win32":
            raise NotImplementedError("the Windows registry exists only on Windows")
        import winreg

        with winreg.CreateKeyEx(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
            winreg.SetValueEx(key, name, 0, winreg.REG_SZ, value)

    def delete(self, name: str) -> None:
        if sys.platform != "win32":
            raise NotImplementedError("the Windows registry exists only on Windows")
        import winreg

        try:
            with winreg.OpenKey(winreg.HKEY_CURRENT_USER, RUN_KEY, 0, winreg.KEY_SET_VALUE) as key:
                winreg.DeleteValue(key, name)
        except FileNotFoundError:
            pass


def run_value(command: list[str]) -> str:
    """The Run value's text: a Windows command line (``"C:\\…\\Pairsync.exe" --background``)."""
    return subprocess.list2cmdline(command)


# --- macOS: a LaunchAgent -------------------------------------------------------------------------


def agent_path(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    home = env.get("HOME", "").strip()
    root = Path(home) if home and Path(home).is_absolute() else Path.home()
    return root / "Library" / "LaunchAgents" / f"{AGENT_LABEL}.plist"


def launch_agent(command: list[str]) -> bytes:
    """The LaunchAgent's property list: run once at login, in the user's GUI session."""
    return plistlib.dumps(
        {
            "Label": AGENT_LABEL,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "LimitLoadToSessionType": "Aqua",
            "ProcessType": "Interactive",
        }
    )


# --- the switch -----------------------------------------------------------------------------------


def is_enabled(
    environ: Mapping[str, str] | None = None,
    *,
    platform: str | None = None,
    run_key: RunKey | None = None,
) -> bool:
    plat = _platform(platform)
    if plat == "win32":
        return (run_key or WindowsRunKey()).get(RUN_VALUE) is not None
    if plat == "darwin":
        return agent_path(environ).is_file()
    return entry_path(environ).is_file()


def set_enabled(
    enabled: bool,
    environ: Mapping[str, str] | None = None,
    command: list[str] | None = None,
    *,
    platform: str | None = None,
    run_key: RunKey | None = None,
) -> Path | str:
    """Write or remove the login entry; returns where it is (a file, or on Windows the
    registry value's full name). Raises ``OSError`` when it cannot be written (the caller says
    so), ``NotImplementedError`` on a system without a known mechanism."""
    plat = _platform(platform)
    if not supported(plat):
        raise NotImplementedError("Start at login is not available on this system.")
    cmd = command or launch_command(plat)
    if plat == "win32":
        key = run_key or WindowsRunKey()
        if enabled:
            key.set(RUN_VALUE, run_value(cmd))
        else:
            key.delete(RUN_VALUE)
        return f"HKEY_CURRENT_USER\\{RUN_KEY}\\{RUN_VALUE}"
    path = agent_path(environ) if plat == "darwin" else entry_path(environ)
    if not enabled:
        path.unlink(missing_ok=True)
        return path
    data = launch_agent(cmd) if plat == "darwin" else desktop_entry(cmd).encode("utf-8")
    _write_atomically(path, data)
    return path
