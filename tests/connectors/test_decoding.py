"""``app.connectors.decoding``'s character classes, checked over every code point."""

from __future__ import annotations

from app.connectors.decoding import ESCAPED_BYTE, REAL_NON_ASCII


def test_real_non_ascii_is_every_non_ascii_character_but_an_escaped_byte() -> None:
    # Spelt as its complement (it compiles in a fraction of the time): the same set as
    # U+0080-U+DC7F and U+DD00-U+10FFFF, which is what loose UTF-8 decoding looks for.
    text = "".join(map(chr, range(0x110000)))
    found = {m.start() for m in REAL_NON_ASCII.finditer(text)}
    assert found == set(range(0x80, 0xDC80)) | set(range(0xDD00, 0x110000))
    assert {m.start() for m in ESCAPED_BYTE.finditer(text)} == set(range(0xDC80, 0xDD00))
