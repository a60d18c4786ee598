"""A running sync's progress, where the user looks: the connection list and the dashboard.

* ``SyncProgress`` follows the scheduler and keeps, per connection, the phase (Reading A,
  Reading B, Matching, Planning, Writing), its counts, the run's percentage and the time
  left. It feeds the connection list's "Syncing n%" chip (``attach_list``) and says when a
  connection's progress changed; nothing is polled.
* ``ProgressDelegate`` extends the list's row delegate with a thin determinate bar under a
  syncing row and a tooltip with the phase, counts and time left.
* ``RunProgressBar`` is the dashboard's line for one connection: phase and counts, a
  determinate bar, the time left, and Cancel (which stops the run at its next safe point).

Percent and time left come from ``app.run_progress.RunProgress`` (computed in the sync
worker process), the same arithmetic the wizard's preview uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol, TypeAlias

from PySide6.QtCore import (
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QRect,
    Signal,
)
from PySide6.QtGui import QColor, QHelpEvent, QPainter
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QProgressBar,
    QPushButton,
    QStyleOptionViewItem,
    QToolTip,
    QWidget,
)

from app.ui.connection_list import ConnectionDelegate
from app.ui.scheduler import Scheduler
from app.ui.signals import emit

Index: TypeAlias = QModelIndex | QPersistentModelIndex
PHASES = ("Reading A", "Reading B", "Matching", "Planning", "Writing")


def _tr(text: str) -> str:
    return QCoreApplication.translate("SyncProgress", text)


@dataclass(frozen=True, slots=True)
class PhaseProgress:
    """One connection's run, as last reported."""

    phase: str
    """The engine's words: "Reading <app>", "Matching", "Planning", "Writing"."""
    step: int
    """1–5: which of PHASES this is (Reading A is the first "Reading …" seen)."""
    done: int
    total: int
    percent: int
    seconds_left: float | None

    def phase_text(self) -> str:
        """ "Reading vCard folder (1/5)", "Writing 120 of 400 (5/5)"."""
        phase = self.phase
        if phase.startswith("Reading "):
            words = _tr("Reading {app}").format(app=phase.removeprefix("Reading "))
        else:
            words = {
                "Matching": _tr("Matching"),
                "Planning": _tr("Planning"),
                "Writing": _tr("Writing"),
            }.get(phase, phase)
        if self.total:
            words = _tr("{phase} {done} of {total}").format(
                phase=words, done=self.done, total=self.total
            )
        return _tr("{phase} (step {step} of {steps})").format(
            phase=words, step=self.step, steps=len(PHASES)
        )

    def eta_text(self) -> str:
        if self.seconds_left is None:
            return ""
        left = int(self.seconds_left)
        if left < 60:
            return _tr("about {seconds} s left").format(seconds=max(left, 1))
        return _tr("about {minutes} min left").format(minutes=(left + 59) // 60)

    def summary(self) -> str:
        eta = self.eta_text()
        return f"{self.phase_text()} · {self.percent}%" + (f" · {eta}" if eta else "")


class SyncingList(Protocol):
    """What ``attach_list`` needs of the connection list's model."""

    def set_syncing(self, name: str, percent: int | None) -> None: ...


class SyncProgress(QObject):
    """Per-connection progress of the scheduler's runs (see the module docstring)."""

    changed = Signal(str)
    """A connection's progress changed (or its run ended: ``get`` then returns None)."""

    def __init__(self, scheduler: Scheduler, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.scheduler = scheduler
        self._now: dict[str, PhaseProgress] = {}
        self._reads: dict[str, list[str]] = {}
        scheduler.run_started.connect(self._started)
        scheduler.run_progress.connect(self._progress)
        scheduler.run_finished.connect(self._ended)
        scheduler.job_failed.connect(self._failed)

    def get(self, name: str) -> PhaseProgress | None:
        return self._now.get(name)

    def attach_list(self, model: SyncingList) -> None:
        """Keep a connection list's "Syncing n%" chip up to date."""

        def update(name: str) -> None:
            p = self._now.get(name)
            model.set_syncing(name, None if p is None else p.percent)

        self.changed.connect(update)

    def _started(self, name: str, kind: str) -> None:
        if kind != "sync":
            return
        self._reads[name] = []
        self._now[name] = PhaseProgress(_tr("Starting"), 1, 0, 0, 0, None)
        emit(self.changed, name)

    def _progress(
        self, name: str, phase: str, done: int, total: int, left: float, percent: int
    ) -> None:
        step = PHASES.index(phase) + 1 if phase in PHASES else 1
        if phase.startswith("Reading "):
            reads = self._reads.setdefault(name, [])
            if phase not in reads:
                reads.append(phase)
            step = min(len(reads), 2)
        self._now[name] = PhaseProgress(
            phase, step, done, total, percent, None if left < 0 else left
        )
        emit(self.changed, name)

    def _ended(self, name: str, report: dict[str, Any]) -> None:
        self._forget(name)

    def _failed(self, name: str, kind: str, message: str) -> None:
        self._forget(name)

    def _forget(self, name: str) -> None:
        self._reads.pop(name, None)
        if self._now.pop(name, None) is not None:
            emit(self.changed, name)


class ProgressDelegate(ConnectionDelegate):
    """The connection list's rows, plus a thin determinate bar along the bottom of a row
    that is syncing, and its phase, counts and time left as the tooltip."""

    def __init__(self, progress: SyncProgress, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.progress = progress

    @staticmethod
    def _name(index: Index) -> str:
        return str(index.data() or "")

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        super().paint(painter, option, index)
        p = self.progress.get(self._name(index))
        if p is None:
            return
        rect: QRect = option.rect  # type: ignore[attr-defined]
        height = max(3, rect.height() // 14)
        track = QRect(rect.left() + 2, rect.bottom() - height, rect.width() - 4, height)
        painter.save()
        painter.fillRect(track, QColor(21, 101, 192, 50))
        filled = QRect(track)
        filled.setWidth(int(track.width() * p.percent / 100))
        painter.fillRect(filled, QColor("#1565c0"))
        painter.restore()

    def helpEvent(
        self,
        event: QHelpEvent,
        view: QAbstractItemView,
        option: QStyleOptionViewItem,
        index: Index,
    ) -> bool:
        p = self.progress.get(self._name(index)) if index.isValid() else None
        if p is None:
            return bool(super().helpEvent(event, view, option, index))
        QToolTip.showText(event.globalPos(), p.summary(), view)
        return True


class RunProgressBar(QWidget):
    """The dashboard's progress line for one connection; hidden while it is not syncing."""

    def __init__(
        self, progress: SyncProgress, scheduler: Scheduler, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.progress = progress
        self.scheduler = scheduler
        self.name: str | None = None
        self.label = QLabel(self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 100)
        self.bar.setAccessibleName(self.tr("Sync progress"))
        self.eta = QLabel(self)
        self.cancel_button = QPushButton(self.tr("Cancel"), self)
        self.cancel_button.setAccessibleName(self.tr("Cancel this sync"))
        self.cancel_button.setToolTip(
            self.tr("Stops at the next safe point: what is written stays, nothing is half-done.")
        )
        self.cancel_button.clicked.connect(self._cancel)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.label, 2)
        layout.addWidget(self.bar, 2)
        layout.addWidget(self.eta, 1)
        layout.addWidget(self.cancel_button)
        progress.changed.connect(self._changed)
        self.hide()

    def set_connection(self, name: str | None) -> None:
        self.name = name
        self._changed(name or "")

    def _changed(self, name: str) -> None:
        if name != self.name:
            return
        p = self.progress.get(name) if name else None
        if p is None:
            self.hide()
            return
        self.label.setText(p.phase_text())
        self.bar.setValue(p.percent)
        self.eta.setText(p.eta_text())
        self.bar.setAccessibleDescription(p.summary())
        self.cancel_button.setEnabled(True)
        self.show()

    def _cancel(self) -> None:
        if self.name is not None and self.scheduler.cancel(self.name):
            self.cancel_button.setEnabled(False)
            self.label.setText(self.tr("Stopping at the next safe point…"))
