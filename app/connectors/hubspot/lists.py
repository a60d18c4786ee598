"""HubSpot contact lists as Pairsync segments.

MANUAL and SNAPSHOT lists are segments Pairsync adds contacts to and removes them from (one
call per list and direction; a segment name that is no list yet becomes a new MANUAL
list). DYNAMIC lists are HubSpot's filters: read as segments, never edited (a change to one
is refused for that contact). Memberships are read once per listing, list by list (250 a
page), since they do not move a contact's ``updatedAt``.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.connectors.hubspot.api import MEMBERSHIP_PAGE, HubSpotApi
from app.errors import Rejected

EDIT_CHUNK = 10_000
"""Record ids per membership call."""


@dataclass
class ContactList:
    list_id: str
    name: str
    processing_type: str

    @property
    def editable(self) -> bool:
        return self.processing_type in ("MANUAL", "SNAPSHOT")


class Lists:
    """The account's contact lists and who is in them, as read (and changed) this run."""

    def __init__(self, api: HubSpotApi) -> None:
        self.api = api
        self._lists: dict[str, ContactList] | None = None
        self._members: dict[str, set[str]] | None = None
        """Contact id -> ids of the lists it is in."""

    def load(self, refresh: bool = False) -> dict[str, ContactList]:
        if self._lists is None or refresh:
            found: dict[str, ContactList] = {}
            offset = 0
            while True:
                _, data = self.api.call(
                    "POST",
                    "/crm/v3/lists/search",
                    body={"offset": offset, "count": 500, "additionalProperties": []},
                )
                for item in data.get("lists", []):
                    if item.get("objectTypeId") == "0-1" and not item.get("deletedAt"):
                        found[str(item["listId"])] = ContactList(
                            str(item["listId"]), str(item["name"]), str(item["processingType"])
                        )
                if not data.get("hasMore"):
                    break
                offset = int(data["offset"])
            self._lists = found
        return self._lists

    def members(self, refresh: bool = False) -> dict[str, set[str]]:
        if self._members is None or refresh:
            members: dict[str, set[str]] = {}
            for lst in self.load(refresh).values():
                for page in self.api.pages(
                    f"/crm/v3/lists/{lst.list_id}/memberships", {"limit": MEMBERSHIP_PAGE}
                ):
                    for row in page:
                        members.setdefault(str(row["recordId"]), set()).add(lst.list_id)
            self._members = members
        return self._members

    def segments(self, contact_id: str) -> frozenset[str]:
        lists = self.load()
        ids = self.members().get(contact_id, set())
        return frozenset(lists[i].name for i in ids if i in lists)

    def apply(
        self, changes: list[tuple[str, str, frozenset[str], frozenset[str]]]
    ) -> dict[str, list[Rejected]]:
        """Add/remove contacts (op id, contact id, added, removed) to/from lists in one call
        per list and direction; a dynamic list is refused for that op."""
        problems: dict[str, list[Rejected]] = {}
        if not any(add or remove for _, _, add, remove in changes):
            return problems
        lists = self.load()
        members = self.members()
        by_name = {x.name.casefold(): x for x in lists.values()}
        adds: dict[str, list[str]] = {}
        removes: dict[str, list[str]] = {}
        for op_id, rid, add, remove in changes:
            for name, bucket in [(n, adds) for n in sorted(add)] + [
                (n, removes) for n in sorted(remove)
            ]:
                lst = by_name.get(name.strip().casefold())
                if lst is None and bucket is adds:
                    lst = self.create(name.strip())
                    by_name[lst.name.casefold()] = lst
                if lst is None:
                    continue
                if not lst.editable:
                    problems.setdefault(op_id, []).append(
                        Rejected(
                            f"The HubSpot list “{lst.name}” is an active (dynamic) list: HubSpot "
                            "decides its members from its filters, so Pairsync cannot "
                            "change them.",
                            field="segments",
                        )
                    )
                    continue
                bucket.setdefault(lst.list_id, []).append(rid)
        for action, bucket in (("add", adds), ("remove", removes)):
            for list_id, ids in bucket.items():
                for start in range(0, len(ids), EDIT_CHUNK):
                    self.api.call(
                        "PUT",
                        f"/crm/v3/lists/{list_id}/memberships/{action}",
                        body=ids[start : start + EDIT_CHUNK],
                    )
                for rid in ids:
                    if action == "add":
                        members.setdefault(rid, set()).add(list_id)
                    else:
                        members.get(rid, set()).discard(list_id)
        return problems

    def create(self, name: str) -> ContactList:
        _, data = self.api.call(
            "POST",
            "/crm/v3/lists",
            body={"name": name, "objectTypeId": "0-1", "processingType": "MANUAL"},
        )
        item = data["list"]
        lst = ContactList(str(item["listId"]), str(item["name"]), str(item["processingType"]))
        self.load()[lst.list_id] = lst
        return lst
