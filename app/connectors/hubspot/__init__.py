"""HubSpot CRM contacts: ``api`` (requests, paging, pacing), ``schema`` (properties →
fields), ``records`` (JSON ↔ Record), ``app`` (the connector)."""

from app.connectors.hubspot.app import HubSpotApp

__all__ = ["HubSpotApp"]
