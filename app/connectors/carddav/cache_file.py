"""The mirror's entries and its cache file, read in layers because most runs need little of it.

A cron run where the server's feed reports nothing needs only the sync-token; one where 1 %
changed needs the index (ETag, UID, group of every card) and the texts of that 1 %; only a
full read or the wizard's schema needs every text. So the file is three parts:

1. one JSON line, the header: format, book, token, the size and CRC-32 of the rest;
2. one JSON line, the index, by column (names, ETags, UIDs, text spans; groups and errors
   by position), which decodes without a Python call per card;
3. the card texts as UTF-8 bytes, one after another, each found by its span in the index.

:func:`read` takes the file's bytes (read whole, one snapshot however another process
replaces the file later), checks the rest against the header's size and CRC (a file cut
short or changed is not believed), and decodes the header only; the index is decoded when an
entry is first needed and a text when it is first used. :func:`write` writes texts never
read back as the bytes they were, the whole file to a temporary file renamed over the old
one, so a crash leaves the old file or the new. The mirror is only an optimisation: a file
that is missing, damaged or of another format means a full read of the book.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FORMAT = 2
"""1: one JSON document, texts inside, an entry object per card (still read; written as 2
at the next change)."""
TEXT_LIMIT = 256 * 1024
"""Card texts longer than this (in UTF-8 bytes) are not kept in the file (fetched when
needed)."""


@dataclass(slots=True)
class _Group:
    name: str
    members: tuple[str, ...]
    """MEMBER values as written (``urn:uuid:…``)."""
    prop: str
    """The property naming members: MEMBER or X-ADDRESSBOOKSERVER-MEMBER."""


class _Entry:
    """What we know of one resource of the book, for one ETag."""

    __slots__ = ("_at", "_size", "_src", "_text", "error", "etag", "group", "known", "uid")

    def __init__(
        self,
        etag: str,
        text: str | None = None,
        *,
        known: bool = False,
        uid: str = "",
        group: _Group | None = None,
        error: str | None = None,
    ) -> None:
        self.etag = etag
        self.known = known
        """``uid`` and ``group`` describe this ETag's card."""
        self.uid = uid
        self.group = group
        self.error = error
        """Why the server could not send this card (it stays unreadable until it changes)."""
        self._text = text
        self._src: bytes | None = None
        """The cache file's bytes holding the text, not decoded yet (``_at``, ``_size``)."""
        self._at = self._size = 0

    @property
    def text(self) -> str | None:
        """The card's text; decoded from the cache file's bytes when first asked for."""
        src = self._src
        if src is not None:
            self._src = None
            chunk = src[self._at : self._at + self._size]
            try:
                self._text = chunk.decode("utf-8") if len(chunk) == self._size else None
            except UnicodeDecodeError:  # (the CRC makes this unlikely): fetched again
                self._text = None
        return self._text

    @text.setter
    def text(self, value: str | None) -> None:
        self._text, self._src = value, None

    @property
    def decoded(self) -> bool:
        """The text is a string now (not bytes of the cache file still)."""
        return self._src is None

    def text_bytes(self) -> bytes | None:
        """The text as UTF-8, without decoding a text never read from the cache file."""
        if self._src is not None:
            return self._src[self._at : self._at + self._size]
        return self._text.encode("utf-8") if self._text is not None else None


Index = Callable[[], dict[str, _Entry]]
"""A cache file's entries, decoded when called (ValueError when damaged)."""

_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
"""One shot, so the C encoder runs (json.dump to a file runs the pure Python one, ten times
slower on a book of thousands of cards)."""


def read(raw: bytes) -> tuple[dict[str, Any], Index]:
    """The header of a cache file, and its index to decode when first needed. ValueError
    when the file is damaged or of another format."""
    line, newline, rest = raw.partition(b"\n")
    if not newline:  # format 1, an older Pairsync's: one document, texts inside
        head = json.loads(line)
        if not isinstance(head, dict) or head.get("format") != 1:
            raise ValueError("another format")
        entries = _format_1(head.pop("entries"))
        return head, lambda: entries
    head = json.loads(line)
    if not isinstance(head, dict) or head.get("format") != FORMAT:
        raise ValueError("another format")
    if len(rest) != head["size"] or zlib.crc32(rest) != head["crc"]:
        raise ValueError("a damaged mirror")  # cut short, or not what was written
    start = len(line) + 1
    end = raw.find(b"\n", start)
    if end < 0:
        raise ValueError("a damaged mirror")
    return head, lambda: _index(json.loads(raw[start:end]), raw, end + 1)


def _index(index: Mapping[str, Any], src: bytes, base: int) -> dict[str, _Entry]:
    """The entries of a format 2 index; their texts are spans of ``src`` from ``base``."""
    try:
        names, etags, uids, spans = index["n"], index["e"], index["u"], index["t"]
        if not len(names) == len(etags) == len(uids) or len(spans) != 2 * len(names):
            raise ValueError("a damaged mirror")
        groups = {
            int(i): _Group(str(g[0]), tuple(map(str, g[1])), str(g[2]))
            for i, g in index["g"].items()
        }
        errors = {int(i): str(x) for i, x in index["x"].items()}
        out: dict[str, _Entry] = {}
        new = _Entry.__new__
        for i, name in enumerate(names):
            entry = out[name] = new(_Entry)  # one card: no __init__ call, no keywords
            uid = uids[i]
            entry.etag, entry.known, entry.uid = etags[i], uid is not None, uid or ""
            entry.group, entry.error = groups.get(i), errors.get(i)
            entry._text, entry._at, entry._size = None, base + spans[2 * i], spans[2 * i + 1]
            entry._src = src if entry._size >= 0 else None
    except (KeyError, IndexError, TypeError, AttributeError) as err:
        raise ValueError("a damaged mirror") from err
    return out


def _format_1(entries: object) -> dict[str, _Entry]:
    """The entries of a format 1 file (an object per card, its text inside)."""
    if not isinstance(entries, dict):
        raise ValueError("not a mirror")
    out: dict[str, _Entry] = {}
    for name, data in entries.items():
        if not isinstance(data, dict) or not isinstance(data.get("e"), str):
            raise ValueError("not a mirror entry")
        text, error = data.get("t"), data.get("x")
        entry = out[str(name)] = _Entry(
            data["e"],
            text if isinstance(text, str) else None,
            error=error if isinstance(error, str) else None,
        )
        if data.get("k"):
            entry.known, entry.uid = True, str(data.get("u", ""))
            group = data.get("g")
            if isinstance(group, list) and len(group) == 3:
                entry.group = _Group(str(group[0]), tuple(map(str, group[1])), str(group[2]))
    return out


def write(path: Path, head: Mapping[str, object], entries: Mapping[str, _Entry]) -> None:
    """Write ``entries`` under ``head`` (book, token…) to ``path``, whole or not at all.
    Raises OSError when it cannot."""
    names: list[str] = []
    etags: list[str] = []
    uids: list[str | None] = []
    spans: list[int] = []
    groups: dict[str, object] = {}
    errors: dict[str, str] = {}
    texts: list[bytes] = []
    at = 0
    for i, (name, entry) in enumerate(entries.items()):
        names.append(name)
        etags.append(entry.etag)
        uids.append(entry.uid if entry.known else None)
        if entry.known and entry.group is not None:
            group = entry.group
            groups[str(i)] = [group.name, list(group.members), group.prop]
        if entry.error:
            errors[str(i)] = entry.error
        text = entry.text_bytes()
        if text is not None and len(text) <= TEXT_LIMIT:
            spans += (at, len(text))
            texts.append(text)
            at += len(text)
        else:
            spans += (0, -1)
    index = {"n": names, "e": etags, "u": uids, "t": spans, "g": groups, "x": errors}
    rest = _JSON.encode(index).encode("utf-8") + b"\n" + b"".join(texts)
    top = {**head, "format": FORMAT, "size": len(rest), "crc": zlib.crc32(rest)}
    payload = _JSON.encode(top).encode("utf-8") + b"\n" + rest
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".carddav.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(payload)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
