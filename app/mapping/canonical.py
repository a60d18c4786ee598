"""Canonical forms: used only to decide whether a value changed, never written to an app.

Emails are trimmed and case-folded, phones go to E.164 through ``phonenumbers`` (digits
only when they cannot be parsed), text has its whitespace folded. Two values with the same
canonical form are the same value, so formatting differences never cause writes.
"""

from __future__ import annotations

from functools import lru_cache

from app.model import Address, Labeled


def canon_text(value: str) -> str:
    return " ".join(value.split())


def canon_email(value: str) -> str:
    return value.strip().casefold()


# A contact's phones are canonicalised a few times within a short while (its plan, its
# base, its index entry); a cache larger than a slice's phones only keeps the phones of
# contacts long written (65,536 entries held about 15 MB at the end of a 100k first sync).
@lru_cache(maxsize=4096)
def canon_phone(value: str, region: str = "") -> str:
    text = value.strip()
    if not text:
        return ""
    # Imported on the first phone (its import is a tenth of a no-change cron run's start-up,
    # and such a run compares no phone).
    import phonenumbers

    try:
        number = phonenumbers.parse(text, region.upper() or None)
    except phonenumbers.NumberParseException:
        number = None
    if number is not None and phonenumbers.is_possible_number(number):
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = "".join(ch for ch in text if ch.isdigit())
    return ("+" + digits) if text.startswith("+") else digits


def canon_address(value: Address) -> list[str]:
    return [canon_text(p).casefold() for p in value.parts()]


def canon_scalar(kind: str, value: str, region: str = "") -> str:
    if kind == "email":
        return canon_email(value)
    if kind == "phone":
        return canon_phone(value, region)
    if kind == "url":
        return canon_text(value).rstrip("/").casefold()
    return canon_text(value)


def canon_item(kind: str, item: Labeled | Address, region: str = "") -> str | list[str]:
    if isinstance(item, Address):
        return canon_address(item)
    return canon_scalar(kind, item.value, region)
