"""On-demand benchmark of the Health lists over a big local index (not a pytest module).

    QT_QPA_PLATFORM=offscreen python -m tests.perf.bench_health [--contacts 100000]

Fills a fresh store with N bound contacts (side A and B, with emails), N/10 excluded, N/20
failures and N/50 conflicts straight into the tables (as a first sync of N contacts would
leave them), then times what the Health tab does: tab counts, the first page of each list,
every following page (as scrolling to the end fetches them), searches by name and by email,
and scrolling a real ``QTableView`` from top to bottom. ``fill_index`` is also used by the
CI-sized test in ``tests/ui/test_health_view.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from sqlalchemy import insert

from app.store.models import Binding, ConflictEntry, Failure, IndexedRecord, RecordKey, Run

CHUNK = 5_000


def fill_index(service: Any, cid: int, n: int, *, extra: bool = False) -> None:
    """N bound pairs (one row per side) with a primary email; with ``extra``, N/10 excluded
    contacts, N/20 failures and N/50 conflicts too."""
    engine = service._store.engine
    snap = json.dumps({"f": {}, "s": [], "u": None})
    with engine.begin() as conn:
        run_id = conn.execute(
            insert(Run).values(connection_id=cid, run_no=1, status="ok", counts="{}")
        ).inserted_primary_key[0]
        for start in range(0, n, CHUNK):
            ids = range(start, min(n, start + CHUNK))
            conn.execute(
                insert(IndexedRecord),
                [
                    {
                        "connection_id": cid,
                        "side": side,
                        "record_id": f"{side}{i:07}",
                        "version": "v1",
                        "snapshot": snap,
                        "name": f"Person {i:07}",
                        "status": "bound",
                        "reason": "",
                    }
                    for i in ids
                    for side in ("a", "b")
                ],
            )
            conn.execute(
                insert(RecordKey),
                [
                    {
                        "connection_id": cid,
                        "side": side,
                        "record_id": f"{side}{i:07}",
                        "key": f"p{i:07}@example.com",
                        "position": 0,
                    }
                    for i in ids
                    for side in ("a", "b")
                ],
            )
            conn.execute(
                insert(Binding),
                [
                    {
                        "connection_id": cid,
                        "id_a": f"a{i:07}",
                        "id_b": f"b{i:07}",
                        "state": "active",
                        "base": "{}",
                        "needs_merge": False,
                        "rule_state": "{}",
                    }
                    for i in ids
                ],
            )
        if not extra:
            return
        reasons = ["no email", "no rule matches", "deleted in Sheet"]
        conn.execute(
            insert(IndexedRecord),
            [
                {
                    "connection_id": cid,
                    "side": "a",
                    "record_id": f"x{i:07}",
                    "version": "v1",
                    "snapshot": snap,
                    "name": f"Excluded {i:07}",
                    "status": "excluded",
                    "reason": reasons[i % 3],
                }
                for i in range(n // 10)
            ],
        )
        codes = ["required_missing", "value_not_allowed", "rejected", "unreadable"]
        conn.execute(
            insert(Failure),
            [
                {
                    "connection_id": cid,
                    "side": "a",
                    "record_id": f"a{i:07}",
                    "target_side": "b",
                    "name": f"Person {i:07}",
                    "code": codes[i % 4],
                    "message": "The app refused the change.",
                    "field": "title",
                    "raw": "HTTP 400",
                    "attempts": 1,
                    "next_run_no": 2,
                    "source_version": "v1",
                    "ignored": False,
                }
                for i in range(n // 20)
            ],
        )
        conn.execute(
            insert(ConflictEntry),
            [
                {
                    "run_id": run_id,
                    "connection_id": cid,
                    "binding_id": i + 1,
                    "field": "title=title",
                    "value_a": json.dumps(f"A {i}"),
                    "value_b": json.dumps(f"B {i}"),
                    "winner": "a",
                }
                for i in range(n // 50)
            ],
        )


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def timed(fn: Any) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    args = parser.parse_args()
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["PAIRSYNC_HOME"] = str(Path(tmp) / "home")
        import keyring

        from tests.conftest import MemoryKeyring

        keyring.set_keyring(MemoryKeyring())
        from PySide6.QtCore import QModelIndex
        from PySide6.QtWidgets import QApplication, QTableView

        from app.service import ConnectionSettings, Service
        from app.ui.health_view import ContactsTab
        from app.ui.reader import ImmediateReader

        app = QApplication([])
        svc = Service()
        folder = Path(tmp) / "cards"
        folder.mkdir()
        (Path(tmp) / "s.csv").write_text("Name,Email\n")
        svc.add_account("vcard-folder", "Phone", {"path": str(folder)})
        svc.add_account("csv", "Sheet", {"path": str(Path(tmp) / "s.csv")})
        svc.create_connection("Main", "Phone", "Sheet", ConnectionSettings())
        cid = svc._connections.connection("Main").id
        n = args.contacts
        _, fill = timed(lambda: fill_index(svc, cid, n, extra=True))
        print(f"filled {n:,} pairs (+{n // 10:,} excluded, {n // 20:,} failures) in {fill:.1f} s")
        counts, t = timed(lambda: svc.health_counts("Main"))
        print(f"tab counts {counts}: {_ms(t)}")
        first, t = timed(lambda: svc.contacts_page("Main", "bound"))
        print(f"In sync first page ({len(first)} rows): {_ms(t)}")
        page_times = []
        after = first[-1].key
        for _ in range(20):
            rows, t = timed(lambda after=after: svc.contacts_page("Main", "bound", after=after))
            page_times.append(t)
            after = rows[-1].key
        print(
            f"In sync next pages: median {_ms(statistics.median(page_times))}, "
            f"max {_ms(max(page_times))}"
        )
        deep = svc.contacts_page("Main", "bound", after=(f"Person {n - 300:07}", "a", ""))
        _, t = timed(
            lambda: svc.contacts_page("Main", "bound", after=(f"Person {n - 300:07}", "a", ""))
        )
        print(f"In sync page near the end ({len(deep)} rows): {_ms(t)}")
        for label, text in (("name", "Person 0042"), ("email", "p0099999@"), ("nothing", "zzz")):
            rows, t = timed(lambda text=text: svc.contacts_page("Main", "bound", search=text))
            print(f"search by {label} ({len(rows)} rows): {_ms(t)}")
        _, t = timed(lambda: svc.excluded_reasons("Main"))
        print(f"Excluded reasons: {_ms(t)}")
        groups, t = timed(lambda: svc.failure_groups("Main"))
        print(f"Failed groups {groups}: {_ms(t)}")
        _, t = timed(lambda: svc.failures_page("Main", groups[0][0]))
        print(f"Failed first page of a group: {_ms(t)}")
        _, t = timed(lambda: svc.conflicts_page("Main"))
        print(f"Conflicts first page: {_ms(t)}")
        # A real view: scroll from top to bottom, letting the view fetch pages itself.
        tab = ContactsTab("bound", False, reader=ImmediateReader(svc))
        tab.resize(900, 700)
        tab.show()
        _, t = timed(lambda: tab.show_connection(svc, "Main", {"a": "Phone", "b": "Sheet"}))
        print(f"view: first page shown: {_ms(t)}")
        view: QTableView = tab.view
        bar = view.verticalScrollBar()
        steps: list[float] = []
        start = time.perf_counter()
        pages = 0
        while tab.model.canFetchMore(QModelIndex()) and pages < 200:
            t0 = time.perf_counter()
            bar.setValue(bar.maximum())
            app.processEvents()
            steps.append(time.perf_counter() - t0)
            pages += 1
        total = time.perf_counter() - start
        print(
            f"view: scrolled to row {tab.model.rowCount():,} in {pages} steps, {total:.2f} s; "
            f"each step (page fetch + repaint) median {_ms(statistics.median(steps))}, "
            f"max {_ms(max(steps))}"
        )
        tab.close()
        svc.close()


if __name__ == "__main__":
    main()
