"""The parts of the Windows and macOS recipes that can be checked on Linux: the icon files
they are built with (render_icons.py writes the .ico and .icns containers itself), and that the
installers write the same start-at-login entry the app's switch toggles."""

from __future__ import annotations

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from app.ui import autostart

ROOT = Path(__file__).resolve().parents[2]
INSTALLER = ROOT / "installer"
PNG = b"\x89PNG\r\n\x1a\n"


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG)
    width, height = struct.unpack(">II", data[16:24])
    return width, height


@pytest.fixture(scope="module")
def icons(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Rendered as the build scripts do, in a process of its own (its QGuiApplication must
    not become the test process's Qt application: QWidget tests need a QApplication)."""
    out = tmp_path_factory.mktemp("icons")
    subprocess.run(
        [sys.executable, str(INSTALLER / "render_icons.py"), str(out)],
        env=os.environ | {"QT_QPA_PLATFORM": "offscreen"},
        check=True,
        timeout=120,
    )
    return out


def test_hicolor_pngs_have_their_sizes(icons: Path) -> None:
    for size in (16, 22, 24, 32, 48, 64, 128, 256, 512):
        png = (icons / f"hicolor/{size}x{size}/apps/pairsync.png").read_bytes()
        assert _png_size(png) == (size, size)
    svg = (icons / "hicolor/scalable/apps/pairsync.svg").read_bytes()
    assert svg == (ROOT / "resources/icons/pairsync.svg").read_bytes()


def test_windows_icon_holds_each_size(icons: Path) -> None:
    data = (icons / "pairsync.ico").read_bytes()
    reserved, kind, count = struct.unpack("<HHH", data[:6])
    assert (reserved, kind) == (0, 1)
    sizes = []
    for i in range(count):
        w, h, _colors, _res, planes, bits, length, offset = struct.unpack(
            "<BBBBHHII", data[6 + 16 * i : 22 + 16 * i]
        )
        image = data[offset : offset + length]
        size = w or 256
        assert (w, h, planes, bits) == (w, w, 1, 32)
        assert _png_size(image) == (size, size)
        sizes.append(size)
    assert sizes == [16, 24, 32, 48, 64, 128, 256]


def test_apple_icon_holds_each_size(icons: Path) -> None:
    data = (icons / "pairsync.icns").read_bytes()
    assert data[:4] == b"icns" and struct.unpack(">I", data[4:8])[0] == len(data)
    found: dict[bytes, tuple[int, int]] = {}
    at = 8
    while at < len(data):
        kind, length = data[at : at + 4], struct.unpack(">I", data[at + 4 : at + 8])[0]
        found[kind] = _png_size(data[at + 8 : at + length])
        at += length
    assert at == len(data)
    assert found[b"ic10"] == (1024, 1024) and found[b"ic07"] == (128, 128)
    assert found[b"icp4"] == (16, 16) and found[b"ic14"] == (512, 512)


def test_windows_installer_writes_the_run_value_the_app_toggles() -> None:
    iss = (INSTALLER / "windows" / "pairsync.iss").read_text(encoding="utf-8")
    assert "PrivilegesRequired=lowest" in iss  # per user, no administrator
    assert "DefaultDirName={autopf}\\Pairsync" in iss
    assert re.search(r"^OutputBaseFilename=pairsync-\{#AppVersion\}-windows-x64-setup$", iss, re.M)
    assert f'#define RunKey "{autostart.RUN_KEY}"' in iss
    [task] = [line for line in iss.splitlines() if line.startswith('Name: "autostart"')]
    assert "Start Pairsync when I sign in" in task and "Flags: unchecked" in task
    [entry] = [line for line in iss.splitlines() if line.startswith("Root: HKCU")]
    assert f'ValueName: "{autostart.RUN_VALUE}"' in entry and "Tasks: autostart" in entry
    assert 'Subkey: "{#RunKey}"' in entry and "uninsdeletevalue" in entry
    # Inno doubles quotes inside a quoted value: the data is "<app>\Pairsync.exe" --background,
    # what the app writes for the same program (autostart.run_value) in a folder with a space.
    data = re.search(r'ValueData: "((?:[^"]|"")*)"', entry)
    assert data is not None
    app = r"C:\Users\Ann Lee\AppData\Local\Programs\Pairsync"
    written = data.group(1).replace('""', '"').replace("{app}", app)
    assert written == autostart.run_value([app + r"\Pairsync.exe", "--background"])
    # The uninstaller removes the value even when the app (not the task) wrote it.
    assert "RegDeleteValue(HKEY_CURRENT_USER, '{#RunKey}', 'Pairsync')" in iss
    build = (INSTALLER / "windows" / "build.ps1").read_text(encoding="utf-8")
    assert "/DAppVersion=$Version" in build and "pairsync.iss" in build


def test_macos_bundle_and_login_item_share_the_bundle_id() -> None:
    spec = (INSTALLER / "pairsync.spec").read_text(encoding="utf-8")
    assert f'bundle_identifier="{autostart.AGENT_LABEL}"' in spec
    assert '"LSUIElement": False' in spec
    assert 'icon=str(ICONS / "pairsync.icns")' in spec
    build = (INSTALLER / "macos" / "build.sh").read_text(encoding="utf-8")
    assert "hdiutil create" in build and "pairsync-$VERSION-macos-$ARCH.dmg" in build
