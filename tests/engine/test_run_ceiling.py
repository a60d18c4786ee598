"""A run has a ceiling (issue 13): apps that answer, but slowly, cannot hold a connection for
ever; past the ceiling the run stops at its next safe point as "unavailable", nothing
half-done, and the next run finishes the job without duplicates."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from app.model import Labeled, WriteOp, WriteResult
from app.service.core import RUN_CEILING_ENV, run_ceiling
from tests.engine.harness import Pair


def test_a_slow_run_stops_at_a_safe_point_and_the_next_one_finishes(tmp_path: Path) -> None:
    p = Pair(tmp_path, batch_size=10)
    p.run_ceiling = 0.4
    for n in range(60):
        p.a.add({"given_name": f"P{n}", "emails": (Labeled(f"p{n}@x.example"),)})
    slow_write = p.b.write

    def write(ops: Sequence[WriteOp]) -> list[WriteResult]:
        time.sleep(0.1)  # an app that answers every batch, slowly
        return slow_write(ops)

    p.b.write = write  # type: ignore[method-assign]
    started = time.monotonic()
    first = p.run()
    assert first.status == "unavailable"
    assert "stopped at a safe point" in first.message and "0.4 seconds" in first.message
    assert time.monotonic() - started < 3.0
    written = len(p.b.records)
    assert 0 < written < 60  # stopped part-way, after a committed batch
    p.run_ceiling = 3600.0
    second = p.run()
    assert second.status == "ok", second.message
    assert len(p.b.records) == 60  # the rest, and nothing twice
    emails = sorted(str(r.fields["emails"]) for r in p.b.records.values())
    assert len(set(emails)) == 60


def test_the_ceiling_is_four_hours_unless_the_environment_says(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(RUN_CEILING_ENV, raising=False)
    assert run_ceiling() == 4 * 3600
    monkeypatch.setenv(RUN_CEILING_ENV, "12.5")
    assert run_ceiling() == 12.5
    for bad in ("-1", "0", "inf", "soon"):
        monkeypatch.setenv(RUN_CEILING_ENV, bad)
        assert run_ceiling() == 4 * 3600
