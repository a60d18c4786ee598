"""What every dashboard tab shares: the connection it shows, a task runner for anything that
may touch an app, a progress line and a place to say what went wrong, in words."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget

from app.service import Service
from app.ui.progress_panel import ProgressPanel
from app.ui.tasks import Job, Task, TaskRunner


class MessageLabel(QLabel):
    """A wrapped line of feedback. Marked with a symbol rather than a colour, so it reads
    in light and dark palettes alike; screen readers get the same words."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setAccessibleName(self.tr("Message"))
        self.hide()

    def error(self, text: str) -> None:
        self._say("⚠ " + text)

    def success(self, text: str) -> None:
        self._say("✓ " + text)

    def info(self, text: str) -> None:
        self._say(text)

    def _say(self, text: str) -> None:
        self.setText(text)
        self.setAccessibleDescription(text)
        self.show()

    def clear_message(self) -> None:
        self.clear()
        self.hide()


class ConnectionPage(QWidget):
    """Base of the dashboard tabs (and of the wizard's reuse of them)."""

    changed = Signal()
    """The connection changed in a way the list shows (name, direction, pause, status)."""

    def __init__(self, service: Service, runner: TaskRunner, parent: QWidget | None = None):
        super().__init__(parent)
        self.service = service
        self.runner = runner
        self.name: str | None = None
        self.pending = 0
        self.progress = ProgressPanel(self)
        self.message = MessageLabel(self)

    def footer(self, layout: QVBoxLayout) -> None:
        """Add the progress line and the message label at the end of ``layout``."""
        layout.addWidget(self.progress)
        layout.addWidget(self.message)

    def set_connection(self, name: str | None) -> None:
        self.name = name
        self.message.clear_message()
        if name is not None:
            self.reload()

    def reload(self) -> None:
        """Show the connection's current state (subclasses)."""

    def run(
        self,
        job: Job,
        on_done: Callable[[Any], None],
        text: str,
        *,
        on_error: Callable[[str, str], None] | None = None,
        on_cancelled: Callable[[], None] | None = None,
        cancellable: bool = True,
    ) -> Task:
        """Run ``job`` off the GUI thread with this page's progress line; errors land in the
        message label (and reload the page, so it never shows a state that was refused)."""
        self.pending += 1
        task = self.runner.start(
            job,
            on_done=on_done,
            on_error=on_error or self.on_error,
            on_cancelled=on_cancelled or self.on_cancelled,
            on_finished=self._finished,
            label=text,
            cancellable=cancellable,
        )
        self.progress.attach(task, text)
        return task

    def _finished(self) -> None:
        self.pending -= 1

    def on_error(self, message: str, code: str) -> None:
        self.message.error(message)

    def on_cancelled(self) -> None:
        self.message.info(self.tr("Cancelled."))
