"""The desktop app as a user gets it: the real main window wired by ``app.ui.app_wiring``
(the scheduler, progress, tray, notifications, the guard's dialog, Health, Activity and
signing in again), over a real vCard folder and a real CSV file.

The scheduler's clock is the test's (``Clock``): "six minutes later" is a step of the clock,
not a wait. The tray's availability is patched both ways."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from PySide6.QtWidgets import QAbstractButton, QDialogButtonBox
from pytestqt.qtbot import QtBot

from app.service import ConnectionSettings, Service
from app.ui import autostart
from app.ui import tray as tray_module
from app.ui.app_wiring import Wiring
from app.ui.guard_dialog import GuardDialog
from app.ui.main_window import MainWindow
from app.ui.progress import ProgressDelegate
from app.ui.reauth_dialog import ReauthDialog
from app.ui.settings_dialog import SettingsDialog
from tests.ui.conftest import MakeWiring, Quits
from tests.ui.desktop import card, read_csv, settle, write_csv
from tests.ui.test_main_window import interactive, mnemonics

WAIT = 20_000
NAME = "Main"


class Clock:
    """The scheduler's clock: real time plus however far the test moved it."""

    def __init__(self) -> None:
        self.offset = timedelta(0)

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.offset

    def advance(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class Books:
    """Phone (a vCard folder, side A) ⇄ Sheet (a CSV file, side B): the connection "Main"."""

    folder: Path
    sheet: Path

    def put_card(self, uid: str, fn: str, *emails: str, **kw: str) -> Path:
        path = self.folder / f"{uid}.vcf"
        path.write_text(card(uid, fn, *emails, **kw), encoding="utf-8")
        return path

    def rows(self) -> dict[str, dict[str, str]]:
        return {r["E-mail Address"].lower(): r for r in read_csv(self.sheet)}


@pytest.fixture
def pair(service: Service, tmp_path: Path) -> Books:
    folder = tmp_path / "cards"
    folder.mkdir()
    sheet = tmp_path / "contacts.csv"
    write_csv(sheet, [])
    service.add_account("vcard-folder", "Phone", {"path": str(folder)})
    service.add_account("csv", "Sheet", {"path": str(sheet)})
    service.create_connection(NAME, "Phone", "Sheet", ConnectionSettings())
    return Books(folder, sheet)


@pytest.fixture
def no_tray(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tray_module, "system_tray_available", lambda: False)


def chip(window: MainWindow) -> str:
    """The list row's chip, as drawn (and read by screen readers)."""
    text: str = window.model.index(window.model.row_of(NAME)).data(
        Qt.ItemDataRole.AccessibleTextRole
    )
    return text.rsplit(", ", 1)[-1]


def idle(wiring: Wiring) -> bool:
    return wiring.scheduler.running() is None and not wiring.scheduler.queued()


def run(qtbot: QtBot, wiring: Wiring, action: Any, timeout: int = WAIT) -> dict[str, Any]:
    """Do ``action`` (a callable, or a button to click) and return the report of the run
    it causes."""
    with qtbot.waitSignal(wiring.scheduler.run_finished, timeout=timeout) as blocker:
        if isinstance(action, QAbstractButton):
            qtbot.mouseClick(action, Qt.MouseButton.LeftButton)
        else:
            action()
    report: dict[str, Any] = blocker.args[1]
    return report


def last_run_status(service: Service) -> str:
    last = service._connections.last_run(service._connections.connection(NAME).id)
    assert last is not None
    return str(last.status)


# --- scheduling ------------------------------------------------------------------------------


def test_a_scheduled_run_fires_and_updates_the_list_chip(
    qtbot: QtBot, make_wiring: MakeWiring, pair: Books, service: Service, no_tray: None
) -> None:
    pair.put_card("ann", "Ann Lee", "ann@x.com")
    clock = Clock()
    wiring = make_wiring(tick_ms=100, clock=clock)
    window = wiring.window
    assert isinstance(window.list.itemDelegate(), ProgressDelegate)  # the thin bar
    assert chip(window) == "Not synced yet"
    # The dashboard's interval: 1 minute.
    page = window.dashboard.settings_page
    assert page.interval.isEnabled() and page.interval.value() == 5
    page.interval.setValue(1)
    assert page.message.text() == "Saving…"  # off the GUI thread
    qtbot.waitUntil(lambda: page.message.text().startswith("✓ Saved."))
    assert service.schedule()[0].interval_minutes == 1
    chips: list[str] = []
    window.model.dataChanged.connect(lambda *_: chips.append(chip(window)))
    # Starting syncs what is due: the connection never synced.
    first = run(qtbot, wiring, wiring.start)
    assert first["reason"] == "scheduled" and first["created"]["b"] == 1
    assert any(c.startswith("Syncing ") for c in chips)  # "Syncing n%" while it ran
    assert chip(window) == "Active" and window.header.chip.text() == "Active"
    # A minute has not passed: nothing runs, tick after tick.
    pair.put_card("bo", "Bo Bee", "bo@x.com")
    qtbot.wait(350)
    assert "bo@x.com" not in pair.rows() and idle(wiring)
    # A minute later (or after the laptop slept through it), the timer finds it due.
    chips.clear()
    clock.advance(seconds=61)
    with qtbot.waitSignal(wiring.scheduler.run_finished, timeout=WAIT) as blocker:
        pass  # no click: the schedule alone
    assert blocker.args[1]["reason"] == "scheduled" and blocker.args[1]["created"]["b"] == 1
    assert set(pair.rows()) == {"ann@x.com", "bo@x.com"}
    assert any(c.startswith("Syncing ") for c in chips) and chip(window) == "Active"
    assert window.model.rows[0].last_run_at is not None


def test_sync_now_while_a_run_is_running_queues_exactly_one_follow_up(
    qtbot: QtBot, make_wiring: MakeWiring, pair: Books, no_tray: None
) -> None:
    for i in range(40):
        pair.put_card(f"p{i}", f"Person {i}", f"p{i}@x.com")
    wiring = make_wiring()
    window = wiring.window
    started: list[str] = []
    reports: list[dict[str, Any]] = []
    wiring.scheduler.run_finished.connect(lambda _name, report: reports.append(report))

    def click_again(name: str, kind: str) -> None:
        started.append(name)
        if len(started) > 1:
            return
        # While the first run runs: Sync now is still offered (the run may have read the
        # apps before the user's last edit), and every way of asking coalesces.
        assert window.header.sync_button.isEnabled()
        assert wiring.progress_bar.isVisible()  # progress with Cancel under the header
        for _ in range(3):
            qtbot.mouseClick(window.header.sync_button, Qt.MouseButton.LeftButton)
        window.sync_all_action.trigger()
        wiring.tray.sync_action.trigger()
        assert wiring.scheduler.queued() == [NAME]

    wiring.scheduler.run_started.connect(click_again)
    wiring.start()
    qtbot.waitUntil(lambda: len(reports) == 2 and idle(wiring), timeout=WAIT)
    assert started == [NAME, NAME]  # one follow-up, never two runs at once
    assert [r["reason"] for r in reports] == ["scheduled", "manual"]
    assert reports[1]["created"] == {"a": 0, "b": 0}  # nothing left to do
    assert len(pair.rows()) == 40
    assert wiring.progress_bar.isHidden() and chip(window) == "Active"


def test_cancel_under_the_header_stops_at_a_safe_point(
    qtbot: QtBot,
    make_wiring: MakeWiring,
    pair: Books,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
    no_tray: None,
) -> None:
    for i in range(300):
        pair.put_card(f"p{i:03}", f"Person {i}", f"p{i}@x.com")
    wiring = make_wiring()
    bar = wiring.progress_bar
    page = wiring.window.dashboard.settings_page
    asked: list[bool] = []
    monkeypatch.setattr(type(page), "confirm_delete", lambda self: asked.append(True) or False)

    def delete_then_cancel(name: str, kind: str) -> None:
        page.delete_button.click()  # refused while it syncs, before any question
        assert not asked and "is syncing right now" in page.message.text()
        bar.cancel_button.click()

    wiring.scheduler.run_started.connect(delete_then_cancel)
    report = run(qtbot, wiring, wiring.start, timeout=60_000)
    assert [c.name for c in service.list_connections()] == [NAME]
    assert report["status"] == "cancelled"
    written = len(pair.rows())
    assert written < 300 and report["created"]["b"] == written  # whole batches only
    assert "stopped at a safe point" in wiring.window.statusBar().currentMessage()


# --- Health, Activity, guard, sign-in ---------------------------------------------------------


def test_a_failed_contact_shows_in_health_and_goes_after_its_fix_and_retry(
    qtbot: QtBot, make_wiring: MakeWiring, pair: Books, no_tray: None
) -> None:
    pair.put_card("ann", "Ann Lee", "ann@x.com")
    broken = pair.folder / "bo.vcf"
    broken.write_text("BEGIN:VCARD\r\nVERSION:3.0\r\nFN:Bo Bee\r\n")  # cut off: no END
    wiring = make_wiring()
    window = wiring.window
    run(qtbot, wiring, wiring.start)
    assert chip(window) == "1 failed" and window.header.chip.text() == "1 failed"
    health = wiring.health
    window.dashboard.setCurrentWidget(health)  # the Health tab, for the selected connection
    tab = health.failed
    health.tabs.setCurrentWidget(tab)
    settle(wiring.reader)  # Health reads the database off the GUI thread
    assert health.tabs.tabText(health.tabs.indexOf(tab)) == "Failed (1)"
    assert health.chip.text() == "1 failed"
    model = tab.model
    [(_code, count)] = model.groups
    group = model.index(0, 0)
    assert count == 1 and model.data(group).startswith("Could not be read")
    tab.view.expand(group)
    qtbot.waitUntil(lambda: model.rowCount(group) == 1)
    assert model.index(0, 1, group).data() == "Phone"
    # The user fixes the card in the source app, selects it and clicks Retry.
    pair.put_card("bo", "Bo Bee", "bo@x.com")
    tab.view.selectionModel().select(
        model.index(0, 0, group),
        QItemSelectionModel.SelectionFlag.ClearAndSelect | QItemSelectionModel.SelectionFlag.Rows,
    )
    report = run(qtbot, wiring, tab.retry_button)
    assert report["status"] == "ok" and report["created"]["b"] == 1
    qtbot.waitUntil(lambda: health.tabs.tabText(health.tabs.indexOf(tab)) == "Failed (0)")
    settle(wiring.reader)  # the counts and the list are separate reads
    assert model.groups == [] and health.chip.text() == "Active"
    assert chip(window) == "Active" and "bo@x.com" in pair.rows()


def test_undo_from_the_activity_tab_restores_both_apps(
    qtbot: QtBot, make_wiring: MakeWiring, pair: Books, no_tray: None
) -> None:
    vcf = pair.put_card("ann", "Ann Lee", "ann@x.com", title="CTO")
    write_csv(
        pair.sheet,
        [{"First Name": "Ann", "Last Name": "Lee", "E-mail Address": "ann@x.com", "Company": "X"}],
    )
    wiring = make_wiring()
    window = wiring.window
    report = run(qtbot, wiring, wiring.start)
    assert report["updated"] == {"a": 1, "b": 1}  # each app got what the other had
    assert "ORG:X" in vcf.read_text() and pair.rows()["ann@x.com"]["Job Title"] == "CTO"
    activity = wiring.activity
    asked: list[str] = []
    activity.confirm = lambda title, text: asked.append(text) or True
    window.dashboard.setCurrentWidget(activity)
    settle(wiring.reader)
    assert activity.runs.rowCount() == 1 and activity.runs.index(0, 0).data() == "#1"
    assert activity.undo_run_button.isEnabled()
    undone = run(qtbot, wiring, activity.undo_run_button)
    assert undone["kind"] == "undo" and undone["status"] == "ok" and not undone["skipped"]
    assert "Pairsync Trash" in asked[0]  # asked first, and told nothing is deleted
    # Both apps hold what they held before the run.
    card_after = vcf.read_text()
    assert "ORG" not in card_after and "TITLE:CTO" in card_after
    assert pair.rows()["ann@x.com"]["Job Title"] == ""
    assert pair.rows()["ann@x.com"]["Company"] == "X"
    qtbot.waitUntil(lambda: activity.runs.rowCount() == 2)
    settle(wiring.reader)
    assert activity.runs.index(0, 1).data() == "Undo of #1"
    # The next sync does not copy anything back (SPEC S17).
    again = run(qtbot, wiring, window.header.sync_button)
    assert again["updated"] == {"a": 0, "b": 0} and vcf.read_text() == card_after


def test_the_guard_dialog_asks_and_continue_completes_the_run(
    qtbot: QtBot, make_wiring: MakeWiring, pair: Books, no_tray: None
) -> None:
    for i in range(10):
        pair.put_card(f"p{i}", f"Person {i}", f"p{i}@x.com")
    wiring = make_wiring()
    window = wiring.window
    run(qtbot, wiring, wiring.start)
    write_csv(pair.sheet, [])  # the sheet was emptied by mistake
    with qtbot.waitSignal(wiring.scheduler.guard_stopped, timeout=WAIT):
        qtbot.mouseClick(window.header.sync_button, Qt.MouseButton.LeftButton)
    dialog = wiring.guard.dialogs[NAME]
    assert isinstance(dialog, GuardDialog) and dialog.isVisible()
    assert dialog.parent() is window
    assert dialog.counts == {"listed": 0, "known": 10, "gone": 10}
    assert chip(window) == "Stopped: too many changes"
    # No tray here: the notification went to the window's status bar.
    assert "Stopped before writing: Main" in window.statusBar().currentMessage()
    report = run(qtbot, wiring, dialog.continue_button)
    assert report["status"] == "ok" and report["deleted_other_side"] == 10
    assert len(list(pair.folder.glob("*.vcf"))) == 10  # never deletes
    assert chip(window) == "Active"


def test_needs_sign_in_opens_the_sign_in_dialog_and_resumes(
    qtbot: QtBot, make_wiring: MakeWiring, pair: Books, service: Service, no_tray: None
) -> None:
    pair.put_card("ann", "Ann Lee", "ann@x.com")
    # A run that could not start because the app refused the sign-in, recorded as the
    # service records it (local apps never refuse one).
    conn = service._connections.connection(NAME)
    service._not_started(conn, "auth", "The app refused the sign-in.", False)
    wiring = make_wiring()
    window = wiring.window
    wiring.start()  # held: nothing runs until the user signs in again
    assert idle(wiring) and chip(window) == "Needs re-authorization"
    header = window.header
    assert header.sign_in_button.isVisible() and header.chip.actionable
    keys = mnemonics(window)
    assert len(keys) == len(set(keys)), sorted(keys)
    qtbot.mouseClick(header.chip, Qt.MouseButton.LeftButton)  # the chip itself
    qtbot.waitUntil(lambda: "Phone" in wiring.sign_in_dialogs)  # its state read off-thread
    dialog = wiring.sign_in_dialogs["Phone"]
    assert isinstance(dialog, ReauthDialog) and dialog.isVisible()
    qtbot.mouseClick(header.sign_in_button, Qt.MouseButton.LeftButton)  # the same one again
    qtbot.waitUntil(lambda: wiring.runner.active == 0)
    window.dashboard.setCurrentWidget(wiring.health)
    settle(wiring.reader)
    [health_button, _] = wiring.health.sign_in_buttons  # no secret: either account
    health_button.click()
    assert window.findChildren(ReauthDialog) == [dialog]
    ok = dialog.buttons.button(QDialogButtonBox.StandardButton.Ok)
    report = run(qtbot, wiring, ok)
    assert report["status"] == "ok" and "ann@x.com" in pair.rows()
    assert chip(window) == "Active" and not header.sign_in_button.isVisible()
    qtbot.waitUntil(lambda: wiring.health.sign_in_buttons == [])


# --- tray, closing, quitting --------------------------------------------------------------------


@pytest.mark.parametrize("available", [True, False], ids=["tray", "no-tray"])
def test_tray_menu_and_closing_the_window(
    qtbot: QtBot,
    make_wiring: MakeWiring,
    pair: Books,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
    available: bool,
) -> None:
    monkeypatch.setattr(tray_module, "system_tray_available", lambda: available)
    pair.put_card("ann", "Ann Lee", "ann@x.com")
    clock = Clock()
    wiring = make_wiring(tick_ms=100, clock=clock)
    window, tray = wiring.window, wiring.tray
    assert tray.available is available
    assert (wiring.close_to_tray is not None) is available
    assert (wiring.banner is not None) is not available
    if wiring.banner is not None:
        assert wiring.banner.isVisible() and "no system tray" in wiring.banner.text()
    run(qtbot, wiring, wiring.start)
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    assert texts == ["Open Pairsync", "Sync all now", "Pause all", "Quit"]
    # Open
    window.hide()
    tray.open_action.trigger()
    assert window.isVisible()
    # Sync all now
    pair.put_card("bo", "Bo Bee", "bo@x.com")
    assert run(qtbot, wiring, tray.sync_action.trigger)["created"]["b"] == 1
    # Pause all: the window, the dashboard and the list follow.
    tray.pause_action.trigger()
    qtbot.waitUntil(lambda: not wiring.scheduler.saving(NAME))  # saved off the GUI thread
    assert service.show_connection(NAME).paused is True
    assert tray.pause_action.text() == "Resume all" and tray.state == "paused"
    assert window.pause_all_action.text().replace("&", "") == "Resume all"
    page = window.dashboard.settings_page
    assert page.pause_button.text().replace("&", "") == "Resume syncing"
    assert chip(window) == "Paused" and not window.header.sync_button.isEnabled()
    # Resume all syncs at once.
    assert run(qtbot, wiring, tray.pause_action.trigger)["status"] == "ok"
    assert page.pause_button.text().replace("&", "") == "Pause"
    # Closing the window: with a tray it only hides, and the schedule goes on.
    window.close()
    assert not window.isVisible()
    if available:
        assert wiring.close_to_tray is not None and wiring.close_to_tray.told
        pair.put_card("cy", "Cy Dee", "cy@x.com")
        clock.advance(minutes=6)
        with qtbot.waitSignal(wiring.scheduler.run_finished, timeout=WAIT) as blocker:
            pass  # the window is hidden; nothing but the schedule starts this run
        assert blocker.args[1]["reason"] == "scheduled" and "cy@x.com" in pair.rows()
    # Quit
    quits = wiring.quit_app
    assert isinstance(quits, Quits) and quits.count == 0
    tray.quit_action.trigger()
    assert quits.count == 1 and not wiring.scheduler.started
    assert tray.icon is None or not tray.icon.isVisible()


def test_quitting_during_a_sync_stops_it_at_a_safe_point(
    qtbot: QtBot, make_wiring: MakeWiring, pair: Books, service: Service, no_tray: None
) -> None:
    for i in range(300):
        pair.put_card(f"p{i:03}", f"Person {i}", f"p{i}@x.com")
    wiring = make_wiring()
    window = wiring.window
    quit_started: list[bool] = []

    def quit_now(name: str, kind: str) -> None:
        quit_started.append(True)
        window.quit_action.trigger()  # the menu's Quit, while the run is running

    wiring.scheduler.run_started.connect(quit_now)
    with qtbot.waitSignal(wiring.scheduler.run_started, timeout=WAIT):
        wiring.start()
    assert quit_started == [True]
    quits = wiring.quit_app
    assert isinstance(quits, Quits) and quits.count == 1
    assert not wiring.scheduler.started and not window.isVisible()
    assert last_run_status(service) == "cancelled"
    assert len(pair.rows()) < 300  # stopped between two write batches
    # The next start finishes the job: nothing lost, nothing twice.
    again = Service()
    try:
        [report] = again.sync([NAME])
    finally:
        again.close()
    assert report.status == "ok" and len(pair.rows()) == 300


def test_background_start_stays_in_the_tray_and_syncs(
    pair: Books, service: Service, pairsync_home: Path
) -> None:
    """``pairsync --background`` in its own process (the app's own QApplication and event
    loop): with a tray, no window opens, and the scheduler syncs what is due."""
    pair.put_card("ann", "Ann Lee", "ann@x.com")
    service.close()  # the app opens its own
    code = (
        "from PySide6.QtCore import QTimer\n"
        "from PySide6.QtWidgets import QApplication\n"
        "from app.ui import tray\n"
        "tray.system_tray_available = lambda: True\n"
        "from app.ui.main import create_app, main\n"
        "from app.ui.main_window import MainWindow\n"
        "app = create_app([])\n"
        f"sheet = {str(pair.sheet)!r}\n"
        "seen = []\n"
        "def check():\n"
        "    wins = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]\n"
        "    seen.extend(w.isVisible() for w in wins)\n"
        "    if 'ann@x.com' in open(sheet).read():\n"
        "        print('windows visible:', any(seen), flush=True)\n"
        "        app.quit()\n"
        "timer = QTimer()\n"
        "timer.timeout.connect(check)\n"
        "timer.start(50)\n"
        "QTimer.singleShot(30_000, app.quit)\n"
        "raise SystemExit(main([], background=True))\n"
    )
    env = os.environ | {"PAIRSYNC_HOME": str(pairsync_home), "QT_QPA_PLATFORM": "offscreen"}
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert "windows visible: False" in done.stdout, done.stdout + done.stderr
    assert "ann@x.com" in pair.rows()


# --- settings, accessibility, signals ------------------------------------------------------------


def test_start_at_login_check_box(
    qtbot: QtBot, service: Service, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    monkeypatch.setattr(autostart, "supported", lambda platform=None: True)
    dialog = SettingsDialog(service)
    qtbot.addWidget(dialog)
    dialog.show()
    box = dialog.autostart
    assert box.isVisible() and not box.isChecked()
    assert box.accessibleName() == "Start Pairsync when I log in"
    box.click()
    entry = tmp_path / "xdg" / "autostart" / "pairsync.desktop"
    assert entry.is_file() and autostart.command_of(entry.read_text())[-1] == "--background"
    box.click()
    assert not entry.exists()
    # A config folder that cannot hold the entry: the box says why, shows the real state.
    (tmp_path / "not-a-folder").write_text("")
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "not-a-folder"))
    box.click()
    assert not box.isChecked() and dialog.autostart_error.isVisible()
    assert "Could not change start at login" in dialog.autostart_error.text()


def test_health_and_activity_controls_are_named_and_reachable(
    qtbot: QtBot, make_wiring: MakeWiring, pair: Books, no_tray: None
) -> None:
    pair.put_card("ann", "Ann Lee", "ann@x.com")
    wiring = make_wiring()
    window = wiring.window
    run(qtbot, wiring, wiring.start)
    titles = [window.dashboard.tabText(i) for i in range(window.dashboard.count())]
    assert titles[-2:] == ["Health", "Activity"]
    for page in (wiring.health, wiring.activity, window.dashboard.settings_page):
        window.dashboard.setCurrentWidget(page)
        for w in interactive(page):
            name = w.accessibleName()
            if not name and isinstance(w, QAbstractButton):
                name = w.text().replace("&", "")
            assert name.strip(), f"{type(w).__name__} in {type(page).__name__} has no name"
            assert w.focusPolicy() & Qt.FocusPolicy.TabFocus, f"{name!r} is not reachable"
        keys = mnemonics(window)
        assert len(keys) == len(set(keys)), f"{type(page).__name__}: {sorted(keys)}"


def test_every_emit_in_the_desktop_app_goes_through_the_safe_helper() -> None:
    """PySide6 6.12.0 loses a reference to ``True`` on every ``.emit()`` from Python, which
    aborts the interpreter after a few hundred; ``app.ui.signals.emit`` makes up for it."""
    root = Path(__file__).resolve().parents[2] / "app" / "ui"
    offenders = []
    for path in root.rglob("*.py"):
        if path.name == "signals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "emit"
            ):
                offenders.append(f"{path.relative_to(root)}:{node.lineno}")
    assert offenders == []


def test_rename_from_the_settings_tab_keeps_the_connection_and_its_history(
    qtbot: QtBot,
    make_wiring: MakeWiring,
    pair: Books,
    service: Service,
    monkeypatch: pytest.MonkeyPatch,
    no_tray: None,
) -> None:
    pair.put_card("ann", "Ann Lee", "ann@x.com")
    wiring = make_wiring()
    window = wiring.window
    run(qtbot, wiring, wiring.start)
    page = window.dashboard.settings_page
    answers = iter(["  Phone and sheet  ", NAME])
    monkeypatch.setattr(type(page), "ask_new_name", lambda self: next(answers))
    page.rename_button.click()
    assert not page.rename_button.isEnabled()  # renaming, off the GUI thread
    qtbot.waitUntil(lambda: page.rename_button.isEnabled())
    assert [r.name for r in window.model.rows] == ["Phone and sheet"]
    assert window.current_name() == "Phone and sheet" == window.dashboard.name
    assert "Renamed" in window.statusBar().currentMessage()
    assert len(service.runs_page("Phone and sheet")) == 1  # its history came along
    # Sync now under the new name: nothing to do, the bindings came along too.
    report = run(qtbot, wiring, lambda: wiring.scheduler.sync_now(["Phone and sheet"]))
    assert report["status"] == "ok" and report["created"] == {"a": 0, "b": 0}
    # A taken name is refused in words and nothing changes.
    service.add_account("csv", "Other sheet", {"path": str(pair.folder.parent / "o.csv")})
    service.create_connection(NAME, "Phone", "Other sheet", ConnectionSettings())
    window.refresh()
    window.select("Phone and sheet")
    page.rename_button.click()
    qtbot.waitUntil(lambda: page.rename_button.isEnabled())
    assert "already exists" in page.message.text()
    assert sorted(r.name for r in window.model.rows) == sorted([NAME, "Phone and sheet"])
