"""The desktop app with a damaged database: the CLI's sentence in a dialog, and a way back
(restore the newest backup) instead of an empty window (issue 12)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from app.cli import main as cli_main
from app.ui.main import open_service


def _click_when_shown(text: str, seen: list[str]) -> None:
    def attempt() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, attempt)
            return
        seen.append(box.text())
        for button in box.buttons():
            if button.text() == text:
                button.click()
                return

    QTimer.singleShot(20, attempt)


def _damaged_home(pairsync_home: Path, tmp_path: Path) -> Path:
    assert cli_main(["account", "add", "vcard-folder", "Phone", "--set", f"path={tmp_path}"]) == 0
    db = pairsync_home / "pairsync.db"
    for extra in ("-wal", "-shm"):
        Path(f"{db}{extra}").unlink(missing_ok=True)
    db.write_bytes(b"")
    return db


def test_damaged_database_offers_the_newest_backup(
    qtbot: QtBot, pairsync_home: Path, tmp_path: Path
) -> None:
    db = _damaged_home(pairsync_home, tmp_path)
    seen: list[str] = []
    _click_when_shown("Restore the newest backup", seen)
    service = open_service(None)
    assert service is not None
    try:
        assert [a.name for a in service.list_accounts()] == ["Phone"]
    finally:
        service.close()
    assert seen and str(db) in seen[0] and "0 bytes" in seen[0]


def test_quit_leaves_the_damaged_file_alone(
    qtbot: QtBot, pairsync_home: Path, tmp_path: Path
) -> None:
    db = _damaged_home(pairsync_home, tmp_path)
    seen: list[str] = []
    _click_when_shown("Quit", seen)
    assert open_service(None) is None
    assert seen and "pairsync restore" in seen[0]
    assert db.stat().st_size == 0
