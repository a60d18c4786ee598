"""Bytes to text, one set of rules for every app that reads contacts from files or bodies.

Shared by the CSV file, the vCard file, the vCard folder and CardDAV. The parts are the same
for all: the byte-order marks (``BOMS``: UTF-8, UTF-32 before UTF-16, whose mark begins
UTF-32-LE's), ``Encoding`` (codec + the BOM a file had, so a rewrite keeps both), valid UTF-8
first, then *loose* UTF-8 (real multi-byte text with a few broken bytes stays UTF-8: the bytes
are kept as ``surrogateescape`` and only what holds them is unreadable), then Windows-1252.

What differs is written down once per format, as a profile (each keeps its tested
behaviour):

* ``decode_card`` (one card: a ``.vcf`` of a folder, a CardDAV body): a UTF-8 BOM is
  dropped; UTF-8, else Windows-1252, else Latin-1 (the five bytes Windows-1252 leaves
  undefined). A card is text, never bytes kept for a rewrite.
* ``decode_vcard_file`` (a ``.vcf`` with many cards, rewritten in place): BOMs (UTF-8,
  UTF-16; a BOM'd file that does not decode is refused as a whole), UTF-8, loose UTF-8,
  Windows-1252, else Latin-1.
* ``decode_csv`` (a sheet, rewritten in place): BOMs (UTF-8, UTF-16, UTF-32), UTF-16 without
  a BOM (every other byte zero), UTF-8, loose UTF-8, a ``charset_normalizer`` guess when that
  is not Western, else Windows-1252 keeping undefined bytes (the rows holding them are
  unreadable).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from app.errors import Unavailable

BOMS = (
    (b"\xef\xbb\xbf", "utf-8"),
    (b"\xff\xfe\x00\x00", "utf-32-le"),
    (b"\x00\x00\xfe\xff", "utf-32-be"),
    (b"\xff\xfe", "utf-16-le"),
    (b"\xfe\xff", "utf-16-be"),
)
UTF8_BOM = BOMS[0][0]

ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
"""A byte that did not decode, kept by ``surrogateescape``."""
REAL_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")
"""Non-ASCII text that is not an escaped byte (real multi-byte UTF-8 decoded). Written as
what it is not: the same set, spelt as its ranges, took a cron run 3-7 ms to compile."""

_NAMES = {
    "utf-8": "UTF-8",
    "utf-16-le": "UTF-16",
    "utf-16-be": "UTF-16",
    "utf-32-le": "UTF-32",
    "utf-32-be": "UTF-32",
    "cp1252": "Windows-1252",
    "latin-1": "Latin-1",
}


@dataclass(frozen=True, slots=True)
class Encoding:
    """How a file's text is stored: the codec, and the BOM it began with (kept on rewrite)."""

    codec: str
    bom: bytes = b""

    @property
    def byte_preserving(self) -> bool:
        """Undecodable bytes survive a round trip through ``surrogateescape`` (not so for
        UTF-16/32, whose units are not bytes)."""
        return not self.codec.startswith(("utf-16", "utf-32"))

    @property
    def errors(self) -> str:
        """The error handler for encoding: kept bytes go back as they were."""
        return "surrogateescape" if self.byte_preserving else "strict"

    def decode(self, data: bytes | memoryview) -> str:
        return str(data, self.codec, "surrogateescape" if self.byte_preserving else "replace")

    def encode(self, text: str) -> bytes:
        """``text`` in this encoding, without the BOM (the caller writes it once, first)."""
        return text.encode(self.codec, self.errors)

    def describe(self) -> str:
        """The encoding's name as people know it ("UTF-8", "Windows-1252")."""
        return _NAMES.get(self.codec, self.codec)


def _utf8(data: bytes, *, loose: bool) -> str | None:
    """The text if ``data`` is UTF-8 (``loose``: also with a few broken bytes among real
    multi-byte text, those kept as escapes), else None."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if loose:
        text = data.decode("utf-8", "surrogateescape")
        if REAL_NON_ASCII.search(text):
            return text
    return None


def _western(data: bytes) -> tuple[Encoding, str]:
    """Windows-1252, or Latin-1 when a byte Windows-1252 leaves undefined occurs."""
    try:
        return Encoding("cp1252"), data.decode("cp1252")
    except UnicodeDecodeError:
        return Encoding("latin-1"), data.decode("latin-1")


def decode_card(data: bytes) -> str:
    """One card's text (a ``.vcf`` of a folder, a CardDAV body)."""
    if data.startswith(UTF8_BOM):
        data = data[len(UTF8_BOM) :]
    text = _utf8(data, loose=False)
    return text if text is not None else _western(data)[1]


def decode_vcard_file(data: bytes) -> tuple[Encoding, str]:
    """A vCard file's encoding and its text (without the BOM)."""
    for bom, codec in BOMS:
        if codec.startswith("utf-32"):
            continue  # a vCard file's BOMs: UTF-8 and UTF-16 (FF FE is UTF-16-LE here)
        if data.startswith(bom):
            encoding = Encoding(codec, bom)
            try:
                return encoding, data[len(bom) :].decode(codec, encoding.errors)
            except UnicodeDecodeError:
                raise Unavailable(f"The file is not valid {codec.upper()} text.") from None
    text = _utf8(data, loose=True)
    if text is not None:
        return Encoding("utf-8"), text
    return _western(data)


def decode_csv(data: bytes) -> tuple[Encoding, str]:
    """A CSV file's encoding and its text (without the BOM)."""
    encoding, text = detect_csv(data)
    if text is None:
        # A view: no copy of the bytes after the BOM.
        text = encoding.decode(memoryview(data)[len(encoding.bom) :])
    return encoding, text


def detect_csv(data: bytes) -> tuple[Encoding, str | None]:
    """A CSV file's encoding, and its text when detecting it already decoded it all."""
    for bom, codec in BOMS:
        if data.startswith(bom):
            return Encoding(codec, bom), None
    if len(data) >= 4 and data[1] == 0 and data[3] == 0 and data[0] != 0:
        return Encoding("utf-16-le"), None
    if len(data) >= 4 and data[0] == 0 and data[2] == 0 and data[1] != 0:
        return Encoding("utf-16-be"), None
    text = _utf8(data, loose=True)
    if text is not None:
        # Valid UTF-8 is the very text ``Encoding("utf-8").decode`` gives; loose UTF-8 keeps
        # its broken bytes escaped (those rows become unreadable).
        return Encoding("utf-8"), text
    try:
        from charset_normalizer import from_bytes

        matches = list(from_bytes(data))
    except Exception:  # pragma: no cover - the detector is a best effort
        matches = []
    candidates = [m.encoding for m in matches]
    western = {"cp1252", "latin_1", "iso8859_15", "iso8859_1"}
    if not candidates or western & set(candidates):
        return Encoding("cp1252"), None
    return Encoding(candidates[0]), None
