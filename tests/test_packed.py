"""Packed records (issue 18): the round trip is exact on any record, and packing is what
makes a held record small."""

from __future__ import annotations

import sys

from hypothesis import given
from hypothesis import strategies as st

from app.model import Address, Labeled, Record
from app.packed import PackedRecords, pack, unpack

text = st.text(max_size=30)
labeled = st.builds(Labeled, text, text)
address = st.builds(Address, text, text, text, text, text, text, text, text)
value = st.one_of(
    text,
    st.tuples(),
    st.lists(labeled, min_size=1, max_size=3).map(tuple),
    st.lists(address, min_size=1, max_size=2).map(tuple),
)
records = st.builds(
    Record,
    text,
    text,
    st.dictionaries(text, value, max_size=8),
    st.frozensets(text, max_size=4),
    st.sampled_from([None, True, False]),
)


class Word(str):
    """A str subclass (marshal takes exact types only: such a record is pickled)."""


@given(records)
def test_unpack_gives_back_the_record_packed(record: Record) -> None:
    assert unpack(record.id, pack(record)) == record


@given(records)
def test_the_version_is_read_without_unpacking(record: Record) -> None:
    held = PackedRecords()
    held[record.id] = record
    assert held.version(record.id) == record.version


def test_values_of_other_types_are_kept_whole() -> None:
    mixed = (Labeled("a@example.com", "work"), Address("1 Main St"))
    odd = Record("r1", "v1", {"name": Word("Ada"), "mixed": mixed, "n": 7})  # type: ignore[dict-item]
    back = unpack("r1", pack(odd))
    assert back == odd
    assert type(back.fields["name"]) is Word
    held = PackedRecords()
    held["r1"] = odd
    assert held.version("r1") == "v1"


def test_a_packed_contact_takes_under_400_bytes() -> None:
    rec = Record(
        "4dbd3d1f54e675a435f1f1fc2033c506",
        "1796225283535144489-395-5559029",
        {
            "full_name": "Olivia Martinez",
            "given_name": "Olivia",
            "family_name": "Martinez",
            "organization": "Nakatomi Trading",
            "title": "CTO",
            "notes": "Birthday in spring, knows our ceo.",
            "emails": (
                Labeled("oliviamartinez.a19377@corp.example", "work"),
                Labeled("oliviamaa19377@home.example", "home"),
            ),
            "phones": (Labeled("+44 7700 163956", "mobile"), Labeled("+1 212 555 7219", "work")),
        },
    )
    assert sys.getsizeof(pack(rec)) < 400


def test_a_read_is_a_copy_and_a_store_keeps_the_change() -> None:
    held = PackedRecords()
    held["r1"] = Record("r1", "v1", {"title": "CTO"})
    got = held["r1"]
    got.fields["title"] = "CEO"
    assert held["r1"].fields["title"] == "CTO"
    held["r1"] = got
    assert held["r1"].fields["title"] == "CEO"
    assert held.discard("r1") and not held.discard("r1") and len(held) == 0


def test_a_taken_record_is_held_as_that_object() -> None:
    held = PackedRecords()
    held["r1"] = Record("r1", "v1", {"title": "CTO"})
    taken = held.take("r1")
    assert held["r1"] is taken and held.take("r1") is taken and held.version("r1") == "v1"
