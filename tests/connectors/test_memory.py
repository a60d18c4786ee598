from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable

import pytest

from app.connectors.memory import MemoryApp
from app.model import Labeled
from tests.connectors.contract import ConnectorContract


class TestMemoryContract(ConnectorContract):
    @pytest.fixture
    def app(self) -> MemoryApp:
        return MemoryApp()

    @pytest.fixture
    def reopen(self, app: MemoryApp) -> Callable[[], MemoryApp]:
        return lambda: app


class TestMemoryFeedContract(TestMemoryContract):
    @pytest.fixture
    def app(self) -> MemoryApp:
        return MemoryApp(change_feed=True)


class TestMemoryVersionFeedContract(TestMemoryContract):
    @pytest.fixture
    def app(self) -> MemoryApp:
        return MemoryApp(change_feed=True, feed_bodies=False)


def test_a_contact_costs_the_app_under_300_bytes() -> None:
    """Two 100,000-contact apps stand beside a re-sync that must fit in 200 MB (issue 18):
    as objects a contact cost about 1,600 bytes, packed about 450 with its id."""
    given = ["Olivia", "Liam", "Emma", "Noah", "Zoé", "Jürgen", "Hiroshi", "Priya"]
    family = ["Smith", "Garcia", "Müller", "Tanaka", "Kowalski", "O'Brien", "Rossi"]
    titles = ["CEO", "Engineer", "Designer", "Buyer", "Head of Marketing"]
    people = []
    for i in range(3000):
        first, last = given[i % len(given)], family[i % len(family)]
        local = f"{first}.{last}{i}".lower()
        people.append(
            {
                "full_name": f"{first} {last}",
                "given_name": first,
                "family_name": last,
                "emails": (Labeled(f"{local}@example.com", "work"),),
                "phones": (Labeled(f"+44 7700 {100000 + i * 7}", "mobile"),),
                "organization": f"Company {i % 40}",
                "title": titles[i % len(titles)],
                "notes": f"Met at the fair in {2000 + i % 25}; prefers email.",
            }
        )
    gc.collect()
    tracemalloc.start()
    try:
        app = MemoryApp()
        for fields in people:
            app.add(fields, ["Customers"])
        held = tracemalloc.get_traced_memory()[0] / len(people)
    finally:
        tracemalloc.stop()
    assert held < 300, f"{held:.0f} bytes a contact"
    assert app.fetch([next(iter(app.records))])[0].fields["title"] == "CEO"
