"""Qt models over paged store queries: Health and Activity lists of any length.

A list of 100k contacts is never loaded at once: the model holds what has been scrolled to
and asks for the next page (a keyset query: "the 200 rows after this one") when the view
reaches the end (``canFetchMore``/``fetchMore``). A new search or filter resets the model to
its first page. Each page is one indexed query of a few milliseconds, so scrolling stays
smooth.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Generic, TypeAlias, TypeVar

from PySide6.QtCore import QAbstractTableModel, QModelIndex, QPersistentModelIndex, Qt

Index: TypeAlias = QModelIndex | QPersistentModelIndex
Row = TypeVar("Row")
PAGE = 200
RowRole = Qt.ItemDataRole.UserRole + 10
"""data(index, RowRole) is the row object itself."""


@dataclass(frozen=True, slots=True)
class Column(Generic[Row]):
    title: str
    text: Callable[[Row], str]


class PagedModel(QAbstractTableModel, Generic[Row]):
    """Rows from ``fetch(after, limit)``; ``key(row)`` is what the next page starts after."""

    def __init__(
        self,
        columns: Sequence[Column[Row]],
        key: Callable[[Row], Any],
        parent: Any = None,
        page: int = PAGE,
    ) -> None:
        super().__init__(parent)
        self.columns = list(columns)
        self.key = key
        self.page = page
        self.rows: list[Row] = []
        self._fetch: Callable[[Any, int], Sequence[Row]] | None = None
        self._more = False

    def load(self, fetch: Callable[[Any, int], Sequence[Row]] | None) -> None:
        """Show what ``fetch`` returns, from its first page (None: an empty list)."""
        self.beginResetModel()
        self._fetch = fetch
        self.rows = []
        self._more = fetch is not None
        if fetch is not None:
            self._append(fetch(None, self.page))
        self.endResetModel()

    def reload(self) -> None:
        """The first page again (after a run changed what the list shows)."""
        self.load(self._fetch)

    def _append(self, rows: Sequence[Row]) -> None:
        self.rows.extend(rows)
        self._more = len(rows) >= self.page

    def canFetchMore(self, parent: Index = QModelIndex()) -> bool:  # noqa: B008
        return not parent.isValid() and self._more and self._fetch is not None

    def fetchMore(self, parent: Index = QModelIndex()) -> None:  # noqa: B008
        if parent.isValid() or not self._more or self._fetch is None or not self.rows:
            return
        rows = self._fetch(self.key(self.rows[-1]), self.page)
        if rows:
            first = len(self.rows)
            self.beginInsertRows(QModelIndex(), first, first + len(rows) - 1)
            self._append(rows)
            self.endInsertRows()
        else:
            self._more = False

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
