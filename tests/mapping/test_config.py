"""A connection's mappings as the user edits them: defaults, toggles, custom mappings, JSON."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.errors import ConfigError
from app.mapping.config import (
    CustomMapping,
    MappingConfig,
    MappingView,
    active_mappings,
    add_custom,
    build_views,
    effective_direction,
    parse_values,
    remove_custom,
    toggle,
)
from app.mapping.fields import ChoiceField, Direction, ListToSingle, SameField
from app.model import FieldSpec, FieldType, Meaning, Schema

T = FieldType
D = Direction
APPS = {"app_a": "Google", "app_b": "HubSpot"}

SCHEMA_A = Schema(
    (
        FieldSpec("given_name", "First name", meaning=Meaning.GIVEN_NAME),
        FieldSpec("family_name", "Last name", meaning=Meaning.FAMILY_NAME),
        FieldSpec("emails", "Emails", T.EMAIL, multi=True, meaning=Meaning.EMAIL),
        FieldSpec("phones", "Phones", T.PHONE, multi=True, meaning=Meaning.PHONE),
        FieldSpec("organization", "Company", meaning=Meaning.ORGANIZATION),
        FieldSpec("title", "Job title", meaning=Meaning.TITLE),
        FieldSpec("birthday", "Birthday", T.DATE, meaning=Meaning.BIRTHDAY),
        FieldSpec("notes", "Notes", T.LONG_TEXT, meaning=Meaning.NOTES),
        FieldSpec("tier", "Tier", T.SINGLE_CHOICE, choices=("Gold", "Silver", "Bronze")),
        FieldSpec("score", "Score", T.NUMBER),
        FieldSpec("nickname2", "Pet name"),
    )
)
SCHEMA_B = Schema(
    (
        FieldSpec("firstname", "First name", meaning=Meaning.GIVEN_NAME),
        FieldSpec("lastname", "Last name", meaning=Meaning.FAMILY_NAME),
        FieldSpec("email", "Email", T.EMAIL, multi=True, meaning=Meaning.EMAIL),
        FieldSpec("phone", "Phone number", T.PHONE, meaning=Meaning.PHONE),
        FieldSpec("company", "Company name", meaning=Meaning.ORGANIZATION),
        FieldSpec("jobtitle", "Job title", meaning=Meaning.TITLE),
        FieldSpec("dob", "Date of birth", T.DATE, meaning=Meaning.BIRTHDAY),
        FieldSpec("level", "Level", T.SINGLE_CHOICE, choices=("VIP", "Member")),
        FieldSpec("is_vip", "VIP", T.BOOLEAN),
        FieldSpec("hs_score", "HubSpot score", T.NUMBER, writable=False),
        FieldSpec("memo", "Memo"),
    )
)
DEFAULT_KEYS = [
    "given_name=firstname",
    "family_name=lastname",
    "emails=email",
    "phones=phone",
    "organization=company",
    "title=jobtitle",
    "birthday=dob",
    "segments",
]


def views(config: MappingConfig, connection: Direction = D.TWO_WAY) -> list[MappingView]:
    return build_views(SCHEMA_A, SCHEMA_B, config, connection, **APPS)


def view(vs: list[MappingView], key: str) -> MappingView:
    return next(v for v in vs if v.key == key)


def add(
    config: MappingConfig, custom: CustomMapping, connection: Direction = D.TWO_WAY
) -> MappingConfig:
    return add_custom(
        config, views(config, connection), SCHEMA_A, SCHEMA_B, custom, connection, **APPS
    )


# --- defaults and toggles ---------------------------------------------------------------


def test_defaults_listed_on() -> None:
    vs = views(MappingConfig())
    assert [v.key for v in vs] == DEFAULT_KEYS
    for v in vs:
        assert v.kind == "default" and v.enabled and v.active
        assert v.effective is D.TWO_WAY and v.reason == ""
    assert isinstance(view(vs, "phones=phone").mapping, ListToSingle)
    assert len(active_mappings(vs)) == len(DEFAULT_KEYS)


def test_default_turned_off_is_listed_off() -> None:
    vs = views(MappingConfig(off=["title=jobtitle"]))
    v = view(vs, "title=jobtitle")
    assert not v.enabled and not v.active and v.effective is None
    assert v.reason == "Turned off."
    assert v.as_json()["enabled"] is False and v.as_json()["active"] is False
    assert len(active_mappings(vs)) == len(DEFAULT_KEYS) - 1


def test_toggle_off_frees_fields_for_custom_then_on_refused() -> None:
    config = MappingConfig()
    custom = CustomMapping("title", "memo")
    with pytest.raises(ConfigError, match="Job title in Google is already mapped"):
        add(config, custom)
    config = toggle(config, views(config), "title=jobtitle", on=False)
    assert config.off == ["title=jobtitle"]
    config = add(config, custom)
    assert config.custom == [custom]
    vs = views(config)
    assert view(vs, "custom:title=memo").active
    with pytest.raises(ConfigError, match="already maps"):
        toggle(config, vs, "title=jobtitle", on=True)
    # once the custom mapping is gone the default can come back
    config = remove_custom(config, "custom:title=memo")
    config = toggle(config, views(config), "title=jobtitle", on=True)
    assert config.off == []


def test_toggle_unknown_key_lists_keys() -> None:
    with pytest.raises(ConfigError, match="birthday=dob"):
        toggle(MappingConfig(), views(MappingConfig()), "nope", on=False)


def test_toggle_custom_off_and_on() -> None:
    config = add(MappingConfig(), CustomMapping("score", "memo"))
    config = toggle(config, views(config), "custom:score=memo", on=False)
    v = view(views(config), "custom:score=memo")
    assert not v.enabled and not v.active and v.reason == "Turned off."
    config = toggle(config, views(config), "custom:score=memo", on=True)
    assert view(views(config), "custom:score=memo").active


def test_remove_unknown_custom() -> None:
    with pytest.raises(ConfigError):
        remove_custom(MappingConfig(), "custom:x=y")


# --- add_custom -------------------------------------------------------------------------


def test_add_custom_incompatible_refused_with_reason() -> None:
    with pytest.raises(ConfigError) as info:
        add(MappingConfig(), CustomMapping("score", "is_vip"))
    assert str(info.value) == "Field Score is not compatible with field VIP: number vs yes/no."


def test_add_custom_field_already_mapped_on_b() -> None:
    with pytest.raises(ConfigError, match="Memo in HubSpot is already mapped"):
        add(
            add(MappingConfig(), CustomMapping("score", "memo")), CustomMapping("nickname2", "memo")
        )


def test_add_custom_list_to_choice_refused() -> None:
    config = MappingConfig(off=["emails=email"])
    with pytest.raises(ConfigError, match="list field"):
        add(config, CustomMapping("emails", "level"))


@pytest.mark.parametrize("field_a, field_b", [("nope", "memo"), ("score", "nope")])
def test_add_custom_unknown_field(field_a: str, field_b: str) -> None:
    with pytest.raises(ConfigError, match="has no field 'nope'"):
        add(MappingConfig(), CustomMapping(field_a, field_b))


def test_add_custom_refuses_direction_types_cannot_do() -> None:
    # number → text works, text → number never: B_TO_A alone is impossible
    with pytest.raises(ConfigError, match="Text cannot be written into number"):
        add(MappingConfig(), CustomMapping("score", "memo", D.B_TO_A))
    config = add(MappingConfig(), CustomMapping("score", "memo", D.A_TO_B))
    assert view(views(config), "custom:score=memo").effective is D.A_TO_B


def test_add_custom_two_way_narrowed_by_types() -> None:
    config = add(MappingConfig(), CustomMapping("score", "memo"))
    v = view(views(config), "custom:score=memo")
    assert v.direction is D.TWO_WAY
    assert v.effective is D.A_TO_B
    assert v.mapping is not None and v.mapping.direction is D.A_TO_B
    assert "cannot be written into number" in v.reason


def test_add_custom_refuses_into_read_only_only() -> None:
    with pytest.raises(ConfigError, match="read-only in HubSpot"):
        add(MappingConfig(), CustomMapping("score", "hs_score", D.A_TO_B))
    config = add(MappingConfig(), CustomMapping("score", "hs_score"))
    v = view(views(config), "custom:score=hs_score")
    assert v.effective is D.B_TO_A and v.active
    assert v.reason == "Read-only in HubSpot."


def test_add_custom_refuses_mapping_against_connection() -> None:
    with pytest.raises(ConfigError, match="never move anything"):
        add(MappingConfig(), CustomMapping("nickname2", "memo", D.B_TO_A), connection=D.A_TO_B)


def test_add_custom_choice_with_table() -> None:
    custom = CustomMapping("tier", "level", values_a_to_b=parse_values("Gold=VIP,Silver=Member"))
    config = add(MappingConfig(), custom)
    v = view(views(config), "custom:tier=level")
    assert isinstance(v.mapping, ChoiceField) and v.active
    assert v.values == {"a_to_b": {"Gold": "VIP", "Silver": "Member"}, "b_to_a": {}}
    assert v.as_json()["values"] == v.values


def test_add_custom_boolean_choice() -> None:
    config = add(MappingConfig(), CustomMapping("tier", "is_vip", values_a_to_b={"Gold": "true"}))
    v = view(views(config), "custom:tier=is_vip")
    assert isinstance(v.mapping, ChoiceField) and v.effective is D.TWO_WAY


# --- effective direction ---------------------------------------------------------------


def test_one_way_connection_narrows_two_way_mapping() -> None:
    config = add(MappingConfig(), CustomMapping("nickname2", "memo"), connection=D.A_TO_B)
    vs = views(config, D.A_TO_B)
    v = view(vs, "custom:nickname2=memo")
    assert v.direction is D.TWO_WAY and v.effective is D.A_TO_B and v.active
    assert v.mapping is not None and v.mapping.direction is D.A_TO_B
    for key in DEFAULT_KEYS:
        assert view(vs, key).effective is D.A_TO_B


def test_mapping_with_empty_effective_direction_kept_inactive() -> None:
    # stored config: an A→B mapping on a connection that only writes to A
    config = MappingConfig(custom=[CustomMapping("nickname2", "memo", D.A_TO_B)])
    v = view(views(config, D.B_TO_A), "custom:nickname2=memo")
    assert v.enabled and not v.active and v.effective is None
    assert v.reason == "The connection never writes to HubSpot."
    assert v.as_json()["active"] is False


def test_mapping_made_impossible_by_read_only_kept_inactive() -> None:
    # the custom mapping was added when hs_score was writable; now it is read-only
    config = MappingConfig(custom=[CustomMapping("score", "hs_score", D.A_TO_B)])
    v = view(views(config), "custom:score=hs_score")
    assert v.enabled and not v.active and v.effective is None
    assert "read-only in HubSpot" in v.reason.lower().replace("hubspot", "HubSpot")


def test_mapping_to_vanished_field_kept_inactive() -> None:
    config = MappingConfig(custom=[CustomMapping("gone", "memo")])
    v = view(views(config), "custom:gone=memo")
    assert not v.active and v.reason == "The field gone no longer exists in Google."


def test_two_stored_customs_on_one_field_second_inactive() -> None:
    config = MappingConfig(
        custom=[CustomMapping("score", "memo"), CustomMapping("nickname2", "memo")]
    )
    vs = views(config)
    assert view(vs, "custom:score=memo").active
    second = view(vs, "custom:nickname2=memo")
    assert not second.active and "already mapped" in second.reason


def test_read_only_default_is_one_way() -> None:
    schema_b = Schema((FieldSpec("jobtitle", "Job title", meaning=Meaning.TITLE, writable=False),))
    vs = build_views(SCHEMA_A, schema_b, MappingConfig(), D.TWO_WAY, segments=False, **APPS)
    (v,) = vs
    assert v.effective is D.B_TO_A and v.reason == "Read-only in HubSpot."


W = FieldSpec("w", "W")
RO = FieldSpec("r", "R", writable=False)


@pytest.mark.parametrize(
    ("connection", "own", "fa", "fb", "expected"),
    [
        (D.TWO_WAY, D.TWO_WAY, W, W, D.TWO_WAY),
        (D.A_TO_B, D.TWO_WAY, W, W, D.A_TO_B),
        (D.B_TO_A, D.TWO_WAY, W, W, D.B_TO_A),
        (D.TWO_WAY, D.A_TO_B, W, W, D.A_TO_B),
        (D.A_TO_B, D.B_TO_A, W, W, None),
        (D.TWO_WAY, D.TWO_WAY, W, RO, D.B_TO_A),
        (D.TWO_WAY, D.TWO_WAY, RO, W, D.A_TO_B),
        (D.TWO_WAY, D.TWO_WAY, RO, RO, None),
        (D.A_TO_B, D.TWO_WAY, W, RO, None),
        (D.TWO_WAY, D.B_TO_A, RO, W, None),
    ],
)
def test_effective_direction_intersection(
    connection: Direction, own: Direction, fa: FieldSpec, fb: FieldSpec, expected: Direction | None
) -> None:
    eff, reason = effective_direction(connection, own, [fa], [fb], **APPS)
    assert eff is expected
    if eff is None:
        assert reason and reason[0].isupper() and reason.endswith(".")


def test_effective_direction_type_limits() -> None:
    eff, _ = effective_direction(D.TWO_WAY, D.TWO_WAY, [W], [W], type_into_a=False, **APPS)
    assert eff is D.A_TO_B


# --- JSON -------------------------------------------------------------------------------


def test_config_json_round_trip_example() -> None:
    config = MappingConfig(
        off=["title=jobtitle"],
        custom=[
            CustomMapping(
                "tier", "level", D.A_TO_B, {"Gold": "VIP", "Bronze": None}, {"VIP": "Gold"}
            ),
            CustomMapping("score", "memo"),
        ],
    )
    data = json.loads(json.dumps(config.to_json()))
    assert data["custom"][0]["values"]["a_to_b"] == {"Gold": "VIP", "Bronze": None}
    assert "values" not in data["custom"][1]
    assert MappingConfig.from_json(data) == config


def test_config_from_json_empty_and_malformed() -> None:
    assert MappingConfig.from_json(None) == MappingConfig()
    assert MappingConfig.from_json({}) == MappingConfig()
    with pytest.raises(ConfigError, match="malformed"):
        MappingConfig.from_json({"custom": [{"a": "x"}]})
    with pytest.raises(ConfigError, match="malformed"):
        MappingConfig.from_json({"custom": [{"a": "x", "b": "y", "direction": "sideways"}]})


names = st.text(min_size=1, max_size=12)
tables = st.dictionaries(names, st.none() | names, max_size=4)
customs = st.builds(
    CustomMapping,
    a=names,
    b=names,
    direction=st.sampled_from(list(Direction)),
    values_a_to_b=tables,
    values_b_to_a=tables,
)
configs = st.builds(
    MappingConfig, off=st.lists(names, max_size=4), custom=st.lists(customs, max_size=4)
)


@given(configs)
def test_config_json_round_trip_is_identity(config: MappingConfig) -> None:
    text = json.dumps(config.to_json())
    assert MappingConfig.from_json(json.loads(text)) == config
    assert MappingConfig.from_json(json.loads(text)).to_json() == config.to_json()


# --- parse_values -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Gold=VIP,Silver=VIP,Bronze=", {"Gold": "VIP", "Silver": "VIP", "Bronze": None}),
        (" Gold = VIP , , Silver=Member ", {"Gold": "VIP", "Silver": "Member"}),
        ("", {}),
        ("a=b=c", {"a": "b=c"}),
        ("true=Yes,false=No", {"true": "Yes", "false": "No"}),
    ],
)
def test_parse_values(text: str, expected: dict[str, str | None]) -> None:
    assert parse_values(text) == expected


@pytest.mark.parametrize("text", ["Gold", "Gold=VIP,Silver", "=VIP"])
def test_parse_values_errors(text: str) -> None:
    with pytest.raises(ConfigError, match=r"SOURCE=TARGET|source value"):
        parse_values(text)


def test_same_field_custom_gets_type_conversions() -> None:
    schema_a = Schema((FieldSpec("met", "Met on", T.DATE),))
    schema_b = Schema((FieldSpec("met_at", "Met at", T.DATETIME),))
    config = MappingConfig(custom=[CustomMapping("met", "met_at")])
    (v,) = build_views(schema_a, schema_b, config, D.TWO_WAY, segments=False, **APPS)
    assert isinstance(v.mapping, SameField)
    assert v.mapping.convert_to_a == ("datetime", "date")
    assert v.mapping.convert_to_b == ("date", "datetime")
