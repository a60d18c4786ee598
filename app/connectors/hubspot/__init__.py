"""HubSpot CRM contacts: ``api`` (requests, paging, pacing, scopes), ``schema`` (properties
→ fields), ``records`` (JSON ↔ Record), ``lists`` (lists as segments), ``optouts``
(communication preferences), ``results`` (batch answers → per-contact results), ``app``
(the connector)."""

from app.connectors.hubspot.app import HubSpotApp

__all__ = ["HubSpotApp"]
