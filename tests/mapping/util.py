"""Small helpers shared by the mapping tests: records and applying a mapping's patch."""

from __future__ import annotations

from app.mapping.fields import FieldMapping, Patch
from app.model import FieldValue, Record, Side, is_empty_value


def rec(segments: frozenset[str] = frozenset(), **fields: FieldValue) -> Record:
    return Record("r1", "v1", dict(fields), segments=frozenset(segments))


def apply(record: Record, patch: Patch) -> Record:
    """The record as the app would hold it after the patch: an empty value removes the field."""
    fields = dict(record.fields)
    for key, value in patch.fields.items():
        if is_empty_value(value):
            fields.pop(key, None)
        else:
            fields[key] = value
    segments = (set(record.segments) - patch.remove_segments) | patch.add_segments
    return Record(record.id, record.version, fields, frozenset(segments), record.subscribed)


def sync(m: FieldMapping, source: Side, rec_src: Record, rec_dst: Record) -> Record:
    """Write the source side's value into the other side; return the new target record."""
    return apply(rec_dst, m.patch(source.other, rec_dst, m.value(source, rec_src)))
