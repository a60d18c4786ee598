"""Settings: where Pairsync keeps its files and its secrets, and whether it starts at login.

Per-connection settings (including how often each one syncs) live in each connection's
dashboard; here is what concerns the whole app: where the data is (with Open buttons),
which keyring holds the passwords, and "Start Pairsync when I log in" (in the tray, with
``--background``; Linux and the BSDs here, the installers elsewhere — see
``app.ui.autostart``)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (
    QCheckBox,
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
from app.ui import autostart


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
            backend = service.keyring_backend()
        except PairsyncError as err:
            backend = str(err)
        keyring = QLabel(
            self.tr("Passwords and tokens are kept only in: {backend}").format(backend=backend),
            self,
        )
        keyring.setWordWrap(True)
        self.autostart = QCheckBox(self.tr("&Start Pairsync when I log in"), self)
        self.autostart.setAccessibleName(self.tr("Start Pairsync when I log in"))
        self.autostart.setToolTip(
            self.tr("Pairsync then starts in the tray at login and syncs in the background.")
        )
        self.autostart.setChecked(autostart.supported() and autostart.is_enabled())
        self.autostart.setVisible(autostart.supported())  # elsewhere: the installer's option
        self.autostart.toggled.connect(self.set_autostart)
        self.autostart_error = QLabel(self)
        self.autostart_error.setWordWrap(True)
        self.autostart_error.setAccessibleName(self.tr("Start at login problem"))
        self.autostart_error.hide()
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(keyring)
        layout.addWidget(self.autostart)
        layout.addWidget(self.autostart_error)
        layout.addWidget(buttons)

    def set_autostart(self, on: bool) -> None:
        """Write or remove the login entry; on failure say why and show the real state."""
        try:
            autostart.set_enabled(on)
        except (OSError, NotImplementedError) as err:
            self.autostart_error.setText(
                self.tr("⚠ Could not change start at login: {error}").format(error=err)
            )
            self.autostart_error.show()
            self.autostart.blockSignals(True)
            self.autostart.setChecked(autostart.is_enabled())
            self.autostart.blockSignals(False)
            return
        self.autostart_error.hide()

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
