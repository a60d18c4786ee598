"""An address book kept in one file, read whole and replaced whole: what the CSV file and the
vCard file apps share (the idea of vdirsyncer's ``SingleFileStorage``).

The base owns everything about the *file*; each app fills in what its *format* needs:

* **Load** (``_load``): the file's bytes are parsed by the app (``_parse_file``) once per version
  of the file; the parsed value is kept with the ``Fingerprint`` it was read at (size, mtime,
  inode and a digest of the bytes). A missing file is the app's empty book (``_empty``);
  a folder, a device or a missing folder is ``Unavailable`` with a sentence.
* **Check unchanged** (``_check_unchanged``): just before a replacement, the file must still
  be what was read. Size, mtime and inode first; while the mtime is too recent to tell two
  writes apart (a coarse clock: FAT keeps 2 s, some network shares 1 s), the content's digest
  too — a spreadsheet saving a same-length edit within the same tick leaves the status equal.
  A cached value is trusted on the same rule.
* **Save** (``_save``): ``file_writes.replace_file`` (temporary file named with the writer's
  pid, fsync, the old file's mode, rename, fsync of the folder); a read-only file is never
  replaced (each op fails with ``ReadOnlyFile``); ``list_versions`` removes the temporary
  files a killed writer left.
* **Changed under us** (``write``): the app's ops are applied to the loaded value in memory
  (``_apply_ops``), then saved. When the check finds another program's write: bytes it only
  *appended* are appended to the new version too when the app allows (``MERGES_APPENDS``:
  rows of a CSV), checked again until the file holds still, and what lands in the old file
  between the last check and the rename is appended after it (``_carry_over``); any other
  change reads the file again and applies the ops again, up to ``WRITE_ATTEMPTS`` times (1:
  the ops that would have been written are ``Conflict``, retried next run).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import stat
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, ClassVar, Generic, Protocol, TypeVar

from app.connectors.base import ChangeSet
from app.connectors.file_writes import (
    is_read_only,
    read_only_message,
    remove_stale_temps,
    replace_file,
)
from app.errors import Conflict, ReadOnlyFile, Unavailable
from app.model import (
    AppInfo,
    Record,
    Unreadable,
    WriteOp,
    WriteResult,
    with_emails,
)

log = logging.getLogger(__name__)

COARSE_CLOCK_NS = 3_000_000_000
"""Within this long of a file's mtime a second write may leave the same mtime (FAT: 2 s)."""

CATCH_UP_ROUNDS = 50
"""How many times appended bytes are caught up before a file that never holds still is
given up on (``FileChanged``)."""


def digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


DIGEST_CHUNK = 1 << 20


def digest_file(path: Path) -> tuple[int, bytes]:
    """How many bytes ``path`` holds as it is read now, and their ``digest``, read a chunk
    at a time: checking a file of 100,000 rows must not hold its 22 MB (issue 18)."""
    hasher = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb") as handle:
        while chunk := handle.read(DIGEST_CHUNK):
            hasher.update(chunk)
            size += len(chunk)
    return size, hasher.digest()


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """What a file was read (or written) as: enough to tell whether it is still that file."""

    mtime_ns: int
    size: int
    inode: int
    digest: bytes

    def same_status(self, st: os.stat_result) -> bool:
        return (st.st_mtime_ns, st.st_size, st.st_ino) == (self.mtime_ns, self.size, self.inode)

    def recent(self) -> bool:
        """Is the mtime too recent for the status alone to tell two writes apart?"""
        return time.time_ns() - self.mtime_ns < COARSE_CLOCK_NS


class FileChanged(Exception):
    """The file changed since it was read: it is not replaced."""


class Sink(Protocol):
    """Where an app writes its file's bytes (a binary file, or one that also digests)."""

    def write(self, data: bytes | memoryview, /) -> int: ...


class _Digesting:
    """A binary file that also feeds what is written to a digest (the new file's
    fingerprint without reading it back)."""

    def __init__(self, handle: Sink) -> None:
        self.handle = handle
        self.digest = hashlib.blake2b(digest_size=16)

    def write(self, data: bytes | memoryview, /) -> int:
        self.digest.update(data)
        return self.handle.write(data)


Book = TypeVar("Book")
"""The app's parsed file (the CSV's table, the vCard file's chunks)."""


class SingleFileApp(ABC, Generic[Book]):
    """Base of the apps over one file (see the module docstring); ``Book`` is the parsed
    file. Subclasses set ``WHAT`` and ``info`` and fill in the hooks below."""

    WHAT: ClassVar[str]
    """How messages name the file's kind: "CSV file", "vCard file"."""
    WRITE_ATTEMPTS: ClassVar[int] = 1
    """How many times a write reads the file again after another program changed it."""
    MERGES_APPENDS: ClassVar[bool] = False
    """Whether bytes another program appended meanwhile are appended to our new version."""
    CHANGED_MESSAGE: ClassVar[str] = (
        "The file changed while syncing; nothing was written, it is retried."
    )

    info: AppInfo

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._book: Book | None = None
        self._read_as: Fingerprint | None = None
        """What ``_book`` was read from (None: there was no file)."""

    # --- what each app fills in -------------------------------------------------------------

    @abstractmethod
    def _parse_file(self, data: bytes) -> Book:
        """The file's bytes parsed; ``Unavailable`` (with a sentence) when they are not the
        app's format at all."""

    @abstractmethod
    def _empty(self) -> Book:
        """The book of a file that does not exist yet (created by the first write)."""

    @abstractmethod
    def _write_to(self, sink: Sink, work: Book) -> None:
        """Write ``work``'s bytes (a ``UnicodeError`` leaves the file as it was)."""

    @abstractmethod
    def _versions(self, book: Book) -> dict[str, str]:
        """Every record's id and version (``list_versions``)."""

    @abstractmethod
    def _apply_ops(
        self, book: Book, ops: Sequence[WriteOp]
    ) -> tuple[list[WriteResult], Book | None]:
        """Apply ``ops`` to a copy of ``book`` (never to ``book`` itself: it is the file as
        read, cached): each op's result, and the copy to save (None: nothing changed)."""

    @abstractmethod
    def _stamped(self, book: Book) -> Book | None:
        """A copy of ``book`` with every record's id made permanent in the file (None:
        nothing to stamp). ``prepare`` saves it."""

    @abstractmethod
    def _item(self, book: Book, rid: str) -> Record | Unreadable | None:
        """The record (or unreadable entry) ``rid`` of ``book``, as handed out."""

    @abstractmethod
    def _readable(self, book: Book) -> Iterator[Record]:
        """Every readable record of ``book``, as handed out."""

    def _saved(self, work: Book) -> Book | None:
        """What describes the file once ``work`` was written to it (None: read it again)."""
        return None

    # --- loading ----------------------------------------------------------------------------

    def _check_folder(self) -> None:
        folder = self.path.parent
        if not folder.is_dir():
            raise Unavailable(
                f"The folder {folder} does not exist, so the {self.WHAT} {self.path.name} "
                "cannot be read or created. Create the folder or choose another file."
            )
        if self.path.is_dir():
            raise Unavailable(f"{self.path} is a folder, not a {self.WHAT}.")

    def _cannot_read(self, err: OSError) -> Unavailable:
        return Unavailable(f"The {self.WHAT} {self.path} cannot be read: {err.strerror}.")

    def _load(self) -> Book:
        """The file as it is now, parsed once per version of the file."""
        self._check_folder()
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return self._forget()
        except OSError as err:
            raise self._cannot_read(err) from err
        if not stat.S_ISREG(st.st_mode):  # /dev/zero or a pipe would be read for ever
            raise Unavailable(
                f"{self.path} is not a regular file; a {self.WHAT} account needs a file."
            )
        book, read_as = self._book, self._read_as
        trusted = read_as is not None and read_as.same_status(st) and not read_as.recent()
        if book is not None and trusted:
            return book
        try:
            if book is not None and read_as is not None and read_as.same_status(st):
                # A recent mtime: the very bytes already parsed? (digested as they are read)
                size, sum_now = digest_file(self.path)
                if Fingerprint(st.st_mtime_ns, size, st.st_ino, sum_now) == read_as:
                    return book
            data = self.path.read_bytes()
        except FileNotFoundError:
            return self._forget()
        except OSError as err:
            raise self._cannot_read(err) from err
        # What was read, not what was stat'ed: a write after the stat shows in the size.
        now = Fingerprint(st.st_mtime_ns, len(data), st.st_ino, digest(data))
        book = self._parse_file(data)
        del data
        self._book, self._read_as = book, now
        return book

    def _forget(self) -> Book:
        """No file (or one to read again): the empty book, nothing cached."""
        self._book, self._read_as = None, None
        return self._empty()

    # --- checking and saving ----------------------------------------------------------------

    def _check_unchanged(self, read_as: Fingerprint | None) -> None:
        """Raise ``FileChanged`` when the file is no longer what was read as ``read_as``
        (None: there was no file): another program wrote it meanwhile."""
        if read_as is not None and read_as.recent():
            try:
                size, again = digest_file(self.path)
            except OSError:
                raise FileChanged from None
            if (size, again) != (read_as.size, read_as.digest):
                raise FileChanged
        # The status last: the file is replaced right after this check, so the moment
        # another program's write could still slip in between is as short as it can be.
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            if read_as is not None:
                raise FileChanged from None
            return
        if read_as is None or not read_as.same_status(st):
            raise FileChanged

    def _appended_since(self, read_as: Fingerprint | None) -> tuple[bytes, Fingerprint]:
        """What another program appended to the file since it was read as ``read_as``, and
        how the file reads now; ``FileChanged`` when it changed in any other way."""
        if read_as is None:
            raise FileChanged  # created meanwhile: not ours to merge
        try:
            st = os.stat(self.path)
            data = self.path.read_bytes()
        except OSError:
            raise FileChanged from None
        size = read_as.size
        if len(data) < size or digest(data[:size]) != read_as.digest:
            raise FileChanged
        # The size is what was read (bytes appended after the stat are in ``data``): the
        # next check sees any difference from the file as it then is.
        return data[size:], Fingerprint(st.st_mtime_ns, len(data), st.st_ino, digest(data))

    def _hold(self, read_as: Fingerprint | None) -> int | None:
        """The file just checked to be ``read_as``, opened for reading (None: there was
        no file, or not POSIX); ``FileChanged`` when the name already leads to another file.
        Windows refuses to replace a file this process holds open, so it is not held there:
        on Windows the moment between the check and the rename stays unguarded."""
        if read_as is None or os.name != "posix":
            return None
        try:
            fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        except OSError:
            raise FileChanged from None
        if os.fstat(fd).st_ino != read_as.inode:
            os.close(fd)
            raise FileChanged
        return fd

    def _carry_over(self, old: int, read_as: Fingerprint) -> bool:
        """Append to the new file what another program appended to the old one (``old``,
        held open) between the last check and the rename; whether there was any.

        A check and a rename are two steps: a row appended in between lands in the file
        the rename then takes away. The moment is microseconds, but a writer preempted
        there (a loaded machine) loses whatever the other program appends meanwhile: one
        run in about 50 of the appender test at load 8. A change that is not an append
        (the old bytes differ) is a save the rename overwrites like any edit in that
        instant. Bytes another program writes into the old file after this point went to
        a file that no longer has a name: its own race, as with any program that saves by
        renaming (an appender can tell: the name leads to another file)."""
        try:
            if os.fstat(old).st_size <= read_as.size:
                return False
            chunks = []
            while chunk := os.read(old, 1 << 20):
                chunks.append(chunk)
            data = b"".join(chunks)
            if len(data) <= read_as.size or digest(data[: read_as.size]) != read_as.digest:
                return False
            with open(self.path, "ab") as handle:
                handle.write(data[read_as.size :])
                handle.flush()
                os.fsync(handle.fileno())
        except OSError:
            # Our ops are written (the rename is done); only the other program's rows could
            # not be carried over. Said in the log: failing the ops would not bring them back.
            log.warning("rows appended to %s during a write could not be kept", self.path)
        return True

    def _save(self, work: Book, read_as: Fingerprint | None) -> None:
        """Replace the file with ``work`` (read as ``read_as``), atomically; ``FileChanged``
        when another program changed it in a way that cannot be merged (then the file is
        left as that program wrote it)."""
        self._check_folder()
        caught_up = False
        old: int | None = None
        """The file as last checked, held open: what lands in it after the check is still
        readable once the rename has taken its name away."""

        def catch_up(tmp_name: str) -> None:
            nonlocal read_as, caught_up, old
            for _ in range(CATCH_UP_ROUNDS):
                try:
                    self._check_unchanged(read_as)
                    if self.MERGES_APPENDS:
                        old = self._hold(read_as)
                    return
                except FileChanged:
                    if not self.MERGES_APPENDS:
                        raise
                    tail, read_as = self._appended_since(read_as)
                with open(tmp_name, "ab") as handle:
                    handle.write(tail)
                    handle.flush()
                    os.fsync(handle.fileno())
                caught_up = True
            raise FileChanged

        sink: _Digesting | None = None

        def write(handle: BinaryIO) -> None:
            nonlocal sink
            sink = _Digesting(handle)
            self._write_to(sink, work)

        try:
            try:
                st = replace_file(self.path, write, catch_up=catch_up)
            except OSError as err:
                raise Unavailable(
                    f"The {self.WHAT} {self.path} could not be written ({err.strerror or err}); "
                    "it was left as it was."
                ) from err
            if old is not None and read_as is not None:
                caught_up = self._carry_over(old, read_as) or caught_up
        finally:
            if old is not None:
                os.close(old)
        assert sink is not None
        kept = self._saved(work)
        if caught_up or kept is None:
            self._forget()  # the file holds what ``work`` does not (or the app re-reads)
            return
        self._book = kept
        self._read_as = Fingerprint(st.st_mtime_ns, st.st_size, st.st_ino, sink.digest.digest())

    # --- the protocol's file-level part -----------------------------------------------------

    def list_versions(self) -> dict[str, str]:
        # What a write killed half-way left beside the file (our own temporary files only).
        remove_stale_temps(self.path)
        return self._versions(self._load())

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        book = self._load()
        items = (self._item(book, rid) for rid in ids)
        return [item for item in items if item is not None]

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        return with_emails(self._readable(self._load()), emails)

    def prepare(self) -> None:
        """Make the ids ``list_versions`` reports permanent in the file (one atomic rewrite;
        nothing is written when every record has its own). The engine does not call this:
        a real ``write`` stamps ids as part of it."""
        book = self._load()
        read_as = self._read_as
        work = self._stamped(book)
        if work is not None:
            with contextlib.suppress(FileChanged):  # edited meanwhile: stamped next time
                self._save(work, read_as)

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply ``ops`` to the file as it is now and replace it once (see the module
        docstring for what happens when another program writes it meanwhile)."""
        if len(ops) > self.info.capabilities.batch_size:
            raise ValueError(f"batch of {len(ops)} exceeds {self.info.capabilities.batch_size}")
        results: list[WriteResult] = []
        for _attempt in range(self.WRITE_ATTEMPTS):
            book = self._load()
            if is_read_only(self.path):
                error = ReadOnlyFile(read_only_message(self.path))
                return [WriteResult(op.op_id, error=error) for op in ops]
            read_as = self._read_as
            results, work = self._apply_ops(book, ops)
            if work is None:
                return results
            try:
                self._save(work, read_as)
            except FileChanged:
                self._forget()  # read it again, whatever its status says
                continue
            return results
        conflict = Conflict(self.CHANGED_MESSAGE)
        return [r if not r.ok else WriteResult(r.op_id, error=conflict) for r in results]

    def changes(self, cursor: str | None) -> ChangeSet | None:
        return None  # no change feed: a file is listed

    def close(self) -> None:
        pass
