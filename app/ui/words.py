"""Counts in words: "1 contact", "2 contacts" (never "1 contacts").

Both forms go through ``tr()`` at the call site, so a translation can change each; Qt's own
``%n`` plurals need a compiled translation even for English, which the app does not ship.
"""

from __future__ import annotations


def plural(n: int, one: str, many: str) -> str:
    """``one`` or ``many`` (each holding ``{n}``) for the count ``n``."""
    return (one if n == 1 else many).format(n=n)
