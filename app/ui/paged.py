"""Qt models over paged store queries: Health and Activity lists of any length.

A list of 100k contacts is never loaded at once: the model holds what has been scrolled to
and asks for the next page (a keyset query: "the 200 rows after this one") when the view
reaches the end (``canFetchMore``/``fetchMore``). A new search or filter resets the model to
its first page. Every page is read off the GUI thread (``app.ui.reader``): most are a few
milliseconds, but a search that matches nothing scans the whole list, and the window must
not wait for it.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeAlias, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt, Signal

from app.service import Service
from app.ui.reader import ImmediateReader, Reader
from app.ui.signals import emit

Index: TypeAlias = QModelIndex | QPersistentModelIndex
Row = TypeVar("Row")
PAGE = 200
RowRole = Qt.ItemDataRole.UserRole + 10
"""data(index, RowRole) is the row object itself."""


@dataclass(frozen=True, slots=True)
class Column(Generic[Row]):
    title: str
    text: Callable[[Row], str]


Fetch: TypeAlias = Callable[[Service, Any, int], Sequence[Row]]
"""``fetch(service, after, limit)``: one page, on a reader thread with its own Service."""


class PagedModel(QAbstractTableModel, Generic[Row]):
    """Rows from ``fetch(service, after, limit)``; ``key(row)`` is what the next page starts
    after. Pages are read by ``reader`` off the GUI thread; an answer for a list the model no
    longer shows (a newer search, another connection) is dropped."""

    loaded = Signal()
    """The first page of the current list is in (also when it is empty)."""
    failed = Signal(str)

    def __init__(
        self,
        columns: Sequence[Column[Row]],
        key: Callable[[Row], Any],
        parent: Any = None,
        page: int = PAGE,
        reader: Reader | ImmediateReader | None = None,
    ) -> None:
        super().__init__(parent)
        self.columns = list(columns)
        self.key = key
        self.page = page
        self.reader = reader
        self.rows: list[Row] = []
        self._fetch: Fetch[Row] | None = None
        self._more = False
        self._generation = 0
        self.loading = False
        """The first page of the current list is being read."""
        self._paging = False

    def load(self, fetch: Fetch[Row] | None, *, keep: bool = False) -> None:
        """Show what ``fetch`` returns, from its first page (None: an empty list). With
        ``keep`` the rows shown stay until the new ones are in (a new search of the same
        list); without, the list empties at once (another connection)."""
        self._generation += 1
        self._fetch = fetch
        self._paging = False
        if not keep or fetch is None:
            self.beginResetModel()
            self.rows = []
            self._more = False
            self.endResetModel()
        if fetch is None or self.reader is None:
            self.loading = False
            if fetch is None:
                emit(self.loaded)
            return
        self.loading = True
        generation, limit = self._generation, self.page
        self.reader.read(
            lambda svc: fetch(svc, None, limit),
            lambda rows: self._first(generation, rows),
            lambda message: self._failed(generation, message),
            slot=("first", id(self)),
            owner=self,
        )

    def reload(self) -> None:
        """The first page again (after a run changed what the list shows)."""
        self.load(self._fetch, keep=True)

    def _first(self, generation: int, rows: Sequence[Row]) -> None:
        if generation != self._generation:
            return
        self.loading = False
        self.beginResetModel()
        self.rows = list(rows)
        self._more = len(rows) >= self.page
        self.endResetModel()
        emit(self.loaded)

    def _failed(self, generation: int, message: str) -> None:
        if generation != self._generation:
            return
        self.loading = self._paging = False
        self._more = False
        emit(self.failed, message)

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._more and self._fetch is not None

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        fetch = self._fetch
        if parent.isValid() or not self._more or fetch is None or not self.rows:
            return
        if self._paging or self.loading or self.reader is None:
            return
        self._paging = True
        generation, after, limit = self._generation, self.key(self.rows[-1]), self.page
        self.reader.read(
            lambda svc: fetch(svc, after, limit),
            lambda rows: self._next(generation, rows),
            lambda message: self._failed(generation, message),
            owner=self,
        )

    def _next(self, generation: int, rows: Sequence[Row]) -> None:
        if generation != self._generation:
            return
        self._paging = False
        self._more = len(rows) >= self.page
        if rows:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self.rows.extend(rows)
            self.endInsertRows()

    def row(self, index: Index | int) -> Row | None:
        i = index if isinstance(index, int) else index.row()
        return self.rows[i] if 0 <= i < len(self.rows) else None

    def rowCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.rows)

    def columnCount(self, parent: Index = QModelIndex()) -> int:  # noqa: B008
        return 0 if parent.isValid() else len(self.columns)

    def headerData(
        self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole
    ) -> Any:
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return self.columns[section].title
        return None

    def data(self, index: Index, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or not 0 <= index.row() < len(self.rows):
            return None
        row = self.rows[index.row()]
        if role == RowRole:
            return row
        if role in (
            Qt.ItemDataRole.DisplayRole,
            Qt.ItemDataRole.ToolTipRole,
            Qt.ItemDataRole.AccessibleTextRole,
        ):
            return self.columns[index.column()].text(row)
        return None


# --- words for stored values ------------------------------------------------------------


def value_text(value: Any) -> str:
    """A stored field value (journal, conflicts) as a person reads it."""
    if value is None or value == "" or value == []:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = []
        for item in value:
            if isinstance(item, dict) and "v" in item:
                parts.append(str(item["v"]))
            elif isinstance(item, dict) and "a" in item:
                parts.append(", ".join(p for p in item["a"] if p))
            else:
                parts.append(str(item))
        return "; ".join(p for p in parts if p) or "—"
    return json.dumps(value, ensure_ascii=False)


def local_time(when: datetime | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A stored time (UTC; SQLite returns it without a zone) in the user's local time."""
    if when is None:
        return ""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone().strftime(fmt)
