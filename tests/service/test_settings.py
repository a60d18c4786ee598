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
