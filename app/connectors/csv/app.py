"""The CSV connector: load the file, check it is unchanged before a write, apply the ops to the
table, save it atomically (see the package docstring)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
import uuid
from collections.abc import Iterable, Sequence
from pathlib import Path

from app.connectors.base import ChangeSet
from app.connectors.csv.codec import _Codec
from app.connectors.csv.formats import DEFAULT_HEADER, ID_HEADER, _build_layout, _Layout
from app.connectors.csv.table import (
    _add,
    _Entry,
    _format_row,
    _Hashing,
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
from app.connectors.file_writes import (
    is_read_only,
    read_only_message,
    remove_stale_temps,
    replace_file,
)
from app.errors import Conflict, NotFitting, NotFound, ReadOnlyFile, Rejected, Unavailable
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
    email_key,
    parse_subscription,
    record_emails,
)

# --- the connector ----------------------------------------------------------------------


class CsvApp:
    """Connector over one CSV file (see the module docstring for formats and behaviour)."""

    def __init__(self, path: str | os.PathLike[str], subscription: str = "") -> None:
        """``subscription``: the header of a column holding each contact's subscription
        status (``subscribed``/``unsubscribed``, yes/no, …), as the user designates it."""
        self.path = Path(path)
        self.subscription = subscription.strip()
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
        self._cache: _Table | None = None
        self._cache_key: tuple[int, int, int] | None = None
        self._cache_digest: bytes | None = None

    # --- loading -------------------------------------------------------------------------

    def _check_folder(self) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            raise Unavailable(
                f"The folder {folder} does not exist, so the CSV file {self.path.name} "
                "cannot be read or created. Create the folder or choose another file."
            )
        if self.path.is_dir():
            raise Unavailable(f"{self.path} is a folder, not a CSV file.")

    def _load(self) -> _Table:
        self._check_folder()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._empty_table()
        except OSError as err:
            raise Unavailable(f"The CSV file {self.path} cannot be read: {err.strerror}.") from err
        key = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._cache is not None and self._cache_key == key:
            return self._cache
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._empty_table()
        except OSError as err:
            raise Unavailable(f"The CSV file {self.path} cannot be read: {err.strerror}.") from err
        digest = _digest(data)
        key = (st.st_mtime_ns, len(data), st.st_ino)  # what was read, not what was stat'ed
        # The bytes are passed on, not kept here: _parse lets go of them once decoded.
        try:
            table = _parse(data)  # indexed as it is read
        except _NotACsv as err:
            raise Unavailable(
                f"The file {self.path} is not a CSV file: it holds {err}, not lines of text. "
                "Choose the CSV file, or export the contacts as CSV (comma-separated values)."
            ) from None
        del data
        self._cache, self._cache_key, self._cache_digest = table, key, digest
        return table

    def _empty_table(self) -> _Table:
        self._cache, self._cache_key, self._cache_digest = None, None, None
        return _Table(None, None, [], Encoding("utf-8", b"\xef\xbb\xbf"), ",", "\r\n", False)

    def _read_as(self) -> tuple[tuple[int, int, int] | None, bytes | None]:
        """What the table last loaded was read from: its stat key and content digest."""
        return self._cache_key, self._cache_digest

    def _check_unchanged(self, read_as: tuple[tuple[int, int, int] | None, bytes | None]) -> None:
        """Raise ``_FileChanged`` when the file is no longer what the table was read from:
        another program wrote it meanwhile (a spreadsheet saving, a script appending rows).
        Size, mtime and inode first; when the mtime is too recent to tell two writes apart
        on a coarse clock, the content's digest too."""
        key, digest = read_as
        if key is not None and time.time_ns() - key[0] < _COARSE_CLOCK_NS:
            try:
                again = _digest(self.path.read_bytes())
            except FileNotFoundError:
                raise _FileChanged from None
            except OSError:
                raise _FileChanged from None
            if again != digest:
                raise _FileChanged
        # The status last: the file is replaced right after this check, so the moment
        # another program's write could still slip in between is as short as it can be.
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if key is not None:
                raise _FileChanged from None
            return
        if (st.st_mtime_ns, st.st_size, st.st_ino) != key:
            raise _FileChanged

    def _layout(self, table: _Table) -> _Layout:
        if table.layout is None:
            return _build_layout(DEFAULT_HEADER)
        return table.layout

    def _record(self, table: _Table, rid: str) -> Record | Unreadable | None:
        entry = table.entries.get(rid)
        if entry is None:
            return None
        row = table.rows[entry.pos]
        if entry.problem is not None:
            return Unreadable(rid, entry.version, entry.problem, _printable(row.raw or ""))
        rec = table.records.get(entry.pos)
        if rec is None or rec.id != rid:
            assert table.layout is not None
            cells = row.cells
            rec = _Codec(table.layout).read(rid, entry.version, cells)
            rec.subscribed = self._status(table, cells)
            table.records[entry.pos] = rec
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
            for rid in table.entries:
                rec = self._record(table, rid)
                if isinstance(rec, Record):
                    segments |= rec.segments
        return Schema(layout.specs, tuple(sorted(segments)))

    def prepare(self) -> None:
        """Make the ids ``list_versions`` reports permanent: the ``Pairsync ID`` column is
        added when missing and every readable row without an id gets the one it is read
        under (one atomic rewrite; nothing is written when every row has its id). The engine
        does not call this: ``write`` stamps ids as part of a real write."""
        table = self._load()
        if table.header is None:
            return
        read_as = self._read_as()
        work = table.copy()
        if self._stamp(work):
            with contextlib.suppress(_FileChanged):  # edited meanwhile: stamped next time
                self._save(work, read_as)

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

    def list_versions(self) -> dict[str, str]:
        # What a write killed half-way left beside the file (our own temporary files only).
        remove_stale_temps(self.path)
        table = self._load()
        return {rid: entry.version for rid, entry in table.entries.items()}

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        table = self._load()
        out: list[Record | Unreadable] = []
        for rid in ids:
            rec = self._record(table, rid)
            if rec is not None:
                out.append(rec)
        return out

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        keys = {email_key(e) for e in emails}
        table = self._load()
        found: list[Record] = []
        for rid in table.entries:
            rec = self._record(table, rid)
            if isinstance(rec, Record) and keys & {email_key(e) for e in record_emails(rec)}:
                found.append(rec)
        return found

    def changes(self, cursor: str | None) -> ChangeSet | None:
        return None

    def close(self) -> None:
        pass

    # --- writing -------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply ``ops`` to the file as it is now, and replace it once. When another program
        changed the file between reading and replacing it (rows appended, the file saved
        from a spreadsheet), nothing of theirs is lost: the file is read again and the ops
        applied to it again (an update of a row they edited is then a ``Conflict``, retried
        next run); after ``_WRITE_ATTEMPTS`` tries every op is a ``Conflict``."""
        if len(ops) > self.info.capabilities.batch_size:
            raise ValueError(f"batch of {len(ops)} exceeds {self.info.capabilities.batch_size}")
        for _attempt in range(_WRITE_ATTEMPTS):
            table = self._load()
            if is_read_only(self.path):
                error = ReadOnlyFile(read_only_message(self.path))
                return [WriteResult(op.op_id, error=error) for op in ops]
            read_as = self._read_as()
            results, work, changed = self._apply_all(table, ops)
            if not changed:
                return results
            # A real write: every row's id becomes permanent, as the rows it touches' are.
            self._stamp(work)
            try:
                self._save(work, read_as)
            except _FileChanged:
                continue
            return results
        conflict = Conflict(
            "The CSV file kept changing while syncing (another program is writing it); "
            "nothing was written, it is retried."
        )
        return [r if not r.ok else WriteResult(r.op_id, error=conflict) for r in results]

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
        work.records = {}
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
        codec = _Codec(layout)
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
            found = self._record(work, rid)
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
        old_id = work.ids_by_pos.get(pos)
        if old_id is not None and old_id != rid:
            work.entries.pop(old_id, None)
        _add(work, rid, pos, version, None, True)
        record = codec.read(rid, version, cells)
        record.subscribed = self._status(work, cells)
        # Not cached: the engine keeps what it needs of a written record; a later read of
        # this row decodes its cells again.
        work.records.pop(pos, None)
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

    def _save(
        self, work: _Table, read_as: tuple[tuple[int, int, int] | None, bytes | None]
    ) -> None:
        """Replace the file with ``work``. When another program changed the file since it
        was read as ``read_as``: rows it only appended are appended to the new version too,
        byte for byte (checked again until the file holds still); any other change raises
        ``_FileChanged`` and the file is left as the other program wrote it."""
        self._check_folder()
        digest = hashlib.blake2b(digest_size=16)
        caught_up = False

        def catch_up(tmp_name: str) -> None:
            nonlocal read_as, caught_up
            for _ in range(_CATCH_UP_ROUNDS):
                try:
                    self._check_unchanged(read_as)
                    return
                except _FileChanged:
                    tail, read_as = self._appended_since(read_as)
                with open(tmp_name, "ab") as handle:
                    handle.write(tail)
                    handle.flush()
                    os.fsync(handle.fileno())
                caught_up = True
            raise _FileChanged

        try:
            # A value the file's encoding cannot hold raises UnicodeError: nothing changed.
            st = replace_file(
                self.path,
                lambda handle: _write_text(_Hashing(handle, digest), work),
                catch_up=catch_up,
            )
        except OSError as err:
            raise Unavailable(
                f"The CSV file {self.path} could not be written: {err.strerror or err}."
            ) from err
        for row in work.rows:
            if row.raw is None and row.problem is None:
                # Written as this text: keep the text, not the cells (see _Row).
                row.raw = _format_row(row.cells, work.delimiter, work.quote_all) + work.newline
                row.delimiter = work.delimiter
                row.release()
        if caught_up:
            # The file holds rows ``work`` does not: read it again next time.
            self._cache, self._cache_key, self._cache_digest = None, None, None
            return
        self._cache, self._cache_key = work, (st.st_mtime_ns, st.st_size, st.st_ino)
        self._cache_digest = digest.digest()

    def _appended_since(
        self, read_as: tuple[tuple[int, int, int] | None, bytes | None]
    ) -> tuple[bytes, tuple[tuple[int, int, int] | None, bytes | None]]:
        """What another program appended to the file since it was read as ``read_as``, and
        how the file reads now; ``_FileChanged`` when it changed in any other way."""
        key, digest = read_as
        if key is None:
            raise _FileChanged  # created meanwhile: not ours to merge
        try:
            st = os.stat(self.path)
            data = self.path.read_bytes()
        except OSError:
            raise _FileChanged from None
        size = key[1]
        if len(data) < size or _digest(data[:size]) != digest:
            raise _FileChanged
        # The size is what was read (rows appended after the stat are in ``data``): the
        # next check sees any difference from the file as it then is.
        return data[size:], ((st.st_mtime_ns, len(data), st.st_ino), _digest(data))


_WRITE_ATTEMPTS = 5
_CATCH_UP_ROUNDS = 50
_COARSE_CLOCK_NS = 3_000_000_000
"""Within this long of a file's mtime a second write may leave the same mtime (FAT: 2 s)."""


class _FileChanged(Exception):
    """The file changed since it was read: it is not replaced."""


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()
