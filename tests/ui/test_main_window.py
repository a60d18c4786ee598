"""The main window: empty state, list with status chips, Sync now / Sync all / Pause all,
window state kept in an INI file, one instance per Pairsync home, keyboard and accessible
names, and the CLI's fallback when there is no display."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import QRect, QSettings, Qt
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QComboBox,
    QHeaderView,
    QLabel,
    QLineEdit,
    QSpinBox,
    QToolButton,
    QWidget,
)
from pytestqt.qtbot import QtBot

from app.cli import main as cli_main
from app.paths import app_paths
from app.service import Service
from app.ui import display_available
from app.ui.app_wiring import Wiring
from app.ui.main import SingleInstance, instance_key
from app.ui.main_window import MainWindow
from app.ui.tasks import TaskRunner
from tests.ui.contacts import read_csv

WAIT = 20_000


def test_empty_state_invites_a_new_connection(qtbot: QtBot, window: MainWindow) -> None:
    assert window.stack.currentWidget() is window.empty
    assert window.empty.button.text().replace("&", "") == "New connection…"
    assert not window.sync_all_action.isEnabled() and not window.pause_all_action.isEnabled()
    assert window.new_action.shortcut() == QKeySequence(QKeySequence.StandardKey.New)
    window.new_action.trigger()
    assert window.wizard is not None and window.wizard.isVisible()
    window.new_action.trigger()  # a second request shows the same wizard
    assert len(window.findChildren(type(window.wizard))) == 1


def idle(wiring: Wiring) -> bool:
    return wiring.scheduler.running() is None and not wiring.scheduler.queued()


def test_list_sync_now_and_status_chip(
    qtbot: QtBot, wiring: Wiring, connection: str, books: tuple[Path, Path], service: Service
) -> None:
    window = wiring.window
    window.refresh()
    assert window.stack.currentWidget() is window.splitter
    assert window.current_name() == "Main"
    row = window.model.rows[0]
    assert (row.kind_a, row.kind_b, row.direction) == ("vcard-folder", "csv", "two-way")
    assert window.header.chip.text() == "Not synced yet"
    text = window.model.index(0).data(Qt.ItemDataRole.AccessibleTextRole)
    assert text == "Main: Phone ⇄ Sheet, Not synced yet"

    seen: list[int] = []
    window.model.dataChanged.connect(lambda *_: seen.append(window.model.syncing.get("Main", -1)))
    qtbot.mouseClick(window.header.sync_button, Qt.MouseButton.LeftButton)
    window.sync_requested.emit(["Main"])  # a second request while queued: coalesced
    assert wiring.scheduler.queued() == ["Main"]  # queued until syncing starts
    wiring.start()
    qtbot.waitUntil(lambda: idle(wiring), timeout=WAIT)
    assert any(p >= 0 for p in seen)  # the chip showed "Syncing n%"
    runs = [r for r in service.health("Main").runs if not r.dry_run]
    assert len(runs) == 1
    assert window.model.rows[0].status.code == "ok"
    assert window.header.chip.text() == "Active"
    assert {"carol@x.com", "dan@x.com"} <= {r["E-mail Address"] for r in read_csv(books[1])}


def test_failed_contacts_show_in_the_chip(
    qtbot: QtBot, wiring: Wiring, connection: str, books: tuple[Path, Path]
) -> None:
    window = wiring.window
    folder, _sheet = books
    (folder / "broken.vcf").write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Broken\r\n")
    window.refresh()
    window.sync_all_action.trigger()
    with qtbot.waitSignal(wiring.scheduler.run_finished, timeout=WAIT):
        wiring.start()
    assert window.model.rows[0].status.code == "failed"
    assert window.header.chip.text() == "1 failed"


def test_pause_all_and_resume_all(
    qtbot: QtBot, wiring: Wiring, connection: str, service: Service
) -> None:
    window = wiring.window
    window.refresh()
    window.pause_all_action.trigger()
    qtbot.waitUntil(lambda: not wiring.scheduler.saving("Main"))  # saved off the GUI thread
    assert service.show_connection("Main").paused is True
    assert window.pause_all_action.text().replace("&", "") == "Resume all"
    assert not window.sync_all_action.isEnabled()  # nothing to sync: all paused
    window.sync_all_action.trigger()
    assert wiring.scheduler.queued() == []
    window.pause_all_action.trigger()
    qtbot.waitUntil(lambda: not wiring.scheduler.saving("Main"))
    assert service.show_connection("Main").paused is False
    assert wiring.scheduler.queued() == ["Main"]  # resuming syncs (once syncing started)


def test_window_restores_its_size_and_position(
    qtbot: QtBot, service: Service, runner: TaskRunner, ui_settings: QSettings
) -> None:
    first = MainWindow(service, runner, ui_settings)
    qtbot.addWidget(first)
    first.show()
    first.setGeometry(QRect(17, 29, 700, 540))
    first.close()
    assert Path(ui_settings.fileName()).read_text().count("geometry") == 1
    second = MainWindow(service, runner, ui_settings)
    qtbot.addWidget(second)
    second.show()
    assert (second.width(), second.height()) == (700, 540)
    assert (second.x(), second.y()) == (first.x(), first.y())


def test_a_second_instance_raises_the_first(qtbot: QtBot, pairsync_home: Path) -> None:
    key = instance_key(app_paths())
    first = SingleInstance(key)
    assert first.claim()
    try:
        with qtbot.waitSignal(first.activated, timeout=WAIT):
            assert SingleInstance(key).claim() is False
        other_home = instance_key(app_paths(pairsync_home / "elsewhere"))
        assert other_home != key  # another PAIRSYNC_HOME is another instance
    finally:
        first.release()


def test_main_opens_the_window_and_keeps_its_state_in_an_ini_file(pairsync_home: Path) -> None:
    """The real start-up, in its own process (a QApplication that has quit cannot host
    further tests): the window shows, then the app quits and keeps the window's state."""
    code = (
        "from PySide6.QtCore import QTimer\n"
        "from app.ui.main import create_app, main\n"
        "app = create_app([])\n"
        "QTimer.singleShot(300, app.quit)\n"
        "raise SystemExit(main([]))\n"
    )
    env = os.environ | {"PAIRSYNC_HOME": str(pairsync_home), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    ini = pairsync_home / "pairsync-ui.ini"
    assert ini.is_file() and "geometry" in ini.read_text()


def test_no_display_falls_back_to_help(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for var in ("QT_QPA_PLATFORM", "DISPLAY", "WAYLAND_DISPLAY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr("sys.platform", "linux")
    assert display_available() is False
    assert display_available({"WAYLAND_DISPLAY": "wayland-0"}, "linux") is True
    assert display_available({}, "darwin") is True
    assert cli_main([]) == 0
    out, err = capsys.readouterr()
    assert "usage: pairsync" in out
    assert "no display" in err.lower()


def interactive(root: QWidget) -> list[QWidget]:
    kinds = (QAbstractButton, QLineEdit, QComboBox, QSpinBox, QAbstractItemView)
    return [
        w
        for w in root.findChildren(QWidget)
        if isinstance(w, kinds)
        and w.isVisibleTo(root)
        and not w.objectName().startswith("qt_")
        and not isinstance(w.parent(), QComboBox | QSpinBox)  # their own line edits
        and not isinstance(w, QHeaderView)  # part of its table
    ]


def test_every_control_is_named_and_reachable_by_keyboard(
    qtbot: QtBot, window: MainWindow, connection: str, runner: TaskRunner
) -> None:
    window.refresh()
    qtbot.waitUntil(lambda: runner.active == 0, timeout=WAIT)
    roots: list[QWidget] = [window]
    for page in (window.dashboard.rules_editor, window.dashboard.mappings_editor):
        window.dashboard.setCurrentWidget(page)
        qtbot.waitUntil(lambda: runner.active == 0, timeout=WAIT)
        roots.append(page)
    window.new_action.trigger()
    assert window.wizard is not None
    roots.append(window.wizard)
    for root in roots:
        for w in interactive(root):
            name = w.accessibleName()
            if not name and isinstance(w, QAbstractButton):
                name = w.text().replace("&", "")
            assert name.strip(), f"{type(w).__name__} in {type(root).__name__} has no name"
            if isinstance(w, QToolButton):
                continue  # toolbar buttons: their actions are in the menus (Alt+F) too
            assert w.focusPolicy() & Qt.FocusPolicy.TabFocus, f"{name!r} is not reachable by Tab"


def mnemonics(root: QWidget) -> list[str]:
    """The Alt+letter keys of the controls visible in ``root`` (buttons, labels' buddies,
    the menu bar)."""
    texts = [
        w.text()
        for w in root.findChildren(QWidget)
        if w.isVisibleTo(root)
        and (isinstance(w, QAbstractButton) or (isinstance(w, QLabel) and w.buddy() is not None))
    ]
    if isinstance(root, MainWindow):
        texts += [a.text() for a in root.menuBar().actions()]
    keys = []
    for text in texts:
        at = text.replace("&&", "").find("&")
        if at >= 0:
            keys.append(text.replace("&&", "")[at + 1].lower())
    return keys


def test_mnemonics_are_unique_on_each_screen(
    qtbot: QtBot, window: MainWindow, connection: str, runner: TaskRunner
) -> None:
    window.refresh()
    screens: list[tuple[str, QWidget]] = []
    for page in (
        window.dashboard.settings_page,
        window.dashboard.rules_editor,
        window.dashboard.mappings_editor,
        window.dashboard.preview_view,
    ):
        window.dashboard.setCurrentWidget(page)
        qtbot.waitUntil(lambda: runner.active == 0, timeout=WAIT)
        keys = mnemonics(window)
        assert len(keys) == len(set(keys)), f"{type(page).__name__}: {sorted(keys)}"
        screens.append((type(page).__name__, page))
    window.new_action.trigger()
    wizard = window.wizard
    assert wizard is not None
    keys = mnemonics(wizard)
    assert len(keys) == len(set(keys)), sorted(keys)


def test_the_windows_settings_file_is_private(tmp_path: Path) -> None:
    from app.ui.main import ui_settings as window_settings

    paths = app_paths(tmp_path / "home")
    settings = window_settings(paths)
    settings.setValue("geometry", b"x")
    settings.sync()
    path = Path(settings.fileName())
    assert path.read_text().count("geometry") == 1  # Qt's save kept our file
    assert path.stat().st_mode & 0o777 == 0o600
