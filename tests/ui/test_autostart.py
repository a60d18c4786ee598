"""Start at login: the XDG autostart entry (Linux and the BSDs)."""

from __future__ import annotations

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
    assert not autostart.supported("win32") and not autostart.supported("darwin")
