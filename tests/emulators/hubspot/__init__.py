"""A local HubSpot (CRM v3 contacts, properties, lists) for tests and benchmarks."""

from tests.emulators.hubspot.server import HubSpotEmulator
from tests.emulators.hubspot.state import Contact, ContactList, Portal

__all__ = ["Contact", "ContactList", "HubSpotEmulator", "Portal"]
