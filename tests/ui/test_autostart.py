"""Start at login: the XDG autostart entry (Linux and the BSDs), the Run value (Windows,
through a fake registry) and the LaunchAgent (macOS, by its file's content)."""

from __future__ import annotations

import plistlib
import sys
from pathlib import Path

import pytest

from app.ui import autostart


@pytest.mark.skipif(not autostart.supported(), reason="XDG autostart is for Linux and the BSDs")
def test_enable_writes_an_xdg_entry_and_disable_removes_it(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert not autostart.is_enabled(env)
    path = autostart.set_enabled(True, env, command=[sys.executable, "-m", "app", "--background"])
    assert path == tmp_path / "config" / "autostart" / "pairsync.desktop"
    text = path.read_text(encoding="utf-8")
    assert text.startswith("[Desktop Entry]\n") and "Type=Application" in text
    assert autostart.command_of(text) == [sys.executable, "-m", "app", "--background"]
    assert autostart.is_enabled(env)
    autostart.set_enabled(False, env)
    assert not path.exists() and not autostart.is_enabled(env)
    autostart.set_enabled(False, env)  # already off: fine


def test_defaults_and_quoting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    assert autostart.autostart_dir({}) == tmp_path / ".config" / "autostart"
    assert autostart.autostart_dir({"XDG_CONFIG_HOME": "relative"}).is_relative_to(tmp_path)
    entry = autostart.desktop_entry(["/opt/Pair sync/bin/pairsync", "--background"])
    assert 'Exec="/opt/Pair sync/bin/pairsync" --background' in entry
    assert autostart.command_of(entry) == ["/opt/Pair sync/bin/pairsync", "--background"]
    assert autostart.launch_command()[-1] == "--background"
    # Windows and macOS have theirs now (the Run value, a LaunchAgent); others have none.
    assert autostart.supported("win32") and autostart.supported("darwin")
    assert not autostart.supported("sunos5")
    with pytest.raises(NotImplementedError):
        autostart.set_enabled(True, platform="sunos5")


def test_xdg_entry_is_skipped_once_its_program_is_gone(tmp_path: Path) -> None:
    entry = autostart.desktop_entry(["/usr/bin/pairsync", "--background"])
    assert "TryExec=/usr/bin/pairsync\n" in entry
    assert "TryExec" not in autostart.desktop_entry(["pairsync", "--background"])


class FakeRunKey:
    """The HKCU Run key as a dict; ``fail`` makes writes fail as a locked-down registry does."""

    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.fail = False

    def get(self, name: str) -> str | None:
        return self.values.get(name)

    def set(self, name: str, value: str) -> None:
        if self.fail:
            raise PermissionError(5, "Access is denied")
        self.values[name] = value

    def delete(self, name: str) -> None:
        if self.fail:
            raise PermissionError(5, "Access is denied")
        self.values.pop(name, None)


def test_windows_run_value(tmp_path: Path) -> None:
    key = FakeRunKey()
    exe = r"C:\Users\Ann Lee\AppData\Local\Programs\Pairsync\Pairsync.exe"
    assert not autostart.is_enabled(platform="win32", run_key=key)
    where = autostart.set_enabled(
        True, command=[exe, "--background"], platform="win32", run_key=key
    )
    assert where == r"HKEY_CURRENT_USER\Software\Microsoft\Windows\CurrentVersion\Run\Pairsync"
    assert key.values == {"Pairsync": f'"{exe}" --background'}
    assert autostart.is_enabled(platform="win32", run_key=key)
    autostart.set_enabled(False, platform="win32", run_key=key)
    assert key.values == {} and not autostart.is_enabled(platform="win32", run_key=key)
    autostart.set_enabled(False, platform="win32", run_key=key)  # already off: fine
    # The value the installer's task writes counts as on, and the switch turns it off.
    key.values["Pairsync"] = '"C:\\Program Files\\Pairsync\\Pairsync.exe" --background'
    assert autostart.is_enabled(platform="win32", run_key=key)
    autostart.set_enabled(False, platform="win32", run_key=key)
    assert "Pairsync" not in key.values
    # A registry that refuses: OSError, which the settings dialog turns into a sentence.
    key.fail = True
    with pytest.raises(OSError):
        autostart.set_enabled(True, command=[exe, "--background"], platform="win32", run_key=key)
    assert not autostart.is_enabled(platform="win32", run_key=key)


def test_windows_registry_layer_is_windows_only() -> None:
    if sys.platform == "win32":
        pytest.skip("on Windows the real registry is used")
    with pytest.raises(NotImplementedError):
        autostart.WindowsRunKey().get("Pairsync")


def test_macos_launch_agent(tmp_path: Path) -> None:
    env = {"HOME": str(tmp_path)}
    app = "/Applications/Pairsync.app/Contents/MacOS/Pairsync"
    assert not autostart.is_enabled(env, platform="darwin")
    path = autostart.set_enabled(True, env, command=[app, "--background"], platform="darwin")
    assert path == tmp_path / "Library/LaunchAgents/org.pairsync.Pairsync.plist"
    agent = plistlib.loads(Path(path).read_bytes())
    assert agent == {
        "Label": "org.pairsync.Pairsync",
        "ProgramArguments": [app, "--background"],
        "RunAtLoad": True,
        "LimitLoadToSessionType": "Aqua",
        "ProcessType": "Interactive",
    }
    assert "KeepAlive" not in agent  # quitting Pairsync must not restart it
    assert autostart.is_enabled(env, platform="darwin")
    autostart.set_enabled(False, env, platform="darwin")
    assert not Path(path).exists() and not autostart.is_enabled(env, platform="darwin")


def test_a_bundle_starts_itself(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An installer-built app starts its own executable at login, by the /usr/bin link when
    that is the link to it, never ``python -m app``."""
    exe = tmp_path / "opt" / "pairsync" / "pairsync"
    exe.parent.mkdir(parents=True)
    exe.write_text("")
    exe.chmod(0o755)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "executable", str(exe))
    monkeypatch.setenv("PATH", str(bin_dir))
    assert autostart.launch_command("linux") == [str(exe), "--background"]
    (bin_dir / "pairsync").symlink_to(exe)
    assert autostart.launch_command("linux") == [str(bin_dir / "pairsync"), "--background"]
    # Another pairsync on PATH (say, a developer's) is not this app: the bundle's own wins.
    (bin_dir / "pairsync").unlink()
    (bin_dir / "pairsync").write_text("#!/bin/sh\n")
    (bin_dir / "pairsync").chmod(0o755)
    assert autostart.launch_command("linux") == [str(exe), "--background"]
    # Windows: the windowed Pairsync.exe, also when the console one changed the setting.
    monkeypatch.setattr(sys, "executable", str(tmp_path / "Pairsync" / "pairsync-cli.exe"))
    assert autostart.launch_command("win32") == [
        str(tmp_path / "Pairsync" / "Pairsync.exe"),
        "--background",
    ]
    app = "/Applications/Pairsync.app/Contents/MacOS/Pairsync"
    monkeypatch.setattr(sys, "executable", app)
    assert autostart.launch_command("darwin") == [app, "--background"]
