"""Wizard step 5 (SPEC §1.4): the preview. A dry run on a worker thread with a progress bar
and Cancel; Finish ("Start syncing") is only possible once the user has seen what the first
sync will do, and, with Avoid Duplicates off, has said yes to the contacts it will create."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QVBoxLayout, QWidget, QWizardPage

from app.service import Service
from app.ui.dashboard.preview_view import PreviewView
from app.ui.signals import emit
from app.ui.tasks import TaskRunner


class PreviewPage(QWizardPage):
    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.setTitle(self.tr("Preview"))
        self.setSubTitle(
            self.tr(
                "This is what the first sync will do. Nothing has been written yet; press "
                "Start syncing when it looks right."
            )
        )
        self.view = PreviewView(service, runner, self)
        self.view.finished.connect(self._finished)
        self.confirm = QCheckBox(self)
        self.confirm.toggled.connect(self.completeChanged)
        self.confirm.hide()
        layout = QVBoxLayout(self)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.confirm)

    def start(self, name: str) -> None:
        self.confirm.hide()
        self.confirm.setChecked(False)
        self.view.set_connection(name)
        self.view.start()
        emit(self.completeChanged)

    def _finished(self, preview: object) -> None:
        p = self.view.preview
        if p is not None and self.view.name is not None:
            conn = self.service.show_connection(self.view.name)
            if not conn.settings.avoid_duplicates:
                self.confirm.setText(
                    self.tr(
                        "Yes, create {a} contacts in {app_a} and {b} in {app_b}, including "
                        "contacts without an email address (they cannot be matched)."
                    ).format(
                        a=p.report["created"]["a"],
                        b=p.report["created"]["b"],
                        app_a=conn.a.account,
                        app_b=conn.b.account,
                    )
                )
                self.confirm.show()
        emit(self.completeChanged)

    def isComplete(self) -> bool:
        if self.view.running or self.view.preview is None:
            return False
        return self.confirm.isHidden() or self.confirm.isChecked()

    def cleanupPage(self) -> None:
        self.view.cancel()
