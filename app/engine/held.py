"""A run's records, held packed until a slice uses them (issue 18).

A first sync of 100,000 vCards reads every card before matching can start, and each read
record waits for its slice to be planned and applied. As objects they cost about 1.6 KB each
(160 MB at 100,000); packed (``app.packed``) about 380 bytes. Matching needs only each
record's match keys, so those are worked out once, when the record is read, and kept beside
it: matching, the email-collision check and the release of an applied slice never unpack.
"""

from __future__ import annotations

from app.engine.match import keys_of
from app.model import Record
from app.packed import PackedRecords


class Held(PackedRecords):
    """id -> record (packed), with each record's match keys (``match_keys``)."""

    __slots__ = ("match_keys",)

    def __init__(self) -> None:
        super().__init__()
        self.match_keys: dict[str, list[str]] = {}
        """id -> the record's match keys (``match.keys_of``), as read."""

    def __setitem__(self, record_id: str, record: Record) -> None:
        super().__setitem__(record_id, record)
        self.match_keys[record_id] = keys_of(record)

    def __delitem__(self, record_id: str) -> None:
        super().__delitem__(record_id)
        del self.match_keys[record_id]

    def discard(self, record_id: str) -> bool:
        self.match_keys.pop(record_id, None)
        return super().discard(record_id)
