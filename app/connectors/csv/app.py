"""The CSV connector: the file's table, and the ops applied to it; loading, the check that the
file is unchanged, the atomic save and the merge of rows appended meanwhile are the
single-file base's (``app.connectors.single_file``; see the package docstring)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator, Sequence

from app.connectors.csv.codec import _Codec, guard_formula
from app.connectors.csv.formats import DEFAULT_HEADER, ID_HEADER, _build_layout, _Layout
from app.connectors.csv.table import (
    _add,
    _Entry,
    _format_row,
    _NotACsv,
    _parse,
    _printable,
    _Row,
    _row_version,
    _split_terminator,
    _Table,
    _with_cell_appended,
    _write_text,
)
from app.connectors.decoding import Encoding
from app.connectors.single_file import SingleFileApp, Sink
from app.errors import Conflict, NotFitting, NotFound, Rejected, Unavailable
from app.model import (
    OPT_OUT_FIELD,
    AppInfo,
    Capabilities,
    Create,
    FieldSpec,
    Record,
    Schema,
    Unreadable,
    Update,
    WriteOp,
    WriteResult,
    parse_subscription,
)

# --- the connector ----------------------------------------------------------------------


class CsvApp(SingleFileApp[_Table]):
    """Connector over one CSV file (see the package docstring for formats and behaviour).

    Of the single-file base's choices: rows another program appended while a write was
    under way are appended to the new version too, and a file changed in any other way is
    read again and the ops applied again, up to five times."""

    WHAT = "CSV file"
    WRITE_ATTEMPTS = 5
    MERGES_APPENDS = True
    CHANGED_MESSAGE = (
        "The CSV file kept changing while syncing (another program is writing it); "
        "nothing was written, it is retried."
    )

    def __init__(
        self, path: str | os.PathLike[str], subscription: str = "", *, formula_guard: bool = True
    ) -> None:
        """``subscription``: the header of a column holding each contact's subscription
        status (``subscribed``/``unsubscribed``, yes/no, …), as the user designates it."""
        super().__init__(path)
        self.subscription = subscription.strip()
        self.formula_guard = formula_guard
        """Values a spreadsheet would run as formulas are written with a leading ``'`` (and
        read without it); off for files no spreadsheet opens."""
        self.info = AppInfo(
            kind="csv",
            name="CSV file",
            aliases=("spreadsheet", "excel", "outlook csv", "google csv"),
            capabilities=Capabilities(
                segments=True,
                chooses_ids=True,
                batch_size=5000,
                subscription=bool(self.subscription),
            ),
        )

    # --- loading -------------------------------------------------------------------------

    def _parse_file(self, data: bytes) -> _Table:
        try:
            return _parse(data)  # indexed as it is read
        except _NotACsv as err:
            raise Unavailable(
                f"The file {self.path} is not a CSV file: it holds {err}, not lines of text. "
                "Choose the CSV file, or export the contacts as CSV (comma-separated values)."
            ) from None

    def _empty(self) -> _Table:
        return _Table(None, None, [], Encoding("utf-8", b"\xef\xbb\xbf"), ",", "\r\n", False)

    def _write_to(self, sink: Sink, work: _Table) -> None:
        # A value the file's encoding cannot hold raises UnicodeError: nothing changed.
        _write_text(sink, work)

    def _saved(self, work: _Table) -> _Table:
        for row in work.rows:
            if row.raw is None and row.problem is None:
                # Written as this text: keep the text, not the cells (see _Row).
                row.raw = _format_row(row.cells, work.delimiter, work.quote_all) + work.newline
                row.delimiter = work.delimiter
                row.release()
        return work

    def _versions(self, book: _Table) -> dict[str, str]:
        return {rid: entry.version for rid, entry in book.entries.items()}

    def _layout(self, table: _Table) -> _Layout:
        if table.layout is None:
            return _build_layout(DEFAULT_HEADER)
        return table.layout

    def _item(self, table: _Table, rid: str) -> Record | Unreadable | None:
        entry = table.entries.get(rid)
        if entry is None:
            return None
        row = table.rows[entry.pos]
        if entry.problem is not None:
            return Unreadable(rid, entry.version, entry.problem, _printable(row.raw or ""))
        # Decoded anew each time, never cached: the engine keeps what it needs of a record
        # (packed), and a cache would hold every fetched contact twice (issue 18).
        assert table.layout is not None
        cells = row.cells
        rec = _Codec(table.layout, self.formula_guard).read(rid, entry.version, cells)
        rec.subscribed = self._status(table, cells)
        return rec

    def _status_col(self, table: _Table) -> int | None:
        if not self.subscription or table.header is None:
            return None
        wanted = self.subscription.casefold()
        for n, name in enumerate(table.header):
            if name.strip().casefold() == wanted:
                return n
        return None

    def _status(self, table: _Table, cells: list[str]) -> bool | None:
        col = self._status_col(table)
        if col is None or col >= len(cells):
            return None
        return parse_subscription(cells[col])

    # --- protocol ------------------------------------------------------------------------

    def fields(self) -> tuple[FieldSpec, ...]:
        return self._layout(self._load()).specs

    def schema(self) -> Schema:
        table = self._load()
        layout = self._layout(table)
        segments: set[str] = set()
        if table.layout is not None and layout.segment_col is not None:
            for rec in self._readable(table):
                segments |= rec.segments
        return Schema(layout.specs, tuple(sorted(segments)))

    def _stamped(self, book: _Table) -> _Table | None:
        """Every readable row without its id in its id cell gets the one it is read under
        (the ``Pairsync ID`` column added when missing)."""
        if book.header is None:
            return None
        work = book.copy()
        return work if self._stamp(work) else None

    def _stamp(self, work: _Table) -> bool:
        """Write every readable row's id into its id cell (adding the column when missing);
        True when a row or the header changed."""
        assert work.header is not None and work.layout is not None
        changed = work.layout.id_col is None
        id_col = self._ensure_id_column(work)
        width = len(work.header)
        id_last = id_col == width - 1
        for rid, entry in list(work.entries.items()):
            if entry.problem is not None or entry.id_in_cell:
                continue  # its id cell already holds its id (no need to parse the row)
            row = work.rows[entry.pos]
            if id_last and row.raw is not None and len(row.cells) <= id_col:
                # The id goes at the end of the row's own text: every byte the user wrote
                # stays as it was (quoting, spacing), only the id cell is added.
                work.rows[entry.pos] = _with_cell_appended(row, rid, id_col, work)
                work.entries[rid] = _Entry(entry.pos, entry.version, None, True)
                changed = True
                continue
            cells = list(row.cells[:width]) + [""] * max(0, width - len(row.cells))
            if cells[id_col].strip() == rid:
                continue
            cells[id_col] = rid
            work.rows[entry.pos] = _Row(cells, None)
            work.entries[rid] = _Entry(entry.pos, entry.version, None, True)
            changed = True
        return changed

    def _readable(self, book: _Table) -> Iterator[Record]:
        for rid in book.entries:
            rec = self._item(book, rid)
            if isinstance(rec, Record):
                yield rec

    # --- writing -------------------------------------------------------------------------

    def _apply_ops(
        self, book: _Table, ops: Sequence[WriteOp]
    ) -> tuple[list[WriteResult], _Table | None]:
        results, work, changed = self._apply_all(book, ops)
        if not changed:
            return results, None
        # A real write: every row's id becomes permanent, as the rows it touches' are.
        self._stamp(work)
        return results, work

    def _apply_all(
        self, table: _Table, ops: Sequence[WriteOp]
    ) -> tuple[list[WriteResult], _Table, bool]:
        work = table.copy()
        if work.header is None:
            work.header = list(DEFAULT_HEADER)
            work.header_raw = None
            work.layout = _build_layout(work.header)
        results: list[WriteResult] = []
        changed = False
        for op in ops:
            try:
                record, problem, did_change = self._apply(work, op)
            except (Rejected, Conflict, NotFound) as err:
                results.append(WriteResult(op.op_id, error=err))
                continue
            changed = changed or did_change
            error: Rejected | None = None
            if problem is not None:
                message, key, left = problem
                if left:
                    error = NotFitting(message, field=key, values=tuple(left))
                else:
                    error = Rejected(message, field=key)
            results.append(WriteResult(op.op_id, record=record, error=error))
        return results, work, changed

    def _ensure_id_column(self, work: _Table) -> int:
        assert work.header is not None and work.layout is not None
        if work.layout.id_col is not None:
            return work.layout.id_col
        # Rows that are not touched stay short; short rows read as if padded with "".
        if work.header_raw is not None:
            body, newline = _split_terminator(work.header_raw)
            cell = _format_row([ID_HEADER], work.delimiter, work.quote_all)
            work.header_raw = body + work.delimiter + cell + (newline or work.newline)
        work.header.append(ID_HEADER)
        work.layout = _build_layout(work.header)
        assert work.layout.id_col is not None
        return work.layout.id_col

    def _apply(
        self, work: _Table, op: WriteOp
    ) -> tuple[Record, tuple[str, str, list[str]] | None, bool]:
        """Apply one op to ``work``: the record as now stored, the first problem (sentence,
        field key, the values that did not fit — empty when the problem is not about room)
        and whether the row changed."""
        id_col = self._ensure_id_column(work)
        assert work.header is not None and work.layout is not None
        layout = work.layout
        codec = _Codec(layout, self.formula_guard)
        width = len(work.header)
        if isinstance(op, Create):
            rid = op.new_id or uuid.uuid4().hex
            if rid in work.entries:
                raise Conflict(f"A contact with id {rid} already exists in the CSV file.")
            cells = [""] * width
            cells[id_col] = rid
            current = Record(rid, "", {})
            fields = dict(op.fields)
            add, remove = op.segments, frozenset[str]()
            pos: int | None = None
            old_cells: list[str] = []
        else:
            assert isinstance(op, Update)
            rid = op.record_id
            entry = work.entries.get(rid)
            if entry is None:
                raise NotFound("The contact is no longer in the CSV file.")
            if entry.problem is not None:
                raise Rejected(f"{entry.problem} Fix the row in the file; it was not changed.")
            if op.expected_version is not None and entry.version != op.expected_version:
                raise Conflict("The contact changed in the CSV file while syncing; it is retried.")
            found = self._item(work, rid)
            assert isinstance(found, Record)
            current = found
            pos = entry.pos
            old_cells = work.rows[pos].cells
            cells = list(old_cells[:width]) + [""] * max(0, width - len(old_cells))
            cells[id_col] = rid
            fields = dict(op.fields)
            add, remove = op.add_segments, op.remove_segments
        problem: tuple[str, str, list[str]] | None = None
        if OPT_OUT_FIELD in fields:
            opt = str(fields.pop(OPT_OUT_FIELD))
            col = self._status_col(work)
            if col is None:
                problem = (
                    f"The CSV file has no column {self.subscription or 'for subscriptions'!r}; "
                    "the opt-out was not recorded.",
                    OPT_OUT_FIELD,
                    [],
                )
            elif parse_subscription(cells[col]) is not parse_subscription(opt):
                cells[col] = "unsubscribed" if parse_subscription(opt) is False else "subscribed"
        for key, value in fields.items():
            message = codec.write_field(cells, key, value, current)
            if message and problem is None:
                problem = (message, key, codec.left_out.get(key, []))
        message = codec.write_segments(cells, add, remove)
        if message and problem is None:
            problem = (message, "segments", [])
        if self.formula_guard:  # only cells this write changed: the user's own are theirs
            for n, text in enumerate(cells):
                if n != id_col and (n >= len(old_cells) or old_cells[n] != text):
                    cells[n] = guard_formula(text)
        self._check_encoding(work, cells, old_cells)
        version = _row_version(cells, width, id_col)
        if pos is not None and cells == old_cells:
            record = current
            return record, problem, False
        row = _Row(cells, None)
        if pos is None:
            pos = len(work.rows)
            work.rows.append(row)
        else:
            work.rows[pos] = row
        old_id = work.ids_by_pos[pos] if pos < len(work.ids_by_pos) else None
        if old_id is not None and old_id != rid:
            work.entries.pop(old_id, None)
        _add(work, rid, pos, version, None, True)
        record = codec.read(rid, version, cells)
        record.subscribed = self._status(work, cells)
        return record, problem, True

    def _check_encoding(self, work: _Table, cells: list[str], old: list[str]) -> None:
        codec = work.encoding.codec
        if codec.startswith("utf"):
            return
        for n, cell in enumerate(cells):
            if n < len(old) and old[n] == cell:
                continue
            try:
                cell.encode(codec)
            except UnicodeEncodeError as err:
                bad = cell[err.start : err.end]
                name = work.header[n] if work.header and n < len(work.header) else "a cell"
                raise Rejected(
                    f"The CSV file is saved as {work.encoding.describe()}, which cannot hold "
                    f"{bad!r} (in {name.strip()}); the contact was not changed.",
                    field=name,
                ) from err
