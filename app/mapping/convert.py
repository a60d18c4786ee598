"""Typed values kept as text: parsing, canonical forms and conversions between field types.

Apps store dates, numbers and yes/no values as text in many spellings ("1/31/1980",
"1980-01-31", "19800131", "--01-31"; "1,234.50"; "Yes", "TRUE", "1"). A canonical form makes
equal values compare equal, so formatting is never mistaken for a change; the stored text is
never rewritten for formatting's sake.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation

from app.mapping.canonical import canon_text

TRUE_WORDS = frozenset({"true", "yes", "y", "1", "on", "x", "checked", "ja", "oui", "si", "sí"})
FALSE_WORDS = frozenset({"false", "no", "n", "0", "off", "unchecked", "nein", "non"})

_ISO = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})$")
_BASIC = re.compile(r"^(\d{4})(\d{2})(\d{2})$")
_NO_YEAR = re.compile(r"^--(\d{2})-?(\d{2})$")
_NUMBER_NOISE = re.compile(r"[\s\u00a0\u202f'’€$£¥%]")
_NUMBER = re.compile(r"^[+-]?\d[\d.,]*$|^[+-]?[.,]\d+$")
_SLASH = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{2}|\d{4})$")
_DOT = re.compile(r"^(\d{1,2})\.(\d{1,2})\.(\d{4})$")


def parse_boolean(text: str) -> bool | None:
    word = text.strip().casefold()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    return None


def parse_date(text: str) -> str | None:
    """A date in canonical form: ``YYYY-MM-DD``, or ``--MM-DD`` when the year is unknown.

    Understood: ISO (``1980-01-31``, also the date part of an ISO date-time), vCard basic
    (``19800131``), vCard no-year (``--0131``, ``--01-31``), Outlook/US ``M/D/YYYY`` and
    European ``D.M.YYYY``. Outlook's empty birthday ``0/0/00`` is no date.
    """
    s = text.strip()
    if not s or s in ("0/0/00", "0/0/0000"):
        return None
    if "T" in s and _ISO.match(s.split("T", 1)[0]):
        s = s.split("T", 1)[0]
    year: int | None
    if (m := _ISO.match(s)) or (m := _BASIC.match(s)):
        year, month, day = int(m[1]), int(m[2]), int(m[3])
    elif m := _NO_YEAR.match(s):
        year, month, day = None, int(m[1]), int(m[2])
    elif m := _SLASH.match(s):
        month, day = int(m[1]), int(m[2])
        year = int(m[3]) if len(m[3]) == 4 else _two_digit_year(int(m[3]))
    elif m := _DOT.match(s):
        day, month, year = int(m[1]), int(m[2]), int(m[3])
    else:
        return None
    try:
        date(2000 if year is None else year, month, day)  # 2000 is leap: --02-29 is valid
    except ValueError:
        return None
    if year is None:
        return f"--{month:02d}-{day:02d}"
    return f"{year:04d}-{month:02d}-{day:02d}"


def _two_digit_year(yy: int) -> int:
    return 2000 + yy if yy < 50 else 1900 + yy


def parse_datetime(text: str) -> str | None:
    """ISO 8601 date-time in UTC (``YYYY-MM-DDTHH:MM:SSZ``); a bare date stays a date."""
    s = text.strip()
    if not s:
        return None
    if _ISO.match(s) or _BASIC.match(s):
        return parse_date(s)
    try:
        moment = datetime.fromisoformat(s.replace("Z", "+00:00"))
    except ValueError:
        return parse_date(s)
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_number(text: str) -> Decimal | None:
    """Locale-free: ``1234.5``, ``1,234.50``, ``1.234,50``, ``1 234,5``, ``-3``, ``€ 12``.

    With both separators, the last one is the decimal point. With one kind only: several of
    them are thousands separators; a single comma followed by exactly three digits is a
    thousands separator (``1,234``), otherwise a decimal comma (``12,5``); a single dot is a
    decimal point.
    """
    s = _NUMBER_NOISE.sub("", text.strip())
    if not _NUMBER.match(s):
        return None
    commas, dots = s.count(","), s.count(".")
    if commas and dots:
        decimal_sep = "," if s.rfind(",") > s.rfind(".") else "."
    elif commas:
        decimal_sep = "," if commas == 1 and len(s.split(",")[1]) != 3 else "."
    elif dots > 1:
        decimal_sep = ","
    else:
        decimal_sep = "."
    thousands = "," if decimal_sep == "." else "."
    try:
        return Decimal(s.replace(thousands, "").replace(decimal_sep, "."))
    except InvalidOperation:
        return None


def number_text(value: Decimal) -> str:
    """The plain text of a number: no exponent, no trailing zeros (``1234.5``)."""
    normalized = value.normalize()
    _sign, _digits, exponent = normalized.as_tuple()
    if isinstance(exponent, int) and exponent > 0:
        normalized = normalized.quantize(Decimal(1))
    text = format(normalized, "f")
    return "0" if text in ("-0", "+0") else text


def canon_typed(kind: str, text: str) -> str:
    """Canonical form of a single value of the given field type (``FieldType`` value)."""
    if kind in ("date",):
        return parse_date(text) or canon_text(text)
    if kind == "datetime":
        return parse_datetime(text) or canon_text(text)
    if kind == "number":
        number = parse_number(text)
        return number_text(number) if number is not None else canon_text(text)
    if kind == "boolean":
        flag = parse_boolean(text)
        if flag is None:
            return canon_text(text).casefold()
        return "true" if flag else "false"
    return canon_text(text)


def convert(text: str, source: str, target: str) -> str:
    """The text to write into a ``target``-typed field for a ``source``-typed value.

    Values pass through as they are wherever the target can hold them (apps read each
    other's spellings); only a date-time written into a date field is cut to its date.
    """
    if source == "datetime" and target == "date":
        return parse_date(text) or text
    return text
