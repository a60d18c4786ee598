"""When a connection syncs next (``app.schedule``): from stored runs, with back-off and holds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.schedule import MAX_BACKOFF, RunFacts, clamp_interval, next_run

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def run(status: str, minutes_ago: float, retry_after: float = 0) -> RunFacts:
    at = NOW - timedelta(minutes=minutes_ago)
    return RunFacts(status, at - timedelta(seconds=5), at, retry_after)


def test_due_an_interval_after_the_last_run() -> None:
    entry = next_run("c", 5, False, [run("ok", 2)])
    assert entry.due_at == NOW + timedelta(minutes=3) and not entry.is_due(NOW)
    assert entry.is_due(NOW + timedelta(minutes=3))


def test_a_run_missed_while_asleep_is_overdue_at_once() -> None:
    entry = next_run("c", 5, False, [run("ok", 90)])  # the laptop slept 90 minutes
    assert entry.is_due(NOW)


def test_never_synced_is_due_since_created() -> None:
    created = NOW - timedelta(seconds=1)
    assert next_run("c", 5, False, [], created).due_at == created
    # SQLite hands back naive UTC times: they count as UTC.
    naive = next_run("c", 5, False, [], created.replace(tzinfo=None))
    assert naive.due_at == created


def test_unreachable_runs_in_a_row_back_off_up_to_an_hour() -> None:
    one = next_run("c", 5, False, [run("unavailable", 0), run("ok", 5)])
    two = next_run("c", 5, False, [run("unavailable", 0), run("unavailable", 10), run("ok", 20)])
    many = next_run("c", 5, False, [run("unavailable", 0)] * 8)
    assert (one.backoff, one.due_at) == (1, NOW + timedelta(minutes=10))
    assert (two.backoff, two.due_at) == (2, NOW + timedelta(minutes=20))
    assert many.due_at == NOW + MAX_BACKOFF
    # A good run ends the streak.
    assert next_run("c", 5, False, [run("ok", 0), run("unavailable", 5)]).backoff == 0


def test_rate_limits_honour_retry_after_when_longer() -> None:
    entry = next_run("c", 5, False, [run("rate_limited", 0, retry_after=3600 * 2)])
    assert entry.due_at == NOW + timedelta(hours=2)


def test_holds_for_paused_sign_in_and_the_guard() -> None:
    assert next_run("c", 5, True, [run("ok", 60)]).hold == "paused"
    assert next_run("c", 5, False, [run("auth", 60)]).hold == "auth"
    held = next_run("c", 5, False, [run("guard", 60)])
    assert held.hold == "guard" and held.due_at is None and not held.is_due(NOW)


def test_interval_is_kept_between_one_and_sixty_minutes() -> None:
    assert (clamp_interval(0), clamp_interval(17), clamp_interval(500)) == (1, 17, 60)
