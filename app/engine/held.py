"""A run's records, held packed until a slice uses them (issue 18).

A first sync of 100,000 vCards reads every card before matching can start, and each read
record waits for its slice to be planned and applied. As objects they cost about 1.6 KB each
(160 MB at 100,000); packed (``app.packed``) about 380 bytes. Matching needs only each
record's match keys, so those are worked out once, when the record is read, and kept beside
it (``MatchKeys``): matching, the email-collision check and the release of an applied slice
never unpack.

They are deflated too (``DeflatedRecords``: about 110 bytes instead of 390, for about 25 µs
a record): a later run where every contact changed holds every changed record of one app
while the other app's whole file may be open for writing (a CSV). At 100,000 contacts that
took a run where every card changed from 248 MB to 231 (issue 18: 200).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from app.engine.match import keys_of
from app.model import Record
from app.packed import DeflatedRecords

_SEP = "\n"


class MatchKeys(Mapping[str, list[str]]):
    """id -> the record's match keys (``match.keys_of``), as read.

    Each record's keys are kept as one string, joined by a newline (a tuple in the rare
    case a key holds one): a list of two keys costs about 230 bytes, the string about 110
    (11 MB less at 100,000 contacts). Each look-up gives a new list.
    """

    __slots__ = ("_keys",)

    def __init__(self) -> None:
        self._keys: dict[str, str | tuple[str, ...]] = {}

    def put(self, record_id: str, keys: list[str]) -> None:
        if any(_SEP in k for k in keys):
            self._keys[record_id] = tuple(keys)
        else:
            self._keys[record_id] = _SEP.join(keys)

    def __getitem__(self, record_id: str) -> list[str]:
        held = self._keys[record_id]
        if isinstance(held, tuple):
            return list(held)
        return held.split(_SEP) if held else []

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._keys

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys)

    def __len__(self) -> int:
        return len(self._keys)

    def __delitem__(self, record_id: str) -> None:
        del self._keys[record_id]

    def discard(self, record_id: str) -> None:
        self._keys.pop(record_id, None)


class Held(DeflatedRecords):
    """id -> record (packed), with each record's match keys (``match_keys``)."""

    __slots__ = ("match_keys",)

    def __init__(self) -> None:
        super().__init__()
        self.match_keys = MatchKeys()
        """id -> the record's match keys (``match.keys_of``), as read."""

    def __setitem__(self, record_id: str, record: Record) -> None:
        super().__setitem__(record_id, record)
        self.match_keys.put(record_id, keys_of(record))

    def __delitem__(self, record_id: str) -> None:
        super().__delitem__(record_id)
        del self.match_keys[record_id]

    def discard(self, record_id: str) -> bool:
        self.match_keys.discard(record_id)
        return super().discard(record_id)
