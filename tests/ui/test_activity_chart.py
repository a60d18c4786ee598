"""The Activity chart's time axis: every tick says a different time, whatever the runs' span.

Found by looking at the README's screenshots (2026-12-02): two runs a few seconds apart drew
an axis whose five labels all read the same minute ("02 Dec 18:40" five times).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from app.model import RunRow
from app.ui.activity_view import RunChart

T0 = datetime(2026, 12, 2, 18, 40, 5, tzinfo=UTC)


def run(no: int, at: datetime, created: int = 1) -> RunRow:
    return RunRow(
        id=no,
        run_no=no,
        kind="sync",
        undo_of=None,
        status="ok",
        started_at=at,
        finished_at=at + timedelta(seconds=2),
        counts={"created": created},
        message="",
    )


@pytest.mark.parametrize(
    "gaps",
    [
        [timedelta(0)],  # one run
        [timedelta(seconds=4)],  # the wizard's first sync and the next one
        [timedelta(seconds=50)],
        [timedelta(minutes=2)],
        [timedelta(minutes=15), timedelta(minutes=15)],  # the default schedule
        [timedelta(hours=5)],
        [timedelta(hours=20)],  # across midnight (in most time zones)
        [timedelta(days=3), timedelta(days=40)],
    ],
    ids=["one", "4s", "50s", "2min", "15min", "5h", "20h", "weeks"],
)
def test_every_tick_of_the_time_axis_reads_differently(qapp: Any, gaps: list[timedelta]) -> None:
    times = [T0]
    for gap in gaps:
        times.append(times[-1] + gap)
    chart = RunChart()
    chart.set_runs([run(i + 1, at) for i, at in enumerate(times)][::-1])
    labels = chart.tick_labels()
    assert len(labels) >= 2
    assert len(set(labels)) == len(labels), labels


def test_a_span_across_days_names_the_day(qapp: Any) -> None:
    chart = RunChart()
    chart.set_runs([run(2, T0 + timedelta(days=2)), run(1, T0)])
    labels = chart.tick_labels()
    assert all(any(month in label for month in ("Nov", "Dec")) for label in labels), labels


def test_runs_within_an_hour_are_labelled_by_time_only(qapp: Any) -> None:
    # No date repeated on every tick when every tick is the same day (the chart is narrow).
    chart = RunChart()
    start = datetime.now().astimezone().replace(hour=10, minute=0, second=0, microsecond=0)
    chart.set_runs([run(2, start + timedelta(minutes=30)), run(1, start)])
    labels = chart.tick_labels()
    assert all(len(label) == len("10:00") for label in labels), labels
