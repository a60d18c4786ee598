"""Does the window stay responsive while the connection list and the tray re-read the
connections over a big index?

    QT_QPA_PLATFORM=offscreen python -m tests.perf.bench_refresh [--contacts 100000]

The window of ``tests.perf.bench_lists`` (one connection whose index holds N contacts, with
failures, conflicts and a run that wrote all of them). The list and the tray refresh as they
do after every run, pause or save (``MainWindow.refresh``, ``Tray.refresh``: each reads
``Service.connection_overview``, which counts the connection's failures and conflicts), 20
times one after another, each once the previous one's answer is shown. A timer probe in the
GUI thread measures the longest event-loop stall (``bench_lists.probe_steps``). With
``--busy`` another process writes to the database all along (a sync's batches: journal rows
committed in one transaction each), so the reads compete with a writer as during a sync.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from typing import Any

from tests.perf.bench_lists import Step, open_index_window_as_the_app, probe_steps
from tests.perf.bench_responsiveness import STALL_LIMIT_MS, Window, offscreen_desktop

ROUNDS = 20

_WRITER = """
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
run = c.execute("SELECT id, connection_id FROM runs ORDER BY id DESC LIMIT 1").fetchone()
i = 0
while True:
    c.execute("BEGIN IMMEDIATE")
    c.executemany(
        "INSERT INTO journal (run_id, connection_id, side, record_id, action, field, before,"
        " after, at) VALUES (?, ?, 'b', ?, 'update', 'title', '\\"a\\"', '\\"b\\"',"
        " datetime('now'))",
        [(run[0], run[1], f"w{i}-{k}") for k in range(2000)],
    )
    c.execute("COMMIT")
    i += 1
    time.sleep(0.05)
"""


def refresh_steps(win: Window, rounds: int = ROUNDS) -> list[Step]:
    """``rounds`` refreshes of the list and the tray; each waits for its answer (a window
    that reads on its own thread has it at once)."""
    window, tray = win.wiring.window, win.wiring.tray

    def refresh() -> None:
        window.refresh()
        tray.refresh()

    def shown() -> int:
        reader = getattr(window, "reader", None)
        return 0 if reader is not None and reader.busy else len(window.model.rows)

    return [(f"refresh {i + 1}", refresh, shown) for i in range(rounds)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--busy", action="store_true", help="a writer process runs meanwhile")
    args = parser.parse_args()
    with offscreen_desktop() as tmp:
        win = open_index_window_as_the_app(tmp, args.contacts)
        writer: Any = None
        if args.busy:
            db = str(win.service.paths.database)
            writer = subprocess.Popen([sys.executable, "-c", _WRITER, db])
            time.sleep(1.0)
        try:
            print(f"load at start {os.getloadavg()[0]:.1f}")
            result = probe_steps(win, args.contacts, 120, steps=refresh_steps(win))
            if writer is not None and writer.poll() is not None:
                raise RuntimeError("the writer process stopped: no figure with a writer")
        finally:
            if writer is not None:
                writer.terminate()
                writer.wait()
        stalls = sorted(result.stalls_ms.values())
        waits = sorted(result.waits_ms.values())
        print(
            f"list + tray refresh over {args.contacts:,} contacts"
            f"{' with a writer' if args.busy else ''}: worst event-loop stall "
            f"{result.worst_stall_ms:.1f} ms, median per-refresh stall "
            f"{stalls[len(stalls) // 2]:.1f} ms; answer shown after median "
            f"{waits[len(waits) // 2]:.0f} ms, worst {waits[-1]:.0f} ms"
        )
        verdict = "OK" if result.worst_stall_ms <= STALL_LIMIT_MS else "TOO SLOW"
        print(f"  limit {STALL_LIMIT_MS:.0f} ms: {verdict}; load at end {os.getloadavg()[0]:.1f}")
        win.close()


if __name__ == "__main__":
    main()
