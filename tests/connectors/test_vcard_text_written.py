"""A new card's record is taken from the card as built, not from parsing the text written
(issue 18: a first sync of 10,000 contacts read each card it wrote back). It must be exactly
what parsing the text gives, for any values, or ``written_values`` must decline (None).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from app.connectors import vcard_folder
from app.connectors.vcard_folder import VCardFolderApp
from app.connectors.vcard_text import (
    apply_patch,
    card_values,
    new_card,
    parse_card,
    render,
    set_property,
    written_values,
)
from app.model import OPT_OUT_FIELD, Address, Create, Labeled, Record

TEXT = st.one_of(
    st.text(max_size=30),
    st.text('abc ,;:\\"\r\n\t=.-é', max_size=30),
    st.text(" x", min_size=60, max_size=200),  # folds, runs of blanks
)
LABEL = st.one_of(st.sampled_from(["", "work", "home", "mobile", "fax", "other"]), TEXT)
LABELED = st.builds(Labeled, TEXT, LABEL)
ADDRESS = st.builds(Address, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, TEXT, LABEL)
SIMPLE_KEYS = (
    "full_name",
    "given_name",
    "family_name",
    "middle_name",
    "name_prefix",
    "name_suffix",
    "organization",
    "department",
    "title",
    "notes",
    "birthday",
    "nickname",
)
FIELDS = st.fixed_dictionaries(
    {},
    optional={
        **dict.fromkeys(SIMPLE_KEYS, TEXT),
        "emails": st.lists(LABELED, max_size=3).map(tuple),
        "phones": st.lists(LABELED, max_size=3).map(tuple),
        "urls": st.lists(LABELED, max_size=2).map(tuple),
        "addresses": st.lists(ADDRESS, max_size=2).map(tuple),
    },
)


def build(
    fields: dict[str, object], segments: frozenset[str], version: str, status: str | None
) -> tuple[object, str]:
    card = new_card("uid-1", "-//Test//EN", version)
    if status is not None:
        set_property(card, "X-NEWSLETTER", status)
    apply_patch(card, fields, segments, is_new=True)  # type: ignore[arg-type]
    return card, render(card)


@given(
    FIELDS,
    st.frozensets(TEXT, max_size=3),
    st.sampled_from(["3.0", "4.0"]),
    st.one_of(st.none(), TEXT),
)
@example(
    {"full_name": "Ann Lee", "emails": (Labeled("a@x.com", "work"), Labeled("b@x.com"))},
    frozenset({"VIP"}),
    "3.0",
    None,
)
@example({"notes": "a" + " " * 90 + "b"}, frozenset(), "3.0", None)
@example({"urls": (Labeled("http://x/\ry"),)}, frozenset(), "4.0", None)
@example({"phones": (Labeled("1", 'a"b,c'),)}, frozenset(), "3.0", "unsubscribed")
def test_written_values_are_what_reading_the_text_gives(
    fields: dict[str, object], segments: frozenset[str], version: str, status: str | None
) -> None:
    card, text = build(fields, segments, version, status)
    got = written_values(card, text)  # type: ignore[arg-type]
    if got is not None:
        assert got == card_values(parse_card(text))


def test_plain_values_take_the_fast_way() -> None:
    fields = {
        "full_name": "Ann Lee",
        "organization": "Acme",
        "department": "Sales;EMEA",
        "emails": (Labeled("ann@example.com", "work"),),
        "phones": (Labeled("+44 7700 900123", "mobile"), Labeled("020 7946 0000", "home")),
        "addresses": (Address("1 High St", "London", postcode="N1", label="home"),),
        "notes": "Met at a conference, likes tea; " + "long " * 30,
    }
    card, text = build(fields, frozenset({"Friends", "VIP"}), "3.0", None)
    got = written_values(card, text)  # type: ignore[arg-type]
    assert got is not None
    assert got == card_values(parse_card(text))


def test_a_created_contacts_record_is_the_file_as_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = VCardFolderApp(tmp_path, subscription="X-NEWSLETTER")
    fields = {
        "full_name": "Ann Lee",
        "emails": (Labeled("ann@example.com", "work"),),
        "phones": (Labeled("+44 7700 900123", "mobile"),),
        "notes": "x" * 200,
        OPT_OUT_FIELD: "false",
    }

    def no_parsing(text: str) -> object:
        raise AssertionError("a new card's text was parsed again")

    monkeypatch.setattr(vcard_folder, "parse_card", no_parsing)
    [res] = app.write([Create("c1", fields, frozenset({"VIP"}), new_id="ann")])
    monkeypatch.undo()
    assert res.ok and res.record is not None
    assert res.record.subscribed is False
    [fresh] = VCardFolderApp(tmp_path, subscription="X-NEWSLETTER").fetch(["ann"])
    assert isinstance(fresh, Record)
    assert res.record == fresh
