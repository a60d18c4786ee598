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

What holds records for longer than a run (the in-memory app: two of them hold every contact
of a 100,000-contact pair) keeps them deflated too (``DeflatedRecords``): about 100 bytes
instead of 310, for about 20 µs more a write and 3 µs more a read.
"""

from __future__ import annotations

import marshal
import zlib
from collections.abc import Iterator, MutableMapping
from typing import Any

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

    def _pack(self, record: Record) -> bytes:
        return pack(record)

    def _unpack(self, record_id: str, data: bytes) -> Record:
        return unpack(record_id, data)

    def __getitem__(self, record_id: str) -> Record:
        got = self._packed[record_id]
        return got if isinstance(got, Record) else self._unpack(record_id, got)

    def take(self, record_id: str) -> Record:
        """The record, unpacked for good: whoever takes it holds it anyway (a plan), so it
        is kept as that object instead of its bytes, and every later read returns it."""
        got = self._packed[record_id]
        if isinstance(got, Record):
            return got
        record = self._unpack(record_id, got)
        self._packed[record_id] = record
        return record

    def __setitem__(self, record_id: str, record: Record) -> None:
        self._packed[record_id] = self._pack(record)

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


DICTIONARY_BYTES = 4096
"""How much of the first records stored becomes the deflate dictionary of the rest."""
_WBITS = -13
"""Raw deflate, an 8 KB window: the dictionary and a typical record fit in it, and a copy of
the compressor (per record) stays small."""
_PLAIN = 0
_DEFLATED = 1
_NO_VERSION = 255
"""The version's length byte of a record whose version is too long to keep apart."""


class DeflatedRecords(PackedRecords):
    """id -> record, each packed, then deflated with a dictionary: a store that holds many
    records for long (the in-memory app, as a server stores its records compressed).

    A record packed alone deflates poorly (310 bytes to 250): most of it is what every
    record has (field names, labels, the same domains and companies). So the first
    ``DICTIONARY_BYTES`` of packed records stored become a preset dictionary for every
    later one, which then deflates to about 100 bytes (the earlier few stay plain). The
    version is kept in front, readable without inflating (``list_versions`` reads all).
    Layout: version length, version (UTF-8), mode (plain or deflated), payload.
    """

    __slots__ = ("_deflater", "_sample", "_zdict")

    def __init__(self) -> None:
        super().__init__()
        self._zdict: bytes | None = None
        self._sample = bytearray()
        self._deflater: Any = None
        """A compressor primed with the dictionary, copied for each record."""

    def _pack(self, record: Record) -> bytes:
        data = pack(record)
        version = record.version.encode("utf-8", "surrogatepass")
        head = bytes((len(version),)) + version if len(version) < _NO_VERSION else b"\xff"
        if self._deflater is None:
            self._learn(data)
            return head + bytes((_PLAIN,)) + data
        deflate = self._deflater.copy()
        return head + bytes((_DEFLATED,)) + deflate.compress(data) + deflate.flush()

    def _learn(self, data: bytes) -> None:
        """Gather the dictionary from the first records stored."""
        self._sample += data
        if len(self._sample) >= DICTIONARY_BYTES:
            self._prime(bytes(self._sample[:DICTIONARY_BYTES]))
            self._sample = bytearray()

    def _prime(self, zdict: bytes) -> None:
        self._zdict = zdict
        self._deflater = zlib.compressobj(
            6, zlib.DEFLATED, _WBITS, 6, zlib.Z_DEFAULT_STRATEGY, zdict
        )

    def _unpack(self, record_id: str, data: bytes) -> Record:
        start = 1 if data[0] == _NO_VERSION else 1 + data[0]
        payload = data[start + 1 :]
        if data[start] == _DEFLATED:
            assert self._zdict is not None
            payload = zlib.decompressobj(_WBITS, self._zdict).decompress(payload)
        return unpack(record_id, payload)

    def version(self, record_id: str) -> str:
        got = self._packed[record_id]
        if isinstance(got, Record):
            return got.version
        if got[0] == _NO_VERSION:
            return self[record_id].version
        return got[1 : 1 + got[0]].decode("utf-8", "surrogatepass")

    def __getstate__(self) -> tuple[dict[str, bytes | Record], bytes | None, bytes]:
        return self._packed, self._zdict, bytes(self._sample)

    def __setstate__(self, state: tuple[dict[str, bytes | Record], bytes | None, bytes]) -> None:
        self._packed, zdict, sample = state
        self._zdict, self._sample, self._deflater = None, bytearray(sample), None
        if zdict is not None:
            self._prime(zdict)
