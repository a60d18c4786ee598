"""The mass-change guard's question (SPEC §7): a run stopped before writing because an app
suddenly lists far fewer contacts, or the run would create or update more than the
connection's limit. The dialog shows the counts and asks: Continue (run again past the
guard) or Cancel (nothing is written; the connection waits, see ``GuardDialog``).

``GuardPrompt`` opens one such dialog per connection whenever the scheduler reports a guard
stop; it is not modal, so syncing of other connections and the rest of the window go on.
"""

from __future__ import annotations

from typing import Any

import shiboken6
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.errors import PairsyncError
from app.service import Service
from app.ui.scheduler import Scheduler


class GuardDialog(QDialog):
    """Counts and Continue / Cancel for one guard stop. Accepted = Continue."""

    def __init__(
        self,
        name: str,
        details: dict[str, Any],
        message: str,
        app_names: dict[str, str],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.name = name
        self.setWindowTitle(self.tr("Many changes in {name}").format(name=name))
        self.setAccessibleName(self.windowTitle())
        intro = QLabel(
            self.tr(
                "Pairsync stopped this run before writing anything, because it would change "
                "unusually much. Check the apps, then decide."
            ),
            self,
        )
        intro.setWordWrap(True)
        form = QFormLayout()
        self.counts: dict[str, int] = {}
        if "gone" in details:
            app = app_names.get(str(details.get("side", "")), "")
            rows = (
                ("listed", self.tr("Contacts {app} lists now").format(app=app)),
                ("known", self.tr("Contacts it listed last time")),
                ("gone", self.tr("Gone since")),
            )
        else:
            rows = (
                ("creates", self.tr("Contacts to create")),
                ("updates", self.tr("Contacts to update")),
                ("limit", self.tr("Limit per run")),
            )
        for key, label in rows:
            value = int(details.get(key, 0) or 0)
            self.counts[key] = value
            field = QLabel(f"{value:,}", self)
            field.setAccessibleName(label)
            field.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            form.addRow(label, field)
        detail = QLabel(message, self)
        detail.setWordWrap(True)
        note = QLabel(
            self.tr(
                "Continue writes these changes now. Cancel writes nothing: the connection then "
                "waits until you press Sync now (and asks again if the changes are still "
                "there)."
            ),
            self,
        )
        note.setWordWrap(True)
        buttons = QDialogButtonBox(self)
        self.continue_button = QPushButton(self.tr("Continue"), self)
        self.continue_button.setAccessibleName(self.tr("Continue: write these changes"))
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.cancel_button.setAccessibleName(self.tr("Cancel: write nothing"))
        buttons.addButton(self.continue_button, QDialogButtonBox.ButtonRole.AcceptRole)
        buttons.addButton(self.cancel_button, QDialogButtonBox.ButtonRole.RejectRole)
        self.cancel_button.setDefault(True)  # the safe choice is the default
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(intro)
        layout.addLayout(form)
        layout.addWidget(detail)
        layout.addWidget(note)
        layout.addWidget(buttons)


class GuardPrompt(QObject):
    """Shows a ``GuardDialog`` for each guard stop the scheduler reports and acts on the
    answer: Continue syncs the connection again past the guard; Cancel leaves it waiting."""

    def __init__(
        self,
        service: Service,
        scheduler: Scheduler,
        parent_widget: QWidget | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.scheduler = scheduler
        self.parent_widget = parent_widget
        self.dialogs: dict[str, GuardDialog] = {}
        self._closed: list[GuardDialog] = []
        scheduler.guard_stopped.connect(self.ask)

    def ask(self, name: str, details: dict[str, Any], message: str) -> GuardDialog:
        self._closed = [d for d in self._closed if shiboken6.isValid(d)]
        old = self.dialogs.pop(name, None)
        if old is not None:
            old.blockSignals(True)
            old.close()
            self._retire(old)
        try:
            conn = self.service.show_connection(name)
            apps = {"a": conn.a.account, "b": conn.b.account}
        except PairsyncError:
            apps = {"a": "A", "b": "B"}
        dialog = GuardDialog(name, details, message, apps, self.parent_widget)
        # Bound methods, not lambdas: a lambda freed with the dialog could drop the last
        # reference to an object Qt is deleting.
        dialog.accepted.connect(self._continue)
        dialog.finished.connect(self._finished)
        self.dialogs[name] = dialog
        dialog.show()
        return dialog

    def _continue(self) -> None:
        dialog = self.sender()
        if isinstance(dialog, GuardDialog):
            self.scheduler.sync_now([dialog.name], confirm=True)

    def _finished(self, _result: int) -> None:
        dialog = self.sender()
        if isinstance(dialog, GuardDialog) and self.dialogs.get(dialog.name) is dialog:
            del self.dialogs[dialog.name]
            self._retire(dialog)

    def _retire(self, dialog: GuardDialog) -> None:
        """Delete a closed dialog later, keeping a reference until Qt has (a Python-owned
        dialog must not die inside its own signal)."""
        self._closed.append(dialog)
        dialog.deleteLater()
