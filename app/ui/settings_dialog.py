"""Settings: where Pairsync keeps its files and its secrets.

There is little to set yet (per-connection settings live in each connection's dashboard),
but a user should be able to see, and open, where their data is, and which keyring holds
their passwords."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import PairsyncError
from app.service import Service


class SettingsDialog(QDialog):
    def __init__(self, service: Service, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle(self.tr("Pairsync settings"))
        form = QFormLayout()
        paths = service.paths
        for label, path in (
            (self.tr("Database and data:"), paths.data),
            (self.tr("Configuration:"), paths.config),
            (self.tr("Log files:"), paths.logs),
        ):
            form.addRow(label, self._path_row(path))
        try:
            backend = service.secrets.backend_name()
        except PairsyncError as err:
            backend = str(err)
        keyring = QLabel(
            self.tr("Passwords and tokens are kept only in: {backend}").format(backend=backend),
            self,
        )
        keyring.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(keyring)
        layout.addWidget(buttons)

    def _path_row(self, path: Path) -> QWidget:
        row = QWidget(self)
        text = QLabel(str(path), row)
        text.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        button = QPushButton(self.tr("Open"), row)
        button.setAccessibleName(self.tr("Open {path}").format(path=path))
        button.clicked.connect(lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(path))))
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(text, 1)
        layout.addWidget(button)
        return row
