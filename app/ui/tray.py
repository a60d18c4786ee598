"""The tray icon: Pairsync keeps syncing while its window is closed (SPEC §9, §10).

The icon shows the worst state of all connections — ok, syncing, paused, attention (some
contacts failed, an app is unreachable or rate limited, the mass-change guard waits),
needs sign-in — with a one-line summary as its tooltip. Its menu: Open Pairsync, Sync all
now, Pause all / Resume all, Quit.

Without a system tray (``QSystemTrayIcon.isSystemTrayAvailable()`` is false, e.g. GNOME
without its extension) there is nowhere to keep running: the window stays the app, closing
it quits, and ``no_tray_notice`` gives the banner that says syncing runs while it is open.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import QCoreApplication, QEvent, QObject, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QAction, QColor, QFont, QIcon, QPainter, QPalette, QPixmap
from PySide6.QtWidgets import QApplication, QFrame, QLabel, QMenu, QSystemTrayIcon, QWidget

from app.service import ConnectionSummary, Service
from app.ui.icons import pairsync_icon
from app.ui.reader import ImmediateReader, Reader
from app.ui.scheduler import Scheduler
from app.ui.signals import emit

TRAY_STATES = ("ok", "paused", "syncing", "attention", "needs_sign_in")
"""From best to worst: the icon shows the worst state of all connections."""
ATTENTION = frozenset({"failed", "rate_limited", "guard", "unavailable"})
BADGES = {
    "ok": ("#2e7d32", "✓"),
    "paused": ("#546e7a", "❚❚"),
    "syncing": ("#1565c0", "↻"),
    "attention": ("#a15c00", "!"),
    "needs_sign_in": ("#c62828", "?"),
}


def _tr(text: str) -> str:
    return QCoreApplication.translate("Tray", text)


def system_tray_available() -> bool:
    """Whether the desktop has a system tray (tests patch this both ways)."""
    return bool(QSystemTrayIcon.isSystemTrayAvailable())


def tray_state(summary: ConnectionSummary, syncing: bool) -> str:
    code = summary.status.code
    if code == "auth":
        return "needs_sign_in"
    if code in ATTENTION:
        return "attention"
    if syncing:
        return "syncing"
    if code == "paused":
        return "paused"
    return "ok"


def worst(states: list[str]) -> str:
    return max(states, key=TRAY_STATES.index, default="ok")


def badge_icon(state: str, base: QIcon | None = None, size: int = 64) -> QIcon:
    """Pairsync's icon with a coloured badge for ``state`` in its lower right corner.
    Drawn, not loaded: every state has an icon without extra image files."""
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    if base is not None and not base.isNull():
        base.paint(painter, 0, 0, size, size)
    colour, glyph = BADGES[state]
    radius = size * 0.26
    centre = QPointF(size - radius - 1, size - radius - 1)
    painter.setPen(QColor("white"))
    painter.setBrush(QColor(colour))
    painter.drawEllipse(centre, radius, radius)
    font = QFont()
    font.setBold(True)
    font.setPixelSize(int(radius * 1.2))
    painter.setFont(font)
    painter.drawText(
        QRectF(centre.x() - radius, centre.y() - radius, 2 * radius, 2 * radius),
        Qt.AlignmentFlag.AlignCenter,
        glyph,
    )
    painter.end()
    return QIcon(pixmap)


def summary_text(rows: list[ConnectionSummary], syncing: dict[str, int | None]) -> str:
    """The tooltip: one line, the most urgent thing first."""
    if not rows:
        return _tr("Pairsync: no connections yet")
    states = [tray_state(r, r.name in syncing) for r in rows]
    counts = {s: states.count(s) for s in TRAY_STATES}
    parts = []
    for name, percent in syncing.items():
        if percent is None:
            parts.append(_tr("syncing {name}").format(name=name))
        else:
            parts.append(_tr("syncing {name} ({percent}%)").format(name=name, percent=percent))
    if counts["needs_sign_in"]:
        parts.append(_tr("{n} need(s) sign-in").format(n=counts["needs_sign_in"]))
    if counts["attention"]:
        parts.append(_tr("{n} need(s) attention").format(n=counts["attention"]))
    if counts["paused"]:
        parts.append(_tr("{n} paused").format(n=counts["paused"]))
    if not parts:
        return _tr("Pairsync: {n} connection(s) in sync").format(n=len(rows))
    return _tr("Pairsync: {parts}").format(parts=", ".join(parts))


def _overview(service: Service) -> list[ConnectionSummary]:
    """The tray's query (on a reader thread)."""
    return service.connection_overview()


class Tray(QObject):
    """The tray icon and its menu, driven by the scheduler; see the module docstring.

    ``open_window`` shows and raises the main window; ``quit_app`` ends the app (default:
    stop the scheduler, then ``QApplication.quit``). When the desktop has no tray,
    ``available`` is False, no icon is created and ``show_message`` emits ``message``
    instead, for the window to show.

    The connections are read through ``reader`` (the window's: off the GUI thread); without
    one, at once with ``service``.
    """

    message = Signal(str, str)
    """title, text: a notification that had no tray to show it."""
    message_clicked = Signal()

    def __init__(
        self,
        service: Service,
        scheduler: Scheduler,
        open_window: Callable[[], None],
        quit_app: Callable[[], None] | None = None,
        parent: QObject | None = None,
        reader: Reader | ImmediateReader | None = None,
    ) -> None:
        super().__init__(parent)
        self.service = service
        self.reader: Reader | ImmediateReader = (
            reader if reader is not None else ImmediateReader(service)
        )
        self.scheduler = scheduler
        self.open_window = open_window
        self.quit_app = quit_app or self._default_quit
        self.available = system_tray_available()
        self.state = "ok"
        self.tooltip = ""
        self._syncing: dict[str, int | None] = {}
        self._rows: list[ConnectionSummary] = []
        self._base = pairsync_icon()
        self.icon: QSystemTrayIcon | None = None
        self.menu = QMenu()
        self.menu.setAccessibleName(_tr("Pairsync tray menu"))
        self.open_action = QAction(_tr("Open Pairsync"), self.menu)
        self.sync_action = QAction(_tr("Sync all now"), self.menu)
        self.pause_action = QAction(_tr("Pause all"), self.menu)
        self.quit_action = QAction(_tr("Quit"), self.menu)
        self.open_action.triggered.connect(self.open_window)
        self.sync_action.triggered.connect(self.sync_all)
        self.pause_action.triggered.connect(self.toggle_pause)
        self.quit_action.triggered.connect(self.quit)
        for action in (self.open_action, self.sync_action, self.pause_action):
            self.menu.addAction(action)
        self.menu.addSeparator()
        self.menu.addAction(self.quit_action)
        self.menu.aboutToShow.connect(self.refresh)
        if self.available:
            self.icon = QSystemTrayIcon(self)
            self.icon.setContextMenu(self.menu)
            self.icon.activated.connect(self._activated)
            self.icon.messageClicked.connect(self.message_clicked)
        scheduler.states_changed.connect(self.refresh)
        scheduler.run_started.connect(self._started)
        scheduler.run_progress.connect(self._progress)
        scheduler.run_finished.connect(self._ended)
        scheduler.job_failed.connect(self._ended)
        self.refresh()
        if self.icon is not None:
            self.icon.show()

    # --- actions -------------------------------------------------------------------------

    def sync_all(self) -> None:
        self.scheduler.sync_now()

    def toggle_pause(self) -> None:
        if self.scheduler.all_paused():
            self.scheduler.resume_all()
        else:
            self.scheduler.pause_all()
        self.refresh()

    def quit(self) -> None:
        if self.icon is not None:
            self.icon.hide()
        self.quit_app()

    def _default_quit(self) -> None:
        self.scheduler.shutdown()
        QApplication.quit()

    def _activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.open_window()

    def show_message(
        self,
        title: str,
        text: str,
        icon: QSystemTrayIcon.MessageIcon = QSystemTrayIcon.MessageIcon.Information,
    ) -> None:
        """A desktop notification through the tray, or ``message`` when there is none."""
        if self.icon is not None and QSystemTrayIcon.supportsMessages():
            self.icon.showMessage(title, text, icon, 10_000)
        else:
            emit(self.message, title, text)

    # --- state ------------------------------------------------------------------------------

    def refresh(self) -> None:
        """Re-read every connection's state (on a reader thread) and then update icon,
        tooltip and menu; only the newest answer counts."""
        self.reader.read(
            _overview, self._show_rows, self._not_read, slot=("tray", id(self)), owner=self
        )

    def _show_rows(self, rows: list[ConnectionSummary]) -> None:
        self._rows = rows
        self._show()

    def _show(self) -> None:
        rows = self._rows
        running = self.scheduler.running()
        if running is not None and self.scheduler.running_kind() == "sync":
            self._syncing.setdefault(running, None)
        self._syncing = {k: v for k, v in self._syncing.items() if k == running}
        states = [tray_state(r, r.name in self._syncing) for r in rows]
        self.state = worst(states)
        self.tooltip = summary_text(rows, self._syncing)
        all_paused = bool(rows) and all(r.paused for r in rows)
        self.pause_action.setText(_tr("Resume all") if all_paused else _tr("Pause all"))
        self.pause_action.setEnabled(bool(rows))
        self.sync_action.setEnabled(any(not r.paused for r in rows))
        if self.icon is not None:
            self.icon.setIcon(badge_icon(self.state, self._base))
            self.icon.setToolTip(self.tooltip)

    def _not_read(self, message: str) -> None:
        """The database could not be read: the icon keeps its state, the tooltip says why."""
        self.tooltip = _tr("Pairsync: could not read the connections ({reason})").format(
            reason=message
        )
        if self.icon is not None:
            self.icon.setToolTip(self.tooltip)

    def _started(self, name: str, kind: str) -> None:
        if kind == "sync":
            self._syncing[name] = None
            self._show()  # syncing at once; the connections' states follow
            self.refresh()

    def _progress(
        self, name: str, phase: str, done: int, total: int, left: float, percent: int
    ) -> None:
        if self._syncing.get(name, -1) != percent:
            self._syncing[name] = percent
            self.tooltip = summary_text(self._rows, self._syncing)
            if self.icon is not None:
                self.icon.setToolTip(self.tooltip)

    def _ended(self, name: str, *_: object) -> None:
        self._syncing.pop(name, None)
        self._show()
        self.refresh()


class CloseToTray(QObject):
    """Event filter for the main window: closing it hides it to the tray (syncing goes on)
    when there is a tray; without one the window closes (and the app with it) as usual.
    The first time, the tray says where Pairsync went."""

    def __init__(self, tray: Tray, window: QWidget) -> None:
        super().__init__(window)
        self.tray = tray
        self.window = window
        self.told = False
        window.installEventFilter(self)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        if watched is self.window and event.type() == QEvent.Type.Close and self.tray.available:
            event.ignore()
            self.window.hide()
            if not self.told:
                self.told = True
                self.tray.show_message(
                    _tr("Pairsync is still syncing"),
                    _tr("Pairsync keeps your contacts in sync from the tray. Quit it from there."),
                )
            return True
        return False


def no_tray_notice(parent: QWidget | None = None) -> QLabel:
    """The banner for a desktop without a system tray: syncing runs only while the window is
    open. Add it to the main window when ``Tray.available`` is False."""
    label = QLabel(
        _tr(
            "This desktop has no system tray: Pairsync syncs on schedule while this window is "
            "open. Closing it stops syncing until you open Pairsync again."
        ),
        parent,
    )
    label.setWordWrap(True)
    label.setAccessibleName(_tr("Syncing runs while this window is open"))
    label.setObjectName("noTrayNotice")
    # A notice, not part of the content: framed, on the palette's tooltip colours (light
    # and dark palettes alike), with room around the text.
    label.setFrameShape(QFrame.Shape.StyledPanel)
    label.setMargin(label.fontMetrics().height() // 2)
    label.setAutoFillBackground(True)
    label.setBackgroundRole(QPalette.ColorRole.ToolTipBase)
    label.setForegroundRole(QPalette.ColorRole.ToolTipText)
    return label
