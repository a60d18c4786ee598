"""File ▸ Export connection… and Import connection…: what ``pairsync connection export`` and
``import`` do, from the window (a real file; the file dialogs are replaced by the path)."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtWidgets import QMessageBox
from pytestqt.qtbot import QtBot

from app.cli import main as cli_main
from app.service import Service
from app.ui.main_window import MainWindow
from tests.ui.desktop import settle

WAIT = 20_000


def test_export_then_import_from_the_file_menu(
    qtbot: QtBot,
    window: MainWindow,
    connection: str,
    service: Service,
    tmp_path: Path,
    capsys,  # type: ignore[no-untyped-def]
) -> None:
    service.update_connection(connection, trash=True, guard_max_writes=7)
    window.refresh()
    settle(window.reader)
    assert window.export_action.isEnabled()
    saved = tmp_path / "out" / "main.json"
    saved.parent.mkdir()
    window.ask_export_path = lambda name: str(saved)  # type: ignore[method-assign]
    window.export_action.trigger()
    qtbot.waitUntil(saved.exists, timeout=WAIT)
    qtbot.waitUntil(lambda: "Exported" in window.statusBar().currentMessage(), timeout=WAIT)

    # The file is what the CLI prints, byte for byte.
    assert cli_main(["connection", "export", connection]) == 0
    assert saved.read_text(encoding="utf-8") == capsys.readouterr().out

    # Importing it next to the original keeps both: the copy is "Main 2", same settings.
    window.ask_import_path = lambda: str(saved)  # type: ignore[method-assign]
    window.import_action.trigger()
    qtbot.waitUntil(lambda: window.current_name() == "Main 2", timeout=WAIT)
    copy = service.show_connection("Main 2")
    assert copy.settings == service.show_connection(connection).settings
    assert copy.settings.trash and copy.settings.guard_max_writes == 7
    assert (copy.a.account, copy.b.account) == ("Phone", "Sheet")
    assert "Imported “Main 2”" in window.statusBar().currentMessage()
    mappings = [m.as_json() for m in service.mappings("Main 2")]
    assert mappings == [m.as_json() for m in service.mappings(connection)]


def test_a_file_that_is_not_an_export_is_refused_in_words(
    qtbot: QtBot, window: MainWindow, connection: str, service: Service, tmp_path: Path
) -> None:
    window.refresh()
    settle(window.reader)
    bad = tmp_path / "notes.json"
    bad.write_text("{not json", encoding="utf-8")
    window.ask_import_path = lambda: str(bad)  # type: ignore[method-assign]
    window.import_action.trigger()
    qtbot.waitUntil(lambda: window.findChild(QMessageBox) is not None, timeout=WAIT)
    box = window.findChild(QMessageBox)
    assert box is not None and box.text() == f"{bad} is not valid JSON (line 1)."
    box.close()
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"name": "x"}), encoding="utf-8")
    window.ask_import_path = lambda: str(other)  # type: ignore[method-assign]
    window.import_action.trigger()
    qtbot.waitUntil(
        lambda: any("not a Pairsync connection export" in b.text()
                    for b in window.findChildren(QMessageBox)),
        timeout=WAIT,
    )  # fmt: skip
    assert [c.name for c in service.list_connections()] == [connection]


def test_cancelled_dialogs_change_nothing(
    window: MainWindow, connection: str, service: Service
) -> None:
    window.refresh()
    settle(window.reader)
    window.ask_import_path = lambda: None  # type: ignore[method-assign]
    window.ask_export_path = lambda name: None  # type: ignore[method-assign]
    window.import_action.trigger()
    window.export_action.trigger()
    assert [c.name for c in service.list_connections()] == [connection]


def test_export_is_off_without_a_connection(window: MainWindow) -> None:
    window.refresh()
    settle(window.reader)
    assert not window.export_action.isEnabled()
    assert window.import_action.isEnabled()
