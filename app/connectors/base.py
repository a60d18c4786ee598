"""The connector protocol: what every app looks like to the engine.

A connector turns one app's storage or API into these few calls. It knows nothing of the
engine, the store, or any other connector.

Reading works in two ways, and the engine picks:

* ``list_versions()`` returns every record id with a cheap version (etag, mtime, row hash);
  the engine fetches only the ids whose version differs from what it saw last time;
* ``changes(cursor)`` (only when ``capabilities.change_feed``) returns what changed since a
  cursor, for apps with a change feed (Google sync tokens, Graph delta, sync-collection).

Writes are batched (``capabilities.batch_size``), one result per operation, in order. A
failing record produces a ``WriteResult`` with a typed error; it never raises for one record.
A connector raises only for failures of the whole app (``AuthExpired``, ``Unavailable``).

Optionally (``NarrowsReads``), an app that pays for every field it reads (HubSpot asks for
properties by name) is told which fields a connection uses, before anything is read; every
other app reads whole records and need not implement it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from app.model import AppInfo, FieldSpec, Record, Schema, Unreadable, WriteOp, WriteResult


@dataclass(slots=True)
class ChangeSet:
    """What changed in an app since a cursor (or, ``complete``, everything it holds).

    A changed record is reported either whole (``records``: feeds that send bodies, like
    Google's) or by id and version only (``versions``: feeds that send ETags, like
    sync-collection); the engine fetches only the latter whose version it does not have, so
    the echo of its own writes costs nothing. Versions are the ones ``list_versions`` gives.
    """

    records: list[Record | Unreadable] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    cursor: str | None = None
    complete: bool = False
    """``records`` and ``versions`` are everything the app holds (no cursor, or the cursor
    had expired): an id known before but absent here may be gone (confirm with ``fetch``
    before believing it)."""
    versions: dict[str, str] = field(default_factory=dict)
    """Changed (or, complete, all) records by id and version, to ``fetch`` when needed."""


@dataclass(frozen=True, slots=True)
class ReadHint:
    """What one sync uses of an app's records: these field keys, and the subscription
    status only if ``subscription``. An app may read more, never less. Its versions must
    change with the hint (a field mapped later has to be read for every record, not
    assumed empty), which ``tag`` gives: a short, stable digest of the hint."""

    fields: frozenset[str]
    subscription: bool = True

    @property
    def tag(self) -> str:
        import hashlib

        text = "\x1f".join(sorted(self.fields)) + ("\x1e+sub" if self.subscription else "")
        return hashlib.sha1(text.encode()).hexdigest()[:8]


@runtime_checkable
class NarrowsReads(Protocol):
    def narrow_reads(self, hint: ReadHint) -> None:
        """Read no more than ``hint`` needs from now on (called once, before any read)."""
        ...


@runtime_checkable
class Connector(Protocol):
    info: AppInfo

    def schema(self) -> Schema:
        """The app's fields and its existing segments (may read every contact)."""
        ...

    def fields(self) -> tuple[FieldSpec, ...]:
        """The app's fields only: cheap, called on every run to build the mappings."""
        ...

    def prepare(self) -> None:
        """Make the ids the app reports permanent (e.g. CSV stamps its id column).

        The engine does not call it: a run writes nothing to an app before its plan and the
        guard, and nothing at all to an app it does not write (SPEC §2). An id as listed
        must therefore be valid for ``write``, which stamps ids as part of a real write.
        """
        ...

    def list_versions(self) -> dict[str, str]:
        """Every record id the app holds, with a version that changes when the record does."""
        ...

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        """The records with these ids; ids the app no longer has are simply absent."""
        ...

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        """Records having any of these emails (compared case-insensitively)."""
        ...

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        """Apply creates and updates; one result per op, in the same order."""
        ...

    def changes(self, cursor: str | None) -> ChangeSet | None:
        """Changes since ``cursor``; None when the app has no change feed."""
        ...

    def close(self) -> None: ...
