"""Packed records (issue 18): the round trip is exact on any record, and packing is what
makes a held record small."""

from __future__ import annotations

import pickle
import sys

from hypothesis import given
from hypothesis import strategies as st

from app.model import Address, Labeled, Record
from app.packed import DICTIONARY_BYTES, DeflatedRecords, PackedRecords, pack, unpack

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


def contact(i: int) -> Record:
    """A typical contact, as the benchmarks make them."""
    return Record(
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


def test_a_packed_contact_takes_under_400_bytes() -> None:
    assert sys.getsizeof(pack(contact(0))) < 400


def deflated(count: int) -> DeflatedRecords:
    """A store past its first ``DICTIONARY_BYTES``: what it stores next is deflated."""
    store = DeflatedRecords()
    for i in range(count):
        rec = contact(i)
        store[f"id{i}"] = Record(f"id{i}", f"v{i}", {**rec.fields, "title": f"Title {i}"})
    return store


PRIMED = deflated(DICTIONARY_BYTES // 300 + 2)


@given(records)
def test_a_deflated_record_comes_back_whole_with_its_version(record: Record) -> None:
    PRIMED[record.id] = record
    assert PRIMED[record.id] == record
    assert PRIMED.version(record.id) == record.version


def test_a_deflated_contact_takes_under_150_bytes() -> None:
    store = deflated(40)
    plain, later = store._packed["id0"], store._packed["id39"]
    assert isinstance(plain, bytes) and isinstance(later, bytes)
    assert sys.getsizeof(later) < 150 < sys.getsizeof(plain)
    assert store["id0"].fields["title"] == "Title 0" and store["id39"].version == "v39"


def test_a_deflated_store_survives_pickling() -> None:
    store = deflated(40)
    back = pickle.loads(pickle.dumps(store, pickle.HIGHEST_PROTOCOL))
    assert dict(back) == dict(store)
    new = contact(1)
    back[new.id] = new
    assert back[new.id] == new and back.version("id39") == "v39"
    long = Record("x", "é" * 300, {"title": "CTO"})  # a version too long to keep apart
    back["x"] = long
    assert back["x"] == long and back.version("x") == long.version


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
