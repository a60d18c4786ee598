"""Group cards: segments of books that have them (iCloud, macOS/iOS Contacts, vCard 4.0
``KIND:group``): reading memberships, and adding or removing members as a segment changes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

from app.connectors.carddav.dav import PRODID
from app.connectors.carddav.mirror import Mirror, _member_key, _member_value
from app.connectors.vcard_text import (
    Card,
    Line,
    escape,
    format_line,
    new_card,
    parse_card,
    render,
)
from app.errors import (
    Conflict,
    PairsyncError,
)
from app.model import (
    Create,
    WriteOp,
    WriteResult,
)


class Groups(Mirror):
    """Writes segments as group cards (``KIND:group`` + ``MEMBER`` or iCloud's form)."""

    def _write_groups(
        self, ops: Sequence[WriteOp], names: Sequence[str], results: list[WriteResult | None]
    ) -> dict[int, PairsyncError]:
        if not self.group_mode:
            return {}
        adds: dict[str, set[str]] = {}
        removes: dict[str, set[str]] = {}
        users: dict[str, list[int]] = {}
        for i, op in enumerate(ops):
            if results[i] is not None:
                continue
            entry = self._entries.get(names[i])
            if entry is None or not entry.uid:
                continue
            add = op.segments if isinstance(op, Create) else op.add_segments
            remove = frozenset() if isinstance(op, Create) else op.remove_segments
            for seg in add - remove:
                adds.setdefault(seg, set()).add(entry.uid)
                users.setdefault(seg, []).append(i)
            for seg in remove:
                removes.setdefault(seg, set()).add(entry.uid)
                users.setdefault(seg, []).append(i)
        errors: dict[int, PairsyncError] = {}
        for segment in sorted(users):
            error = self._write_group(
                segment, adds.get(segment, set()), removes.get(segment, set())
            )
            if error is not None:
                for i in users[segment]:
                    errors[i] = error
        return errors

    def _group_name_of(self, segment: str) -> str | None:
        hits = sorted(n for n, g in self._groups.items() if g.name == segment)
        return hits[0] if hits else None

    def _write_group(self, segment: str, add: set[str], remove: set[str]) -> PairsyncError | None:
        """Add and remove members of one group card (created when missing); the error if any."""
        for attempt in range(2):
            name = self._group_name_of(segment)
            if name is None:
                if not add:
                    return None
                text, etag, name = self._new_group(segment, add), None, f"{uuid.uuid4().hex}.vcf"
            else:
                entry = self._entries[name]
                if entry.text is None:
                    self._read_bodies([name])
                    entry = self._entries[name]
                assert entry.text is not None and entry.group is not None
                text = _edit_members(entry.text, entry.group.prop, add, remove)
                etag = entry.etag
                if text == entry.text:
                    return None
            answer = self._put(name, text, etag=etag)
            if answer.status in (200, 201, 204):
                self._written(name, text, answer.etag)
                if not answer.etag:
                    self._read_bodies([name])
                self._index()
                return None
            if answer.status == 412 and attempt == 0:
                if etag is not None:
                    self._read_bodies([name])
                else:
                    self._refresh()
                continue
            if answer.status == 412:
                break
            return self._refusal(answer)
        return Conflict(f"The group {segment!r} keeps changing on the server; retried later.")

    def _new_group(self, segment: str, members: Iterable[str]) -> str:
        """A group card in the style the book's other group cards use."""
        apple = any(g.prop.startswith("X-") for g in self._groups.values())
        uid = str(uuid.uuid4())
        card = new_card(uid, PRODID, "3.0" if apple else "4.0")
        lines: list[Line] = []
        if apple:
            lines.append(format_line(card, "N", escape(segment) + ";;;;"))
            lines.append(format_line(card, "X-ADDRESSBOOKSERVER-KIND", "group"))
        else:
            lines.append(format_line(card, "KIND", "group"))
        lines.append(format_line(card, "FN", escape(segment)))
        prop = "X-ADDRESSBOOKSERVER-MEMBER" if apple else "MEMBER"
        lines += [format_line(card, prop, _member_value(uid)) for uid in sorted(members)]
        card.lines.extend(lines)
        return render(card)


def _ensure_uid(card: Card, uid: str) -> None:
    """Every card we write has a UID (group membership and other clients rely on it)."""
    if uid or any(line.name == "UID" for line in card.lines):
        return
    card.lines.append(format_line(card, "UID", escape(str(uuid.uuid4()))))


def _edit_members(text: str, prop: str, add: set[str], remove: set[str]) -> str:
    card = parse_card(text)
    drop = {_member_key(u) for u in remove}
    have = {_member_key(line.value) for line in card.lines if line.name == prop}
    kept = [
        line for line in card.lines if not (line.name == prop and _member_key(line.value) in drop)
    ]
    new = [
        format_line(card, prop, _member_value(uid))
        for uid in sorted(add)
        if _member_key(uid) not in have and _member_key(uid) not in drop
    ]
    at = len(kept)
    while at > 0 and not kept[at - 1].name and not kept[at - 1].raw.strip():
        at -= 1
    kept[at:at] = new
    card.lines[:] = kept
    return render(card)
