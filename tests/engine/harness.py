"""Two in-memory apps, a real SQLite store on disk, and the real engine between them."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any

from app.connectors.memory import STANDARD_FIELDS, MemoryApp
from app.engine.context import RUN_CEILING
from app.engine.sync import RunReport, Settings, SyncRun
from app.mapping.defaults import default_mappings
from app.mapping.fields import Direction, FieldMapping
from app.model import FieldSpec, Side
from app.rules.model import Rule
from app.store.db import Store
from app.store.models import Account, Connection
from app.store.state import SyncState


class Pair:
    def __init__(
        self,
        folder: Path,
        *,
        fields_a: tuple[FieldSpec, ...] = STANDARD_FIELDS,
        fields_b: tuple[FieldSpec, ...] = STANDARD_FIELDS,
        batch_size: int = 100,
        subscription: bool = False,
        feed_a: bool = False,
        feed_b: bool = False,
        feed_bodies: bool = True,
        **settings: Any,
    ) -> None:
        self.store = Store(folder / "pairsync.db")
        self.a = MemoryApp(
            "App A", fields_a, batch_size=batch_size, subscription=subscription, change_feed=feed_a
        )
        self.b = MemoryApp(
            "App B", fields_b, batch_size=batch_size, subscription=subscription, change_feed=feed_b
        )
        self.a.feed_bodies = self.b.feed_bodies = feed_bodies
        with self.store.session() as s, s.begin():
            acc_a, acc_b = Account(name="a", kind="memory"), Account(name="b", kind="memory")
            s.add_all([acc_a, acc_b])
            s.flush()
            conn = Connection(name="c", account_a_id=acc_a.id, account_b_id=acc_b.id)
            s.add(conn)
            s.flush()
            self.cid = conn.id
        self.settings = Settings(**settings)
        self.run_ceiling = RUN_CEILING
        """Seconds a run may take (tests of the ceiling shorten it)."""
        self.mappings: list[FieldMapping] = default_mappings(self.a.schema(), self.b.schema())
        self.rules: list[Rule] | None = None
        """None: the two default all-to-all rules."""
        self.plan_slice = 3
        """Contacts planned and applied at a time on a run without the write guard (small,
        so that every test crosses slice boundaries; the app uses ``Planner.slice_size()``)."""

    @property
    def state(self) -> SyncState:
        return SyncState(self.store.db, self.cid)

    def run(self, *, dry_run: bool = False, confirm: bool = False) -> RunReport:
        run = SyncRun(
            "c",
            self.state,
            {Side.A: self.a, Side.B: self.b},
            self.mappings,
            self.settings,
            rules=self.rules,
            run_ceiling=self.run_ceiling,
        )
        run.PLAN_SLICE = self.plan_slice
        return run.run(dry_run=dry_run, confirm=confirm)

    def writes(self) -> int:
        return self.a.ops_written + self.b.ops_written

    def one_way(self, direction: Direction) -> None:
        self.settings = replace(self.settings, direction=direction)
