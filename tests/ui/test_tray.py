"""The tray icon and its menu, with the system tray patched present and absent; closing the
window; notifications; re-authorization."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PySide6.QtWidgets import QMainWindow

from app.service import ConnectionSettings, Service
from app.ui import tray as tray_module
from app.ui.notifications import Notifier
from app.ui.reader import Reader
from app.ui.tray import CloseToTray, Tray, no_tray_notice, summary_text
from tests.ui.desktop import Desk, desk, settle, write_csv

__all__ = ["desk"]


class Calls:
    def __init__(self) -> None:
        self.opened = 0
        self.quit = 0

    def open(self) -> None:
        self.opened += 1

    def stop(self) -> None:
        self.quit += 1


@pytest.fixture(params=[True, False], ids=["tray", "no-tray"])
def tray_available(request: Any, monkeypatch: pytest.MonkeyPatch) -> bool:
    monkeypatch.setattr(tray_module, "system_tray_available", lambda: bool(request.param))
    return bool(request.param)


def make_tray(desk: Desk, calls: Calls) -> Tray:
    return Tray(desk.service, desk.scheduler, calls.open, calls.stop)


def test_menu_actions_work_with_and_without_a_tray(
    desk: Desk, qtbot: Any, tray_available: bool
) -> None:
    desk.put_card("ann", "Ann Lee", "ann@x.com")
    calls = Calls()
    tray = make_tray(desk, calls)
    assert tray.available is tray_available
    assert (tray.icon is not None) is tray_available
    texts = [a.text() for a in tray.menu.actions() if not a.isSeparator()]
    assert texts == ["Open Pairsync", "Sync all now", "Pause all", "Quit"]
    desk.scheduler.start()
    desk.wait_idle(qtbot)
    # Sync all now
    desk.put_card("bo", "Bo Bee", "bo@x.com")
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000) as blocker:
        tray.sync_action.trigger()
    assert blocker.args[1]["created"]["b"] == 1 and "bo@x.com" in desk.rows()
    assert tray.state == "ok" and "in sync" in tray.tooltip
    # Pause all / Resume all
    tray.pause_action.trigger()
    desk.wait_saved(qtbot)  # saved off the GUI thread
    assert desk.service.show_connection(desk.name).paused
    assert tray.pause_action.text() == "Resume all" and tray.state == "paused"
    assert not tray.sync_action.isEnabled()
    with qtbot.waitSignal(desk.scheduler.run_finished, timeout=20_000):
        tray.pause_action.trigger()  # resuming syncs at once
    assert not desk.service.show_connection(desk.name).paused
    assert tray.pause_action.text() == "Pause all"
    # Open, Quit
    tray.open_action.trigger()
    tray.quit_action.trigger()
    assert (calls.opened, calls.quit) == (1, 1)
    if tray.icon is not None:
        assert tray.icon.toolTip() == tray.tooltip
        assert not tray.icon.icon().isNull()


def test_the_icon_shows_the_worst_state(desk: Desk, qtbot: Any, tmp_path: Path) -> None:
    calls = Calls()
    tray = make_tray(desk, calls)
    # A second connection whose account cannot sign in: the worst state wins.
    other = tmp_path / "other.csv"
    write_csv(other, [])
    desk.service.add_account("csv", "Other", {"path": str(other)})
    desk.service._connections.add_account(
        "Cloud", "carddav", {"url": "https://dav.example.com/", "username": "me"}, True
    )
    desk.service.create_connection("Cloudy", "Other", "Cloud", ConnectionSettings())
    desk.put_card("ann", "Ann Lee", "ann@x.com")
    states: list[str] = []
    desk.scheduler.run_started.connect(lambda name, kind: states.append(tray.state))
    desk.scheduler.start()
    desk.wait_idle(qtbot)
    assert "syncing" in states or "needs_sign_in" in states
    assert tray.state == "needs_sign_in"
    assert "need(s) sign-in" in tray.tooltip
    desk.scheduler.pause("Cloudy")
    desk.wait_saved(qtbot)
    assert tray.state == "paused"  # paused is worse than in sync
    desk.service.set_paused("Cloudy", False)
    desk.service.delete_connection("Cloudy")
    tray.refresh()
    assert tray.state == "ok"


def test_summary_text_lists_what_matters(desk: Desk) -> None:
    rows = desk.service.connection_overview()
    assert summary_text([], {}) == "Pairsync: no connections yet"
    assert summary_text(rows, {desk.name: 42}) == "Pairsync: syncing Main (42%)"


def test_closing_the_window_keeps_syncing_in_the_tray(
    desk: Desk, qtbot: Any, tray_available: bool
) -> None:
    tray = make_tray(desk, Calls())
    shown: list[tuple[str, str]] = []
    tray.message.connect(lambda title, text: shown.append((title, text)))
    window = QMainWindow()
    qtbot.addWidget(window)
    CloseToTray(tray, window)
    window.show()
    closed = window.close()
    if tray_available:
        assert not closed and window.isHidden()  # hidden, not closed: syncing goes on
        window.show()
        window.close()
    else:
        assert closed  # no tray: the window is the app
        notice = no_tray_notice()
        assert "syncs on schedule while this window is open" in notice.text()
        # Messages that have no tray to show them go to the window.
        tray.show_message("t", "x")
        assert shown[-1] == ("t", "x")


def test_notifications_sign_in_once_and_failures_rising(
    desk: Desk, qtbot: Any, tray_available: bool
) -> None:
    tray = make_tray(desk, Calls())
    sent: list[tuple[str, str]] = []
    tray.message.connect(lambda title, text: sent.append((title, text)))
    notifier = Notifier(desk.service, desk.scheduler, tray)
    (desk.folder / "ann.vcf").write_text(  # a card that cannot be read
        "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Lee\r\nnot a property\r\nEND:VCARD\r\n"
    )
    desk.sync(qtbot)
    kinds = [k for k, _t, _x in notifier.sent]
    assert kinds == ["failures"]  # 0 → 1 failed contact (an unreadable card)
    assert "1 contact of Main could not be synced" in notifier.sent[0][2]
    desk.sync(qtbot)
    assert len(notifier.sent) == 1  # not rising: no new message
    # An account that needs signing in: told once, however many runs.
    desk.service._connections.add_account(
        "Cloud", "carddav", {"url": "https://dav.example.com/", "username": "me"}, True
    )
    other = desk.folder.parent / "o.csv"
    write_csv(other, [])
    desk.service.add_account("csv", "O", {"path": str(other)})
    desk.service.create_connection("Cloudy", "O", "Cloud", ConnectionSettings())
    for _ in range(2):
        with qtbot.waitSignal(desk.scheduler.auth_needed, timeout=20_000):
            desk.scheduler.sync_now(["Cloudy"])
        desk.wait_idle(qtbot)
    assert [k for k, _t, _x in notifier.sent].count("auth") == 1
    state = desk.service.connection_state("Cloudy")
    assert state.status.code == "auth" and state.sign_in == ("Cloud",)
    assert desk.service.schedule()[0].hold == "auth"
    if not tray_available:
        assert len(sent) == len(notifier.sent)  # shown by the window instead


def test_failure_counts_are_read_off_the_gui_thread(desk: Desk, qtbot: Any) -> None:
    """As the window wires it: the notifier's counts come from the database reader's threads
    (at 100k failed contacts a count is tens of milliseconds), and it still tells of a rise
    once, and not of the same count again."""
    reader = Reader(Service)
    try:
        notifier = Notifier(desk.service, desk.scheduler, make_tray(desk, Calls()), reader=reader)
        settle(reader)
        (desk.folder / "ann.vcf").write_text(
            "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:ann\r\nFN:Ann Lee\r\nnot a property\r\nEND:VCARD\r\n"
        )
        desk.sync(qtbot)
        assert reader.busy or notifier.sent  # asked on a thread (or answered already)
        settle(reader)
        assert [k for k, _t, _x in notifier.sent] == ["failures"]
        desk.sync(qtbot)
        settle(reader)
        assert len(notifier.sent) == 1
    finally:
        reader.close()
