"""The compatibility matrix of SPEC §5: which field types can map, in which directions, why not."""

from __future__ import annotations

import itertools
import re

import pytest

from app.mapping.compat import TYPE_WORDS, compatibility
from app.model import FieldSpec, FieldType

T = FieldType
TEXTUAL = {T.TEXT, T.LONG_TEXT}
ALL = list(FieldType)


def spec(key: str, ftype: FieldType, **kw: object) -> FieldSpec:
    return FieldSpec(key, f"{key.title()} field", ftype, **kw)  # type: ignore[arg-type]


def expected_flow(s: FieldType, t: FieldType) -> bool:
    """An independent reading of SPEC §5's type rules: can a ``s`` value go into a ``t`` field?"""
    if s == t:
        return True  # same type ↔ same type
    if {s, t} <= TEXTUAL:
        return True  # text and long text are both text
    if {s, t} == {T.DATE, T.DATETIME}:
        return True
    if {s, t} == {T.BOOLEAN, T.SINGLE_CHOICE}:
        return True  # with a value table
    if t in TEXTUAL:
        return True  # anything → text (one way)
    if s in TEXTUAL and t == T.ADDRESS:
        return True  # address ↔ text via a formatted string (both ways)
    # Not in SPEC; the code documents it (one option is a one-element set). Kept one way.
    return s == T.SINGLE_CHOICE and t == T.MULTI_CHOICE


def expected_needs_values(s: FieldType, t: FieldType) -> bool:
    choice = {T.SINGLE_CHOICE, T.MULTI_CHOICE}
    return (
        (s == t and s in choice)
        or {s, t} == {T.BOOLEAN, T.SINGLE_CHOICE}
        or ({s, t} == {T.SINGLE_CHOICE, T.MULTI_CHOICE})
    )


def assert_sentence(reason: str, *words: str) -> None:
    assert reason.strip(), "a refusal must say why"
    assert reason[0].isupper() and reason.rstrip().endswith("."), reason
    for bad in ("FieldType", "FieldSpec", "<", ">", "None", "'", "{", "_"):
        assert bad not in reason, f"{bad!r} in {reason!r}"
    if words:
        low = reason.lower()
        assert any(w.lower() in low for w in words), f"none of {words} in {reason!r}"


@pytest.mark.parametrize(("ta", "tb"), list(itertools.product(ALL, ALL)), ids=str)
def test_matrix(ta: FieldType, tb: FieldType) -> None:
    a, b = spec("left", ta), spec("right", tb)
    c = compatibility(a, b, app_a="Google", app_b="HubSpot")
    assert c.a_to_b == expected_flow(ta, tb)
    assert c.b_to_a == expected_flow(tb, ta)
    assert c.possible == (c.a_to_b or c.b_to_a)
    if c.possible:
        assert c.needs_values == expected_needs_values(ta, tb)
    if c.a_to_b and c.b_to_a:
        assert c.reason == ""
    else:
        # A refused direction (or both) is explained with the field labels or the type words.
        assert_sentence(c.reason, a.label, b.label, TYPE_WORDS[ta], TYPE_WORDS[tb])


@pytest.mark.parametrize("ftype", ALL, ids=str)
def test_same_type_both_ways(ftype: FieldType) -> None:
    c = compatibility(spec("x", ftype), spec("y", ftype))
    assert (c.a_to_b, c.b_to_a) == (True, True)


@pytest.mark.parametrize(("ta", "tb"), [(T.DATE, T.DATETIME), (T.DATETIME, T.DATE)])
def test_date_datetime_both_ways(ta: FieldType, tb: FieldType) -> None:
    c = compatibility(spec("x", ta), spec("y", tb))
    assert (c.a_to_b, c.b_to_a, c.needs_values) == (True, True, False)


@pytest.mark.parametrize(("ta", "tb"), [(T.BOOLEAN, T.SINGLE_CHOICE), (T.SINGLE_CHOICE, T.BOOLEAN)])
def test_boolean_choice_both_ways_with_table(ta: FieldType, tb: FieldType) -> None:
    c = compatibility(spec("x", ta), spec("y", tb))
    assert (c.a_to_b, c.b_to_a, c.needs_values) == (True, True, True)


ONE_WAY_TO_TEXT = [
    T.NUMBER,
    T.DATE,
    T.DATETIME,
    T.BOOLEAN,
    T.EMAIL,
    T.PHONE,
    T.URL,
    T.SINGLE_CHOICE,
    T.MULTI_CHOICE,
]


@pytest.mark.parametrize("text", sorted(TEXTUAL), ids=str)
@pytest.mark.parametrize("other", ONE_WAY_TO_TEXT, ids=str)
def test_anything_to_text_one_way_only(other: FieldType, text: FieldType) -> None:
    c = compatibility(spec("x", other), spec("notes", text))
    assert (c.a_to_b, c.b_to_a) == (True, False)
    assert_sentence(c.reason, TYPE_WORDS[text])
    assert "cannot be written into" in c.reason
    # and mirrored: the text field on side A
    c = compatibility(spec("notes", text), spec("x", other))
    assert (c.a_to_b, c.b_to_a) == (False, True)
    assert_sentence(c.reason, TYPE_WORDS[text])


@pytest.mark.parametrize("target", [T.NUMBER, T.DATE, T.DATETIME], ids=str)
def test_text_never_into_number_or_date(target: FieldType) -> None:
    c = compatibility(spec("notes", T.TEXT), spec("x", target))
    assert not c.a_to_b
    assert f"text cannot be written into {TYPE_WORDS[target]}" in c.reason.lower()


@pytest.mark.parametrize("text", sorted(TEXTUAL), ids=str)
def test_address_text_both_ways(text: FieldType) -> None:
    c = compatibility(spec("addresses", T.ADDRESS, multi=True), spec("notes", text))
    assert (c.a_to_b, c.b_to_a) == (True, True)
    c = compatibility(spec("notes", text), spec("addresses", T.ADDRESS, multi=True))
    assert (c.a_to_b, c.b_to_a) == (True, True)


def test_incompatible_reason_names_fields_and_types() -> None:
    c = compatibility(spec("score", T.NUMBER), spec("vip", T.BOOLEAN))
    assert not c.possible
    assert c.reason == "Field Score field is not compatible with field Vip field: number vs yes/no."


def test_read_only_target_removes_that_direction() -> None:
    a = spec("score", T.NUMBER)
    b = FieldSpec("hs_score", "HubSpot score", T.NUMBER, writable=False)
    c = compatibility(a, b, app_a="Google", app_b="HubSpot")
    assert (c.a_to_b, c.b_to_a) == (False, True)
    assert "read-only in HubSpot" in c.reason
    assert "HubSpot score" in c.reason
    assert_sentence(c.reason)
    c = compatibility(b, a, app_a="HubSpot", app_b="Google")
    assert (c.a_to_b, c.b_to_a) == (True, False)
    assert "HubSpot score is read-only in HubSpot" in c.reason


def test_read_only_plus_type_one_way_is_refused() -> None:
    # number → text is the only type direction; the text field being read-only leaves nothing.
    a = spec("score", T.NUMBER)
    b = FieldSpec("memo", "Memo", T.TEXT, writable=False)
    c = compatibility(a, b, app_a="Google", app_b="HubSpot")
    assert not c.possible
    assert "read-only in HubSpot" in c.reason
    assert_sentence(c.reason)


def test_both_read_only_refused() -> None:
    a = FieldSpec("x", "X", T.TEXT, writable=False)
    b = FieldSpec("y", "Y", T.TEXT, writable=False)
    c = compatibility(a, b, app_a="Google", app_b="HubSpot")
    assert not c.possible
    assert "read-only in Google" in c.reason and "read-only in HubSpot" in c.reason


@pytest.mark.parametrize(
    ("taken", "app", "label"), [("a:x", "Google", "X field"), ("b:y", "HubSpot", "Y field")]
)
def test_already_mapped(taken: str, app: str, label: str) -> None:
    c = compatibility(
        spec("x", T.TEXT),
        spec("y", T.TEXT),
        app_a="Google",
        app_b="HubSpot",
        taken=frozenset({taken}),
    )
    assert not c.possible
    assert c.reason == f"{label} in {app} is already mapped."


def test_taken_other_field_does_not_matter() -> None:
    c = compatibility(spec("x", T.TEXT), spec("y", T.TEXT), taken=frozenset({"a:y", "b:x"}))
    assert (c.a_to_b, c.b_to_a) == (True, True)


@pytest.mark.parametrize("choice", [T.SINGLE_CHOICE, T.MULTI_CHOICE], ids=str)
@pytest.mark.parametrize("list_type", [T.EMAIL, T.PHONE, T.TEXT, T.ADDRESS], ids=str)
def test_list_to_choice_refused(list_type: FieldType, choice: FieldType) -> None:
    lst = spec("items", list_type, multi=True)
    ch = spec("tier", choice, choices=("Gold", "Silver"))
    for a, b in ((lst, ch), (ch, lst)):
        c = compatibility(a, b)
        assert not c.possible
        assert_sentence(c.reason, "list field")


def test_multi_choice_both_sides_declared_multi_allowed() -> None:
    a = spec("tags", T.MULTI_CHOICE, multi=True)
    b = spec("labels", T.MULTI_CHOICE, multi=True)
    c = compatibility(a, b)
    assert (c.a_to_b, c.b_to_a, c.needs_values) == (True, True, True)


@pytest.mark.parametrize(("ta", "tb"), list(itertools.product(ALL, ALL)), ids=str)
def test_every_refusal_is_words(ta: FieldType, tb: FieldType) -> None:
    for kw_a, kw_b in (({}, {}), ({"writable": False}, {}), ({}, {"writable": False})):
        a = FieldSpec("k_a", "Left", ta, **kw_a)  # type: ignore[arg-type]
        b = FieldSpec("k_b", "Right", tb, **kw_b)  # type: ignore[arg-type]
        c = compatibility(a, b, app_a="Google", app_b="HubSpot")
        if c.a_to_b and c.b_to_a:
            continue
        assert_sentence(c.reason)
        assert not re.search(r"\b(True|False)\b", c.reason)
        words = ("Left", "Right", TYPE_WORDS[ta], TYPE_WORDS[tb], "Google", "HubSpot")
        assert any(w.lower() in c.reason.lower() for w in words), c.reason
