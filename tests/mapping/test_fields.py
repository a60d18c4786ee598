"""Each mapping kind: value, canonical comparison and patch (SPEC §5, S12–S14)."""

from __future__ import annotations

import pytest

from app.errors import ValueNotAllowed
from app.mapping.config import CustomMapping, make_mapping
from app.mapping.fields import (
    KEEP,
    AddressText,
    ChoiceField,
    ListField,
    ListToSingle,
    NameSplit,
    Patch,
    SameField,
    Segments,
    format_address,
    parse_address,
    split_full_name,
)
from app.model import Address, FieldSpec, FieldType, Labeled, Side
from tests.mapping.util import apply, rec, sync

# --- SameField --------------------------------------------------------------------------


def test_same_field_date_to_text_typed_canon() -> None:
    a = FieldSpec("birthday", "Birthday", FieldType.DATE)
    b = FieldSpec("bday_text", "Birthday (text)", FieldType.TEXT)
    m = make_mapping(a, b, CustomMapping("birthday", "bday_text"), "")
    assert isinstance(m, SameField)
    va = m.value(Side.A, rec(birthday="1980-01-31"))
    vb = m.value(Side.B, rec(bday_text="1/31/1980"))
    assert m.canon(va) == m.canon(vb)
    assert m.canon(m.value(Side.B, rec(bday_text="1/30/1980"))) != m.canon(va)
    # the value is written as it is (never reformatted)
    assert m.patch(Side.B, rec(), va).fields == {"bday_text": "1980-01-31"}


def test_same_field_text_side_a_uses_typed_kind_of_b() -> None:
    a = FieldSpec("t", "Amount (text)", FieldType.TEXT)
    b = FieldSpec("n", "Amount", FieldType.NUMBER)
    m = make_mapping(a, b, CustomMapping("t", "n"), "")
    assert m.canon(m.value(Side.A, rec(t="1.234,50"))) == m.canon(m.value(Side.B, rec(n="1234.5")))


def test_same_field_datetime_into_date_is_cut() -> None:
    a = FieldSpec("d", "Met on", FieldType.DATE)
    b = FieldSpec("dt", "Met at", FieldType.DATETIME)
    m = make_mapping(a, b, CustomMapping("d", "dt"), "")
    assert m.patch(Side.A, rec(), "1980-01-31T10:00:00Z").fields == {"d": "1980-01-31"}
    assert m.canon("1980-01-31T10:00:00Z") == m.canon("1980-01-31")


def test_same_field_datetime_a_date_b_is_stable() -> None:
    a = FieldSpec("dt", "Met at", FieldType.DATETIME)
    b = FieldSpec("d", "Met on", FieldType.DATE)
    m = make_mapping(a, b, CustomMapping("dt", "d"), "")
    ra = rec(dt="1980-01-31T10:00:00Z")
    rb = sync(m, Side.A, ra, rec())
    assert rb.fields == {"d": "1980-01-31"}
    assert m.canon(m.value(Side.B, rb)) == m.canon(m.value(Side.A, ra))


def test_same_field_joins_the_values_of_a_list() -> None:
    m = SameField("email", "email", kind="email")
    assert (
        m.value(Side.A, rec(email=(Labeled("Ann@X.com", "work"), Labeled("b@x"))))
        == "Ann@X.com, b@x"
    )
    assert m.value(Side.A, rec()) == ""
    assert m.canon(" ANN@x.com") == m.canon("ann@x.com")


def test_same_field_phone_region() -> None:
    m = SameField("phone", "tel", kind="phone", region="GB")
    assert m.canon("020 7946 0958") == m.canon("+44 20 7946 0958")


# --- ListField --------------------------------------------------------------------------


def test_list_field_values_only_labels_and_order() -> None:
    m = ListField("phones", "phones", kind="phone", region="GB")
    a = (Labeled("+44 20 7946 0958", "mobile"), Labeled("+44 20 7946 0000", "work"))
    b = (Labeled("020 7946 0000", "Work"), Labeled("02079460958", ""))
    assert m.canon(m.value(Side.A, rec(phones=a))) == m.canon(m.value(Side.B, rec(phones=b)))


def test_list_field_emails_keep_order() -> None:
    m = ListField("emails", "emails", kind="email")
    one = (Labeled("a@x.com"), Labeled("b@x.com"))
    assert m.canon(one) != m.canon(tuple(reversed(one)))
    assert m.canon((Labeled("A@X.com "),)) == m.canon((Labeled("a@x.com"),))


def test_list_field_patch_keeps_labels_and_skips_empty() -> None:
    m = ListField("emails", "emails", kind="email")
    value = m.value(Side.A, rec(emails=(Labeled("a@x.com", "work"), Labeled("  ", "home"))))
    assert value == (Labeled("a@x.com", "work"),)
    assert m.patch(Side.B, rec(), value).fields == {"emails": (Labeled("a@x.com", "work"),)}


# --- ListToSingle (S14) ----------------------------------------------------------------

PHONES = (Labeled("+44 7700 900111", "mobile"), Labeled("+44 20 7946 0958", "work"))


def test_list_to_single_takes_primary() -> None:
    m = ListToSingle("phones", "phone", list_side=Side.A, kind="phone")
    assert m.value(Side.A, rec(phones=PHONES)) == "+44 7700 900111"
    assert m.patch(Side.B, rec(), "+44 7700 900111").fields == {"phone": "+44 7700 900111"}


def test_list_to_single_skips_empty_primary() -> None:
    m = ListToSingle("phones", "phone", list_side=Side.A, kind="phone")
    assert m.value(Side.A, rec(phones=(Labeled(" ", "home"), *PHONES))) == "+44 7700 900111"


def test_list_to_single_write_back_replaces_only_its_value_s14() -> None:
    m = ListToSingle("phones", "phone", list_side=Side.A, kind="phone")
    ra = rec(phones=PHONES, other="kept")
    rb = sync(m, Side.A, ra, rec())
    assert rb.fields == {"phone": "+44 7700 900111"}
    rb = apply(rb, Patch({"phone": "+44 7700 900999"}))  # edited in B
    ra2 = sync(m, Side.B, rb, ra)
    assert ra2.fields["phones"] == (
        Labeled("+44 7700 900999", "mobile"),  # label kept
        Labeled("+44 20 7946 0958", "work"),  # untouched
    )
    assert ra2.fields["other"] == "kept"


def test_list_to_single_list_on_side_b() -> None:
    m = ListToSingle("email", "emails", list_side=Side.B, kind="email")
    rb = rec(emails=(Labeled("a@x.com", "work"), Labeled("b@x.com", "home")))
    assert m.value(Side.B, rb) == "a@x.com"
    patch = m.patch(Side.B, rb, "new@x.com")
    assert patch.fields == {"emails": (Labeled("new@x.com", "work"), Labeled("b@x.com", "home"))}


def test_list_to_single_clear_removes_only_primary() -> None:
    m = ListToSingle("phones", "phone", list_side=Side.A, kind="phone")
    assert m.patch(Side.A, rec(phones=PHONES), "").fields == {"phones": (PHONES[1],)}


def test_list_to_single_into_empty_list_uses_new_label() -> None:
    m = ListToSingle("phones", "phone", list_side=Side.A, kind="phone", new_label="mobile")
    assert m.patch(Side.A, rec(), "123").fields == {"phones": (Labeled("123", "mobile"),)}
    assert m.patch(Side.A, None, "123").fields == {"phones": (Labeled("123", "mobile"),)}
    assert m.patch(Side.A, rec(), "").fields == {"phones": ()}


def test_list_to_single_list_side_holding_plain_text() -> None:
    m = ListToSingle("phones", "phone", list_side=Side.A, kind="phone")
    assert m.patch(Side.A, rec(phones="111"), "222").fields == {"phones": (Labeled("222"),)}


def test_list_to_single_canon_formats_equal() -> None:
    m = ListToSingle("phones", "phone", list_side=Side.A, kind="phone", region="GB")
    assert m.canon("020 7946 0958") == m.canon("+44 20 7946 0958")


# --- NameSplit (S13) --------------------------------------------------------------------


def names(full_side: Side = Side.A) -> NameSplit:
    return NameSplit("full_name", "given_name", "family_name", full_side=full_side)


def test_split_on_last_space() -> None:
    assert split_full_name("Maria de la Cruz") == ("Maria de la", "Cruz")
    assert split_full_name("  Maria   de la\tCruz ") == ("Maria de la", "Cruz")
    assert split_full_name("Cher") == ("Cher", "")
    assert split_full_name("") == ("", "")


def test_name_split_s13() -> None:
    m = names()
    patch = m.patch(Side.B, rec(), m.value(Side.A, rec(full_name="Maria de la Cruz")))
    assert patch.fields == {"given_name": "Maria de la", "family_name": "Cruz"}
    patch = m.patch(Side.B, None, "Maria de la Cruz")
    assert patch.fields == {"given_name": "Maria de la", "family_name": "Cruz"}


def test_name_split_existing_split_joining_to_same_name_left_alone() -> None:
    m = names()
    rb = rec(given_name="Maria", family_name="de la Cruz")
    assert m.value(Side.B, rb) == "Maria de la Cruz"
    assert not m.patch(Side.B, rb, "Maria de la Cruz")
    assert not m.patch(Side.B, rb, "  Maria  de la Cruz ")  # whitespace only: same name


def test_name_split_single_word() -> None:
    m = names()
    assert m.patch(Side.B, rec(), "Cher").fields == {"given_name": "Cher"}  # family already ""
    assert m.patch(Side.B, None, "Cher").fields == {"given_name": "Cher", "family_name": ""}
    rb = rec(given_name="Ann", family_name="Smith")
    assert m.patch(Side.B, rb, "Cher").fields == {"given_name": "Cher", "family_name": ""}
    assert m.patch(Side.B, rec(given_name="Ann", family_name="Cher"), "Cher").fields == {
        "given_name": "Cher",
        "family_name": "",
    }
    assert m.value(Side.B, rec(given_name="Cher")) == "Cher"
    assert m.value(Side.B, rec(family_name="Cher")) == "Cher"


def test_name_split_only_changed_part_written() -> None:
    m = names()
    rb = rec(given_name="Maria de la", family_name="Cruz")
    assert m.patch(Side.B, rb, "Maria de la Santos").fields == {"family_name": "Santos"}
    assert m.patch(Side.B, rb, "Mary de la Cruz").fields == {"given_name": "Mary de la"}


def test_name_split_extra_spaces_in_stored_parts() -> None:
    m = names()
    rb = rec(given_name=" Maria  de la ", family_name="Cruz ")
    assert m.value(Side.B, rb) == "Maria de la Cruz"
    assert not m.patch(Side.B, rb, "Maria de la Cruz")
    assert m.patch(Side.B, rb, "Maria de la Santos").fields == {"family_name": "Santos"}


def test_name_split_full_on_side_b() -> None:
    m = names(Side.B)
    assert m.fields_a == ("given_name", "family_name") and m.fields_b == ("full_name",)
    ra = rec(given_name="Ann", family_name="Smith")
    assert m.value(Side.A, ra) == "Ann Smith"
    assert m.patch(Side.B, rec(), "Ann Smith").fields == {"full_name": "Ann Smith"}
    assert m.patch(Side.A, ra, "Ann Jones").fields == {"family_name": "Jones"}
    assert m.canon("Ann  Smith") == m.canon("Ann Smith")


# --- ChoiceField (S12) ------------------------------------------------------------------


def tier(**kw: object) -> ChoiceField:
    return ChoiceField("tier", "level", a_to_b={"Gold": "VIP"}, **kw)  # type: ignore[arg-type]


def test_choice_table_s12() -> None:
    m = tier()
    va = m.value(Side.A, rec(tier="Gold"))
    assert va == ("VIP",)
    assert m.patch(Side.B, rec(level="Regular"), va).fields == {"level": "VIP"}
    assert m.canon(va) == m.canon(m.value(Side.B, rec(level="vip")))  # case-folded compare
    assert m.value(Side.A, rec(tier="gold")) == ("VIP",)  # table keys match case-insensitively


def test_choice_unmapped_value_not_allowed_s12() -> None:
    m = tier()
    va = m.value(Side.A, rec(tier="Silver"))
    with pytest.raises(ValueNotAllowed) as info:
        m.patch(Side.B, rec(level="VIP"), va)
    assert "Silver" in str(info.value)
    assert "not allowed" in str(info.value)
    assert info.value.field == "level"
    assert info.value.code == "value_not_allowed"


def test_choice_none_entry_leaves_unchanged() -> None:
    m = ChoiceField("tier", "level", a_to_b={"Gold": "VIP", "Bronze": None})
    va = m.value(Side.A, rec(tier="Bronze"))
    assert va == (KEEP,)
    patch = m.patch(Side.B, rec(level="Regular"), va)
    assert not patch and patch.fields == {}


def test_choice_reverse_uses_b_to_a() -> None:
    m = ChoiceField("tier", "level", a_to_b={"Gold": "VIP"}, b_to_a={"VIP": "Platinum"})
    assert m.patch(Side.A, rec(), m.value(Side.B, rec(level="VIP"))).fields == {"tier": "Platinum"}


def test_choice_reverse_unique_inverse_when_b_to_a_empty() -> None:
    m = ChoiceField("tier", "level", a_to_b={"Gold": "VIP", "Silver": "Member"})
    assert m.patch(Side.A, rec(), ("VIP",)).fields == {"tier": "Gold"}
    assert m.patch(Side.A, rec(), ("member",)).fields == {"tier": "Silver"}


def test_choice_reverse_ambiguous_inverse_not_allowed_with_choices() -> None:
    m = ChoiceField(
        "tier",
        "level",
        a_to_b={"Gold": "VIP", "Silver": "VIP"},
        choices_a=("Gold", "Silver", "Bronze"),
    )
    with pytest.raises(ValueNotAllowed, match="VIP"):
        m.patch(Side.A, rec(), ("VIP",))


def test_choice_same_names_without_table() -> None:
    m = ChoiceField(
        "tier",
        "level",
        choices_a=("Gold", "Silver"),
        choices_b=("GOLD", "SILVER", "Bronze"),
    )
    assert m.value(Side.A, rec(tier="Gold")) == ("GOLD",)
    assert m.patch(Side.B, rec(), ("GOLD",)).fields == {"level": "GOLD"}
    assert m.patch(Side.A, rec(), ("SILVER",)).fields == {"tier": "Silver"}
    with pytest.raises(ValueNotAllowed, match="Bronze"):
        m.patch(Side.A, rec(), ("Bronze",))


def test_choice_multi_element_wise() -> None:
    m = ChoiceField(
        "tags",
        "labels",
        a_to_b={"Red": "Rouge", "Blue": "Bleu"},
        multi=True,
        kind_a="multi_choice",
        kind_b="multi_choice",
    )
    va = m.value(Side.A, rec(tags=(Labeled("Red"), Labeled("Blue"))))
    assert va == ("Rouge", "Bleu")
    assert m.patch(Side.B, rec(), va).fields == {"labels": (Labeled("Rouge"), Labeled("Bleu"))}
    # order does not matter for a multi-choice
    assert m.canon(va) == m.canon(m.value(Side.B, rec(labels=(Labeled("bleu"), Labeled("Rouge")))))
    back = m.patch(Side.A, rec(), ("Bleu", "Rouge")).fields
    assert back == {"tags": (Labeled("Blue"), Labeled("Red"))}
    with pytest.raises(ValueNotAllowed, match="Green"):
        m.patch(Side.B, rec(), m.value(Side.A, rec(tags=(Labeled("Red"), Labeled("Green")))))


def test_boolean_to_choice_with_table() -> None:
    m = ChoiceField(
        "subscribed",
        "newsletter",
        a_to_b={"true": "Yes", "false": "No"},
        choices_b=("Yes", "No"),
        kind_a="boolean",
    )
    for spelling in ("true", "TRUE", "1", "yes", "x"):
        assert m.value(Side.A, rec(subscribed=spelling)) == ("Yes",)
    assert m.value(Side.A, rec(subscribed="0")) == ("No",)
    assert m.patch(Side.B, rec(), ("Yes",)).fields == {"newsletter": "Yes"}
    assert m.patch(Side.A, rec(), ("No",)).fields == {"subscribed": "false"}
    assert m.patch(Side.A, rec(), ("yes",)).fields == {"subscribed": "true"}


def test_choice_to_boolean_without_table_by_meaning() -> None:
    m = ChoiceField("newsletter", "subscribed", kind_b="boolean")
    assert m.value(Side.A, rec(newsletter="Yes")) == ("true",)
    assert m.value(Side.B, rec(subscribed="1")) == ("true",)
    with pytest.raises(ValueNotAllowed, match="Maybe"):
        m.patch(Side.B, rec(), m.value(Side.A, rec(newsletter="Maybe")))


def test_choice_to_boolean_table_target_in_app_spelling_is_stable() -> None:
    m = ChoiceField("tier", "vip", a_to_b={"Gold": "Yes", "Basic": "No"}, kind_b="boolean")
    ra = rec(tier="Gold")
    rb = sync(m, Side.A, ra, rec())
    assert m.canon(m.value(Side.B, rb)) == m.canon(m.value(Side.A, ra))


def test_boolean_table_keyed_by_app_spelling() -> None:
    m = ChoiceField("flag", "tier", a_to_b={"Yes": "Premium", "No": "Basic"}, kind_a="boolean")
    assert m.value(Side.A, rec(flag="yes")) == ("Premium",)


def test_choice_empty_value() -> None:
    m = tier()
    assert m.value(Side.A, rec()) == ()
    assert m.patch(Side.B, rec(level="VIP"), ()).fields == {"level": ""}


# --- AddressText ------------------------------------------------------------------------

HOME = Address(street="10 Rue de Rivoli", postcode="75001", locality="Paris", country="France")


def test_format_parse_round_trip() -> None:
    text = format_address(HOME)
    assert text == "10 Rue de Rivoli\n75001 Paris\nFrance"
    assert parse_address(text, "home") == Address(
        street="10 Rue de Rivoli",
        postcode="75001",
        locality="Paris",
        country="France",
        label="home",
    )


@pytest.mark.parametrize(
    "text",
    [
        "10 Downing Street, London SW1A 2AA",
        "10 Downing Street\nLondon\nSW1A 2AA\nUK",
        "Flat 2\nSW1A 2AA London\nUK",  # middle line does not start with a postcode
        "1600 Amphitheatre Pkwy\nMountain View, CA 94043",
    ],
)
def test_ambiguous_text_kept_whole_in_street(text: str) -> None:
    parsed = parse_address(text)
    assert parsed.street == text.strip()
    assert parsed.parts()[1:] == ("",) * 6
    assert format_address(parsed) == text


def test_address_text_structured_to_text() -> None:
    m = AddressText("addresses", "address_text", structured_side=Side.A)
    other = Address(street="1 Main St", locality="Springfield", label="work")
    ra = rec(addresses=(Address(), HOME, other))
    assert m.value(Side.A, ra) == format_address(HOME)  # empty addresses skipped
    assert m.patch(Side.B, rec(), m.value(Side.A, ra)).fields == {
        "address_text": "10 Rue de Rivoli\n75001 Paris\nFrance"
    }


def test_address_text_write_back_replaces_only_primary() -> None:
    m = AddressText("addresses", "address_text", structured_side=Side.A)
    home = Address("10 Rue de Rivoli", "Paris", "", "75001", "France", label="home")
    work = Address(street="1 Main St", locality="Springfield", label="work")
    ra = rec(addresses=(home, work))
    patch = m.patch(Side.A, ra, "12 Rue de Rivoli\n75001 Paris\nFrance")
    assert patch.fields == {
        "addresses": (
            Address("12 Rue de Rivoli", "Paris", "", "75001", "France", label="home"),
            work,
        )
    }
    assert m.patch(Side.A, ra, "").fields == {"addresses": (work,)}


def test_address_text_same_text_leaves_structure_alone() -> None:
    m = AddressText("addresses", "address_text", structured_side=Side.A)
    with_region = Address("1 Main St", "Springfield", "IL", "62704", "USA", label="home")
    ra = rec(addresses=(with_region,))
    # the text that was written from it: no write back, the structure is kept
    assert not m.patch(Side.A, ra, m.value(Side.A, ra))
    assert not m.patch(Side.A, ra, "  1 Main St\n62704  Springfield\nIL\nusa ")


def test_address_text_structured_on_side_b() -> None:
    m = AddressText("address_text", "addresses", structured_side=Side.B)
    patch = m.patch(Side.B, rec(), "10 Rue de Rivoli\n75001 Paris\nFrance")
    assert patch.fields == {"addresses": (HOME,)}
    assert m.value(Side.B, rec(addresses=(HOME,))) == format_address(HOME)


# --- Segments ---------------------------------------------------------------------------


def test_segments_canon() -> None:
    m = Segments()
    assert m.canon(frozenset({"Customers", " VIP ", "  "})) == ["Customers", "VIP"]
    assert m.canon(frozenset({"A  B"})) == m.canon(["A B"])
    assert m.canon(frozenset({"vip"})) != m.canon(frozenset({"VIP"}))


def test_segments_patch_adds_and_removes() -> None:
    m = Segments()
    patch = m.patch(
        Side.B, rec(segments=frozenset({"Customers", "Old"})), frozenset({"Customers", "New"})
    )
    assert patch.add_segments == {"New"}
    assert patch.remove_segments == {"Old"}
    assert not patch.fields
    assert not m.patch(Side.B, rec(segments=frozenset({"A"})), frozenset({" A "}))


def test_segments_remove_uses_stored_name() -> None:
    m = Segments()
    patch = m.patch(Side.B, rec(segments=frozenset({" VIP "})), frozenset())
    assert patch.remove_segments == {" VIP "}


# --- make_mapping picks the kind ---------------------------------------------------------


@pytest.mark.parametrize(
    ("ta", "multi_a", "tb", "multi_b", "cls"),
    [
        (FieldType.TEXT, False, FieldType.TEXT, False, SameField),
        (FieldType.EMAIL, True, FieldType.EMAIL, True, ListField),
        (FieldType.EMAIL, True, FieldType.TEXT, False, ListToSingle),
        (FieldType.TEXT, False, FieldType.PHONE, True, ListToSingle),
        (FieldType.ADDRESS, True, FieldType.TEXT, False, AddressText),
        (FieldType.TEXT, False, FieldType.ADDRESS, True, AddressText),
        (FieldType.SINGLE_CHOICE, False, FieldType.SINGLE_CHOICE, False, ChoiceField),
        (FieldType.BOOLEAN, False, FieldType.SINGLE_CHOICE, False, ChoiceField),
        (FieldType.NUMBER, False, FieldType.TEXT, False, SameField),
    ],
)
def test_make_mapping_kind(
    ta: FieldType, multi_a: bool, tb: FieldType, multi_b: bool, cls: type
) -> None:
    a = FieldSpec("x", "X", ta, multi=multi_a)
    b = FieldSpec("y", "Y", tb, multi=multi_b)
    m = make_mapping(a, b, CustomMapping("x", "y"), "")
    assert isinstance(m, cls)
    assert m.key == "custom:x=y"


def test_make_mapping_table_makes_choice_field_for_text() -> None:
    a = FieldSpec("x", "X", FieldType.SINGLE_CHOICE, choices=("Gold",))
    b = FieldSpec("y", "Y", FieldType.TEXT)
    m = make_mapping(a, b, CustomMapping("x", "y", values_a_to_b={"Gold": "VIP"}), "")
    assert isinstance(m, ChoiceField)
    assert m.patch(Side.B, rec(), m.value(Side.A, rec(x="Gold"))).fields == {"y": "VIP"}


def test_multi_choice_to_text_keeps_every_choice() -> None:
    a = FieldSpec("tags", "Tags", FieldType.MULTI_CHOICE, choices=("Red", "Blue"))
    b = FieldSpec("tag_text", "Tags (text)", FieldType.TEXT)
    m = make_mapping(a, b, CustomMapping("tags", "tag_text"), "")
    text = m.patch(Side.B, rec(), m.value(Side.A, rec(tags=(Labeled("Red"), Labeled("Blue")))))
    written = text.fields["tag_text"]
    assert isinstance(written, str) and "Red" in written and "Blue" in written


def test_segments_patch_skips_blank_names() -> None:
    patch = Segments().patch(Side.B, rec(), frozenset({"  ", "VIP"}))
    assert patch.add_segments == {"VIP"}
