"""Wizard step 1 (SPEC §1.1): choose two apps from the app list. Each side has a search box
that filters as you type, on names and aliases ("Gmail" finds Google Contacts, "iCloud"
finds CardDAV). Apps without a connector yet are listed greyed, "coming soon", and cannot be
picked."""

from __future__ import annotations

from typing import Any, TypeAlias

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QPersistentModelIndex,
    QSize,
    QSortFilterProxyModel,
    Qt,
    Signal,
)
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QVBoxLayout,
    QWidget,
    QWizardPage,
)

from app.model import Side
from app.service import AppEntry
from app.ui.icons import app_icon
from app.ui.signals import emit

Index: TypeAlias = QModelIndex | QPersistentModelIndex
EntryRole = Qt.ItemDataRole.UserRole + 1


class AppListModel(QAbstractListModel):
    def __init__(self, entries: list[AppEntry], parent: Any = None) -> None:
        super().__init__(parent)
        self.entries = entries

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.entries)

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        e = self.entries[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            if e.available:
                return e.name
            return self.tr("{name} — coming soon").format(name=e.name)
        if role == Qt.ItemDataRole.DecorationRole:
            return app_icon(e.kind)
        if role in (Qt.ItemDataRole.ToolTipRole, Qt.ItemDataRole.AccessibleDescriptionRole):
            text = self.tr(e.description) if e.description else ""
            if not e.available:
                text += " " + self.tr("Not available yet: Pairsync cannot connect to it today.")
            return text.strip() or None
        if role == EntryRole:
            return e
        return None

    def flags(self, index: Index) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        if self.entries[index.row()].available:
            return Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable
        return Qt.ItemFlag.NoItemFlags  # greyed by the view, never picked


class AppListFilter(QSortFilterProxyModel):
    """Keeps the apps whose name, kind or an alias contains every typed word."""

    def __init__(self, parent: Any = None) -> None:
        super().__init__(parent)
        self.query = ""

    def set_query(self, text: str) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt 6.10+, where the older call is deprecated
            self.beginFilterChange()
            self.query = text
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)
        else:
            self.query = text
            self.invalidateRowsFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: Index) -> bool:
        model = self.sourceModel()
        entry: AppEntry = model.data(model.index(source_row, 0, source_parent), EntryRole)
        return entry.matches(self.query)


class SearchBox(QLineEdit):
    """Enter picks the first matching app (``returnPressed``) and stops there: it does not
    also press the wizard's Next, so the user sees what was picked."""

    def keyPressEvent(self, event: QKeyEvent) -> None:
        super().keyPressEvent(event)
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            event.accept()


class AppPicker(QWidget):
    """A search box over one app list."""

    picked = Signal()

    def __init__(self, title: str, entries: list[AppEntry], parent: QWidget | None = None):
        super().__init__(parent)
        self.model = AppListModel(entries, self)
        self.proxy = AppListFilter(self)
        self.proxy.setSourceModel(self.model)
        self.search = SearchBox(self)
        self.search.setPlaceholderText(self.tr("Search apps, e.g. Gmail, iCloud, Excel"))
        self.search.setClearButtonEnabled(True)
        self.search.setAccessibleName(self.tr("Search apps for {side}").format(side=title))
        self.search.textChanged.connect(self.proxy.set_query)
        self.search.returnPressed.connect(self.pick_first)
        self.view = QListView(self)
        self.view.setModel(self.proxy)
        self.view.setAccessibleName(title)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        size = self.fontMetrics().height() * 2
        self.view.setIconSize(QSize(size, size))
        self.view.setSpacing(2)
        # One icon size, one line each: the view measures one row, not every row with every
        # role (that was most of building the first page, which opens with the wizard).
        self.view.setUniformItemSizes(True)
        self.view.selectionModel().selectionChanged.connect(lambda *_: emit(self.picked))
        self.empty = QLabel(self.tr("No app matches. Try another name."), self)
        self.empty.hide()
        self.proxy.rowsInserted.connect(self._update_empty)
        self.proxy.rowsRemoved.connect(self._update_empty)
        self.proxy.modelReset.connect(self._update_empty)
        label = QLabel(title, self)
        label.setBuddy(self.search)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(label)
        layout.addWidget(self.search)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.empty)

    def _update_empty(self, *_args: Any) -> None:
        self.empty.setVisible(self.proxy.rowCount() == 0)

    def entry(self) -> AppEntry | None:
        index = self.view.currentIndex()
        if not index.isValid() or not self.view.selectionModel().isSelected(index):
            return None
        entry: AppEntry = index.data(EntryRole)
        return entry if entry.available else None

    def select(self, kind: str) -> bool:
        """Pick the app of this kind if it is listed now (tests, and a restored choice)."""
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            entry: AppEntry = index.data(EntryRole)
            if entry.kind == kind and entry.available:
                self.view.setCurrentIndex(index)
                return True
        return False

    def pick_first(self) -> None:
        """Enter in the search box picks the first app that works."""
        for row in range(self.proxy.rowCount()):
            index = self.proxy.index(row, 0)
            if index.data(EntryRole).available:
                self.view.setCurrentIndex(index)
                self.view.setFocus()
                return


class AppsPage(QWizardPage):
    def __init__(self, entries: list[AppEntry], parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle(self.tr("Choose two apps"))
        self.setSubTitle(
            self.tr(
                "Pairsync keeps the contacts of these two apps in sync, from this computer. "
                "Nothing is written before you have seen a preview."
            )
        )
        self.pickers = {
            Side.A: AppPicker(self.tr("&First app"), entries, self),
            Side.B: AppPicker(self.tr("&Second app"), entries, self),
        }
        arrows = QLabel("⇄", self)
        arrows.setAlignment(Qt.AlignmentFlag.AlignCenter)
        font = arrows.font()
        font.setPointSizeF(font.pointSizeF() * 2)
        arrows.setFont(font)
        arrows.setAccessibleName(self.tr("synced with"))
        layout = QHBoxLayout(self)
        layout.addWidget(self.pickers[Side.A], 1)
        layout.addWidget(arrows)
        layout.addWidget(self.pickers[Side.B], 1)
        for picker in self.pickers.values():
            picker.picked.connect(self.completeChanged)
        self.setTabOrder(self.pickers[Side.A].search, self.pickers[Side.A].view)
        self.setTabOrder(self.pickers[Side.A].view, self.pickers[Side.B].search)
        self.setTabOrder(self.pickers[Side.B].search, self.pickers[Side.B].view)

    def entry(self, side: Side) -> AppEntry | None:
        return self.pickers[side].entry()

    def isComplete(self) -> bool:
        return all(p.entry() is not None for p in self.pickers.values())
