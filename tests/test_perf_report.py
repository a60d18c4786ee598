"""``python -m tests.perf.report`` turns each benchmark's JSON into issue 18's one table: the
verdicts and ratios from fixed inputs in the benchmarks' own shapes (the benchmarks
themselves run on demand, not here)."""

from __future__ import annotations

from tests.perf.report import (
    Row,
    carddav_rows,
    folder_rows,
    gui_rows,
    memory_rows,
    start_rows,
    table,
)


def _sync(backend: str, phase: str, peak: float, base: float = 50.0) -> dict[str, object]:
    return {
        "backend": backend,
        "size": 100_000,
        "phase": phase,
        "peak_rss_mb": peak,
        "base_rss_mb": base,
    }


def test_memory_goals_use_the_first_sync_and_the_worst_later_run() -> None:
    rows = memory_rows(
        [
            _sync("empty", "dry", 240),
            _sync("empty", "preview", 310),
            _sync("empty", "first", 295),
            _sync("empty", "resync", 170),
            _sync("empty", "edit_a", 210),
            _sync("memory", "first", 649, base=400),
        ],
        100_000,
    )
    assert [(r.goal.split(",")[0], r.met) for r in rows] == [
        ("first sync", True),
        ("dry run / preview of the first sync", False),
        ("later runs", False),
        ("first sync", False),
    ]
    assert rows[1].measured == "310 MB (max of dry/preview)"
    assert rows[2].measured.startswith("210 MB") and "400 MB" in rows[3].measured
    small = memory_rows([{**_sync("empty", "first", 900), "size": 5_000}], 5_000)
    assert small[0].met is None  # a 5k figure proves nothing about 100k


def test_folder_ratios_are_medians_over_rounds() -> None:
    def row(tool: str, step: str, wall: float, n: int = 10_000) -> dict[str, object]:
        return {"tool": tool, "size": n, "step": step, "wall": wall, "cpu": wall / 2}

    data = {
        "rows": [
            row("pairsync", "first", 14.0),
            row("pairsync", "first", 15.0),
            row("pairsync", "first", 30.0),
            row("vdirsyncer", "first", 10.0),
            row("pairsync", "nochange", 0.6),
            row("vdirsyncer", "nochange", 1.0),
        ]
    }
    first, nochange, rate = folder_rows(data, 10_000, None, 3)
    assert first.measured.startswith("1.50×") and first.met is True
    assert nochange.measured.startswith("0.60×") and nochange.met is False
    assert rate.met is None and rate.measured.startswith("667 (vdirsyncer 1,000)")


def test_carddav_checks_time_both_ways_and_requests() -> None:
    def step(tool: str, name: str, seconds: float, requests: int) -> dict[str, object]:
        return {"tool": tool, "step": name, "seconds": seconds, "requests": requests}

    names = ("first", "nochange", "local1", "server1", "steady")
    inside = [step("pairsync", s, 0.2, 1) for s in names]
    inside += [step("vdirsyncer", s, 0.5, 1) for s in names]
    whole = [step("pairsync", s, 0.6, 2 if s == "local1" else 1) for s in names]
    whole += [step("vdirsyncer", s, 0.5, 1) for s in names]
    rows = carddav_rows(inside, whole, 2000, 3)
    by = {r.goal: r for r in rows}
    assert by["CardDAV no change, whole process, to vdirsyncer"].met is False  # 1.2×
    assert by["CardDAV no change, in-process, to vdirsyncer"].met is True  # 0.4×
    assert by["CardDAV requests, to vdirsyncer"].measured == "more: local1 2 > 1"


def test_start_gui_and_the_table() -> None:
    rows: list[Row] = start_rows(
        {"pairsync --version": [0.2, 0.25, 0.9], "pairsync account list": [0.4, 0.5, 0.3]}, 3
    )
    assert [r.met for r in rows] == [True, False]
    gui = gui_rows(
        {"worst_stall_ms": 63.0, "waits_ms": {"a": 1.0}},
        {"worst_stall_ms": 120.0, "waits_ms": {"pause": 1100.0}, "hold_s": 1.0},
        {"preview": {"worst_stall_ms": 40.0}, "sync": {"worst_stall_ms": 90.0}},
        100_000,
        10_000,
    )
    assert [r.met for r in gui] == [True, False, True]
    text = table(rows + gui, (7.1, 6.0, 5.5), (6.9, 6.2, 5.6))
    lines = text.splitlines()
    assert lines[0] == "load average at start: 7.10 6.00 5.50; at end: 6.90 6.20 5.60"
    assert lines[3] == "|---|---|---|---|---|" and len(lines) == 4 + len(rows) + len(gui)
    assert "| cold start: pairsync account list | 0.400 s | ≤ 0.3 s | **not met** |" in text
