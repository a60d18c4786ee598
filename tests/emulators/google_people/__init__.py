"""A local Google People API + Google OAuth emulator (see ``oauth`` and ``people``).

Run alone: ``python -m tests.emulators.google_people --port PORT [--auto-consent]
[--access-token TOKEN]``; the first stdout line is the base URL, used as both ``api_base``
and ``auth_base`` of a Google account.
"""

from __future__ import annotations

from tests.emulators.common import Emulator
from tests.emulators.google_people.oauth import CLIENT_ID, CLIENT_SECRET, OAuthServer
from tests.emulators.google_people.people import SPEC, PeopleApi

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "SPEC", "GooglePeopleEmulator"]


class GooglePeopleEmulator(OAuthServer, PeopleApi, Emulator):
    name = "google-people-emulator"

    def __init__(
        self, port: int = 0, *, auto_consent: bool = False, access_token: str | None = None
    ) -> None:
        Emulator.__init__(self, port)
        self._oauth_init(auto_consent, access_token)
        self._people_init()
        self._oauth_routes()
        self._people_routes()
