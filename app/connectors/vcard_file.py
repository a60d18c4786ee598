"""An address book kept in one ``.vcf`` file holding many cards: what iCloud, Google
Contacts, Outlook and phones export.

The file is split into *chunks*, each with the exact text it was read from: a card
(``BEGIN:VCARD`` … ``END:VCARD``), a card that is never closed, text outside any card, and
the blank lines between cards. Cards are read and edited line by line with
``app.connectors.vcard_text`` (an update rewrites only the properties of the patched fields,
in the card's own vCard version and line-ending style; PHOTO, ``X-`` properties, Apple's
``itemN.`` groups and anything unknown are kept byte for byte). Every other chunk is written
back exactly as read, so a rewrite changes only the cards Pairsync edits.

Ids and versions
----------------
A card's id is its ``UID`` when no other readable card in the file claims the same UID
first. Readable cards own a UID before unreadable ones (a card with a typo keeps its id, so
the engine sees a failure, not a deletion); later copies of a UID are read as ``<UID>#2``,
``<UID>#3``… (the first number taken by no UID in the file). A card without a UID — common in
exports — gets a derived id: a UUID computed from its text and its position among identical
cards, stable across reads while the card is unchanged. Reading never writes: a run that does
not write this file leaves it byte for byte. Any real write (and ``prepare()``) gives every
readable card whose UID is missing or a copy its id as ``UID``, added at the end of the
card: from then on its id no longer depends on its text or its position. The version is a
short hash of the card's text without its ``UID`` lines, so adding a UID is not an edit.

Broken cards (``BEGIN`` without ``END``, a line that is not a property, undecodable bytes)
and text between cards are ``Unreadable`` records with the line they start on, kept
untouched; they never block the other cards.

Writing
-------
All ops of one ``write()`` are applied in memory; creates are appended (in the file's first
line-ending style, vCard 4.0 when the file's first readable card is 4.0, else 3.0), updates
patch the card where it is; nothing is ever removed. The file is then replaced once,
atomically, by the single-file base (``app.connectors.single_file``: temporary file in the
same folder, fsync, ``os.replace``, fsync of the folder; the check that the file is still
what was read, with a digest of its content while its mtime is recent; another program's
write meanwhile makes the ops that would have been written a ``Conflict``, retried next
run), in its own encoding: UTF-8 with or without BOM, UTF-16 with BOM, or Windows-1252/Latin-1 for
older exports (a value the encoding cannot hold is ``Rejected`` for that op alone). A
missing file is an empty address book, created by the first write.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from app.connectors.decoding import ESCAPED_BYTE, Encoding, decode_card, decode_vcard_file
from app.connectors.single_file import SingleFileApp, Sink
from app.connectors.vcard_text import (
    FIELDS,
    KNOWN_KEYS,
    RAW_LIMIT,
    Broken,
    Card,
    Line,
    apply_patch,
    card_values,
    escape,
    format_line,
    parse_card,
    property_text,
    render,
    set_property,
    unescape,
)
from app.errors import (
    BadData,
    Conflict,
    NotFound,
    PairsyncError,
    Rejected,
    Unavailable,
)
from app.model import (
    OPT_OUT_FIELD,
    AppInfo,
    Capabilities,
    Create,
    FieldSpec,
    FieldValue,
    Record,
    Schema,
    Unreadable,
    Update,
    WriteOp,
    WriteResult,
    parse_subscription,
)

PRODID = "-//Pairsync//vCard file//EN"
NAME = "vCard file"
ALIASES = ("vcf file", "contacts.vcf", "google export", "outlook export", "phone export")

_ID_NAMESPACE = uuid.UUID("6d1c1f0e-5b8e-4a53-9a57-2f0c3c1e9b11")
_PHYSICAL = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_UID_LINE = re.compile(r"^[ \t]*(?:[A-Za-z0-9-]+\.)?UID(?:;[^:\r\n]*)?:([^\r\n]*)", re.I | re.M)
_FN_LINE = re.compile(r"^[ \t]*(?:[A-Za-z0-9-]+\.)?FN(?:;[^:\r\n]*)?:([^\r\n]*)", re.I | re.M)
CARD, OPEN, JUNK, GAP = "card", "open", "junk", "gap"


# --- the file as text -------------------------------------------------------------------


def looks_like_vcards(data: bytes) -> bool:
    """Whether a file could be a vCard file: empty, or with at least one ``BEGIN:VCARD``."""
    if not data.strip():
        return True
    try:
        _, text = decode_vcard_file(data)
    except Unavailable:
        return False
    return re.search(r"^[ \t]*BEGIN:VCARD[ \t\r]*$", text, re.I | re.M) is not None


@dataclass(slots=True)
class _Chunk:
    """A piece of the file with the exact text it was read from."""

    kind: str
    text: str
    line: int
    """The file's line number of its first line (1-based)."""
    uid: str = ""
    """The card's own UID ("" when it has none)."""
    id: str = ""
    version: str = ""
    item: Record | Unreadable | None = None
    card_version: str = ""

    def raw(self) -> str:
        return _display(self.text)[:RAW_LIMIT]


def _split(text: str) -> list[_Chunk]:
    """Cards, unclosed cards, junk and gaps, in file order; their texts join to ``text``.

    ``BEGIN:VCARD`` always starts a card (a card nested in another, as vCard 2.1's AGENT
    allowed, is not supported: the outer card reads as not closed); ``END:VCARD`` ends it.
    Folded lines and quoted-printable soft breaks are never mistaken for either.
    """
    chunks: list[_Chunk] = []
    outside: list[str] = []
    outside_start = 1
    card: list[str] | None = None
    card_start = 0
    logical = ""
    qp = False

    def flush_outside() -> None:
        if outside:
            joined = "".join(outside)
            chunks.append(_Chunk(JUNK if joined.strip() else GAP, joined, outside_start))
            outside.clear()

    for number, phys in enumerate(_PHYSICAL.findall(text), 1):
        body = phys.rstrip("\r\n")
        if card is None:
            if body.strip().upper() == "BEGIN:VCARD":
                flush_outside()
                card, card_start, logical, qp = [phys], number, "", False
            else:
                if not outside:
                    outside_start = number
                outside.append(phys)
            continue
        continued = qp or (bool(body) and body[0] in " \t")
        if not body.strip():
            qp, logical = False, ""
        elif continued:
            logical += body if qp else body[1:]
        else:
            word = body.strip().upper()
            if word == "BEGIN:VCARD":  # the previous card was never closed
                chunks.append(_Chunk(OPEN, "".join(card), card_start))
                card, card_start, logical, qp = [phys], number, "", False
                continue
            if word == "END:VCARD":
                card.append(phys)
                chunks.append(_Chunk(CARD, "".join(card), card_start))
                card = None
                continue
            logical = body
        card.append(phys)
        qp = logical.endswith("=") and "QUOTED-PRINTABLE" in logical.split(":", 1)[0].upper()
    if card is not None:
        chunks.append(_Chunk(OPEN, "".join(card), card_start))
    flush_outside()
    return chunks


def _normalized(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _hash(text: str) -> str:
    return hashlib.sha1(_normalized(text).encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _card_version(card: Card) -> str:
    """A hash of the card's text without its UID lines (adding a UID is not an edit)."""
    body = "".join(line.raw for line in card.lines if line.name != "UID")
    return _hash(card.head + body + card.tail)


def _shown_name(text: str) -> str:
    """The card's FN for messages about a broken card ("" when none or encoded)."""
    match = _FN_LINE.search(text)
    if match is None or "QUOTED-PRINTABLE" in match.group(0).split(":", 1)[0].upper():
        return ""
    name = unescape(match.group(1)).strip()
    return f"“{name[:60]}” " if name else ""


def _where(chunk: _Chunk, file_name: str) -> str:
    name = _shown_name(_display(chunk.text))
    return f"The card {name}starting on line {chunk.line} of {file_name}"


def _display(text: str) -> str:
    """Text fit for messages and storage: bytes that were not UTF-8 (kept as surrogates for
    the rewrite) shown as Windows-1252/Latin-1, as a lone exported card would be read."""
    if not ESCAPED_BYTE.search(text):
        return text
    return decode_card(text.encode("utf-8", "surrogateescape"))


# --- the file as an address book ---------------------------------------------------------


@dataclass(slots=True)
class _Book:
    chunks: list[_Chunk]
    encoding: Encoding
    newline: str
    """Line ending for new cards: the file's first one (CRLF for a new file, as RFC 6350)."""
    version: str
    """vCard version for new cards."""
    by_id: dict[str, int] = field(default_factory=dict)

    def copy(self) -> _Book:
        return _Book(list(self.chunks), self.encoding, self.newline, self.version, dict(self.by_id))

    def text(self) -> str:
        return "".join(chunk.text for chunk in self.chunks)


def _empty_book() -> _Book:
    return _Book([], Encoding("utf-8"), "\r\n", "3.0")


class _Reader:
    """Turns chunks into records (``status`` reads the subscription property of a card)."""

    def __init__(self, file_name: str, subscription: str) -> None:
        self.file_name = file_name
        self.subscription = subscription

    def status(self, card: Card) -> bool | None:
        if not self.subscription:
            return None
        text = property_text(card, self.subscription)
        return None if text is None else parse_subscription(text)

    def read(self, chunk: _Chunk) -> tuple[Card | None, str | None]:
        """Parse a chunk: (card, None) when readable, else (None, why not)."""
        if chunk.kind == JUNK:
            lines = _display(chunk.text).splitlines()
            filled = [n for n, text in enumerate(lines) if text.strip()]
            first, last = chunk.line + filled[0], chunk.line + filled[-1]
            shown = lines[filled[0]].strip()
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            if first == last:
                what = f"Line {first} of {self.file_name} is"
            else:
                what = f"Lines {first}–{last} of {self.file_name} are"
            return None, f"{what} not part of any card ({shown!r}); it is kept as it is."
        where = _where(chunk, self.file_name)
        if chunk.kind == OPEN:
            return None, f"{where} is not closed (END:VCARD is missing)."
        if ESCAPED_BYTE.search(chunk.text):
            return None, f"{where} contains bytes that are not valid UTF-8 text."
        try:
            return parse_card(chunk.text), None
        except Broken as err:
            at = f"line {chunk.line + err.line - 1}: " if err.line else ""
            return None, f"{where} is not a valid vCard ({at}{err.reason})."
        except Exception as err:  # never let one odd card stop a read
            return None, f"{where} is not a valid vCard ({type(err).__name__}: {err})."

    def fill(self, chunk: _Chunk) -> Card | None:
        """Read a chunk into its version, own UID and (id-less) item; the card if readable."""
        card, problem = self.read(chunk)
        if card is None:
            chunk.version = _hash(chunk.text)
            match = _UID_LINE.search(_display(chunk.text)) if chunk.kind != JUNK else None
            chunk.uid = unescape(match.group(1)).strip() if match else ""
            chunk.item = Unreadable("", chunk.version, problem or "", chunk.raw())
            return None
        chunk.version = _card_version(card)
        chunk.uid = (property_text(card, "UID") or "").strip()
        chunk.card_version = card.version
        fields, segments = card_values(card)
        chunk.item = Record("", chunk.version, fields, segments, self.status(card))
        return card

    def book(self, data: bytes) -> _Book:
        encoding, text = decode_vcard_file(data)
        chunks = _split(text)
        for chunk in chunks:
            if chunk.kind != GAP:
                self.fill(chunk)
        first = _PHYSICAL.match(text)
        newline = "\r\n"
        if first and first.group().endswith(("\n", "\r")):
            newline = first.group()[len(first.group().rstrip("\r\n")) :]
        readable = next((c for c in chunks if isinstance(c.item, Record)), None)
        version = "4.0" if readable and readable.card_version.startswith("4") else "3.0"
        book = _Book(chunks, encoding, newline, version)
        _assign_ids(book)
        return book


def _assign_ids(book: _Book) -> None:
    """Give every chunk but gaps its id (see the module docstring) and index them."""
    chunks = [c for c in book.chunks if c.kind != GAP]
    taken = {c.uid for c in chunks if c.uid}
    used: set[str] = set()
    for readable in (True, False):
        for chunk in chunks:
            if chunk.uid and chunk.uid not in used and isinstance(chunk.item, Record) == readable:
                chunk.id = chunk.uid
                used.add(chunk.uid)
    copies: dict[str, int] = {}
    seen: dict[str, int] = {}
    for chunk in chunks:
        if chunk.id:
            continue
        if chunk.uid:  # a later copy of a UID: <UID>#2, #3… in file order
            n = copies.get(chunk.uid, 1) + 1
            while f"{chunk.uid}#{n}" in taken or f"{chunk.uid}#{n}" in used:
                n += 1
            copies[chunk.uid] = n
            chunk.id = f"{chunk.uid}#{n}"
        else:
            norm = _normalized(chunk.text)
            n = seen.get(norm, 0)
            while True:
                rid = _derived_id(f"{n}\n{norm}")
                n += 1
                if rid not in taken and rid not in used:
                    break
            seen[norm] = n
            chunk.id = rid
        used.add(chunk.id)
    book.by_id = {}
    for pos, chunk in enumerate(book.chunks):
        if chunk.kind == GAP:
            continue
        _set_item_id(chunk)
        book.by_id[chunk.id] = pos


def _derived_id(name: str) -> str:
    """``uuid5`` of the text, also for text holding undecodable bytes (surrogates)."""
    digest = hashlib.sha1(_ID_NAMESPACE.bytes + name.encode("utf-8", "surrogateescape"))
    return str(uuid.UUID(bytes=digest.digest()[:16], version=5))


def _set_item_id(chunk: _Chunk) -> None:
    item = chunk.item
    if isinstance(item, Record):
        item.id = chunk.id
    elif item is not None:
        chunk.item = Unreadable(chunk.id, item.version, item.message, item.raw)


def _copy(item: Record | Unreadable) -> Record | Unreadable:
    """A record handed out: its own fields dict (the cached one stays as read)."""
    return _copy_record(item) if isinstance(item, Record) else item


def _copy_record(rec: Record) -> Record:
    return Record(rec.id, rec.version, dict(rec.fields), rec.segments, rec.subscribed)


def _new_card(uid: str, version: str, newline: str) -> Card:
    """An empty card with PRODID and UID, in the file's line-ending style."""
    nl = newline
    card = Card(f"BEGIN:VCARD{nl}", [], f"END:VCARD{nl}", version, nl)
    card.lines.append(Line(f"VERSION:{version}{nl}", 0, "VERSION", None, version))
    card.lines.append(Line(f"PRODID:{PRODID}{nl}", 0, "PRODID"))
    card.lines.append(format_line(card, "UID", escape(uid)))
    return card


# --- the connector ----------------------------------------------------------------------


class VCardFileApp(SingleFileApp[_Book]):
    """Connector over one ``.vcf`` file holding many contacts (see the module docstring)."""

    WHAT = "vCard file"
    CHANGED_MESSAGE = "The vCard file changed while syncing; nothing was written, it is retried."

    def __init__(self, path: str | os.PathLike[str], subscription: str = "") -> None:
        """``subscription``: a property (e.g. ``X-NEWSLETTER``) holding each contact's
        subscription status in words, as the user designates it."""
        super().__init__(path)
        self.subscription = subscription.strip().upper()
        self.info = AppInfo(
            kind="vcard-file",
            name=NAME,
            aliases=ALIASES,
            capabilities=Capabilities(
                segments=True,
                chooses_ids=True,
                batch_size=5000,
                subscription=bool(self.subscription),
            ),
        )
        self._reader = _Reader(self.path.name, self.subscription)

    # --- loading -------------------------------------------------------------------------

    def _parse_file(self, data: bytes) -> _Book:
        try:
            return self._reader.book(data)
        except Unavailable as err:
            raise Unavailable(f"The vCard file {self.path} cannot be read: {err}") from None

    def _empty(self) -> _Book:
        return _empty_book()

    def _write_to(self, sink: Sink, work: _Book) -> None:
        _write_bytes(sink, work.encoding.bom + work.encoding.encode(work.text()))

    def _versions(self, book: _Book) -> dict[str, str]:
        return {chunk.id: chunk.version for chunk in book.chunks if chunk.kind != GAP}

    def _item(self, book: _Book, rid: str) -> Record | Unreadable | None:
        pos = book.by_id.get(rid)
        if pos is None:
            return None
        item = book.chunks[pos].item
        return None if item is None else _copy(item)

    def _readable(self, book: _Book) -> Iterator[Record]:
        return (_copy_record(c.item) for c in book.chunks if isinstance(c.item, Record))

    # --- protocol ------------------------------------------------------------------------

    def fields(self) -> tuple[FieldSpec, ...]:
        return FIELDS

    def schema(self) -> Schema:
        segments: set[str] = set()
        for rec in self._readable(self._load()):
            segments |= rec.segments
        return Schema(FIELDS, tuple(sorted(segments)))

    def _stamped(self, book: _Book) -> _Book | None:
        """Every readable card lacking a UID of its own gets its id as UID."""
        work = book.copy()
        return work if self._stamp(work) else None

    # --- writing -------------------------------------------------------------------------

    def _apply_ops(
        self, book: _Book, ops: Sequence[WriteOp]
    ) -> tuple[list[WriteResult], _Book | None]:
        work = book.copy()
        results: list[WriteResult] = []
        changed = False
        for op in ops:
            try:
                record, did_change = self._apply(work, op)
            except PairsyncError as err:
                results.append(WriteResult(op.op_id, error=err))
                continue
            changed = changed or did_change
            results.append(WriteResult(op.op_id, record=record))
        if not changed:
            return results, None
        self._stamp(work)
        return results, work

    def _apply(self, work: _Book, op: WriteOp) -> tuple[Record, bool]:
        if isinstance(op, Create):
            rid = op.new_id or str(uuid.uuid4())
            if rid in work.by_id:
                raise Conflict(f"A contact with the id {rid} is already in the vCard file.")
            card = _new_card(rid, work.version, work.newline)
            fields = dict(op.fields)
            self._opt_out(card, fields)
            known = {k: v for k, v in fields.items() if k in KNOWN_KEYS}
            apply_patch(card, known, op.segments, is_new=True)
            chunk = self._chunk(work, render(card), rid, 0)
            if work.chunks and not work.chunks[-1].text.endswith(("\n", "\r")):
                work.chunks.append(_Chunk(GAP, work.newline, 0))  # the file ended mid-line
            work.by_id[rid] = len(work.chunks)
            work.chunks.append(chunk)
            assert isinstance(chunk.item, Record)
            return _copy_record(chunk.item), True
        assert isinstance(op, Update)
        rid = op.record_id
        pos = work.by_id.get(rid)
        if pos is None:
            raise NotFound("The contact is no longer in the vCard file.")
        old = work.chunks[pos]
        current = old.item
        if not isinstance(current, Record):
            message = current.message if current is not None else "The card is unreadable."
            raise BadData(f"{message} Fix it in the file; it was not changed.", raw=old.raw())
        if op.expected_version is not None and op.expected_version != old.version:
            raise Conflict("The contact changed in the vCard file while syncing; it is retried.")
        card = parse_card(old.text)
        fields = dict(op.fields)
        self._opt_out(card, fields)
        known = {k: v for k, v in fields.items() if k in KNOWN_KEYS}
        apply_patch(card, known, op.add_segments, op.remove_segments)
        text = render(card)
        if text == old.text:
            return _copy_record(current), False
        if old.uid != rid:
            set_property(card, "UID", rid)  # the id the engine knows becomes the card's own
            text = render(card)
        work.chunks[pos] = self._chunk(work, text, rid, old.line)
        item = work.chunks[pos].item
        assert isinstance(item, Record)
        return _copy_record(item), True

    def _chunk(self, work: _Book, text: str, rid: str, line: int) -> _Chunk:
        """A card Pairsync wrote, read back (refused when the file's encoding cannot hold it)."""
        try:
            work.encoding.encode(text)
        except UnicodeEncodeError as err:
            bad = err.object[err.start : err.end]
            raise Rejected(
                f"The vCard file is saved as {work.encoding.describe()}, which cannot hold "
                f"{bad!r}; the contact was not changed."
            ) from None
        chunk = _Chunk(CARD, text, line)
        if self._reader.fill(chunk) is None:  # pragma: no cover - our own text always parses
            raise BadData("The card Pairsync wrote could not be read back.", raw=text[:RAW_LIMIT])
        chunk.id = rid
        _set_item_id(chunk)
        return chunk

    def _stamp(self, work: _Book) -> bool:
        """Give readable cards whose UID is missing or a copy their id as UID."""
        stamped = False
        for pos, chunk in enumerate(work.chunks):
            if not isinstance(chunk.item, Record) or chunk.uid == chunk.id:
                continue
            card = parse_card(chunk.text)
            set_property(card, "UID", chunk.id)
            text = render(card)
            try:
                work.encoding.encode(text)
            except UnicodeEncodeError:  # pragma: no cover - ids come from the file or are ASCII
                continue
            work.chunks[pos] = self._chunk(work, text, chunk.id, chunk.line)
            stamped = True
        return stamped

    def _opt_out(self, card: Card, fields: dict[str, FieldValue]) -> None:
        """The opt-out pseudo-field: written to the designated property (refused without)."""
        if OPT_OUT_FIELD not in fields:
            return
        value = str(fields.pop(OPT_OUT_FIELD))
        if not self.subscription:
            raise Rejected("This vCard file has no subscription property.", field=OPT_OUT_FIELD)
        wanted = parse_subscription(value)
        if self._reader.status(card) is not wanted:
            set_property(
                card, self.subscription, "unsubscribed" if wanted is False else "subscribed"
            )


def _write_bytes(handle: Sink, data: bytes) -> None:
    view = memoryview(data)
    for start in range(0, len(view), 1 << 20):
        handle.write(view[start : start + (1 << 20)])
