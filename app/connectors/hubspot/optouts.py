"""HubSpot opt-outs through the communication-preferences API (v4), where the token may.

HubSpot keeps a contact's email consent by address, in its subscription preferences; the
contact property ``hs_email_optout`` ("Unsubscribed from all email") is HubSpot's read-only
reflection of the portal-wide part. With the scopes below, Pairsync reads the status from
the source and writes opt-outs there; without them it reads ``hs_email_optout`` and refuses
an opt-out per contact with a sentence naming the missing scope.

* Reading: ``POST /communication-preferences/v4/statuses/batch/unsubscribe-all/read`` (100
  addresses a call, scope ``communication_preferences.statuses.batch.read``): the
  "unsubscribed from all email" status of each address. Opted out if either source says so
  (an opt-out is never read away).
* Writing: ``POST /communication-preferences/v4/statuses/batch/unsubscribe-all`` (scope
  ``communication_preferences.statuses.batch.write``). HubSpot then sets ``hs_email_optout``,
  which moves the contact's ``updatedAt``.
* Never re-subscribing: only the contact may opt in again (HubSpot's preferences page, a
  form); the v4 API could, so Pairsync refuses a "subscribe" for every contact, whatever
  the token's scopes.

The first call of each kind tells whether the token has the scope (a 403 ``MISSING_SCOPES``
is remembered for the rest of the run, so it costs one request, not one per batch).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from app.connectors.hubspot.api import HubSpotApi, MissingScopes
from app.errors import Rejected
from app.model import OPT_OUT_FIELD, email_key

STATUSES = "/communication-preferences/v4/statuses/batch/unsubscribe-all"
READ_SCOPE = "communication_preferences.statuses.batch.read"
WRITE_SCOPE = "communication_preferences.statuses.batch.write"
BATCH = 100

NEVER_RESUBSCRIBE = (
    "Pairsync never subscribes a HubSpot contact: an opt-out can only be undone by the "
    "contact (through HubSpot's subscription preferences page or a form)."
)
NO_EMAIL = (
    "HubSpot keeps opt-outs by email address and this contact has none, so it could not be "
    "opted out."
)


class OptOuts:
    """One run's view of the account's opt-outs (statuses read are kept per address)."""

    def __init__(self, api: HubSpotApi) -> None:
        self.api = api
        self.status: dict[str, bool | None] = {}
        """Email key -> False (opted out of all email), True (subscribed), None (neither)."""
        self.can_read: bool | None = None
        self.can_write: bool | None = None
        self.missing_write: tuple[str, ...] = ()

    def read(self, emails: Iterable[str]) -> dict[str, bool | None]:
        """Statuses of these addresses (those the API knows; {} without the scope)."""
        todo = sorted({email_key(e) for e in emails if e.strip()} - set(self.status))
        if self.can_read is False:
            return {}
        for start in range(0, len(todo), BATCH):
            chunk = todo[start : start + BATCH]
            try:
                _, data = self.api.call(
                    "POST", STATUSES + "/read", query={"channel": "EMAIL"}, body={"inputs": chunk}
                )
            except MissingScopes:
                self.can_read = False
                return {}
            self.can_read = True
            for key in chunk:
                self.status.setdefault(key, None)
            for row in (data or {}).get("results") or []:
                self.status[email_key(str(row.get("subscriberIdString", "")))] = _wide(
                    row.get("wideStatuses") or []
                )
        return {k: self.status[k] for k in todo if k in self.status}

    def known(self, email: str) -> bool | None:
        return self.status.get(email_key(email))

    def unsubscribe(self, emails: list[str]) -> dict[str, Rejected]:
        """Opt these addresses out of all email; the addresses that failed, with why."""
        failed: dict[str, Rejected] = {}
        wanted = list(dict.fromkeys(e.strip() for e in emails if e.strip()))
        for start in range(0, len(wanted), BATCH):
            chunk = wanted[start : start + BATCH]
            if self.can_write is False:
                failed.update({e: self._no_scope() for e in chunk})
                continue
            try:
                self.api.call("POST", STATUSES, query={"channel": "EMAIL"}, body={"inputs": chunk})
            except MissingScopes as err:
                self.can_write = False
                self.missing_write = err.scopes or (WRITE_SCOPE,)
                failed.update({e: self._no_scope() for e in chunk})
                continue
            self.can_write = True
            for e in chunk:
                self.status[email_key(e)] = False
        return failed

    def _no_scope(self) -> Rejected:
        scopes = " or ".join(self.missing_write or (WRITE_SCOPE,))
        return Rejected(
            "Not opted out in HubSpot: the HubSpot token lacks the scope "
            f"{scopes}, which Pairsync needs to opt contacts out (HubSpot's own "
            "“Unsubscribed from all email” is read-only). Add it to the private app's "
            "scopes to sync opt-outs into HubSpot.",
            field=OPT_OUT_FIELD,
        )


def _wide(statuses: list[dict[str, Any]]) -> bool | None:
    """An address's portal-wide email status: opted out wins over anything else."""
    states = {str(s.get("status")) for s in statuses if s.get("channel", "EMAIL") == "EMAIL"}
    if "UNSUBSCRIBED" in states:
        return False
    if "SUBSCRIBED" in states:
        return True
    return None


def combine(prefs: bool | None, optout_property: bool | None) -> bool | None:
    """The subscription status from both sources: opted out if either says so."""
    if prefs is False or optout_property is False:
        return False
    if prefs is True or optout_property is True:
        return True
    return None
