"""Records kept packed: about 380 bytes each instead of about 1.6 KB (issue 18).

A ``Record`` as Python objects costs about 1.6 KB for a typical contact (the fields dict, one
string per value, a ``Labeled`` object and two strings per email or phone). Its plain values
``marshal``-ed cost about 380. What holds many records and uses them one at a time keeps them
packed and unpacks each when it is used: a run's reads until their slice is planned
(``app.engine.held``), the in-memory app's storage (as a server stores serialised records).
Packing takes about 5 µs and unpacking about 10 µs a record: at 100,000 contacts that is
1.5 s of a first sync that takes minutes, against 120 MB less memory.

The round trip is exact (``unpack(r.id, pack(r)) == r``; a hypothesis test checks it on any
record). A value of a type records do not hold (see ``FieldValue``) is kept by ``pickle``
instead, so nothing is ever lost, only less compact.
"""

from __future__ import annotations

import marshal
from collections.abc import Iterator, MutableMapping

from app.model import Address, FieldValue, Labeled, Record

_LABELED = 0
_ADDRESS = 1
_ADDRESS_PARTS = 8


def pack(record: Record) -> bytes:
    """``record`` (without its id: the holder keys it) as bytes."""
    flat: list[str | tuple[str | int, ...]] = []
    for key, value in record.fields.items():
        if type(value) is str:
            flat += (key, value)
            continue
        if not isinstance(value, tuple):
            return _pickled(record)
        items: list[str | int] = [_LABELED]
        for item in value:
            if type(item) is Labeled:
                if items[0] != _LABELED:
                    return _pickled(record)
                items += (item.value, item.label)
            elif type(item) is Address and (len(items) == 1 or items[0] == _ADDRESS):
                items[0] = _ADDRESS
                items += (*item.parts(), item.label)
            else:
                return _pickled(record)
        flat += (key, tuple(items) if value else ())
    values = (record.version, tuple(flat), tuple(record.segments), record.subscribed)
    try:
        return marshal.dumps(values)
    except ValueError:  # a str subclass somewhere (marshal takes exact types only)
        return _pickled(record)


def _pickled(record: Record) -> bytes:
    """The rare record holding a value no connector makes: kept whole."""
    import pickle  # only for such a record (a sync's start-up does not load it)

    return marshal.dumps((pickle.dumps(record, pickle.HIGHEST_PROTOCOL),))


def unpack(record_id: str, data: bytes) -> Record:
    """The record ``pack`` made ``data`` from, as a new object (changing it changes nothing
    that is held)."""
    packed = marshal.loads(data)
    if len(packed) == 1:
        import pickle

        record: Record = pickle.loads(packed[0])
        record.id = record_id
        return record
    version, flat, segments, subscribed = packed
    fields: dict[str, FieldValue] = {}
    it = iter(flat)
    for key, value in zip(it, it, strict=True):
        if type(value) is tuple and value:
            if value[0] == _LABELED:
                items = iter(value[1:])
                value = tuple([Labeled(v, lb) for v, lb in zip(items, items, strict=True)])
            else:
                step = _ADDRESS_PARTS
                value = tuple([Address(*value[i : i + step]) for i in range(1, len(value), step)])
        fields[key] = value
    return Record(record_id, version, fields, frozenset(segments), subscribed)


class PackedRecords(MutableMapping[str, Record]):
    """id -> record, each held packed. Every read unpacks a new ``Record``: change it and
    store it again (``m[id] = rec``) for the change to be kept."""

    __slots__ = ("_packed",)

    def __init__(self) -> None:
        self._packed: dict[str, bytes | Record] = {}
        """Packed bytes, or the record itself once ``take`` unpacked it for good."""

    def __getitem__(self, record_id: str) -> Record:
        got = self._packed[record_id]
        return got if isinstance(got, Record) else unpack(record_id, got)

    def take(self, record_id: str) -> Record:
        """The record, unpacked for good: whoever takes it holds it anyway (a plan), so it
        is kept as that object instead of its bytes, and every later read returns it."""
        got = self._packed[record_id]
        if isinstance(got, Record):
            return got
        record = unpack(record_id, got)
        self._packed[record_id] = record
        return record

    def __setitem__(self, record_id: str, record: Record) -> None:
        self._packed[record_id] = pack(record)

    def __delitem__(self, record_id: str) -> None:
        del self._packed[record_id]

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._packed

    def __iter__(self) -> Iterator[str]:
        return iter(self._packed)

    def __len__(self) -> int:
        return len(self._packed)

    def version(self, record_id: str) -> str:
        """The version of ``record_id`` (without building the record)."""
        got = self._packed[record_id]
        if isinstance(got, Record):
            return got.version
        packed = marshal.loads(got)
        if len(packed) == 1:
            return self[record_id].version
        version: str = packed[0]
        return version

    def discard(self, record_id: str) -> bool:
        """Forget ``record_id`` without unpacking it; whether it was held."""
        return self._packed.pop(record_id, None) is not None

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self)} records)"
