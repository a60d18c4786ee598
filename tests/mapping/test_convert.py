"""Typed conversions and canonical forms (dates, numbers, yes/no, phones, emails)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from app.mapping.canonical import canon_email, canon_phone, canon_scalar, canon_text
from app.mapping.convert import (
    canon_typed,
    convert,
    number_text,
    parse_boolean,
    parse_date,
    parse_datetime,
    parse_number,
)

# --- dates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1980-01-31", "1980-01-31"),
        ("1980-1-31", "1980-01-31"),
        ("  1980-01-31 ", "1980-01-31"),
        ("19800131", "1980-01-31"),  # vCard basic
        ("--0131", "--01-31"),  # vCard no year
        ("--01-31", "--01-31"),
        ("1/31/1980", "1980-01-31"),  # Outlook / US
        ("01/31/1980", "1980-01-31"),
        ("1/31/80", "1980-01-31"),  # two-digit year
        ("1/31/05", "2005-01-31"),
        ("31.1.1980", "1980-01-31"),  # European
        ("31.01.1980", "1980-01-31"),
        ("1980-01-31T10:20:30Z", "1980-01-31"),  # date part of an ISO date-time
        ("1980-01-31T23:59:59+05:00", "1980-01-31"),
        ("--02-29", "--02-29"),  # leap day without a year is a valid birthday
        ("--0229", "--02-29"),
        ("2000-02-29", "2000-02-29"),
        ("2/29/2000", "2000-02-29"),
    ],
)
def test_parse_date(text: str, expected: str) -> None:
    assert parse_date(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "0/0/00",  # Outlook's empty birthday
        "0/0/0000",
        "2/30/1980",  # no such day
        "1980-02-30",
        "1981-02-29",  # not a leap year
        "2/29/1981",
        "29.2.1981",
        "--02-30",
        "--13-01",
        "13/1/1980",  # month 13 (US order)
        "1980-13-01",
        "19801301",
        "yesterday",
        "31 January 1980",
        "1980/01/31",
    ],
)
def test_parse_date_invalid(text: str) -> None:
    assert parse_date(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1980-01-31T10:20:30Z", "1980-01-31T10:20:30Z"),
        ("1980-01-31T10:20:30+00:00", "1980-01-31T10:20:30Z"),
        ("1980-01-31T11:20:30+01:00", "1980-01-31T10:20:30Z"),  # normalised to UTC
        ("1980-02-01T01:00:00+02:00", "1980-01-31T23:00:00Z"),  # crosses midnight
        ("1980-01-31T10:20:30", "1980-01-31T10:20:30"),  # naive stays naive
        ("1/31/1980", "1980-01-31"),  # a bare date stays a date
        ("", None),
        ("garbage", None),
    ],
)
def test_parse_datetime(text: str, expected: str | None) -> None:
    assert parse_datetime(text) == expected


@pytest.mark.parametrize("text", ["1980-01-31", "19800131"])
def test_parse_datetime_bare_iso_date_stays_a_date(text: str) -> None:
    assert parse_datetime(text) == "1980-01-31"


def test_canon_datetime_same_date_same_canon() -> None:
    assert canon_typed("datetime", "1980-01-31") == canon_typed("datetime", "1/31/1980")


# --- numbers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1234.5", "1234.5"),
        ("1,234.50", "1234.50"),
        ("1.234,50", "1234.50"),
        ("1 234,5", "1234.5"),
        ("1\u00a0234,5", "1234.5"),  # non-breaking space as thousands separator
        ("12,5", "12.5"),
        ("1,234", "1234"),  # one comma + exactly three digits: thousands
        ("1,234,567", "1234567"),
        ("1.234.567", "1234567"),
        ("1,234,567.89", "1234567.89"),
        ("-3", "-3"),
        ("+3", "3"),
        ("€ 12", "12"),
        ("$1,000.00", "1000.00"),
        ("12 €", "12"),
        ("0", "0"),
        ("0.5", "0.5"),
        ("1.5", "1.5"),  # a single dot is a decimal point
    ],
)
def test_parse_number(text: str, expected: str) -> None:
    assert parse_number(text) == Decimal(expected)


@pytest.mark.parametrize("text", ["", "   ", "abc", "n/a", "€", "-", ".", ",", "--5", "12-", "1-2"])
def test_parse_number_garbage(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize("text", ["5 to 10", "1e5", "12abc34", "Call 555 1234"])
def test_parse_number_rejects_words_between_digits(text: str) -> None:
    assert parse_number(text) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (Decimal("1234.50"), "1234.5"),
        (Decimal("1200"), "1200"),
        (Decimal("1.2E+3"), "1200"),
        (Decimal("-0"), "0"),
        (Decimal("0.000"), "0"),
        (Decimal("-3.10"), "-3.1"),
        (Decimal("0.0001"), "0.0001"),
    ],
)
def test_number_text(value: Decimal, expected: str) -> None:
    assert number_text(value) == expected


# --- booleans ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text", ["yes", "Yes", "YES", "true", "True", "1", "on", "ON", "x", "X", "y", " yes "]
)
def test_parse_boolean_true(text: str) -> None:
    assert parse_boolean(text) is True


@pytest.mark.parametrize("text", ["no", "No", "false", "FALSE", "0", "off", "n", " no "])
def test_parse_boolean_false(text: str) -> None:
    assert parse_boolean(text) is False


@pytest.mark.parametrize("text", ["", "maybe", "2", "yess", "-1", "null"])
def test_parse_boolean_unknown(text: str) -> None:
    assert parse_boolean(text) is None


# --- canonical equality -----------------------------------------------------------------

SAME = [
    ("date", ["1980-01-31", "19800131", "1/31/1980", "31.1.1980", "1980-01-31T08:00:00Z"]),
    ("date", ["--01-31", "--0131"]),
    ("number", ["1234.5", "1,234.50", "1.234,50", "1 234,5", "1234.500", "€ 1234.5"]),
    ("number", ["-3", "-3.0", "-3,00"]),
    ("boolean", ["yes", "TRUE", "1", "on", "x", "Yes"]),
    ("boolean", ["no", "FALSE", "0", "off"]),
    ("boolean", ["Maybe", "maybe", " MAYBE "]),  # unknown words: case- and space-folded
    ("datetime", ["1980-01-31T10:00:00Z", "1980-01-31T11:00:00+01:00", "1980-01-31T10:00Z"]),
    ("text", ["Ann  Smith", " Ann Smith ", "Ann\tSmith", "Ann\nSmith"]),
]


@pytest.mark.parametrize(("kind", "spellings"), SAME)
def test_canon_typed_same_value_same_canon(kind: str, spellings: list[str]) -> None:
    canons = {canon_typed(kind, s) for s in spellings}
    assert len(canons) == 1, canons


DIFFERENT = [
    ("date", ["1980-01-31", "1980-01-30", "--01-31", "1981-01-31"]),
    ("number", ["1234.5", "1234.51", "12345", "-1234.5", "1.2345"]),
    ("boolean", ["yes", "no", "maybe"]),
    ("datetime", ["1980-01-31T10:00:00Z", "1980-01-31T10:00:01Z", "1980-01-31T10:00:00"]),
    ("text", ["Ann", "ann", "Anne"]),  # text canon keeps case: a case edit is a change
]


@pytest.mark.parametrize(("kind", "values"), DIFFERENT)
def test_canon_typed_different_values_differ(kind: str, values: list[str]) -> None:
    canons = [canon_typed(kind, v) for v in values]
    assert len(set(canons)) == len(canons), canons


def test_canon_typed_unparseable_falls_back_to_text() -> None:
    assert canon_typed("date", "  some  day ") == "some day"
    assert canon_typed("number", " lots  of ") == "lots of"


@pytest.mark.parametrize(
    ("text", "source", "target", "expected"),
    [
        ("1980-01-31T10:00:00Z", "datetime", "date", "1980-01-31"),
        ("1/31/1980", "date", "text", "1/31/1980"),  # never reformatted
        ("1,234.50", "number", "text", "1,234.50"),
        ("Yes", "boolean", "text", "Yes"),
        ("1980-01-31", "date", "datetime", "1980-01-31"),
        ("not a date", "datetime", "date", "not a date"),  # kept rather than lost
    ],
)
def test_convert(text: str, source: str, target: str, expected: str) -> None:
    assert convert(text, source, target) == expected


# --- phones and emails ------------------------------------------------------------------

UK = "+442079460958"


@pytest.mark.parametrize(
    "text", ["+44 20 7946 0958", "+442079460958", "+44 (0)20 7946 0958", "+44-20-7946-0958"]
)
def test_phone_e164(text: str) -> None:
    assert canon_phone(text) == UK


@pytest.mark.parametrize("region", ["GB", "gb"])
def test_phone_with_region(region: str) -> None:
    assert canon_phone("020 7946 0958", region) == UK
    assert canon_phone("+44 20 7946 0958", region) == UK
    assert canon_scalar("phone", "(020) 7946-0958", region) == UK


def test_phone_other_region_or_none_differs() -> None:
    assert canon_phone("020 7946 0958") != UK  # no region: digits only
    assert canon_phone("020 7946 0958") == "02079460958"
    assert canon_phone("(415) 555-0132", "US") == "+14155550132"
    assert canon_phone("415.555.0132", "US") == "+14155550132"


def test_phone_unparseable_digits_only() -> None:
    assert canon_phone("") == ""
    assert canon_phone("ext 12") == "12"
    assert canon_phone("+12") == "+12"


@pytest.mark.parametrize("text", ["ann@x.com", "Ann@X.com", "  ANN@x.COM ", "\tann@x.com\n"])
def test_email_case_and_whitespace(text: str) -> None:
    assert canon_email(text) == "ann@x.com"
    assert canon_scalar("email", text) == "ann@x.com"


def test_email_no_other_folding() -> None:
    assert canon_email("ann.smith+tag@x.com") != canon_email("annsmith@x.com")


def test_url_and_text_canon() -> None:
    assert canon_scalar("url", "HTTPS://Example.com/") == canon_scalar("url", "https://example.com")
    assert canon_text("  a \n b\t c ") == "a b c"
