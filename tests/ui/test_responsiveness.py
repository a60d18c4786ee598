"""The window stays responsive while a sync runs in the background: a 2,000-contact sync
through the real scheduler, with the list, progress bar, Health, Activity and tray all
listening, never stalls the event loop more than 200 ms (the goal is 100 ms, not met
reliably yet) (``tests/perf/bench_responsiveness``
measures 10,000 on demand)."""

from __future__ import annotations

import gc
from typing import Any

from tests.perf.bench_responsiveness import (
    CI_STALL_GUARD_MS,
    attach_gui,
    fill_books,
    probe_sync,
)
from tests.ui.desktop import Desk, desk

__all__ = ["desk"]

CONTACTS = 2_000


def test_the_event_loop_never_stalls_during_a_sync(desk: Desk, qtbot: Any) -> None:
    fill_books(desk.folder, desk.sheet, CONTACTS)
    views = attach_gui(desk)
    for widget in views:
        if hasattr(widget, "isWidgetType") and widget.isWidgetType():
            qtbot.addWidget(widget)
    # This test process still holds the heap of every test before it; the app's process
    # holds its startup state, which the scheduler freezes out of full collections when
    # it starts (``app.ui.scheduler``). Start from the same point: collect, then freeze.
    gc.collect()
    gc.freeze()
    try:
        result = probe_sync(desk, CONTACTS, timeout_s=120)
    finally:
        gc.unfreeze()
    print(result.line())
    report = result.report
    assert report["status"] == "ok"
    assert report["created"] == {"a": CONTACTS // 4, "b": CONTACTS * 3 // 4}
    assert report["updated"]["a"] + report["updated"]["b"] >= CONTACTS // 4
    assert result.ticks > 10
    assert result.worst_stall_ms <= CI_STALL_GUARD_MS, result.line()
