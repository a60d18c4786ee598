"""app/printable.py: what the CLI shows of user and server text has no control characters."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import ConfigError
from app.printable import check_name, has_control_characters, shown


@given(st.text())
def test_shown_text_never_holds_a_control_character(text: str) -> None:
    out = shown(text)
    assert not has_control_characters(out)
    if not has_control_characters(text):
        assert out == text  # plain text (accents, emoji, CJK) is left as it is


def test_control_characters_are_spelled_out() -> None:
    assert shown("a\x1b]0;x\x07b\nc\td\re\x9b\u202ef\x7f") == (
        "a\\x1b]0;x\\x07b\\nc\\td\\re\\x9b\\u202ef\\x7f"
    )
    assert shown("Zoë 👩‍👩‍👧 ⇄ 東京") == "Zoë 👩‍👩‍👧 ⇄ 東京"


def test_names_with_control_characters_are_refused() -> None:
    check_name("Main ⇄ Phone", "A connection's name")
    for bad in ("a\nb", "a\tb", "\x1b[2J", "x\u202ey", "x\x00"):
        with pytest.raises(ConfigError, match="control characters"):
            check_name(bad, "A connection's name")
