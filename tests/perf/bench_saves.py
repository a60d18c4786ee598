"""Does the window stay responsive when the user saves while a sync holds the database?

    QT_QPA_PLATFORM=offscreen python -m tests.perf.bench_saves [--contacts 100000] [--hold 1.0]

A sync commits each batch in one SQLite transaction, and while it does no other writer gets
in: measured during a 100k first sync, a pause of another connection waited up to 7.5 s and
a rename up to 1.6 s. Here another process (``Holder``) holds SQLite's write lock for
``--hold`` seconds, as that batch does, and meanwhile the user, in the window of
``tests.perf.bench_lists`` (an index of N contacts), pauses the connection, changes its
interval, renames it, has the wizard create its draft connection and cancels it, then
resumes. A timer probe in the GUI thread measures the longest event-loop stall while each
of those waits for its save to land (``bench_lists.probe_steps``); the lock's own steps are
not saves and are left out of the worst figure. ``tests/ui/test_responsiveness.py`` runs
this at 100,000 contacts and fails above ``STALL_LIMIT_MS``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.perf.bench_lists import Step, Steps, open_index_window_as_the_app, probe_steps
from tests.perf.bench_responsiveness import STALL_LIMIT_MS, Window, offscreen_desktop

HOLD_S = 1.0
LOCK = "hold the lock"
OPEN = "open the wizard"
FILL = "wizard: editors fill"
APART = (OPEN, FILL)
"""Steps that save nothing (building the wizard's widgets; its Configure editors filling in
once the draft is there): their stalls are shown apart (``apart_ms``)."""

_HOLDER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
for line in sys.stdin:
    c.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(float(line))
    c.execute("COMMIT")
    print("free", flush=True)
"""


class Holder:
    """Another process that holds the database's write lock for a while on each ``hold``,
    as the sync worker does while it commits a batch. The GUI thread only writes a line
    to its pipe; a thread of ours reads its answers."""

    def __init__(self, database: Path) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(database)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._locked = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.strip() == "locked":
                self._locked.set()

    def hold(self, seconds: float) -> None:
        assert self.proc.stdin is not None
        self._locked.clear()
        self.proc.stdin.write(f"{seconds}\n")
        self.proc.stdin.flush()

    def locked(self) -> int:
        return 1 if self._locked.is_set() else 0

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(30)


@dataclass
class Saves:
    """The longest stall while each save waited, and how long each took to land (ms)."""

    contacts: int
    hold_s: float
    steps: Steps

    @property
    def stalls_ms(self) -> dict[str, float]:
        return {
            k: v
            for k, v in self.steps.stalls_ms.items()
            if not k.startswith(LOCK) and k not in APART
        }

    @property
    def apart_ms(self) -> dict[str, float]:
        """The stalls of the steps that save nothing (widgets, no database write)."""
        return {k: self.steps.stalls_ms.get(k, 0.0) for k in APART}

    @property
    def worst_stall_ms(self) -> float:
        return max(self.stalls_ms.values(), default=0.0)

    def as_json(self) -> dict[str, Any]:
        return {
            "contacts": self.contacts,
            "hold_s": self.hold_s,
            "worst_stall_ms": self.worst_stall_ms,
            "stalls_ms": self.stalls_ms,
            "waits_ms": {k: self.steps.waits_ms.get(k, 0.0) for k in self.stalls_ms},
            "apart_ms": self.apart_ms,
        }

    def line(self) -> str:
        waits = ", ".join(
            f"{k} {self.steps.waits_ms.get(k, 0):.0f} ms (stall {v:.0f})"
            for k, v in self.stalls_ms.items()
        )
        return (
            f"saves over {self.contacts:,} contacts, each behind a {self.hold_s:.1f} s write "
            f"lock: worst event-loop stall {self.worst_stall_ms:.1f} ms; saved after: {waits}; "
            "apart (no save): "
            + ", ".join(f"{k} stalled {v:.0f} ms" for k, v in self.apart_ms.items())
        )


def save_steps(win: Window, holder: Holder, hold_s: float) -> list[Step]:
    """Each save right after another process took the write lock."""
    window = win.wiring.window
    scheduler = win.wiring.scheduler
    page = window.dashboard.settings_page
    names = iter(["Renamed", win.name])
    page.ask_new_name = lambda: next(names)  # type: ignore[method-assign]
    state: dict[str, Any] = {"locks": 0}

    def lock() -> Step:
        state["locks"] += 1
        return (f"{LOCK} ({state['locks']})", lambda: holder.hold(hold_s), holder.locked)

    saving = getattr(scheduler, "saving", lambda _name: False)  # before saves moved off

    def saved() -> bool:
        return not saving(page.name or "") and page.pause_button.isEnabled()

    def pause() -> None:
        page.pause_button.click()

    def paused() -> int:
        return 1 if saved() and page.paused and win.service.is_paused(page.name) else 0

    def interval() -> None:
        page.interval.setValue(page.interval.value() % 60 + 1)

    def interval_saved() -> int:
        return 1 if page.message.text().startswith("✓ Saved.") else 0

    def renamed() -> int:
        return 1 if page.rename_button.isEnabled() and window.current_name() == "Renamed" else 0

    def open_wizard() -> None:
        from app.model import Side

        window.new_connection()
        wizard = state["wizard"] = window.wizard
        assert wizard is not None
        wizard.apps_page.pickers[Side.A].select("vcard-folder")
        wizard.apps_page.pickers[Side.B].select("csv")
        wizard.account_pages[Side.A].account = "Phone"
        wizard.account_pages[Side.B].account = "Sheet"

    def create() -> None:
        wizard = state["wizard"]
        name = wizard.ensure_draft()  # what Next does on entering Configure
        if isinstance(name, str):  # before: created on the GUI thread, shown by the caller
            wizard.configure_page.show_connection(name)

    def created() -> int:
        wizard = state["wizard"]
        return 1 if wizard.draft is not None and wizard.configure_page.name else 0

    def filled() -> int:
        return 1 if state["wizard"].configure_page.isComplete() else 0

    def cancel() -> None:
        state["wizard"].reject()

    def dropped() -> int:
        # The draft's delete (a task) has landed; the list is read off the GUI thread, so
        # its row count says nothing about when.
        return 1 if window.wizard is None and window.runner.active == 0 else 0

    def resumed() -> int:
        return 1 if saved() and not page.paused else 0

    return [
        lock(),
        ("pause", pause, paused),
        lock(),
        ("interval", interval, interval_saved),
        lock(),
        ("rename", page.rename, renamed),
        (OPEN, open_wizard, lambda: 1),
        lock(),
        ("wizard: create", create, created),
        (FILL, lambda: None, filled),
        lock(),
        ("wizard: cancel", cancel, dropped),
        lock(),
        ("resume", pause, resumed),
    ]


def probe_saves(
    win: Window, contacts: int, hold_s: float = HOLD_S, timeout_s: float = 120
) -> Saves:
    holder = Holder(win.service.paths.database)
    try:
        steps = probe_steps(win, contacts, timeout_s, steps=save_steps(win, holder, hold_s))
    finally:
        holder.close()
    return Saves(contacts, hold_s, steps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--hold", type=float, default=HOLD_S, help="seconds the lock is held")
    parser.add_argument("--json", type=Path, help="also write the result as JSON")
    args = parser.parse_args()
    with offscreen_desktop() as tmp:
        win = open_index_window_as_the_app(tmp, args.contacts)
        print(f"load at start {os.getloadavg()[0]:.1f}")
        result = probe_saves(win, args.contacts, args.hold)
        print(result.line())
        if args.json:
            args.json.write_text(json.dumps(result.as_json(), indent=2), encoding="utf-8")
        verdict = "OK" if result.worst_stall_ms <= STALL_LIMIT_MS else "TOO SLOW"
        print(f"  limit {STALL_LIMIT_MS:.0f} ms: {verdict}; load at end {os.getloadavg()[0]:.1f}")
        win.close()


if __name__ == "__main__":
    main()
