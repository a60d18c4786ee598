"""The vCard reader's fast paths read exactly what the general ones read (issue 18).

``_split_line`` splits most property lines with string methods instead of vobject's
``parseLine``; ``_logical_lines`` skips its unfolding bookkeeping for cards without folded or
quoted-printable lines. Both must give the same answer as the general code on any input,
including the odd lines other tools write.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from vobject.base import ParseError, parseLine

from app.connectors import vcard_text
from app.connectors.vcard_text import LineError, _logical_lines, _split_line, parse_card

NAME = st.text("ABCXYZabc019-_", min_size=0, max_size=6)
PARAM_TEXT = st.text('abcTYPE=,;:"x -\\\t\u00e9', max_size=12)


def general(line: str) -> tuple[object, ...] | str:
    try:
        return tuple(parseLine(line, 1))
    except ParseError:
        return "ParseError"


def fast(line: str) -> tuple[object, ...] | str:
    try:
        return tuple(_split_line(line, 1))
    except LineError:
        return "ParseError"


@given(
    group=st.one_of(st.none(), NAME),
    name=NAME,
    params=st.lists(PARAM_TEXT, max_size=4),
    value=st.text(max_size=20),
)
@example(group=None, name="TEL", params=["TYPE=CELL,VOICE"], value="+1 555")
@example(group="item1", name="EMAIL", params=["type=INTERNET", "type=pref"], value="a@b")
@example(group=None, name="X_A", params=["TYPE=", "PREF"], value="v")
@example(group=None, name="ADR", params=['LABEL="a:b;c"'], value=";;x")
@example(group=None, name="N", params=["", "TYPE=a"], value="x")
@example(group=None, name="TEL", params=["TYPE=a=b,,c"], value="1")
def test_split_line_agrees_with_vobject(
    group: str | None, name: str, params: list[str], value: str
) -> None:
    line = (f"{group}." if group is not None else "") + name
    line += "".join(f";{p}" for p in params) + ":" + value
    assert fast(line) == general(line)


@given(st.text(max_size=40))
def test_split_line_agrees_with_vobject_on_any_text(line: str) -> None:
    assert fast(line) == general(line)


def slow_logical_lines(text: str) -> list[tuple[str, str, int]]:
    """The general path alone (the fast path's precondition forced false)."""
    real = vcard_text._FOLDED_RE
    try:
        vcard_text._FOLDED_RE = re.compile("")  # matches every text: never the fast path
        return _logical_lines(text)
    finally:
        vcard_text._FOLDED_RE = real


LINES = st.lists(
    st.one_of(
        st.sampled_from(
            ["BEGIN:VCARD", "END:VCARD", "VERSION:3.0", "", " ", "\t", "FN:A", "N:B;A;;;"]
        ),
        st.text("AB: ;=\t\u00e9x", max_size=10),
    ),
    max_size=8,
)


@given(LINES, st.sampled_from(["\r\n", "\n", "\r"]), st.booleans())
def test_logical_lines_fast_path_agrees(lines: list[str], newline: str, last: bool) -> None:
    text = newline.join(lines) + (newline if last else "")
    assert _logical_lines(text) == slow_logical_lines(text)


@pytest.mark.parametrize(
    "text",
    [
        "BEGIN:VCARD\r\nVERSION:3.0\r\nFN:A\r\n  folded\r\nEND:VCARD\r\n",
        "BEGIN:VCARD\nVERSION:2.1\nNOTE;ENCODING=QUOTED-PRINTABLE:a=\nb\nEND:VCARD\n",
        "BEGIN:VCARD\r\nVERSION:3.0\r\nTEL;TYPE=CELL:1\r\n\r\nEND:VCARD\r\n",
    ],
)
def test_cards_read_the_same_either_way(text: str) -> None:
    assert _logical_lines(text) == slow_logical_lines(text)
    assert parse_card(text).lines  # and the card still reads
