"""What the engine keeps between runs, as the engine sees it: one protocol and plain notes.

The engine plans and applies; it never writes SQL and never sees an ORM row. Everything it
reads from its memory (the local index, bindings, failures, intents, cursors, the journal) and
everything it makes durable goes through ``SyncStateStore``, in the plain dataclasses below.
The SQLite store (``app.store.state.SyncState``) implements the protocol; so may any test
double. This module is the contract between the two: it imports nothing but ``app.model``.

One rule the engine relies on: ``commit(outcome)`` makes a whole ``BatchOutcome`` durable in
one transaction, or none of it (crash safety: a batch's writes, bindings, bases, index entries,
journal and cursors land together).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from app.model import Record, Side

NOT_FITTING = "~not_fitting"
"""In a binding's base entry, beside the engine's held values: the two apps hold different
values because one had no room for some of them (``{"side", "field", "values", "message"}``;
Health's "Not fitting" list reads it)."""


@dataclass(slots=True)
class BindingRow:
    """A pair of records, one per app, that Pairsync keeps in sync (or kept: a tombstone)."""

    id: int
    id_a: str
    id_b: str
    state: str
    """``active``, or ``deleted_a`` / ``deleted_b`` (a tombstone: the other copy is kept)."""
    base: dict[str, Any]
    """The values both apps agreed on at the last sync, per mapping key."""
    needs_merge: bool
    rule_state: dict[str, Any] = field(default_factory=dict)
    """``{"log": [action entries], "seen": {"a": subscribed, "b": subscribed}}``"""

    def id_on(self, side: Side) -> str:
        return self.id_a if side is Side.A else self.id_b


@dataclass(frozen=True, slots=True)
class PairRef:
    """A binding without its base and rule state: what planning needs to know of every
    pair a run touches before it plans them a slice at a time (a decoded base is about
    1.4 KB; a run that changed 100,000 contacts must not hold 100,000 of them)."""

    id: int
    id_a: str
    id_b: str
    state: str
    needs_merge: bool

    def id_on(self, side: Side) -> str:
        return self.id_a if side is Side.A else self.id_b


@dataclass(slots=True)
class NewBinding:
    id_a: str
    id_b: str
    base: dict[str, Any] = field(default_factory=dict)
    rule_state: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class IndexEntry:
    """What to store for one record of the local index."""

    side: Side
    record: Record
    snapshot: str
    keys: list[str]
    status: str
    reason: str = ""


@dataclass(slots=True)
class IntentNote:
    """A write-ahead intent for a create: recorded (and committed) before the create is sent,
    resolved at the next run's start if the run died before recording the result."""

    op_id: str
    run_id: int
    target_side: Side
    source_id: str
    new_id: str | None
    emails: list[str]
    """The source record's match keys (to find a created copy whose id we never learned)."""
    rule_state: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class FailureNote:
    side: Side
    record_id: str
    target_side: Side
    name: str
    code: str
    message: str
    field: str = ""
    raw: str = ""
    binding_id: int | None = None
    source_version: str = ""


@dataclass(slots=True)
class DueFailure:
    """A failed contact whose retry is due in this run."""

    side: Side
    record_id: str
    binding_id: int | None


@dataclass(slots=True)
class JournalNote:
    side: Side
    record_id: str
    action: str
    field: str
    before: Any
    after: Any


@dataclass(slots=True)
class JournalRow:
    """One journaled field write, read back (values already parsed from JSON)."""

    id: int
    side: Side
    record_id: str
    action: str
    field: str
    before: Any
    after: Any


@dataclass(frozen=True, slots=True)
class ConnectionFacts:
    """What a run needs to know about its connection."""

    synced_once: bool
    """A run has written before (the write-count guard spares the first sync)."""
    needs_full_read: bool
    """Both apps must be read in full (a new connection, or resumed after a pause)."""


@dataclass(frozen=True, slots=True)
class RunFacts:
    id: int
    dry_run: bool
    status: str


@dataclass(frozen=True, slots=True)
class ConflictFacts:
    """A logged conflict: the winner's value was written over the loser's."""

    id: int
    run_id: int
    binding_id: int
    field: str
    """The mapping key (``rule:…`` for a conflict between rules)."""
    winner: Side
    resolved_run_id: int | None


@dataclass(frozen=True, slots=True)
class Tombstone:
    """A binding one of whose records is gone: it keeps its ids under a ``deleted_*`` state."""

    binding_id: int
    state: str


@dataclass(frozen=True, slots=True)
class StatusChange:
    """A new index status (and reason) for a record whose snapshot stays as it is."""

    side: Side
    record_id: str
    status: str
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Rebind:
    """A bound contact back under another id: its binding follows it."""

    binding_id: int
    side: Side
    new_id: str


@dataclass(frozen=True, slots=True)
class RecordRef:
    side: Side
    record_id: str


@dataclass(frozen=True, slots=True)
class ConflictNote:
    binding_id: int
    field: str
    value_a: Any
    value_b: Any
    winner: str


@dataclass(slots=True)
class BatchOutcome:
    """Everything that must become durable together after one batch (or step) of a run.

    The store commits it in one transaction, in this order: index entries, new bindings,
    bases, rule states, bindings to re-plan, tombstones, statuses, rebound bindings, dropped
    index entries, cleared failures, new failures, journal, conflicts, done intents, cursors.
    """

    run_id: int
    run_no: int = 0
    """The run's number (failures schedule their retry from it)."""
    index: Sequence[IndexEntry] = ()
    new_bindings: Sequence[NewBinding] = ()
    matched: bool = False
    """The new bindings come from matching: merged as a first sync until their base is set."""
    bases: Sequence[tuple[int, dict[str, Any]]] = ()
    """(binding id, new base): the binding's ``needs_merge`` ends with it."""
    rule_states: Sequence[tuple[int, dict[str, Any]]] = ()
    replan: Sequence[int] = ()
    """Bindings planned again at the next run (an app merged another client's edit into
    our write)."""
    tombstones: Sequence[Tombstone] = ()
    statuses: Sequence[StatusChange] = ()
    dropped: Sequence[RecordRef] = ()
    """Records gone from their app: out of the index."""
    rebound: Sequence[Rebind] = ()
    cleared: Sequence[RecordRef] = ()
    """Records whose failures are over (whatever the binding)."""
    clear_binding_failures: Sequence[int] = ()
    failures: Sequence[FailureNote] = ()
    journal: Sequence[JournalNote] = ()
    conflicts: Sequence[ConflictNote] = ()
    done_intents: Sequence[str] = ()
    cursors: dict[str, str | None] = field(default_factory=dict)
    """Cursor rows to set (None: remove), e.g. where a change feed stopped."""


class SyncStateStore(Protocol):
    """The engine's memory of one connection (implemented by ``app.store.state.SyncState``).

    Reads return plain values; each method that changes data is its own short transaction.
    """

    # --- the connection and its runs ---------------------------------------------------------

    def connection(self) -> ConnectionFacts: ...

    def begin_run(
        self, dry_run: bool, kind: str = "sync", undo_of: int | None = None
    ) -> tuple[int, int]:
        """A new run row: (run id, run number)."""
        ...

    def finish_run(
        self, run_id: int, status: str, counts: dict[str, Any], message: str, wrote: bool
    ) -> None: ...

    def run_row(self, run_id: int) -> RunFacts | None:
        """A run of this connection (None when it is another connection's or unknown)."""
        ...

    # --- the local index ---------------------------------------------------------------------

    def index_versions(self, side: Side) -> dict[str, str]:
        """Every indexed record of a side with the version it had when indexed."""
        ...

    def index_versions_of(self, side: Side, ids: Iterable[str]) -> dict[str, str]:
        """The indexed versions of these records only (absent: not indexed)."""
        ...

    def count_index(self, side: Side) -> int: ...

    def load_records(self, side: Side, ids: Iterable[str]) -> dict[str, tuple[Record, str]]:
        """Snapshots from the index: id -> (record, status)."""
        ...

    def key_holders(self, side: Side, keys: Iterable[str]) -> dict[str, set[str]]: ...

    def keys_of(self, side: Side, ids: Iterable[str]) -> dict[str, list[str]]: ...

    def ids_with_status(self, side: Side, status: str) -> list[str]: ...

    def index_meta(self, side: Side, ids: Iterable[str]) -> dict[str, tuple[str, str]]:
        """Index status and reason of these records."""
        ...

    # --- cursors -----------------------------------------------------------------------------

    def cursor(self, key: str) -> str | None: ...

    def set_cursor(self, key: str, value: str | None) -> None: ...

    # --- bindings ----------------------------------------------------------------------------

    def bindings_for(self, side: Side, ids: Iterable[str]) -> dict[str, BindingRow]: ...

    def pairs_for(self, side: Side, ids: Iterable[str]) -> dict[str, PairRef]:
        """As ``bindings_for``, without bases and rule states."""
        ...

    def bindings_by_id(self, ids: Iterable[int]) -> list[BindingRow]: ...

    def pairs_needing_merge(self) -> list[PairRef]: ...

    def bound_unindexed(self, side: Side) -> list[str]:
        """Ids on ``side`` of active pairs waiting for their first merge whose record was
        never indexed (an interrupted create bound by ``resolve_intent``): the reader must
        check they still exist, as no listing of the index would miss them."""
        ...

    def active_pair_ids(self) -> Iterator[list[int]]:
        """The ids of every active binding, a chunk at a time."""
        ...

    # --- intents, failures, conflicts, journal ----------------------------------------------

    def open_intents(self) -> list[IntentNote]: ...

    def add_intents(self, intents: Sequence[IntentNote]) -> None:
        """Commit intents (before the creates they announce are sent)."""
        ...

    def resolve_intent(
        self,
        op_id: str,
        source: Side,
        source_id: str,
        new_id: str | None,
        state: str = "active",
        rule_state: dict[str, Any] | None = None,
    ) -> None:
        """An interrupted create: bind it if the app has it, else forget the intent."""
        ...

    def due_failures(self, run_no: int) -> list[DueFailure]: ...

    def conflict(self, conflict_id: int) -> ConflictFacts | None: ...

    def resolve_conflict(self, conflict_id: int, run_id: int) -> None: ...

    def journal_of(
        self, run_id: int, records: Iterable[tuple[Side, str]] | None = None
    ) -> list[JournalRow]: ...

    def created_since(self, side: Side, run_id: int) -> list[str]:
        """Records Pairsync created in ``side`` in run ``run_id`` or a later one."""
        ...

    # --- making a batch durable --------------------------------------------------------------

    def commit(self, outcome: BatchOutcome) -> None:
        """One transaction: everything in ``outcome``, or nothing."""
        ...
