from __future__ import annotations

from collections.abc import Callable

import pytest

from app.connectors.memory import MemoryApp
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
