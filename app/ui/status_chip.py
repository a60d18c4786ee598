"""The status chip (SPEC §10): words and colour for a connection's state.

Colours are fixed, saturated mid-tones with white text: they read the same on a light and
on a dark palette (contrast ≥ 4.5:1 against white), so the chip needs no theme of its own.
"""

from __future__ import annotations

from PySide6.QtCore import QCoreApplication, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetrics, QMouseEvent, QPainter, QPaintEvent
from PySide6.QtWidgets import QSizePolicy, QWidget

from app.service import ConnectionStatus
from app.ui.signals import emit

COLOURS = {
    "ok": "#2e7d32",
    "new": "#546e7a",
    "paused": "#546e7a",
    "syncing": "#1565c0",
    "failed": "#a15c00",
    "rate_limited": "#a15c00",
    "guard": "#c62828",
    "unavailable": "#c62828",
    "auth": "#c62828",
}


def _tr(text: str) -> str:
    return QCoreApplication.translate("StatusChip", text)


def status_text(status: ConnectionStatus, syncing: int | None = None) -> str:
    """The chip's words: Active · Syncing n% · Paused · Needs re-authorization · Rate
    limited until hh:mm · App unreachable · n failed."""
    if syncing is not None:
        return _tr("Syncing {percent}%").format(percent=syncing)
    code = status.code
    if code == "failed":
        return _tr("{count} failed").format(count=status.failed)
    if code == "rate_limited":
        if status.until is None:
            return _tr("Rate limited")
        return _tr("Rate limited until {time}").format(
            time=status.until.astimezone().strftime("%H:%M")
        )
    words = {
        "ok": _tr("Active"),
        "new": _tr("Not synced yet"),
        "paused": _tr("Paused"),
        "guard": _tr("Stopped: too many changes"),
        "unavailable": _tr("App unreachable"),
        "auth": _tr("Needs re-authorization"),
    }
    return words.get(code, code)


def status_colour(status: ConnectionStatus, syncing: int | None = None) -> QColor:
    key = "syncing" if syncing is not None else status.code
    return QColor(COLOURS.get(key, COLOURS["new"]))


def chip_size(metrics: QFontMetrics, text: str) -> QSize:
    return QSize(metrics.horizontalAdvance(text) + metrics.height(), metrics.height() + 6)


def paint_chip(painter: QPainter, rect: QRectF, text: str, colour: QColor, font: QFont) -> None:
    """A rounded chip with white text, centred in ``rect`` (used by the list delegate and
    by ``StatusChip``)."""
    painter.save()
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.setBrush(colour)
    radius = rect.height() / 2
    painter.drawRoundedRect(rect, radius, radius)
    painter.setPen(QColor("white"))
    painter.setFont(font)
    painter.drawText(rect, Qt.AlignmentFlag.AlignCenter, text)
    painter.restore()


class StatusChip(QWidget):
    """The chip as a widget (the dashboard's header). Its accessible name is its text.

    A chip that asks for something ("Needs re-authorization") can be clicked: ``clicked``.
    It is a shortcut for mouse users only; whoever makes it actionable also shows a button
    for the same thing (keyboard and screen-reader users)."""

    clicked = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._text = ""
        self._colour = QColor(COLOURS["new"])
        self.actionable = False
        self.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)

    def set_status(self, status: ConnectionStatus, syncing: int | None = None) -> None:
        self._text = status_text(status, syncing)
        self._colour = status_colour(status, syncing)
        self.setAccessibleName(self.tr("Status: {text}").format(text=self._text))
        self.setToolTip(status.message or self._text)
        self.updateGeometry()
        self.update()

    def set_actionable(self, on: bool, hint: str = "") -> None:
        """Clickable (a pointing hand, ``hint`` added to the tooltip) or not."""
        self.actionable = on
        if on:
            self.setCursor(Qt.CursorShape.PointingHandCursor)
            if hint:
                self.setToolTip(f"{self.toolTip()}\n{hint}".strip())
        else:
            self.unsetCursor()

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if (
            self.actionable
            and event.button() == Qt.MouseButton.LeftButton
            and self.rect().contains(event.position().toPoint())
        ):
            emit(self.clicked)
            return
        super().mouseReleaseEvent(event)

    def text(self) -> str:
        return self._text

    def sizeHint(self) -> QSize:
        return chip_size(self.fontMetrics(), self._text)

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        paint_chip(painter, QRectF(self.rect()), self._text, self._colour, self.font())
