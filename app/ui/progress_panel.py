"""A progress line for one long operation: what is happening, a bar, and Cancel.

Shown under the control that started the work (Connect, Preview…). A phase without a known
total shows a busy bar; with a total, a determinate one. Cancel asks the task to stop and
hides the panel at once: the UI never waits for the worker to agree.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from app.run_progress import RunProgress
from app.ui.signals import emit
from app.ui.tasks import Task


class ProgressPanel(QWidget):
    cancelled = Signal()

    def __init__(self, parent: QWidget | None = None, *, run_phases: bool = False) -> None:
        super().__init__(parent)
        self.task: Task | None = None
        self.run_phases = run_phases
        """Show a sync run's phases as one percentage (``RunProgress``) instead of per-phase
        counts."""
        self._run = RunProgress()
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setAccessibleName(self.tr("Progress"))
        self.bar.setTextVisible(True)
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.cancel_button.setAccessibleName(self.tr("Cancel this operation"))
        self.cancel_button.clicked.connect(self.cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.bar, 2)
        layout.addWidget(self.cancel_button)
        self.hide()

    def attach(self, task: Task, text: str) -> None:
        """Follow ``task`` until it finishes; ``text`` says what it does."""
        self.task = task
        self._run = RunProgress()
        self.label.setText(text)
        self.bar.setRange(0, 0)
        # A save cannot be taken back half-way: no Cancel that would only pretend.
        self.cancel_button.setVisible(task.cancellable)
        self.cancel_button.setEnabled(True)
        task.signals.progress.connect(self.on_progress)
        task.signals.finished.connect(self.on_finished)
        self.show()

    def _current(self) -> bool:
        """Whether the signal being delivered comes from the task shown now (a cancelled
        task may still report until its worker returns)."""
        return self.task is not None and self.sender() is self.task.signals

    def on_progress(self, phase: str, done: int, total: int) -> None:
        if not self._current():
            return
        if self.run_phases:
            percent = self._run.update(phase, done, total)
            self.bar.setRange(0, 100)
            self.bar.setValue(percent)
            left = self._run.seconds_left()
            suffix = ""
            if left is not None and left >= 5:
                suffix = " " + self.tr("(about {seconds} s left)").format(seconds=int(left))
            self.label.setText(self.tr(phase) + suffix)
            return
        self.label.setText(self.tr(phase))
        if total:
            self.bar.setRange(0, total)
            self.bar.setValue(done)
        else:
            self.bar.setRange(0, 0)

    def on_finished(self) -> None:
        if not self._current():
            return
        self.task = None
        self.hide()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()
            self.task = None
        self.hide()
        emit(self.cancelled)
