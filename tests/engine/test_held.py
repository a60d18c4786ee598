"""A run's held records keep each record's match keys as one string, and give them back whole."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from app.engine.held import Held, MatchKeys
from app.engine.match import keys_of
from app.model import Labeled, Record


@given(st.lists(st.text(min_size=1), unique=True, max_size=4))
def test_match_keys_come_back_as_they_were_put(keys: list[str]) -> None:
    held = MatchKeys()
    held.put("r", keys)
    assert held["r"] == keys
    assert "r" in held and list(held) == ["r"] and len(held) == 1
    held.discard("r")
    assert "r" not in held and held.get("r") is None


def test_a_held_record_keeps_its_keys_until_it_is_let_go() -> None:
    rec = Record(
        "c1",
        "v1",
        {"emails": (Labeled(" Pat@X.com ", "work"), Labeled("pat@home.org", "home"))},
    )
    held = Held()
    held["c1"] = rec
    assert held.match_keys["c1"] == keys_of(rec) == ["pat@x.com", "pat@home.org"]
    assert held["c1"] == rec
    assert held.discard("c1") and "c1" not in held.match_keys
    held["c2"] = Record("c2", "v1", {"full_name": "No Email"})
    assert held.match_keys["c2"] == []
    del held["c2"]
    assert not held.match_keys
