"""A folder of vCard files in vdir layout: one ``<id>.vcf`` per contact.

Cards are read and edited line by line (``app.connectors.vcard_text``): an update rewrites
only the properties of the patched fields, in the card's own vCard version and line-ending
style, and keeps every other line byte for byte. Writes are atomic (temporary file in the
same folder, fsync, ``os.replace``; a batch's files are flushed together).

A record's version is ``"<mtime_ns>-<size>-<inode>"`` from ``os.stat``; listing only stats
files and never parses them.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_from_bytes, unquote_to_bytes

from app.connectors.base import ChangeSet
from app.connectors.decoding import decode_card
from app.connectors.file_writes import (
    fsync_dir,
    fsync_files,
    is_read_only,
    read_only_message,
)
from app.connectors.vcard_text import (
    FIELDS,
    KNOWN_KEYS,
    RAW_LIMIT,
    Broken,
    Card,
    apply_patch,
    card_values,
    new_card,
    parse_card,
    property_text,
    render,
    set_property,
    written_values,
)
from app.errors import (
    BadData,
    Conflict,
    NotFound,
    PairsyncError,
    ReadOnlyFile,
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
    with_emails,
)

PRODID = "-//Pairsync//vCard folder//EN"


_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
MAX_CARD_BYTES = 100_000_000
"""Largest card file read (100 MB, as for a CardDAV card): a larger one fails alone, unread."""


@dataclass(slots=True)
class _Staged:
    """A card's new text in its temporary file, waiting to be flushed and moved in place."""

    rid: str
    path: Path
    tmp: str
    exclusive: bool
    text: str
    version: str | None = None
    """An update's version before the write (a replacement must not look unchanged)."""
    index: int = 0
    """The write's place in its batch."""
    card: Card | None = None
    """A new card as built (its record is read from it, not from the written text)."""


def _broken_message(filename: str, err: Broken) -> str:
    where = f"line {err.line}: " if err.line else ""
    return f"The file {filename} is not a valid vCard ({where}{err.reason})."


def _several_message(filename: str, count: int) -> str:
    return (
        f"The file {filename} holds {count} contacts, but a vCard folder keeps one contact per "
        f"file: Pairsync leaves the file as it is and syncs none of them. Split it into one "
        f"file per contact, or add it as a vCard file account."
    )


# --- the connector ----------------------------------------------------------------------


def _version_of(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"


def _valid_id(record_id: str) -> bool:
    """A safe name for a *new* file: one every file system and sync tool accepts."""
    return (
        bool(record_id)
        and not record_id.startswith(".")
        and not any(ch in record_id for ch in '/\\\x00:*?"<>|')
        and len(record_id) <= 200
    )


_SEPARATORS = frozenset(ch for ch in ("/", "\x00", os.sep, os.altsep or "/"))


def _existing_id(record_id: str) -> bool:
    """Any name a file in the folder can have: ``urn:uuid:1234``, quotes, ``?``, ``|``, a
    backslash, 250 characters. Such files (made by other tools) are read and edited in place;
    only files Pairsync creates get :func:`_valid_id` names."""
    stem = _stem_of(record_id)
    return bool(stem) and stem not in (".", "..") and not any(ch in _SEPARATORS for ch in stem)


_BEGIN_RE = re.compile(r"^[ \t]*BEGIN[ \t]*:[ \t]*VCARD[ \t\r]*$", re.IGNORECASE | re.MULTILINE)


def _id_of(stem: str) -> str:
    """The record id of a file name (without ``.vcf``): the name itself, or, for a name that
    is not valid UTF-8 (the database could not hold it), ``/`` and its bytes percent-encoded
    (no file name contains ``/``, so the two never collide)."""
    try:
        stem.encode("utf-8")
    except UnicodeEncodeError:
        return "/" + quote_from_bytes(os.fsencode(stem), safe="")
    return stem


def _stem_of(record_id: str) -> str:
    if record_id.startswith("/"):
        return os.fsdecode(unquote_to_bytes(record_id[1:]))
    return record_id


def _shown(path: Path) -> str:
    """A file name as words (a name that is not UTF-8 shows replacement characters)."""
    return os.fsencode(path.name).decode("utf-8", "replace")


_SAFE_TMP_RE = re.compile(r"[^A-Za-z0-9_.-]")


def _more_cards(tail: str) -> int:
    """How many more cards follow the first one in a file."""
    return len(_BEGIN_RE.findall(tail))


class VCardFolderApp:
    """Connector over a folder of ``.vcf`` files (vdir layout)."""

    def __init__(self, path: str | os.PathLike[str], subscription: str = "") -> None:
        """``subscription``: a property (e.g. ``X-NEWSLETTER``) holding each contact's
        subscription status in words, as the user designates it."""
        self.path = Path(path)
        self.subscription = subscription.strip().upper()
        self.info = AppInfo(
            kind="vcard-folder",
            name="vCard folder",
            aliases=("vcf", "vdir", "contacts folder"),
            capabilities=Capabilities(
                segments=True,
                chooses_ids=True,
                batch_size=500,
                subscription=bool(self.subscription),
            ),
        )
        self._cache: dict[str, tuple[str, Record | Unreadable]] = {}

    # --- helpers -------------------------------------------------------------------------

    def _check_folder(self) -> None:
        if not self.path.is_dir():
            if self.path.exists():
                raise Unavailable(f"The contacts folder {self.path} is not a folder.")
            raise Unavailable(f"The contacts folder {self.path} does not exist.")

    def _file(self, record_id: str) -> Path:
        record_id = _stem_of(record_id)
        path = self.path / f"{record_id}.vcf"
        if not path.exists():
            upper = self.path / f"{record_id}.VCF"
            if upper.exists():
                return upper
        return path

    def _read(self, record_id: str, keep: bool = False) -> tuple[str, Record | Unreadable] | None:
        """(version, item) for an id, or None when there is no such file.

        ``keep``: remember the parsed item (``_all``, which reads every card and may be
        called again). Single reads (fetch, the re-read after a write) only consult the
        cache: the caller gets its own item, and a sync holds no second copy of each card.
        A cached item is shared: callers that hand it out copy it (``_copy``).
        """
        if not _existing_id(record_id):
            return None
        path = self._file(record_id)
        try:
            with open(path, "rb") as fh:
                stat = os.fstat(fh.fileno())
                version = _version_of(stat)
                cached = self._cache.get(record_id)
                if cached is not None and cached[0] == version:
                    return cached
                if stat.st_size > MAX_CARD_BYTES:
                    self._cache.pop(record_id, None)
                    return version, Unreadable(record_id, version, _too_large(path, stat.st_size))
                data = fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self._cache.pop(record_id, None)
            return None
        except OSError as err:
            item: Record | Unreadable = Unreadable(
                record_id, "", f"The file {_shown(path)} could not be read ({err.strerror})."
            )
            return "", item
        item = self._parsed(record_id, version, decode_card(data), path)
        if keep:
            self._cache[record_id] = (version, item)
        else:
            self._cache.pop(record_id, None)
        return version, item

    def _parsed(self, record_id: str, version: str, text: str, path: Path) -> Record | Unreadable:
        """A card file's text as the record (or the sentence why it is unreadable)."""
        item: Record | Unreadable
        try:
            card = parse_card(text)
            more = _more_cards(card.tail)
            if more:
                item = Unreadable(record_id, version, _several_message(_shown(path), more + 1))
            else:
                fields, segments = card_values(card)
                item = Record(record_id, version, fields, segments, self._status(card))
        except Broken as err:
            item = Unreadable(
                record_id, version, _broken_message(_shown(path), err), text[:RAW_LIMIT]
            )
        except Exception as err:  # never crash a read on one odd file
            item = Unreadable(
                record_id,
                version,
                f"The file {_shown(path)} is not a valid vCard ({type(err).__name__}: {err}).",
                text[:RAW_LIMIT],
            )
        return item

    def _status(self, card: Card) -> bool | None:
        if not self.subscription:
            return None
        text = property_text(card, self.subscription)
        return None if text is None else parse_subscription(text)

    def _opt_out(self, card: Card, fields: dict[str, FieldValue]) -> None:
        """The opt-out pseudo-field: written to the designated property (refused without)."""
        if OPT_OUT_FIELD not in fields:
            return
        value = str(fields.pop(OPT_OUT_FIELD))
        if not self.subscription:
            raise Rejected("This vCard folder has no subscription property.", field=OPT_OUT_FIELD)
        wanted = parse_subscription(value)
        if self._status(card) is not wanted:
            set_property(
                card, self.subscription, "unsubscribed" if wanted is False else "subscribed"
            )

    @staticmethod
    def _copy(item: Record | Unreadable) -> Record | Unreadable:
        if isinstance(item, Record):
            return Record(item.id, item.version, dict(item.fields), item.segments, item.subscribed)
        return item

    def _all(self) -> list[Record | Unreadable]:
        out: list[Record | Unreadable] = []
        for rid in self.list_versions():
            got = self._read(rid, keep=True)
            if got is not None:
                out.append(got[1])
        return out

    # --- protocol ------------------------------------------------------------------------

    def fields(self) -> tuple[FieldSpec, ...]:
        return FIELDS

    def schema(self) -> Schema:
        segments: set[str] = set()
        for item in self._all():
            if isinstance(item, Record):
                segments |= item.segments
        return Schema(FIELDS, tuple(sorted(segments)))

    def prepare(self) -> None:
        self._check_folder()

    def list_versions(self) -> dict[str, str]:
        try:
            entries = os.scandir(self.path)
        except FileNotFoundError:
            raise Unavailable(f"The contacts folder {self.path} does not exist.") from None
        except NotADirectoryError:
            raise Unavailable(f"The contacts folder {self.path} is not a folder.") from None
        except OSError as err:
            raise Unavailable(
                f"The contacts folder {self.path} cannot be read ({err.strerror})."
            ) from None
        out: dict[str, str] = {}
        with entries:
            for entry in entries:
                name = entry.name
                if name[-4:].lower() != ".vcf" or name.startswith("."):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    out[_id_of(name[:-4])] = _version_of(entry.stat())
                except OSError:
                    continue  # vanished meanwhile
        return out

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        self._check_folder()
        out: list[Record | Unreadable] = []
        for rid in ids:
            got = self._read(rid)
            if got is not None:
                out.append(self._copy(got[1]))
        return out

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        items = (self._copy(i) for i in self._all())
        return with_emails((rec for rec in items if isinstance(rec, Record)), emails)

    def changes(self, cursor: str | None) -> ChangeSet | None:
        return None

    def close(self) -> None:
        pass

    # --- writing -------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Write a batch in three steps, each file as durable as one written alone: every
        new text goes to its temporary file first; then all of them are flushed to disk
        together (``fsync_files``: a few disk flushes per batch instead of one per card);
        then each is moved to its name (``os.link``/``os.replace``) and the folder is
        flushed once. A card never appears under its name before its text is on disk."""
        self._check_folder()
        results: list[WriteResult | None] = [None] * len(ops)
        staged: list[_Staged] = []
        try:
            for i, op in enumerate(ops):
                try:
                    got = (
                        self._prepare_create(op)
                        if isinstance(op, Create)
                        else self._prepare_update(op)
                    )
                    if isinstance(got, _Staged):
                        got.index = i
                        staged.append(got)
                    else:
                        results[i] = WriteResult(op.op_id, record=got)
                except (PairsyncError, OSError) as err:
                    results[i] = self._failed(op, err)
            try:
                fsync_files([s.tmp for s in staged])
            except OSError as err:
                for s in staged:
                    results[s.index] = self._failed(ops[s.index], err)
                staged = [s for s in staged if results[s.index] is None]
            for s in staged:
                op = ops[s.index]
                try:
                    results[s.index] = WriteResult(op.op_id, record=self._put_in_place(s))
                except (PairsyncError, OSError) as err:
                    results[s.index] = self._failed(op, err)
        finally:
            for s in staged:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(s.tmp)
        fsync_dir(self.path)
        done = [r for r in results if r is not None]
        assert len(done) == len(ops)
        return done

    def _failed(self, op: WriteOp, err: PairsyncError | OSError) -> WriteResult:
        if isinstance(err, PairsyncError):
            return WriteResult(op.op_id, error=err)
        self._check_folder()
        if err.errno in _DISK_FULL:
            # The whole folder cannot take writes: the run stops (exit 5), each
            # contact is not failed one by one.
            raise Unavailable(
                f"The contacts folder {self.path} could not be written "
                f"({err.strerror}); nothing was half-written."
            ) from err
        return WriteResult(
            op.op_id,
            error=Rejected(f"The contact file could not be written ({err.strerror})."),
        )

    def _prepare_create(self, op: Create) -> _Staged:
        rid = op.new_id or str(uuid.uuid4())
        if not _valid_id(rid):
            raise Rejected(f"{rid!r} cannot be used as a file name for a contact.")
        path = self.path / f"{rid}.vcf"
        if any(os.path.lexists(f"{self.path}/{rid}.{ext}") for ext in ("vcf", "VCF")):
            raise Conflict(f"A contact file {path.name} already exists.")
        card = new_card(rid, PRODID)
        self._opt_out(card, dict(op.fields))
        fields = {k: v for k, v in op.fields.items() if k in KNOWN_KEYS}
        apply_patch(card, fields, op.segments, is_new=True)
        staged = self._stage(rid, path, render(card), exclusive=True)
        staged.card = card
        return staged

    def _prepare_update(self, op: Update) -> Record | _Staged:
        """The record as it is when the update changes no byte, else its staged file."""
        rid = op.record_id
        path = self._file(rid)
        if not _existing_id(rid) or not path.is_file():
            raise NotFound("The contact no longer exists in the folder.")
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            if st.st_size > MAX_CARD_BYTES:
                raise BadData(_too_large(path, st.st_size))
            data = fh.read()
        version = _version_of(st)
        if op.expected_version is not None and op.expected_version != version:
            raise Conflict("The contact changed in the folder while syncing; it is retried.")
        if is_read_only(path):
            raise ReadOnlyFile(read_only_message(path))
        text = decode_card(data)
        try:
            card = parse_card(text)
        except Broken as err:
            raise BadData(_broken_message(_shown(path), err), raw=text[:RAW_LIMIT]) from None
        more = _more_cards(card.tail)
        if more:  # never rewrite a file whose other cards Pairsync does not sync
            raise BadData(_several_message(_shown(path), more + 1))
        self._opt_out(card, dict(op.fields))
        fields = {k: v for k, v in op.fields.items() if k in KNOWN_KEYS}
        apply_patch(card, fields, op.add_segments, op.remove_segments)
        new_text = render(card)
        if new_text == text:
            return self._reread(rid)
        staged = self._stage(rid, path, new_text, exclusive=False, mode=st.st_mode & 0o7777)
        staged.version = version
        return staged

    def _reread(self, rid: str) -> Record:
        got = self._read(rid)
        if got is None:
            raise NotFound("The contact file disappeared right after it was written.")
        item = got[1]
        if not isinstance(item, Record):
            raise BadData(item.message, raw=item.raw)
        return self._copy(item)  # type: ignore[return-value]

    def _stage(
        self, rid: str, path: Path, text: str, *, exclusive: bool, mode: int | None = None
    ) -> _Staged:
        """Write ``text`` to a new temporary file beside ``path`` (not yet flushed), created
        with its final mode (a new card: the umask's; an update: the card's own)."""
        # A short temporary name: the file's own may be near the file system's 255 bytes.
        stem = _SAFE_TMP_RE.sub("_", path.stem[:40])
        data = text.encode("utf-8")
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
        flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
        for _attempt in range(100):
            tmp = os.path.join(self.path, f".{stem}.{os.urandom(6).hex()}.tmp")
            try:
                fd = os.open(tmp, flags, 0o666 if mode is None else mode)
                break
            except FileExistsError:
                continue
        else:
            raise FileExistsError(errno.EEXIST, "No usable name for a temporary file")
        try:
            try:
                if mode is not None and hasattr(os, "fchmod"):
                    os.fchmod(fd, mode)  # the umask does not narrow an update's mode
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
            finally:
                os.close(fd)
            if mode is not None and not hasattr(os, "fchmod"):
                os.chmod(tmp, mode)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise
        return _Staged(rid, path, tmp, exclusive, text)

    def _put_in_place(self, staged: _Staged) -> Record:
        """Move a flushed temporary file to its name: a new card never replaces a file
        that appeared meanwhile; an update replaces the card atomically. The record as
        written: its text is ours and its version is the file's (a move keeps the inode and
        its time), so the file is not read again; an edit made after the move changes the
        version, and the next run sees it."""
        path, tmp = staged.path, staged.tmp
        version = _version_of(os.stat(tmp))
        if staged.exclusive:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise Conflict(f"A contact file {path.name} already exists.") from None
            except OSError:  # no hard links on this file system
                if path.exists():
                    raise Conflict(f"A contact file {path.name} already exists.") from None
                os.replace(tmp, path)
            return self._written(staged, version)
        os.replace(tmp, path)
        if version == staged.version:  # same size, inode reused, coarse clock
            after = os.stat(path)
            os.utime(path, ns=(after.st_atime_ns, after.st_mtime_ns + 1))
            return self._reread(staged.rid)
        return self._written(staged, version)

    def _written(self, staged: _Staged, version: str) -> Record:
        self._cache.pop(staged.rid, None)
        card = staged.card
        got = None if card is None else written_values(card, staged.text)
        if card is not None and got is not None:  # a new card: as reading it back would give
            return Record(staged.rid, version, got[0], got[1], self._status(card))
        item = self._parsed(staged.rid, version, staged.text, staged.path)
        if not isinstance(item, Record):
            raise BadData(item.message, raw=item.raw)
        return item


def _too_large(path: Path, size: int) -> str:
    return (
        f"The file {_shown(path)} is {size / 1_000_000:.0f} MB, larger than the "
        f"{MAX_CARD_BYTES / 1_000_000:g} MB Pairsync reads for one contact; it was not read."
    )
