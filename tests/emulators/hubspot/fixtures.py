"""pytest fixtures: a HubSpot emulator per test whose spec violations fail the test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.emulators.hubspot.server import HubSpotEmulator

TOKEN = "pat-na1-11111111-2222-3333-4444-555555555555"


@pytest.fixture
def hubspot() -> Iterator[HubSpotEmulator]:
    """A fresh emulator on 127.0.0.1 (a fast rate limit and no search delay, so tests do
    not wait; the token has the wizard's five scopes)."""
    with HubSpotEmulator(
        access_token=TOKEN, rate_limit=1000, search_per_second=50, search_delay=0.0
    ) as hs:
        yield hs
        assert hs.violations == [], "\n".join(hs.violations[:5])
