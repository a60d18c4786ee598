"""One type for a connection's settings (``app.model.ConnectionSettings``): parsed and checked
once, shared by the CLI, the window, export/import, the store and the engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.engine.sync import Settings
from app.errors import ConfigError
from app.model import ConnectionSettings, Direction, Side
from app.service import Service


def test_text_is_parsed_once_into_typed_values() -> None:
    s = ConnectionSettings(direction="a-to-b", winner="b", phone_region="gb")  # type: ignore[arg-type]
    assert s.direction is Direction.A_TO_B and s.winner is Side.B and s.phone_region == "GB"
    assert Settings is ConnectionSettings  # the engine runs on the same type


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"direction": "sideways"}, "Direction must be two-way, a-to-b or b-to-a"),
        ({"winner": "c"}, "winning app must be a or b"),
        ({"guard_max_writes": 0}, "at least 1"),
        ({"phone_region": "GBR"}, "two-letter country code"),
        ({"interval_minutes": 61}, "between 1 and 60 minutes"),
        ({"colour": "red"}, "Unknown connection setting: colour"),
    ],
)
def test_bad_values_are_refused_with_a_sentence(changes: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConnectionSettings().changed(**changes)


def test_export_form_round_trips() -> None:
    s = ConnectionSettings(direction=Direction.B_TO_A, trash=True, interval_minutes=30)
    data = s.to_json()
    assert data["direction"] == "b-to-a" and data["interval_minutes"] == 30
    assert ConnectionSettings.from_json(data) == s
    assert ConnectionSettings.from_json({}) == ConnectionSettings()


def test_the_store_keeps_what_the_front_set(tmp_path: Path) -> None:
    service = Service(tmp_path / "home")
    try:
        for name in ("A", "B"):
            (tmp_path / f"{name}.csv").write_text("Email\n", encoding="utf-8")
            service.add_account("csv", name, {"path": str(tmp_path / f"{name}.csv")})
        created = service.create_connection(
            "main", "A", "B", ConnectionSettings(winner=Side.B, phone_region="us")
        )
        assert created.settings.winner is Side.B and created.settings.phone_region == "US"
        updated = service.update_connection("main", direction="a-to-b", interval_minutes=20)
        assert updated.settings == ConnectionSettings(
            direction=Direction.A_TO_B, winner=Side.B, phone_region="US", interval_minutes=20
        )
        assert service.schedule()[0].interval_minutes == 20
        assert service.show_connection("main").settings == updated.settings
    finally:
        service.close()


def test_on_off_and_number_settings_are_parsed_from_text_once() -> None:
    """Text as the CLI, an export file or a script gives it: "on"/"off" (and the usual
    spellings of yes/no) for a toggle, digits for a number."""
    s = ConnectionSettings().changed(trash="on", avoid_duplicates="Off", guard_max_writes="300")
    assert s.trash is True and s.avoid_duplicates is False and s.guard_max_writes == 300
    assert ConnectionSettings().changed(interval_minutes=" 15 ").interval_minutes == 15
    assert ConnectionSettings().changed(unsubscribes="yes").unsubscribes is True


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"trash": "maybe"}, r"Trash segment for deletions \(trash\) is on or off, not 'maybe'"),
        ({"propagate_clears": 2}, r"\(propagate_clears\) is on or off, not 2"),
        ({"guard_max_writes": "lots"}, "mass-change threshold is a whole number, not 'lots'"),
        ({"interval_minutes": True}, "interval is a whole number of minutes, not True"),
        ({"interval_minutes": 1.5}, "interval is a whole number of minutes, not 1.5"),
    ],
)
def test_a_toggle_or_number_of_the_wrong_kind_is_refused_with_a_sentence(
    changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        ConnectionSettings().changed(**changes)


def test_an_export_file_with_off_as_text_reads_as_off() -> None:
    """``bool("off")`` is True: an export edited by hand to say "off" must not turn it on."""
    s = ConnectionSettings.from_json({"trash": "off", "avoid_duplicates": "off"})
    assert s.trash is False and s.avoid_duplicates is False


def test_the_facade_parses_a_toggle_given_as_text(tmp_path: Path) -> None:
    """``update_connection(name, trash="on")`` used to reach the database as text (a
    SQLAlchemy TypeError); now it is parsed, and a wrong value is a ConfigError sentence."""
    service = Service(tmp_path / "home")
    try:
        for name in ("A", "B"):
            (tmp_path / f"{name}.csv").write_text("Email\n", encoding="utf-8")
            service.add_account("csv", name, {"path": str(tmp_path / f"{name}.csv")})
        service.create_connection("main", "A", "B", ConnectionSettings())
        assert service.update_connection("main", trash="on").settings.trash is True
        with pytest.raises(ConfigError, match=r"\(trash\) is on or off"):
            service.update_connection("main", trash="sometimes")
        assert service.show_connection("main").settings.trash is True
    finally:
        service.close()
