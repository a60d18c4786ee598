"""The file as text: its encoding, delimiter and newline, rows parsed one by one (a broken
row is unreadable alone and kept byte for byte), the id index, and the text written back."""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

from app.connectors.csv.formats import (
    _ID_RE,
    _build_layout,
    _Layout,
)
from app.connectors.decoding import ESCAPED_BYTE, Encoding, decode_csv
from app.connectors.single_file import Sink

# --- the file as text -------------------------------------------------------------------


_NEWLINE = re.compile(r"\r\n|\n|\r")
# One line with its terminator (\r\n, \n or \r), or the last line without one.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\n|\r)|[^\r\n]+")
_NON_SPACE = re.compile(r"\S")


def _lines(text: str, start: int = 0) -> Iterator[str]:
    """The lines of ``text[start:]``, as ``io.StringIO(text[start:], newline="")`` gives them,
    without copying the text (StringIO holds 4 bytes per character)."""
    for m in _LINE.finditer(text, start):
        yield m.group()


class _LineFeeder:
    """Feeds lines to ``csv.reader`` and remembers the raw text of each record."""

    def __init__(self, text: str, start: int = 0) -> None:
        self._it = _lines(text, start)
        self.taken: list[str] = []

    def __iter__(self) -> Iterator[str]:
        return self

    def __next__(self) -> str:
        line = next(self._it)
        self.taken.append(line)
        return line


class _Row:
    """One record of the file: its cells, and the text it was read from.

    A row read from the file keeps only its text once indexed (``release``): its cells are
    parsed again from that text when asked for (``cells``), which gives the very same cells
    (the same reader on the same lines) and keeps one string per row in memory instead of
    a list of strings. Rows without text (changed, new) and rows that could not be read
    keep their cells.
    """

    __slots__ = ("_cells", "delimiter", "problem", "raw")

    def __init__(
        self,
        cells: list[str],
        raw: str | None,  # the text as read (with its line terminator); None once changed
        problem: str | None = None,  # set for rows that cannot be read
        delimiter: str = ",",
    ) -> None:
        self._cells: list[str] | None = cells
        self.raw = raw
        self.problem = problem
        self.delimiter = delimiter

    @property
    def cells(self) -> list[str]:
        if self._cells is not None:
            return self._cells
        assert self.raw is not None
        reader = csv.reader(
            io.StringIO(self.raw, newline=""), delimiter=self.delimiter, quotechar='"', strict=False
        )
        return next(reader, [])

    def release(self) -> None:
        """Forget the cells of a row read from the file (parsed again from ``raw``)."""
        if self.raw is not None and self.problem is None:
            self._cells = None


@dataclass(slots=True)
class _Entry:
    pos: int  # index in Table.rows
    version: str
    problem: str | None = None  # Unreadable message
    id_in_cell: bool = False  # the row's id cell holds this id (as indexed)


@dataclass(slots=True)
class _Table:
    header: list[str] | None
    header_raw: str | None
    rows: list[_Row]
    encoding: Encoding
    delimiter: str
    newline: str
    quote_all: bool
    preamble: str = ""
    layout: _Layout | None = None
    entries: dict[str, _Entry] = field(default_factory=dict)
    ids_by_pos: list[str | None] = field(default_factory=list)
    """The id of the row at each position (None: the row has none). A list, not a dict:
    it is copied on every write, and at 100,000 rows a dict is ten times its size."""

    def copy(self) -> _Table:
        return _Table(
            header=None if self.header is None else list(self.header),
            header_raw=self.header_raw,
            rows=list(self.rows),
            encoding=self.encoding,
            delimiter=self.delimiter,
            newline=self.newline,
            quote_all=self.quote_all,
            preamble=self.preamble,
            layout=self.layout,
            entries=dict(self.entries),
            ids_by_pos=list(self.ids_by_pos),
        )


def _sniff_delimiter(line: str) -> str:
    counts = {d: 0 for d in (",", ";", "\t")}
    quoted = False
    for ch in line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _format_row(cells: Sequence[str], delimiter: str, quote_all: bool) -> str:
    out = []
    for cell in cells:
        if quote_all or (
            cell
            and (
                delimiter in cell
                or '"' in cell
                or "\n" in cell
                or "\r" in cell
                or cell[0] in " \t"
                or cell[-1] in " \t"
            )
        ):
            out.append('"' + cell.replace('"', '""') + '"')
        else:
            out.append(cell)
    if len(cells) == 1 and not quote_all and not cells[0]:
        return '""'
    return delimiter.join(out)


def _hash(parts: Iterable[str]) -> str:
    return hashlib.sha1("\x1f".join(parts).encode("utf-8", "surrogatepass")).hexdigest()


_SAMPLE = 65536
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SIGNATURES = (
    (b"PK\x03\x04", "an Excel workbook or another zip archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an Excel 97-2003 workbook"),
    (b"%PDF-", "a PDF document"),
    (b"SQLite format 3\x00", "an SQLite database"),
)


class _NotACsv(Exception):
    """The file is not text at all (what it seems to be is the message)."""


def _binary_kind(data: bytes) -> str | None:
    for signature, what in _SIGNATURES:
        if data.startswith(signature):
            return what
    return None


def _parse(data: bytes) -> _Table:
    """Read the file's text into an indexed table (see ``_index``).

    Each row is indexed as soon as it is read, and then keeps only its text: the cells of
    all rows are never in memory at once. The result is the same as indexing all rows after
    reading them (``_index``): the same ``_Indexer`` sees the same rows in the same order.
    """
    what = _binary_kind(data)
    if what:
        raise _NotACsv(what)
    encoding, text = decode_csv(data)
    del data  # the text is all that is needed now (the caller keeps no reference either)
    head = text[:_SAMPLE]
    if len(_CONTROL.findall(head)) > max(8, len(head) // 100):
        raise _NotACsv("binary data")
    del head
    m = _NEWLINE.search(text)
    newline = m.group(0) if m else "\r\n"
    preamble = ""
    start = 0  # where the header starts in text (no copy of the text without its preamble)
    sep = re.match(r"^sep=(.)[ \t]*(\r\n|\n|\r|$)", text)
    delimiter: str | None = None
    if sep:
        preamble = sep.group(0)
        delimiter = sep.group(1)
        start = len(preamble)
    while start < len(text) and text[start] in "\r\n":  # blank lines before the header
        blank = _NEWLINE.match(text, start)
        assert blank
        preamble += blank.group(0)
        start = blank.end()
    table = _Table(None, None, [], encoding, delimiter or ",", newline, False, preamble)
    if not _NON_SPACE.search(text, start):  # only whitespace (text[start:].strip() == "")
        return table
    if delimiter is None:
        end = _NEWLINE.search(text, start)
        table.delimiter = _sniff_delimiter(text[start : end.start() if end else len(text)])
    feeder = _LineFeeder(text, start)
    reader = csv.reader(feeder, delimiter=table.delimiter, quotechar='"', strict=False)
    indexer: _Indexer | None = None
    sample: tuple[str, list[str]] | None = None  # the first readable row with cells
    while True:
        feeder.taken = []
        problem: str | None = None
        try:
            cells = next(reader)
        except StopIteration:
            if feeder.taken:  # an unterminated quote swallowed the end of the file
                row = _Row([], "".join(feeder.taken), "broken quoting", table.delimiter)
                table.rows.append(row)
                if indexer is not None:
                    indexer.add(len(table.rows) - 1, row)
            break
        except csv.Error as err:
            cells, problem = [], f"broken CSV ({err})"
        raw = "".join(feeder.taken)
        if table.header is None and problem is None:
            table.header = cells
            table.header_raw = raw
            # Rows before the header (unreadable ones) are indexed now, in order.
            indexer = _Indexer(table)
            for pos, row in enumerate(table.rows):
                indexer.add(pos, row)
            continue
        if sample is None and cells and problem is None:
            sample = (raw, cells)
        row = _Row(cells, raw, problem, table.delimiter)
        table.rows.append(row)
        if indexer is not None:
            indexer.add(len(table.rows) - 1, row)
    if table.header is None:
        return table  # no readable row at all: no contacts (as _index gives)
    probe, probe_cells = sample if sample is not None else (table.header_raw, table.header)
    if probe is not None:
        stripped = probe.rstrip("\r\n")
        table.quote_all = stripped == _format_row(probe_cells, table.delimiter, True)
    return table


def _index(table: _Table) -> None:
    """Give every row its id and version; mark unreadable and duplicate rows."""
    if table.header is None:
        table.entries = {}
        table.ids_by_pos = []
        table.layout = None
        return
    indexer = _Indexer(table)
    for pos, row in enumerate(table.rows):
        indexer.add(pos, row)


class _Indexer:
    """Indexes the rows of a table one at a time, in file order (from the first row on).

    Each row gets its id and version (or is marked unreadable or a duplicate) from its own
    cells and what earlier rows gave; once indexed it keeps only its text (``_Row.release``).
    """

    def __init__(self, table: _Table) -> None:
        assert table.header is not None
        table.entries = {}
        table.ids_by_pos = []
        table.layout = _build_layout(table.header)
        self.table = table
        self.occurrences: dict[str, int] = {}
        self.first_row: dict[str, int] = {}
        self.width = len(table.header)
        self.id_col = table.layout.id_col

    def add(self, pos: int, row: _Row) -> None:
        self._index_row(pos, row)
        row.release()  # indexed: the text is enough (see _Row)

    def _index_row(self, pos: int, row: _Row) -> None:
        table, width, id_col = self.table, self.width, self.id_col
        number = pos + 2
        problem = row.problem
        cells = row.cells
        if problem is None and not any(c.strip() for c in cells):
            return  # blank line: kept, but no contact
        if problem is None and len(cells) > width and any(c.strip() for c in cells[width:]):
            problem = f"has {len(cells)} cells but the header has {width}"
        text = row.raw or "".join(cells)
        if problem is None and ESCAPED_BYTE.search(text):
            problem = f"contains bytes that are not valid {table.encoding.describe()} text"
        if problem is None and "\x00" in text:
            # A NUL is binary data: no contact app takes it (a vCard with one is broken).
            problem = "contains a NUL character (binary data), which no contact app accepts"
        if problem is None and row.raw is not None and '"' in row.raw:
            problem = _strict_problem(row.raw, table.delimiter)
        rid = ""
        if id_col is not None and id_col < len(cells):
            rid = cells[id_col].strip()
        if problem is not None:
            if not _ID_RE.match(rid):
                hex_ids = {c.strip() for c in cells if _ID_RE.match(c.strip())}
                rid = hex_ids.pop() if len(hex_ids) == 1 else ""
            digest = _hash([row.raw or ""])
            if not rid or rid in table.entries:
                rid = _derived_id(digest, self.occurrences)
            _add(table, rid, pos, digest[:16], f"Row {number} {problem}.")
            return
        version = _row_version(cells, width, id_col)
        if rid and rid in table.entries:
            other = self.first_row.get(rid)
            where = f"row {other}" if other else "another row"
            message = (
                f"Row {number} repeats the Pairsync ID of {where} ({rid}); it looks like a "
                "copied row. Clear its Pairsync ID cell to make it a new contact, or delete it."
            )
            _add(table, _derived_id(_hash([version, rid]), self.occurrences), pos, version, message)
            return
        in_cell = bool(rid)
        if not rid:
            rid = _derived_id(_hash(_padded(cells, width, id_col)), self.occurrences)
        self.first_row[rid] = number
        _add(table, rid, pos, version, None, in_cell)


def _split_terminator(raw: str) -> tuple[str, str]:
    """A row's text and its line terminator ("" for a last line without one)."""
    for end in ("\r\n", "\n", "\r"):
        if raw.endswith(end):
            return raw[: -len(end)], end
    return raw, ""


def _with_cell_appended(row: _Row, value: str, col: int, table: _Table) -> _Row:
    """``row`` with ``value`` as its cell number ``col`` (past its last cell), written at
    the end of its own text."""
    cells = row.cells
    body, newline = _split_terminator(row.raw or "")
    pad = table.delimiter * (col - len(cells))
    cell = _format_row([value], table.delimiter, table.quote_all)
    new = _Row(
        [*cells, *([""] * (col - len(cells))), value],
        body + pad + table.delimiter + cell + newline,
        None,
        table.delimiter,
    )
    new.release()
    return new


_WELL_QUOTED: dict[str, re.Pattern[str]] = {}


def _well_quoted(delimiter: str) -> re.Pattern[str]:
    """A record whose quoted cells are all closed right before a delimiter or the end:
    what the strict reader accepts (a quote inside an unquoted cell is fine)."""
    pattern = _WELL_QUOTED.get(delimiter)
    if pattern is None:
        d = re.escape(delimiter)
        cell = f'(?:"(?:[^"]|"")*"|(?:[^"{d}\\r\\n][^{d}\\r\\n]*)?)'
        pattern = re.compile(f"{cell}(?:{d}{cell})*(?:\\r\\n|\\n|\\r)?")
        _WELL_QUOTED[delimiter] = pattern
    return pattern


def _strict_problem(raw: str, delimiter: str) -> str | None:
    """A row the lenient reader accepted but whose quoting is broken (text after a closing
    quote, as in ``Eve,"Broken,eve@x.com,1,"x``): unreadable, so it is kept byte for byte
    rather than read as something the user did not write and written back that way."""
    if _well_quoted(delimiter).fullmatch(raw):
        return None  # the common case, without a second parse
    reader = csv.reader(io.StringIO(raw, newline=""), delimiter=delimiter, strict=True)
    try:
        for _cells in reader:
            pass
    except csv.Error as err:
        return f"has broken quoting ({err})"
    return None


def _printable(raw: str) -> str:
    """A row's text as it can be shown and stored: bytes that were not valid in the file's
    encoding (kept as surrogate escapes) are shown as Windows-1252, the usual culprit (a
    row pasted from an older export)."""
    return ESCAPED_BYTE.sub(
        lambda m: bytes([ord(m.group()) - 0xDC00]).decode("cp1252", "replace"), raw
    )


def _add(
    table: _Table,
    rid: str,
    pos: int,
    version: str,
    problem: str | None,
    id_in_cell: bool = False,
) -> None:
    table.entries[rid] = _Entry(pos, version, problem, id_in_cell)
    ids = table.ids_by_pos
    if pos >= len(ids):
        ids.extend([None] * (pos + 1 - len(ids)))
    ids[pos] = rid


def _derived_id(digest: str, occurrences: dict[str, int]) -> str:
    n = occurrences.get(digest, 0)
    occurrences[digest] = n + 1
    return f"row-{digest[:20]}-{n}"


def _padded(cells: Sequence[str], width: int, id_col: int | None) -> list[str]:
    vals = list(cells[:width])
    if len(vals) < width:
        vals.extend([""] * (width - len(vals)))
    if id_col is not None:
        del vals[id_col]
    return vals


def _row_version(cells: Sequence[str], width: int, id_col: int | None) -> str:
    return _hash(_padded(cells, width, id_col))[:16]


def _render(table: _Table) -> str:
    return "".join(_render_parts(table))


def _render_parts(table: _Table) -> Iterator[str]:
    """The file's text, a piece at a time (``_save`` encodes and writes it as it goes)."""
    assert table.header is not None
    nl = table.newline
    yield table.preamble
    if table.header_raw is not None:
        last = table.header_raw
    else:
        last = _format_row(table.header, table.delimiter, table.quote_all) + nl
    for row in table.rows:
        if last and last[-1] not in "\r\n":
            last += nl  # the file ended without a line break and we append after it
        yield last
        if row.raw is not None:
            last = row.raw
        else:
            last = _format_row(row.cells, table.delimiter, table.quote_all) + nl
    yield last


def _write_text(handle: Sink, table: _Table) -> None:
    """Encode and write the table's text in pieces: the same bytes as
    ``encoding.encode(_render(table))``, without the whole text and its bytes in memory."""
    enc = table.encoding
    encoder = codecs.getincrementalencoder(enc.codec)(enc.errors)
    handle.write(enc.bom)
    pending: list[str] = []
    for part in _render_parts(table):
        pending.append(part)
        if len(pending) >= 1000:
            handle.write(encoder.encode("".join(pending)))
            pending = []
    handle.write(encoder.encode("".join(pending), final=True))
