"""The main window's list of connections: a Qt model over ``Service.connection_overview``
and a delegate that draws each row as both apps' icons, the name, the direction arrow and
the status chip (no widgets per row)."""

from __future__ import annotations

from typing import Any, TypeAlias

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QRect,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QApplication, QStyle, QStyledItemDelegate, QStyleOptionViewItem

from app.service import ConnectionSummary
from app.ui.icons import app_icon
from app.ui.signals import emit
from app.ui.status_chip import chip_size, paint_chip, status_colour, status_text

ARROWS = {"two-way": "⇄", "a-to-b": "→", "b-to-a": "←"}
SummaryRole = Qt.ItemDataRole.UserRole + 1
SyncingRole = Qt.ItemDataRole.UserRole + 2
Index: TypeAlias = QModelIndex | QPersistentModelIndex


class ConnectionListModel(QAbstractListModel):
    """Rows of ``ConnectionSummary``; ``set_syncing`` overlays a running sync's percentage."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.rows: list[ConnectionSummary] = []
        self.syncing: dict[str, int] = {}

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def set_rows(self, rows: list[ConnectionSummary]) -> None:
        """Replace the rows; same names in the same order only repaint (keeps selection)."""
        if [r.name for r in rows] == [r.name for r in self.rows]:
            self.rows = rows
            if rows:
                emit(self.dataChanged, self.index(0), self.index(len(rows) - 1))
            return
        self.beginResetModel()
        self.rows = rows
        self.syncing = {k: v for k, v in self.syncing.items() if any(r.name == k for r in rows)}
        self.endResetModel()

    def row_of(self, name: str) -> int:
        return next((i for i, r in enumerate(self.rows) if r.name == name), -1)

    def set_syncing(self, name: str, percent: int | None) -> None:
        if percent is None:
            self.syncing.pop(name, None)
        else:
            self.syncing[name] = percent
        row = self.row_of(name)
        if row >= 0:
            emit(self.dataChanged, self.index(row), self.index(row))

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row = self.rows[index.row()]
        syncing = self.syncing.get(row.name)
        if role == Qt.ItemDataRole.DisplayRole:
            return row.name
        if role == SummaryRole:
            return row
        if role == SyncingRole:
            return syncing
        if role in (Qt.ItemDataRole.AccessibleTextRole, Qt.ItemDataRole.ToolTipRole):
            text = self.tr("{name}: {a} {arrow} {b}, {status}").format(
                name=row.name,
                a=row.account_a,
                arrow=ARROWS.get(row.direction, "?"),
                b=row.account_b,
                status=status_text(row.status, syncing),
            )
            if role == Qt.ItemDataRole.ToolTipRole and row.status.message:
                text += "\n" + row.status.message
            return text
        return None


class ConnectionDelegate(QStyledItemDelegate):
    """[icon A] ⇄ [icon B]  Name / accounts            (status chip)"""

    def sizeHint(self, option: QStyleOptionViewItem, index: Index) -> QSize:
        fm = option.fontMetrics  # type: ignore[attr-defined]
        line = fm.height()
        # Narrow on purpose: the row takes the view's width and elides the name to fit.
        return QSize(fm.horizontalAdvance("M") * 16, max(3 * line, 40))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: Index) -> None:
        row: ConnectionSummary | None = index.data(SummaryRole)
        if row is None:
            return
        syncing: int | None = index.data(SyncingRole)
        opt = QStyleOptionViewItem(option)
        self.initStyleOption(opt, index)
        opt.text = ""  # type: ignore[attr-defined]
        widget = opt.widget  # type: ignore[attr-defined]
        style = widget.style() if widget is not None else QApplication.style()
        style.drawControl(QStyle.ControlElement.CE_ItemViewItem, opt, painter, widget)

        rect: QRect = opt.rect  # type: ignore[attr-defined]
        fm = opt.fontMetrics  # type: ignore[attr-defined]
        pad = max(4, fm.height() // 3)
        icon = min(rect.height() - 2 * pad, int(fm.height() * 1.6))
        selected = bool(opt.state & QStyle.StateFlag.State_Selected)  # type: ignore[attr-defined]
        group = QPalette.ColorGroup.Normal
        text_role = QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        pal: QPalette = opt.palette  # type: ignore[attr-defined]

        painter.save()
        x = rect.left() + pad
        top = rect.top() + (rect.height() - icon) // 2
        app_icon(row.kind_a).paint(painter, QRect(x, top, icon, icon))
        x += icon + pad // 2
        arrow = ARROWS.get(row.direction, "?")
        arrow_w = fm.horizontalAdvance(arrow) + pad
        painter.setPen(pal.color(group, text_role))
        painter.drawText(
            QRect(x, rect.top(), arrow_w, rect.height()), Qt.AlignmentFlag.AlignCenter, arrow
        )
        x += arrow_w
        app_icon(row.kind_b).paint(painter, QRect(x, top, icon, icon))
        x += icon + pad * 2

        text = status_text(row.status, syncing)
        chip_font = QFont(opt.font)  # type: ignore[attr-defined]
        chip_font.setPointSizeF(max(6.0, chip_font.pointSizeF() * 0.9))
        size = chip_size(QFontMetrics(chip_font), text)
        chip = QRectF(
            rect.right() - pad - size.width(),
            rect.top() + (rect.height() - size.height()) / 2,
            size.width(),
            size.height(),
        )
        paint_chip(painter, chip, text, status_colour(row.status, syncing), chip_font)

        text_w = int(chip.left()) - pad - x
        name_font = QFont(opt.font)  # type: ignore[attr-defined]
        name_font.setBold(True)
        painter.setFont(name_font)
        painter.setPen(pal.color(group, text_role))
        half = rect.height() // 2
        name = fm.elidedText(row.name, Qt.TextElideMode.ElideRight, text_w)
        painter.drawText(
            QRect(x, rect.top(), text_w, half),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignBottom),
            name,
        )
        painter.setFont(opt.font)  # type: ignore[attr-defined]
        sub_role = (
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.PlaceholderText
        )
        painter.setPen(pal.color(group, sub_role))
        sub = f"{row.account_a} {arrow} {row.account_b}"
        painter.drawText(
            QRect(x, rect.top() + half, text_w, half),
            int(Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop),
            fm.elidedText(sub, Qt.TextElideMode.ElideRight, text_w),
        )
        painter.restore()
