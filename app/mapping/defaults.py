"""The default mapping between two apps: fields with the same standard meaning pair up.

This is the minimal, pluggable piece the engine needs; the full mapping feature (toggles,
custom mappings, value tables) builds on the same ``FieldMapping`` objects. The connection's
config may switch a default mapping off by its key (``{"mappings": {"off": [key, ...]}}``).
"""

from __future__ import annotations

from collections.abc import Iterable

from app.mapping.fields import (
    FieldMapping,
    ListField,
    ListToSingle,
    NameSplit,
    SameField,
    Segments,
    canon_kind,
)
from app.model import FieldSpec, FieldType, Meaning, Schema, Side

PAIRED_MEANINGS: tuple[Meaning, ...] = (
    Meaning.FULL_NAME,
    Meaning.GIVEN_NAME,
    Meaning.FAMILY_NAME,
    Meaning.MIDDLE_NAME,
    Meaning.NAME_PREFIX,
    Meaning.NAME_SUFFIX,
    Meaning.NICKNAME,
    Meaning.EMAIL,
    Meaning.PHONE,
    Meaning.ADDRESS,
    Meaning.ORGANIZATION,
    Meaning.DEPARTMENT,
    Meaning.TITLE,
    Meaning.WEBSITE,
    Meaning.BIRTHDAY,
    Meaning.NOTES,
)

_KIND = {
    FieldType.EMAIL: "email",
    FieldType.PHONE: "phone",
    FieldType.URL: "url",
    FieldType.ADDRESS: "address",
}


def _pair(a: FieldSpec, b: FieldSpec, region: str) -> FieldMapping | None:
    kind = canon_kind(a.type) if a.type == b.type else _KIND.get(a.type, "text")
    match_key = a.meaning == Meaning.EMAIL
    label = a.label
    if a.multi and b.multi:
        return ListField(a.key, b.key, kind=kind, region=region, label=label, match_key=match_key)
    if a.multi != b.multi:
        if kind == "address":
            return None  # structured list ↔ single text address: a later mapping feature
        list_side = Side.A if a.multi else Side.B
        return ListToSingle(
            a.key,
            b.key,
            list_side=list_side,
            kind=kind,
            region=region,
            label=label,
            match_key=match_key,
        )
    return SameField(a.key, b.key, kind=kind, region=region, label=label, match_key=match_key)


def default_mappings(
    schema_a: Schema,
    schema_b: Schema,
    *,
    segments: bool = True,
    region: str = "",
    off: Iterable[str] = (),
) -> list[FieldMapping]:
    """The mappings for a pair of apps; each field takes part in at most one mapping."""
    out: list[FieldMapping] = []
    for meaning in PAIRED_MEANINGS:
        a, b = schema_a.by_meaning(meaning), schema_b.by_meaning(meaning)
        if a is None or b is None:
            continue
        mapping = _pair(a, b, region)
        if mapping is not None:
            out.append(mapping)
    out.extend(_name_split(schema_a, schema_b))
    if segments:
        out.append(Segments())
    disabled = set(off)
    return [m for m in out if m.key not in disabled]


def _name_split(schema_a: Schema, schema_b: Schema) -> list[FieldMapping]:
    """Full name on one side only ↔ first/last on the other side only."""

    def parts(schema: Schema) -> tuple[FieldSpec | None, FieldSpec | None, FieldSpec | None]:
        return (
            schema.by_meaning(Meaning.FULL_NAME),
            schema.by_meaning(Meaning.GIVEN_NAME),
            schema.by_meaning(Meaning.FAMILY_NAME),
        )

    def extra(schema: Schema) -> dict[str, str]:
        """Middle name, prefix, suffix: folded into the split when the other app lacks them."""
        out = {}
        for name, meaning in (
            ("middle_field", Meaning.MIDDLE_NAME),
            ("prefix_field", Meaning.NAME_PREFIX),
            ("suffix_field", Meaning.NAME_SUFFIX),
        ):
            spec = schema.by_meaning(meaning)
            if spec is not None:
                out[name] = spec.key
        return out

    full_a, given_a, family_a = parts(schema_a)
    full_b, given_b, family_b = parts(schema_b)
    if full_a and not full_b and given_b and family_b and not (given_a or family_a):
        return [
            NameSplit(full_a.key, given_b.key, family_b.key, full_side=Side.A, **extra(schema_b))
        ]
    if full_b and not full_a and given_a and family_a and not (given_b or family_b):
        return [
            NameSplit(full_b.key, given_a.key, family_a.key, full_side=Side.B, **extra(schema_a))
        ]
    return []
