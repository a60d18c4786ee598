"""The Health tab's Failed list: failed contacts grouped by reason, each group read a page at
a time as the user opens and scrolls it, with Retry, Ignore and the app's raw error. Every
read and every change of the failure records runs on a reader thread (``app.ui.reader``):
ignoring a group of 25,000 failures is one update the window does not wait for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeAlias

from PySide6.QtCore import (
    QAbstractItemModel,
    QCoreApplication,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QTreeView,
    QVBoxLayout,
    QWidget,
)

from app.model import FailureRow
from app.service import Service
from app.ui.list_parts import AnyReader, ListTab, search_box
from app.ui.paged import PAGE
from app.ui.signals import emit

Index: TypeAlias = QModelIndex | QPersistentModelIndex
Page: TypeAlias = Callable[[Service, str, Any, int], Sequence[FailureRow]]
"""``page(service, code, after, limit)``: failures of one group, on a reader thread."""

REASONS = {
    "required_missing": "A required field is missing",
    "value_not_allowed": "A value is not allowed",
    "rejected": "The app refused the change",
    "unreadable": "Could not be read",
    "email_collision": "Email already used by another contact",
    "changed_meanwhile": "Changed while syncing",
    "not_found": "No longer exists",
    "unavailable": "The app could not be reached",
    "read_only": "The file is read-only",
    "error": "Other problems",
}
"""Failure codes (``app.errors``) in words, for the Failed tab's groups."""


def _tr(text: str) -> str:
    return QCoreApplication.translate("HealthView", text)


def reason_group(code: str) -> str:
    return _tr(REASONS.get(code, code.replace("_", " ").capitalize()))


class FailureTreeModel(QAbstractItemModel):
    """Failed contacts grouped by reason: groups on top, contacts fetched per group, a page
    at a time, as the user expands and scrolls (never all at once)."""

    COLUMNS = ("Contact", "App", "Reason", "Field", "Attempts")

    def __init__(self, parent: QObject | None = None, reader: AnyReader | None = None) -> None:
        super().__init__(parent)
        self.reader = reader
        self.groups: list[tuple[str, int]] = []
        self.members: list[list[FailureRow]] = []
        self.more: list[bool] = []
        self.paging: set[int] = set()
        """Groups whose next page is being read."""
        self.apps: dict[str, str] = {}
        self._page: Page | None = None
        self._generation = 0

    def load(self, groups: list[tuple[str, int]], page: Page | None, apps: dict[str, str]) -> None:
        self._generation += 1
        self.beginResetModel()
        self.groups = groups
        self.members = [[] for _ in groups]
        self.more = [n > 0 for _, n in groups]
        self.paging = set()
        self.apps = apps
        self._page = page
        self.endResetModel()

    # --- structure --------------------------------------------------------------------------

    def index(self, row: int, column: int, parent: Index = QModelIndex()) -> QModelIndex:  # noqa: B008
        if not self.hasIndex(row, column, parent):
            return QModelIndex()
        if not parent.isValid():
            return self.createIndex(row, column, 0)
        return self.createIndex(row, column, parent.row() + 1)

    def parent(self, index: Index = QModelIndex()) -> QModelIndex:  # type: ignore[override]  # noqa: B008
        if not index.isValid() or index.internalId() == 0:
            return QModelIndex()
        return self.createIndex(index.internalId() - 1, 0, 0)

    def _group_of(self, parent: Index) -> int | None:
        """The group a parent index stands for (None: the root or a contact)."""
        if parent.isValid() and parent.internalId() == 0:
            return parent.row()
        return None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        if not parent.isValid():
            return len(self.groups)
        g = self._group_of(parent)
        return 0 if g is None or parent.column() != 0 else len(self.members[g])

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return len(self.COLUMNS)

    def hasChildren(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        if not parent.isValid():
            return bool(self.groups)
        g = self._group_of(parent)
        return g is not None and parent.column() == 0 and self.groups[g][1] > 0

    def canFetchMore(self, parent: Index) -> bool:
        g = self._group_of(parent)
        return g is not None and self.more[g] and self._page is not None

    def fetchMore(self, parent: Index) -> None:
        g = self._group_of(parent)
        page = self._page
        if g is None or not self.more[g] or page is None or g in self.paging:
            return
        if self.reader is None:
            return
        have = self.members[g]
        after = have[-1].key if have else None
        code, generation = self.groups[g][0], self._generation
        self.paging.add(g)
        self.reader.read(
            lambda svc: page(svc, code, after, PAGE),
            lambda rows: self._fetched(generation, g, rows),
            lambda _message: self._fetched(generation, g, []),
            owner=self,
        )

    def _fetched(self, generation: int, g: int, rows: Sequence[FailureRow]) -> None:
        if generation != self._generation:
            return
        self.paging.discard(g)
        have = self.members[g]
        self.more[g] = len(rows) >= PAGE
        if rows:
            group_index = self.index(g, 0)
            self.beginInsertRows(group_index, len(have), len(have) + len(rows) - 1)
            have.extend(rows)
            self.endInsertRows()

    # --- content ------------------------------------------------------------------------------

    def failure(self, index: Index) -> FailureRow | None:
        if not index.isValid() or index.internalId() == 0:
            return None
        g = index.internalId() - 1
        rows = self.members[g] if 0 <= g < len(self.members) else []
        return rows[index.row()] if 0 <= index.row() < len(rows) else None

    def group_code(self, index: Index) -> str | None:
        if not index.isValid():
            return None
        g = index.row() if index.internalId() == 0 else index.internalId() - 1
        return self.groups[g][0] if 0 <= g < len(self.groups) else None

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return _tr(self.COLUMNS[section])
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or role not in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.AccessibleTextRole,
        ):
            return None
        if index.internalId() == 0:
            if index.column() != 0:
                return None
            code, count = self.groups[index.row()]
            return _tr("{reason} ({count})").format(reason=reason_group(code), count=f"{count:,}")
        f = self.failure(index)
        if f is None:
            return None
        values = (
            f.name,
            self.apps.get(f.target_side, f.target_side.upper()),
            f.message,
            f.field,
            str(f.attempts),
        )
        return values[index.column()]


class FailedTab(ListTab):
    retry_requested = Signal()
    """Retry made failures due: the view asks the scheduler for a run."""

    failed = Signal(str)
    """A read or a change of the failure records went wrong (the sentence)."""
    changed = Signal()
    """Failures were ignored (or no longer): the counts changed."""

    def __init__(self, parent: QWidget | None = None, reader: AnyReader | None = None) -> None:
        super().__init__(parent, reader)
        self.search = search_box(self, self.reload, _tr("failed contacts"))
        self.show_ignored = QCheckBox(_tr("Show ignored"), self)
        self.show_ignored.setAccessibleName(_tr("Show ignored failures"))
        self.show_ignored.toggled.connect(lambda _on: self.reload())
        self.model = FailureTreeModel(self, reader)
        self.loading = False
        """The groups of the current list are being read."""
        self._generation = 0
        self.view = QTreeView(self)
        self.view.setModel(self.model)
        self.view.setAccessibleName(_tr("Failed contacts by reason"))
        self.view.setUniformRowHeights(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setAllColumnsShowFocus(True)
        self.retry_button = QPushButton(_tr("Retry"), self)
        self.retry_button.setAccessibleName(_tr("Retry the selected contacts now"))
        self.ignore_button = QPushButton(_tr("Ignore"), self)
        self.ignore_button.setAccessibleName(_tr("Ignore the selected contacts"))
        self.ignore_button.setToolTip(
            _tr("Ignored contacts leave the Failed count and are not retried until they change.")
        )
        self.raw_button = QPushButton(_tr("Show raw error"), self)
        self.raw_button.setAccessibleName(_tr("Show the app's own error message"))
        self.raw_button.setCheckable(True)
        self.raw = QPlainTextEdit(self)
        self.raw.setReadOnly(True)
        self.raw.setAccessibleName(_tr("The app's own error message"))
        self.raw.setMaximumHeight(120)
        self.raw.hide()
        self.retry_button.clicked.connect(self.retry)
        self.ignore_button.clicked.connect(self.ignore)
        self.raw_button.toggled.connect(self._show_raw)
        self.view.selectionModel().selectionChanged.connect(lambda *_: self._selected())
        top = QHBoxLayout()
        top.addWidget(self.search, 2)
        top.addWidget(self.show_ignored)
        buttons = QHBoxLayout()
        for b in (self.retry_button, self.ignore_button, self.raw_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.view)
        layout.addLayout(buttons)
        layout.addWidget(self.raw)
        self._selected()

    def reload(self, keep: bool = True) -> None:
        name = self.name
        self._generation += 1
        if self.service is None or name is None or self.reader is None:
            self.model.load([], None, {})
            return
        if not keep:
            self.model.load([], None, self.apps)
        search = self.search.text()
        ignored = self.show_ignored.isChecked()
        generation, apps = self._generation, self.apps

        def page(svc: Service, code: str, after: Any, limit: int) -> Sequence[FailureRow]:
            return svc.failures_page(
                name, code, search=search, ignored=ignored, after=after, limit=limit
            )

        self.loading = True
        self.reader.read(
            lambda svc: svc.failure_groups(name, search=search, ignored=ignored),
            lambda groups: self._groups(generation, groups, page, apps),
            lambda message: self._failed(generation, message),
            slot=("groups", id(self)),
            owner=self,
        )
        self.ignore_button.setText(_tr("Stop ignoring") if ignored else _tr("Ignore"))
        self._selected()

    def _groups(
        self, generation: int, groups: list[tuple[str, int]], page: Page, apps: dict[str, str]
    ) -> None:
        if generation != self._generation:
            return
        self.loading = False
        self.model.load(groups, page, apps)
        self._selected()

    def _failed(self, generation: int, message: str) -> None:
        if generation == self._generation:
            self.loading = False
            emit(self.failed, message)

    def selected(self) -> tuple[list[int], list[str]]:
        """Selected contacts' failure ids, and the codes of selected whole groups."""
        ids: list[int] = []
        codes: list[str] = []
        for index in self.view.selectionModel().selectedRows(0):
            f = self.model.failure(index)
            if f is not None:
                ids.append(f.id)
            else:
                code = self.model.group_code(index)
                if code is not None:
                    codes.append(code)
        return ids, codes

    def _selected(self) -> None:
        ids, codes = self.selected()
        self.retry_button.setEnabled(bool(ids or codes))
        self.ignore_button.setEnabled(bool(ids or codes))
        self.raw_button.setEnabled(len(ids) == 1)
        if self.raw_button.isChecked():
            self._show_raw(True)

    def _show_raw(self, on: bool) -> None:
        ids, _codes = self.selected()
        name = self.name
        if not on or len(ids) != 1 or self.reader is None or name is None:
            self.raw.hide()
            return
        failure_id = ids[0]
        self.reader.read(
            lambda svc: svc.failure_raw(name, failure_id),
            self._raw_text,
            self._raw_text,
            slot=("raw", id(self)),
            owner=self,
        )

    def _raw_text(self, text: str) -> None:
        if not self.raw_button.isChecked():
            return
        self.raw.setPlainText(text or _tr("The app gave no more details."))
        self.raw.show()

    def retry(self) -> None:
        """Make the selected failures due now (on a reader thread: a whole group is one
        update of thousands of rows), then ask for a run."""
        name = self.name
        if self.reader is None or name is None:
            return
        ids, codes = self.selected()

        def job(svc: Service) -> None:
            if ids:
                svc.retry_failures(name, ids)
            for code in codes:
                svc.retry_failures(name, code=code)

        self.retry_button.setEnabled(False)
        self.reader.read(job, self._retried, self._changed_failed, owner=self)

    def _retried(self, _result: None) -> None:
        self._selected()
        emit(self.retry_requested)

    def ignore(self) -> None:
        """Ignore the selected failures (or stop ignoring them), off the GUI thread."""
        name = self.name
        if self.reader is None or name is None:
            return
        ids, codes = self.selected()
        ignored = not self.show_ignored.isChecked()

        def job(svc: Service) -> None:
            chosen = list(ids)
            for code in codes:
                more = svc.failures_page(name, code, ignored=not ignored, limit=1_000_000)
                chosen.extend(f.id for f in more)
            svc.ignore_failures(name, chosen, ignored)

        self.ignore_button.setEnabled(False)
        self.reader.read(job, self._ignored, self._changed_failed, owner=self)

    def _ignored(self, _result: None) -> None:
        self.reload()
        emit(self.changed)

    def _changed_failed(self, message: str) -> None:
        self._selected()
        emit(self.failed, message)
