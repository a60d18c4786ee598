"""The tables. Secrets are never stored here (see ``app.secrets``).

These ORM models are the schema's definition: Alembic's migrations are checked against them
(``tests/store/test_migrations.py``), and the editors of accounts and connections and the
Health read model work through them. A sync does not: the engine's state
(``app.store.state``) and the connection it runs (``app.store.connections``'s reads) are plain
SQL on the DB-API connection, because importing SQLAlchemy was more than half of a cron-run
sync's start-up (issue 18). The plain statements name these tables' columns;
``tests/store/test_bulk.py`` checks they agree.

The local index (``records`` + ``record_keys``) holds the last snapshot of every contact of
both apps as the engine last agreed on it; it lets a re-sync read only what changed and lets
mappings or rules be re-planned without reading the apps again.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.store.sqlite import utcnow


class Base(DeclarativeBase):
    pass


class Account(Base):
    __tablename__ = "accounts"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    kind: Mapped[str] = mapped_column(String(50))
    settings: Mapped[str] = mapped_column(Text, default="{}")
    """JSON of non-secret settings (paths, URLs, user names)."""
    has_secret: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Connection(Base):
    __tablename__ = "connections"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    account_a_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    account_b_id: Mapped[int] = mapped_column(ForeignKey("accounts.id"))
    direction: Mapped[str] = mapped_column(String(10), default="two-way")
    winner: Mapped[str] = mapped_column(String(1), default="a")
    avoid_duplicates: Mapped[bool] = mapped_column(Boolean, default=True)
    unsubscribes: Mapped[bool] = mapped_column(Boolean, default=False)
    unsubscribe_opt_out: Mapped[bool] = mapped_column(
        Boolean, default=False, server_default=text("0")
    )
    """With Sync Unsubscribes: also set the other app's own opt-out flag, where it has one."""
    trash: Mapped[bool] = mapped_column(Boolean, default=False)
    propagate_clears: Mapped[bool] = mapped_column(Boolean, default=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    guard_max_writes: Mapped[int] = mapped_column(Integer, default=500)
    guard_shrink_percent: Mapped[int] = mapped_column(Integer, default=20)
    phone_region: Mapped[str] = mapped_column(String(2), default="")
    config: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: mapping and rule configuration (pluggable; later issues extend it)."""
    run_count: Mapped[int] = mapped_column(Integer, default=0)
    synced_once: Mapped[bool] = mapped_column(Boolean, default=False)
    needs_full_read: Mapped[bool] = mapped_column(Boolean, default=True)
    interval_minutes: Mapped[int] = mapped_column(Integer, default=5, server_default=text("5"))
    """How often the desktop app syncs this connection (1–60 minutes, SPEC §9)."""
    last_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class IndexedRecord(Base):
    """A contact of one side as last seen and processed."""

    __tablename__ = "records"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    side: Mapped[str] = mapped_column(String(1), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    version: Mapped[str] = mapped_column(String(200))
    snapshot: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(String(500), default="")
    status: Mapped[str] = mapped_column(String(30), default="new")
    """bound | excluded | duplicate | unreadable | failed | gone"""
    reason: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = (
        # A re-sync reads every (id, version) of a side: answered from this index alone.
        Index("ix_records_versions", "connection_id", "side", "record_id", "version"),
        Index("ix_records_status", "connection_id", "side", "status"),
        # Health lists (In sync, Excluded, Duplicates) page through one status by name.
        Index("ix_records_status_name", "connection_id", "status", "name", "side", "record_id"),
    )


class RecordKey(Base):
    """Matching keys (normalized emails) of indexed records; order 0 is the primary email."""

    __tablename__ = "record_keys"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    side: Mapped[str] = mapped_column(String(1), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(500), primary_key=True)
    key: Mapped[str] = mapped_column(String(500), primary_key=True)
    position: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_record_keys_lookup", "connection_id", "side", "key"),)


class Binding(Base):
    __tablename__ = "bindings"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    id_a: Mapped[str] = mapped_column(String(500))
    id_b: Mapped[str] = mapped_column(String(500))
    state: Mapped[str] = mapped_column(String(20), default="active")
    """active | deleted_a | deleted_b (a tombstone: the record is gone on that side)."""
    base: Mapped[str] = mapped_column(Text, default="{}")
    """JSON: mapping key -> canonical value agreed at the last sync."""
    needs_merge: Mapped[bool] = mapped_column(Boolean, default=False)
    rule_state: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    """JSON: the action log of rules (what Pairsync applied, for Undo) and the subscription
    status each side had at the last sync (for Sync Unsubscribes)."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("connection_id", "id_a", name="uq_binding_a"),
        UniqueConstraint("connection_id", "id_b", name="uq_binding_b"),
        Index(
            "ix_bindings_needs_merge",
            "connection_id",
            sqlite_where=text("needs_merge = 1"),
        ),
    )


class Cursor(Base):
    __tablename__ = "cursors"

    connection_id: Mapped[int] = mapped_column(
        ForeignKey("connections.id", ondelete="CASCADE"), primary_key=True
    )
    side: Mapped[str] = mapped_column(String(1), primary_key=True)
    cursor: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class Failure(Base):
    """A contact that could not be synced, with what to tell the user and when to retry."""

    __tablename__ = "failures"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    side: Mapped[str] = mapped_column(String(1))
    """The side of the contact shown to the user (the source of the change)."""
    record_id: Mapped[str] = mapped_column(String(500))
    target_side: Mapped[str] = mapped_column(String(1))
    """The side whose app refused the write (or could not be read)."""
    binding_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    name: Mapped[str] = mapped_column(String(500), default="")
    code: Mapped[str] = mapped_column(String(50))
    message: Mapped[str] = mapped_column(Text)
    field: Mapped[str] = mapped_column(String(200), default="")
    raw: Mapped[str] = mapped_column(Text, default="")
    attempts: Mapped[int] = mapped_column(Integer, default=1)
    next_run_no: Mapped[int] = mapped_column(Integer, default=0)
    next_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    source_version: Mapped[str] = mapped_column(String(200), default="")
    ignored: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("0"))
    """The user chose Ignore: out of the Failed counts and not retried until the contact
    changes (a new failure with another version of the record clears it)."""
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (
        UniqueConstraint("connection_id", "side", "record_id", name="uq_failure_record"),
        Index("ix_failures_code", "connection_id", "code", "name"),
    )


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    run_no: Mapped[int] = mapped_column(Integer)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(20), default="running")
    counts: Mapped[str] = mapped_column(Text, default="{}")
    message: Mapped[str] = mapped_column(Text, default="")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    kind: Mapped[str] = mapped_column(String(20), default="sync", server_default="sync")
    """sync | undo (a revert of a run or of one contact's changes) | use_other (a conflict's
    losing value applied). Only sync runs drive the schedule and the full-read flags."""
    undo_of: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The run (id) an undo or use_other run reverts."""

    __table_args__ = (Index("ix_runs_connection", "connection_id", "id"),)


class JournalEntry(Base):
    """One field Pairsync wrote: enough to show and to revert it."""

    __tablename__ = "journal"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(Integer)
    side: Mapped[str] = mapped_column(String(1))
    record_id: Mapped[str] = mapped_column(String(500))
    action: Mapped[str] = mapped_column(String(10))
    """create | update"""
    field: Mapped[str] = mapped_column(String(200))
    before: Mapped[str | None] = mapped_column(Text, nullable=True)
    after: Mapped[str | None] = mapped_column(Text, nullable=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    __table_args__ = (Index("ix_journal_run", "run_id"),)


class ConflictEntry(Base):
    __tablename__ = "conflicts"

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    connection_id: Mapped[int] = mapped_column(Integer)
    binding_id: Mapped[int] = mapped_column(Integer)
    field: Mapped[str] = mapped_column(String(200))
    value_a: Mapped[str] = mapped_column(Text)
    value_b: Mapped[str] = mapped_column(Text)
    winner: Mapped[str] = mapped_column(String(1))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    resolved_run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """The run that applied the losing value instead ("use the other value")."""

    __table_args__ = (Index("ix_conflicts_connection", "connection_id", "at"),)


class PendingOp(Base):
    """Write-ahead intent for a create: committed before the app is asked to create."""

    __tablename__ = "pending_ops"

    op_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    connection_id: Mapped[int] = mapped_column(ForeignKey("connections.id", ondelete="CASCADE"))
    run_id: Mapped[int] = mapped_column(Integer)
    target_side: Mapped[str] = mapped_column(String(1))
    source_id: Mapped[str] = mapped_column(String(500))
    new_id: Mapped[str | None] = mapped_column(String(500), nullable=True)
    emails: Mapped[str] = mapped_column(Text, default="[]")
    rule_state: Mapped[str] = mapped_column(Text, default="{}", server_default="{}")
    """The new binding's action log, so a recovered create keeps what Undo must know."""
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
