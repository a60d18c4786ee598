"""Names and values from users, files and servers, made safe to show in a terminal.

A contact's name, a CSV header or a server's error text can hold control characters: an
escape sequence retitles or clears the terminal, a carriage return overwrites what was
printed, a line break or tab splits a listing's columns, and the Unicode direction
overrides show text in another order than it is. :func:`shown` spells every such character
out (``\\x1b``, ``\\n``, ``\\u202e``) so the text arrives as text; every print of user or
server data in the CLI goes through it. Names the user gives (accounts, connections) are
refused at creation when they hold one (:func:`check_name`).
"""

from __future__ import annotations

import unicodedata

from app.errors import ConfigError

_DIRECTION_MARKS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029"
)
"""Bidirectional marks, overrides and isolates, and the Unicode line/paragraph separators."""
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _unsafe(ch: str) -> bool:
    return ch in _DIRECTION_MARKS or unicodedata.category(ch) == "Cc"


def _spelled(ch: str) -> str:
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def shown(value: object) -> str:
    """``value`` as text with its control characters spelled out (see the module doc)."""
    text = str(value)
    if text.isprintable():  # the usual case, checked in C
        return text
    return "".join(_spelled(ch) if _unsafe(ch) else ch for ch in text)


def has_control_characters(text: str) -> bool:
    return not text.isprintable() and any(_unsafe(ch) for ch in text)


def check_name(name: str, what: str) -> None:
    """Refuse a name (of an account, a connection) that holds a control character."""
    if has_control_characters(name):
        raise ConfigError(
            f"{what} cannot contain control characters (a line break, a tab, an escape "
            f"sequence or a text-direction mark): '{shown(name)}'."
        )
