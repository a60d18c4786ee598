"""Does the window stay responsive while the user browses Health and Activity over a big index?

    QT_QPA_PLATFORM=offscreen python -m tests.perf.bench_lists [--contacts 100000]

A connection whose local index holds N synced pairs, N/10 excluded contacts, N/20 failures,
N/50 conflicts (``tests.perf.bench_health.fill_index``) and a run that wrote one field of every
contact (N journal rows), written straight into the tables. The main window is wired as
``pairsync`` wires it and shows the connection; then the user opens Health, scrolls In sync,
searches it, filters Excluded by reason, opens a Failed group, opens Conflicts, opens Activity,
scrolls the run's field changes and searches them for something no row holds (a whole-journal
scan). A timer probe in the GUI thread measures the longest event-loop stall over all of it;
each step also records how long the user waited for its rows (time to first rows).
``tests/ui/test_responsiveness.py`` runs this at 10,000 and 100,000 contacts and fails above
``STALL_LIMIT_MS``.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from tests.perf.bench_responsiveness import PROBE_MS, STALL_LIMIT_MS, Window, offscreen_desktop

CHUNK = 5_000


@dataclass
class Steps:
    """The longest stall over every step, and each step's wait for its rows (ms)."""

    contacts: int
    ticks: int
    worst_stall_ms: float
    median_gap_ms: float
    waits_ms: dict[str, float] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    stalls_ms: dict[str, float] = field(default_factory=dict)
    """The longest stall while each step waited for its rows."""

    def line(self) -> str:
        waits = ", ".join(
            f"{k} {v:.0f} ms ({self.rows.get(k, 0):,} rows, stall {self.stalls_ms.get(k, 0):.0f})"
            for k, v in self.waits_ms.items()
        )
        return (
            f"Health/Activity over {self.contacts:,} contacts: {self.ticks} probes; worst "
            f"event-loop stall {self.worst_stall_ms:.1f} ms, median gap "
            f"{self.median_gap_ms:.1f} ms; waits: {waits}"
        )


def fill_journal(service: Any, cid: int, n: int, runs: int = 150) -> None:
    """``runs`` earlier sync runs, then one that wrote the title of each of N contacts."""
    from sqlalchemy import insert

    from app.store.models import JournalEntry, Run

    engine = service._store.engine
    with engine.begin() as conn:
        counts = json.dumps({"created": {"a": 0, "b": 0}, "updated": {"a": 1, "b": 2}})
        conn.execute(
            insert(Run),
            [
                {
                    "connection_id": cid,
                    "run_no": 2 + i,
                    "status": "ok",
                    "counts": counts,
                    "kind": "sync",
                }
                for i in range(runs)
            ],
        )
        big = json.dumps({"created": {"a": 0, "b": 0}, "updated": {"a": 0, "b": n}})
        run_id = conn.execute(
            insert(Run).values(
                connection_id=cid, run_no=2 + runs, status="ok", counts=big, kind="sync"
            )
        ).inserted_primary_key[0]
        before, after = json.dumps("Engineer"), json.dumps("Manager")
        for start in range(0, n, CHUNK):
            conn.execute(
                insert(JournalEntry),
                [
                    {
                        "run_id": run_id,
                        "connection_id": cid,
                        "side": "b",
                        "record_id": f"b{i:07}",
                        "action": "update",
                        "field": "title",
                        "before": before,
                        "after": after,
                    }
                    for i in range(start, min(n, start + CHUNK))
                ],
            )


def open_index_window(root: Path, contacts: int) -> Window:
    """Empty address books, an index of ``contacts`` pairs written straight into the
    database, and the wired main window showing the connection's Settings tab."""
    from PySide6.QtCore import QSettings

    from app.service import ConnectionSettings, Service
    from app.ui.app_wiring import wire
    from app.ui.main_window import MainWindow
    from app.ui.tasks import TaskRunner
    from tests.perf.bench_health import fill_index
    from tests.ui.desktop import write_csv

    folder, sheet = root / "cards", root / "contacts.csv"
    folder.mkdir()
    write_csv(sheet, [])
    service = Service()
    service.add_account("vcard-folder", "Phone", {"path": str(folder)})
    service.add_account("csv", "Sheet", {"path": str(sheet)})
    service.create_connection("Main", "Phone", "Sheet", ConnectionSettings())
    cid = service._connections.connection("Main").id
    fill_index(service, cid, contacts, extra=True)
    fill_journal(service, cid, contacts)
    runner = TaskRunner(Service)
    settings = QSettings(str(root / "pairsync-ui.ini"), QSettings.Format.IniFormat)
    window = MainWindow(service, runner, settings)
    wiring = wire(window, service, runner, quit_app=lambda: None)
    window.resize(1000, 700)
    window.show()
    window.select("Main")
    return Window(service, runner, wiring, folder, sheet)


Step = tuple[str, Callable[[], None], Callable[[], int]]
"""A name, what the user does, and how many rows the step waits for (0: not yet)."""


def user_steps(win: Window, contacts: int) -> list[Step]:
    """What a user does in Health and Activity, each step with the rows it waits for."""
    dash = win.wiring.window.dashboard
    health, activity = win.wiring.health, win.wiring.activity
    in_sync, excluded, failed = health.in_sync, health.excluded, health.failed
    conflicts = health.conflicts
    shown: dict[str, int] = {}

    def open_health() -> None:
        dash.setCurrentWidget(health)
        health.tabs.setCurrentWidget(in_sync)

    def scroll(view: Any, key: str) -> Callable[[], None]:
        def go() -> None:
            shown[key] = view.model().rowCount()
            view.verticalScrollBar().setValue(view.verticalScrollBar().maximum())

        return go

    def more(view: Any, key: str) -> Callable[[], int]:
        def check() -> int:
            n = view.model().rowCount()
            if n > shown.get(key, 0):
                return n
            # Laid out only now (a new tab): the user keeps dragging to the end.
            view.verticalScrollBar().setValue(view.verticalScrollBar().maximum())
            return 0

        return check

    def search(tab: Any, text: str) -> Callable[[], None]:
        def go() -> None:
            tab.search.setText(text)
            tab.search.returnPressed.emit()

        return go

    def searched(model: Any, expect: Callable[[int], bool]) -> Callable[[], int]:
        def check() -> int:
            n = model.rowCount()
            return n if expect(n) and not _loading(model) else 0

        return check

    def open_tab(tab: Any) -> Callable[[], None]:
        return lambda: health.tabs.setCurrentWidget(tab)

    def pick_reason() -> None:
        excluded.reason.setCurrentIndex(excluded.reason.count() - 1)

    def reason_shown() -> int:
        combo = excluded.reason
        if combo.currentIndex() <= 0:
            pick_reason()  # the reasons are read with the list: pick one once they are in
            return 0
        return 0 if _loading(excluded.model) else excluded.model.rowCount()

    def open_group() -> None:
        failed.view.expand(failed.model.index(0, 0))

    def group_rows() -> int:
        if failed.model.rowCount() == 0:
            return 0
        return failed.model.rowCount(failed.model.index(0, 0))

    def open_activity() -> None:
        dash.setCurrentWidget(activity)

    def journal_shown() -> int:
        return activity.journal.rowCount() if activity.runs.rowCount() else 0

    def nothing_found() -> int:
        return 1 if activity.journal.rowCount() == 0 and not _loading(activity.journal) else 0

    return [
        ("open Health", open_health, lambda: in_sync.model.rowCount()),
        ("scroll In sync", scroll(in_sync.view, "in_sync"), more(in_sync.view, "in_sync")),
        ("again", scroll(in_sync.view, "in_sync"), more(in_sync.view, "in_sync")),
        (
            "search In sync",
            search(in_sync, f"Person {contacts // 2:07}"[:-2]),  # 100 names
            searched(in_sync.model, lambda n: 0 < n < 200),
        ),
        ("open Excluded", open_tab(excluded), lambda: excluded.model.rowCount()),
        ("filter by reason", pick_reason, reason_shown),
        ("open Failed", open_tab(failed), lambda: failed.model.rowCount()),
        ("open a group", open_group, group_rows),
        ("open Conflicts", open_tab(conflicts), lambda: conflicts.model.rowCount()),
        ("open Activity", open_activity, journal_shown),
        (
            "scroll changes",
            scroll(activity.journal_view, "journal"),
            more(activity.journal_view, "journal"),
        ),
        ("search changes", search(activity, "zzz-nothing"), nothing_found),
        (
            "clear search",
            search(activity, ""),
            searched(activity.journal, lambda n: n > 0),
        ),
        ("back to Health", open_health, lambda: in_sync.model.rowCount()),
    ]


def _loading(model: Any) -> bool:
    """Whether a model still waits for a page (models without paging never do)."""
    return bool(getattr(model, "loading", False))


def probe_steps(
    win: Window, contacts: int, timeout_s: float = 60, steps: list[Step] | None = None
) -> Steps:
    """Run the user's steps (``user_steps``, or ``steps``) one after another (each once the
    previous one's rows are shown), probing the event loop all along."""
    from PySide6.QtCore import QEventLoop, QTimer

    steps = steps if steps is not None else user_steps(win, contacts)
    loop = QEventLoop()
    gaps: list[float] = []
    last = [time.perf_counter()]
    waits: dict[str, float] = {}
    rows: dict[str, int] = {}
    stalls: dict[str, float] = {}
    state: dict[str, Any] = {"i": -1, "at": 0.0}

    def tick() -> None:
        now = time.perf_counter()
        gaps.append(now - last[0])
        i = state["i"]
        if 0 <= i < len(steps):
            name = steps[i][0]
            stalls[name] = max(stalls.get(name, 0.0), (now - last[0]) * 1000 - PROBE_MS)
        last[0] = now
        if i >= len(steps):
            return
        if i >= 0:
            name, _do, ready = steps[i]
            n = ready()
            if not n:
                return
            waits[name] = (now - state["at"]) * 1000
            rows[name] = n
        if i + 1 >= len(steps):
            QTimer.singleShot(300, loop.quit)  # keep probing while the last rows paint
            state["i"] = len(steps)
            return
        state["i"] = i + 1
        state["at"] = time.perf_counter()
        steps[i + 1][1]()

    timer = QTimer()
    timer.setInterval(PROBE_MS)
    timer.timeout.connect(tick)
    QTimer.singleShot(int(timeout_s * 1000), loop.quit)
    last[0] = time.perf_counter()
    timer.start()
    loop.exec()
    timer.stop()
    if len(waits) < len(steps):
        missing = steps[len(waits)][0]
        raise TimeoutError(
            f"step {missing!r} did not show its rows within {timeout_s} s (waits {waits})"
        )
    ms = sorted(g * 1000 for g in gaps)
    return Steps(
        contacts=contacts,
        ticks=len(gaps),
        worst_stall_ms=max(0.0, ms[-1] - PROBE_MS),
        median_gap_ms=statistics.median(ms),
        waits_ms=waits,
        rows=rows,
        stalls_ms=stalls,
    )


def log_collections() -> None:
    """Print every garbage collection over 5 ms (a pause of every thread)."""
    started: list[float] = []

    def callback(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[:] = [time.perf_counter()]
        elif started:
            ms = (time.perf_counter() - started[0]) * 1000
            if ms > 5:
                print(f"  gc generation {info['generation']}: {ms:.0f} ms")

    gc.callbacks.append(callback)


def open_index_window_as_the_app(tmp: Path, contacts: int) -> Window:
    """``open_index_window``, timed, then the heap frozen as the app's scheduler does at
    start (it keeps the start-up heap out of full collections): the window benchmarks' start."""
    t0 = time.perf_counter()
    win = open_index_window(tmp, contacts)
    print(f"filled the index and opened the window in {time.perf_counter() - t0:.1f} s")
    gc.collect()
    gc.freeze()
    return win


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--gc-log", action="store_true", help="print each collection's pause")
    parser.add_argument("--json", type=Path, help="also write the last round's result as JSON")
    args = parser.parse_args()
    with offscreen_desktop() as tmp:
        win = open_index_window_as_the_app(tmp, args.contacts)
        if args.gc_log:
            log_collections()
        for _ in range(args.rounds):
            result = probe_steps(win, args.contacts)
            print(result.line())
            if args.json:
                args.json.write_text(json.dumps(asdict(result), indent=2), encoding="utf-8")
            verdict = "OK" if result.worst_stall_ms <= STALL_LIMIT_MS else "TOO SLOW"
            print(f"  limit {STALL_LIMIT_MS:.0f} ms: {verdict}")
            win.wiring.window.dashboard.setCurrentWidget(win.wiring.window.dashboard.settings_page)
            win.wiring.health.refresh()
            win.wiring.activity.search.setText("")
        win.close()


if __name__ == "__main__":
    main()
