"""Google Contacts through the People API v1 (see ``app`` for the connector)."""
