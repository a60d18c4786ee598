"""Desktop notifications (tray messages) for what needs the user (SPEC §9, §10):

* an account needs signing in again — once, until a run of that connection succeeds again;
* the mass-change guard stopped a run and waits for a decision (the dialog itself is
  ``app.ui.guard_dialog``; the message says why it appeared);
* the number of failed contacts of a connection rose (compared with what it was before the
  run, ignored failures left out), so a slow drift of failures is noticed. The count is read
  by the window's database reader, off the GUI thread (at 100k failed contacts it takes
  tens of milliseconds, once after every run).

Messages go through ``Tray.show_message``; without a system tray the tray emits them as
``message`` for the window to show instead.
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QSystemTrayIcon

from app.errors import PairsyncError
from app.service import Service
from app.ui.list_parts import AnyReader
from app.ui.reader import ImmediateReader
from app.ui.scheduler import Scheduler
from app.ui.signals import emit
from app.ui.words import plural

log = logging.getLogger(__name__)


class MessageSink(Protocol):
    def show_message(
        self, title: str, text: str, icon: QSystemTrayIcon.MessageIcon = ...
    ) -> None: ...


class Notifier(QObject):
    notified = Signal(str, str, str)
    """kind (auth | guard | failures), title, text — every notification sent."""

    def __init__(
        self,
        service: Service,
        scheduler: Scheduler,
        sink: MessageSink,
        parent: QObject | None = None,
        *,
        reader: AnyReader | None = None,
    ) -> None:
        super().__init__(parent)
        self.reader: AnyReader = reader if reader is not None else ImmediateReader(service)
        """Where failure counts are read (the window's threads; at once without one)."""
        self.sink = sink
        self.sent: list[tuple[str, str, str]] = []
        self._auth_told: set[str] = set()
        self._failed: dict[str, int] = {}
        self.reader.read(_all_failed, self._counted, owner=self)
        scheduler.auth_needed.connect(self.on_auth_needed)
        scheduler.guard_stopped.connect(self.on_guard)
        scheduler.run_finished.connect(self.on_run_finished)

    def _counted(self, counts: dict[str, int]) -> None:
        for name, now in counts.items():
            self._failed.setdefault(name, now)

    def _send(
        self,
        kind: str,
        title: str,
        text: str,
        icon: QSystemTrayIcon.MessageIcon = QSystemTrayIcon.MessageIcon.Warning,
    ) -> None:
        self.sent.append((kind, title, text))
        self.sink.show_message(title, text, icon)
        emit(self.notified, kind, title, text)

    def on_auth_needed(self, name: str, message: str) -> None:
        if name in self._auth_told:
            return
        self._auth_told.add(name)
        self._send(
            "auth",
            self.tr("Sign in again: {name}").format(name=name),
            self.tr(
                "{message} Syncing of {name} waits until you sign in again; its settings are kept."
            ).format(message=message, name=name),
        )

    def on_guard(self, name: str, details: dict[str, Any], message: str) -> None:
        self._send(
            "guard",
            self.tr("Stopped before writing: {name}").format(name=name),
            self.tr("Unusually many changes. Nothing was written; Pairsync asks you first."),
        )

    def on_run_finished(self, name: str, report: dict[str, Any]) -> None:
        status = report.get("status", "")
        if status not in ("auth", "guard", "cancelled"):
            self._auth_told.discard(name)
        if report.get("kind", "sync") != "sync" or status not in ("ok", "failed"):
            return
        self.reader.read(
            lambda service: _failed(service, name),
            lambda now: self._compare(name, now),
            slot=("failed", name),
            owner=self,
        )

    def _compare(self, name: str, now: int) -> None:
        before = self._failed.get(name, 0)
        self._failed[name] = now
        if now > before:
            self._send(
                "failures",
                self.tr("More contacts failed: {name}").format(name=name),
                self.tr("{now} of {name} could not be synced (before: {before}). See ").format(
                    now=plural(now, self.tr("{n} contact"), self.tr("{n} contacts")),
                    name=name,
                    before=before,
                )
                + self.tr("Health → Failed."),
            )


def _failed(service: Service, name: str) -> int:
    """A connection's failed contacts, ignored ones left out (0 when it is gone)."""
    try:
        return service.connection_state(name).status.failed
    except PairsyncError:
        return 0


def _all_failed(service: Service) -> dict[str, int]:
    return {name: _failed(service, name) for name in service.connection_names()}
