"""A connection's mappings as the user sees and edits them: defaults with toggles, custom
mappings with value tables, each with its effective direction or the reason it is inactive.

Stored in the connection's JSON config under ``"mappings"``::

    {"off": ["title=title", ...],
     "custom": [{"a": "col:Tier", "b": "col:Level", "direction": "two-way",
                 "values": {"a_to_b": {"Gold": "VIP", "Bronze": null},
                            "b_to_a": {"VIP": "Gold"}}}]}

``null`` in a value table means "leave unchanged". Effective direction = connection ∩ mapping
∩ what the types and the apps allow (read-only fields); a mapping whose effective direction is
empty is kept and shown inactive with its reason.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Any

from app.errors import ConfigError
from app.mapping.compat import compatibility
from app.mapping.defaults import default_mappings
from app.mapping.fields import (
    AddressText,
    ChoiceField,
    Direction,
    FieldMapping,
    ListField,
    ListToSingle,
    SameField,
    canon_kind,
)
from app.model import FieldSpec, FieldType, Schema, Side

ValueTable = dict[str, str | None]


@dataclass(slots=True)
class CustomMapping:
    a: str
    b: str
    direction: Direction = Direction.TWO_WAY
    values_a_to_b: ValueTable = field(default_factory=dict)
    values_b_to_a: ValueTable = field(default_factory=dict)
    pick_label: str = ""
    """List → single: the label of the value the single field holds (default: the primary)."""

    @property
    def key(self) -> str:
        return f"custom:{self.a}={self.b}"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"a": self.a, "b": self.b, "direction": self.direction.value}
        if self.values_a_to_b or self.values_b_to_a:
            data["values"] = {"a_to_b": self.values_a_to_b, "b_to_a": self.values_b_to_a}
        if self.pick_label:
            data["pick_label"] = self.pick_label
        return data

    @classmethod
    def from_json(cls, data: MappingABC[str, Any]) -> CustomMapping:
        values = data.get("values") or {}
        return cls(
            a=str(data["a"]),
            b=str(data["b"]),
            direction=Direction(data.get("direction", "two-way")),
            values_a_to_b=_table(values.get("a_to_b")),
            values_b_to_a=_table(values.get("b_to_a")),
            pick_label=str(data.get("pick_label", "")),
        )


def _table(raw: Any) -> ValueTable:
    if not raw:
        return {}
    return {str(k): (None if v is None else str(v)) for k, v in dict(raw).items()}


@dataclass(slots=True)
class MappingConfig:
    off: list[str] = field(default_factory=list)
    custom: list[CustomMapping] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: MappingABC[str, Any] | None) -> MappingConfig:
        data = data or {}
        try:
            return cls(
                off=[str(k) for k in data.get("off", [])],
                custom=[CustomMapping.from_json(c) for c in data.get("custom", [])],
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"The connection's mappings are malformed ({err}).") from None

    def to_json(self) -> dict[str, Any]:
        return {"off": list(self.off), "custom": [c.to_json() for c in self.custom]}


@dataclass(slots=True)
class MappingView:
    """One mapping as listed to the user (CLI ``connection mappings``, later the GUI)."""

    key: str
    kind: str  # default | custom
    label: str
    fields_a: tuple[str, ...]
    fields_b: tuple[str, ...]
    direction: Direction
    effective: Direction | None
    enabled: bool
    reason: str = ""
    mapping: FieldMapping | None = None
    values: dict[str, ValueTable] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.enabled and self.effective is not None and self.mapping is not None

    def as_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "label": self.label,
            "a": list(self.fields_a),
            "b": list(self.fields_b),
            "direction": self.direction.value,
            "effective": self.effective.value if self.effective else None,
            "enabled": self.enabled,
            "active": self.active,
            "reason": self.reason,
            **({"values": self.values} if self.values else {}),
        }


def _directions(into_a: bool, into_b: bool) -> Direction | None:
    if into_a and into_b:
        return Direction.TWO_WAY
    if into_b:
        return Direction.A_TO_B
    if into_a:
        return Direction.B_TO_A
    return None


def _flows(direction: Direction) -> tuple[bool, bool]:
    """(into A, into B)."""
    return direction.writes(Side.A), direction.writes(Side.B)


def effective_direction(
    connection: Direction,
    own: Direction,
    fields_a: list[FieldSpec],
    fields_b: list[FieldSpec],
    *,
    app_a: str,
    app_b: str,
    type_into_a: bool = True,
    type_into_b: bool = True,
) -> tuple[Direction | None, str]:
    conn_a, conn_b = _flows(connection)
    own_a, own_b = _flows(own)
    write_a = all(f.writable for f in fields_a)
    write_b = all(f.writable for f in fields_b)
    into_a = conn_a and own_a and write_a and type_into_a
    into_b = conn_b and own_b and write_b and type_into_b
    eff = _directions(into_a, into_b)
    reasons: list[str] = []
    wanted_a, wanted_b = own_a, own_b
    if wanted_a and not into_a:
        if not write_a:
            reasons.append(f"read-only in {app_a}")
        elif not conn_a:
            reasons.append(f"the connection never writes to {app_a}")
    if wanted_b and not into_b:
        if not write_b:
            reasons.append(f"read-only in {app_b}")
        elif not conn_b:
            reasons.append(f"the connection never writes to {app_b}")
    reason = "; ".join(reasons)
    return eff, (reason[:1].upper() + reason[1:] + ".") if reason else ""


def build_views(
    schema_a: Schema,
    schema_b: Schema,
    config: MappingConfig,
    connection: Direction,
    *,
    app_a: str = "app A",
    app_b: str = "app B",
    segments: bool = True,
    region: str = "",
) -> list[MappingView]:
    """Every mapping of a connection, default and custom, with what it does now."""
    views: list[MappingView] = []
    taken: set[str] = set()
    off = set(config.off)
    for m in default_mappings(schema_a, schema_b, segments=segments, region=region):
        enabled = m.key not in off
        specs_a = [s for s in (schema_a.get(k) for k in m.fields_a) if s is not None]
        specs_b = [s for s in (schema_b.get(k) for k in m.fields_b) if s is not None]
        eff, reason = effective_direction(
            connection, Direction.TWO_WAY, specs_a, specs_b, app_a=app_a, app_b=app_b
        )
        if enabled:
            taken.update(f"a:{k}" for k in m.fields_a)
            taken.update(f"b:{k}" for k in m.fields_b)
            if eff is not None:
                m.direction = eff
        views.append(
            MappingView(
                m.key,
                "default",
                m.label,
                m.fields_a,
                m.fields_b,
                Direction.TWO_WAY,
                eff if enabled else None,
                enabled,
                reason if enabled else "Turned off.",
                m,
            )
        )
    for custom in config.custom:
        view = _custom_view(
            custom, off, schema_a, schema_b, connection, taken, app_a, app_b, region
        )
        if custom.key in off:
            view.enabled, view.effective, view.reason = False, None, "Turned off."
        views.append(view)
    return views


def _custom_view(
    custom: CustomMapping,
    off: set[str],
    schema_a: Schema,
    schema_b: Schema,
    connection: Direction,
    taken: set[str],
    app_a: str,
    app_b: str,
    region: str,
) -> MappingView:
    spec_a, spec_b = schema_a.get(custom.a), schema_b.get(custom.b)

    def view(
        label: str,
        reason: str,
        effective: Direction | None = None,
        mapping: FieldMapping | None = None,
    ) -> MappingView:
        return MappingView(
            key=custom.key,
            kind="custom",
            label=label,
            fields_a=(custom.a,),
            fields_b=(custom.b,),
            direction=custom.direction,
            effective=effective,
            enabled=True,
            reason=reason,
            mapping=mapping,
            values={"a_to_b": custom.values_a_to_b, "b_to_a": custom.values_b_to_a},
        )

    if spec_a is None or spec_b is None:
        missing = custom.a if spec_a is None else custom.b
        app = app_a if spec_a is None else app_b
        return view(f"{custom.a} ↔ {custom.b}", f"The field {missing} no longer exists in {app}.")
    compat = compatibility(spec_a, spec_b, app_a=app_a, app_b=app_b, taken=frozenset(taken))
    if custom.key not in off:
        taken.update({f"a:{custom.a}", f"b:{custom.b}"})
    label = f"{spec_a.label} ↔ {spec_b.label}"
    if not compat.possible:
        return view(label, compat.reason)
    eff, reason = effective_direction(
        connection,
        custom.direction,
        [spec_a],
        [spec_b],
        app_a=app_a,
        app_b=app_b,
        type_into_a=compat.b_to_a,
        type_into_b=compat.a_to_b,
    )
    if eff is None and not reason:
        reason = compat.reason or "The types allow no flow in the chosen direction."
    mapping = make_mapping(spec_a, spec_b, custom, region)
    if eff is not None:
        mapping.direction = eff
    return view(label, reason or compat.reason, eff, mapping)


def make_mapping(a: FieldSpec, b: FieldSpec, custom: CustomMapping, region: str) -> FieldMapping:
    """The mapping object for two compatible fields."""
    label = f"{a.label} ↔ {b.label}"
    kind = canon_kind(a.type if a.type not in (FieldType.TEXT, FieldType.LONG_TEXT) else b.type)
    if {a.type, b.type} == {FieldType.DATE, FieldType.DATETIME}:
        kind = "date"  # compare what both can hold
    has_table = bool(custom.values_a_to_b or custom.values_b_to_a)
    choice_like = {FieldType.SINGLE_CHOICE, FieldType.MULTI_CHOICE, FieldType.BOOLEAN}
    mapping: FieldMapping
    if has_table or (a.type in choice_like and b.type in choice_like):
        mapping = ChoiceField(
            a.key,
            b.key,
            label=label,
            a_to_b=custom.values_a_to_b,
            b_to_a=custom.values_b_to_a,
            choices_a=a.choices,
            choices_b=b.choices,
            multi=a.type == FieldType.MULTI_CHOICE or b.type == FieldType.MULTI_CHOICE,
            kind_a=a.type.value,
            kind_b=b.type.value,
        )
    elif a.type == FieldType.ADDRESS and b.type != FieldType.ADDRESS:
        mapping = AddressText(a.key, b.key, structured_side=Side.A, label=label)
    elif b.type == FieldType.ADDRESS and a.type != FieldType.ADDRESS:
        mapping = AddressText(a.key, b.key, structured_side=Side.B, label=label)
    elif a.multi and b.multi:
        mapping = ListField(a.key, b.key, kind=kind, region=region, label=label)
    elif a.multi or b.multi:
        mapping = ListToSingle(
            a.key,
            b.key,
            list_side=Side.A if a.multi else Side.B,
            kind=kind,
            region=region,
            label=label,
            pick_label=custom.pick_label,
        )
    else:
        mapping = SameField(
            a.key,
            b.key,
            kind=kind,
            region=region,
            label=label,
            convert_to_a=(b.type.value, a.type.value),
            convert_to_b=(a.type.value, b.type.value),
        )
    mapping.key = custom.key
    return mapping


def active_mappings(views: list[MappingView]) -> list[FieldMapping]:
    return [v.mapping for v in views if v.active and v.mapping is not None]


def parse_values(text: str) -> ValueTable:
    """``Gold=VIP,Silver=VIP,Bronze=`` → {"Gold": "VIP", "Silver": "VIP", "Bronze": None}."""
    table: ValueTable = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        if "=" not in part:
            raise ConfigError(f"Value table entries are SOURCE=TARGET, not {part!r}.")
        source, target = (x.strip() for x in part.split("=", 1))
        if not source:
            raise ConfigError(f"A value table entry needs a source value: {part!r}.")
        table[source] = target or None
    return table


def add_custom(
    config: MappingConfig,
    views: list[MappingView],
    schema_a: Schema,
    schema_b: Schema,
    custom: CustomMapping,
    connection: Direction,
    *,
    app_a: str,
    app_b: str,
) -> MappingConfig:
    """Add a custom mapping, or refuse with the reason (ConfigError)."""
    spec_a, spec_b = schema_a.get(custom.a), schema_b.get(custom.b)
    if spec_a is None:
        raise ConfigError(f"{app_a} has no field {custom.a!r} (see: pairsync connection fields).")
    if spec_b is None:
        raise ConfigError(f"{app_b} has no field {custom.b!r} (see: pairsync connection fields).")
    taken = {f"a:{k}" for v in views if v.enabled for k in v.fields_a}
    taken |= {f"b:{k}" for v in views if v.enabled for k in v.fields_b}
    compat = compatibility(spec_a, spec_b, app_a=app_a, app_b=app_b, taken=frozenset(taken))
    if not compat.possible:
        raise ConfigError(compat.reason)
    wants_a, wants_b = _flows(custom.direction)
    if (wants_b and not wants_a and not compat.a_to_b) or (
        wants_a and not wants_b and not compat.b_to_a
    ):
        raise ConfigError(compat.reason or "The types allow no flow in that direction.")
    conn_a, conn_b = _flows(connection)
    if not ((wants_a and conn_a) or (wants_b and conn_b)):
        raise ConfigError(
            f"The connection is {connection.value}: a {custom.direction.value} mapping would "
            "never move anything."
        )
    return MappingConfig(off=list(config.off), custom=[*config.custom, custom])


def toggle(config: MappingConfig, views: list[MappingView], key: str, on: bool) -> MappingConfig:
    view = next((v for v in views if v.key == key), None)
    if view is None:
        keys = ", ".join(v.key for v in views)
        raise ConfigError(f"No mapping {key!r}; this connection has: {keys}.")
    off = [k for k in config.off if k != key]
    if not on:
        off.append(key)
    else:
        clash = [
            v
            for v in views
            if v.enabled
            and v.key != key
            and (set(v.fields_a) & set(view.fields_a) or set(v.fields_b) & set(view.fields_b))
        ]
        if clash:
            raise ConfigError(
                f"{view.label} uses a field that mapping {clash[0].key} already maps; turn that "
                "one off first."
            )
    return MappingConfig(off=off, custom=list(config.custom))


def remove_custom(config: MappingConfig, key: str) -> MappingConfig:
    if not any(c.key == key for c in config.custom):
        raise ConfigError(f"No custom mapping {key!r}.")
    return MappingConfig(
        off=[k for k in config.off if k != key],
        custom=[c for c in config.custom if c.key != key],
    )
