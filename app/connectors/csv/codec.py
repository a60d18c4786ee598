"""Values ↔ cells: a record's fields placed in a row's columns by the file's layout, and read
back (labels, packed Google slots, addresses, values that do not fit)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from app.connectors.csv.formats import (
    _ADDRESS_PARTS,
    _GOOGLE_LABELS_IN,
    _GOOGLE_LABELS_OUT,
    _NOUNS,
    _OUTLOOK_EMPTY_DATES,
    _PACK_SEP,
    GOOGLE,
    OUTLOOK,
    _AddrSlot,
    _Layout,
    _Slot,
)
from app.model import (
    Address,
    FieldValue,
    Labeled,
    Record,
)

# --- values <-> cells -------------------------------------------------------------------


def _split_packed(cell: str) -> list[str]:
    return [v.strip() for v in cell.split(":::")]


def _google_label_in(text: str) -> str:
    label = text.strip()
    if label.startswith("*"):
        label = label[1:].strip()
    return _GOOGLE_LABELS_IN.get(label.lower(), label)


def _google_label_out(label: str, current: str) -> str:
    if _google_label_in(current) == label:
        return current
    return _GOOGLE_LABELS_OUT.get(label, label)


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _as_items(value: FieldValue) -> list[Labeled]:
    if isinstance(value, str):
        return [Labeled(value.strip())] if value.strip() else []
    out: list[Labeled] = []
    for item in value:
        if isinstance(item, Labeled):
            if item.value.strip():
                out.append(Labeled(item.value.strip(), item.label))
        elif not item.is_empty():
            out.append(Labeled(", ".join(p for p in item.parts() if p.strip()), item.label))
    return out


def _as_text(value: FieldValue) -> str:
    if isinstance(value, str):
        return value
    items = _as_items(value)
    return items[0].value if items else ""


def _as_addresses(value: FieldValue) -> list[Address]:
    if isinstance(value, str):
        return [Address(street=value)] if value.strip() else []
    out: list[Address] = []
    for item in value:
        if isinstance(item, Address):
            if not item.is_empty():
                out.append(item)
        elif item.value.strip():
            out.append(Address(street=item.value, label=item.label))
    return out


def _place(labels: Sequence[str], wanted: Sequence[str]) -> tuple[dict[int, int], list[int]]:
    """Assign items (by label) to slots (by label): item index -> slot index, and leftovers.

    When there are more items than slots, the first items (the primary value first) are the
    ones kept; labels only decide which slot each kept item goes to.
    """
    free = list(range(len(labels)))
    placed: dict[int, int] = {}
    pending: list[int] = []
    kept = len(labels)
    for i, label in enumerate(wanted[:kept]):
        # Only a real label claims its slot ahead of order; unlabelled items fill in order.
        slot = next((s for s in free if label and labels[s] == label), None)
        if slot is None:
            pending.append(i)
        else:
            free.remove(slot)
            placed[i] = slot
    leftovers: list[int] = list(range(kept, len(wanted)))
    for i in pending:
        slot = next((s for s in free if labels[s] in ("other", "")), None)
        if slot is None and free:
            slot = free[0]
        if slot is None:
            leftovers.append(i)
        else:
            free.remove(slot)
            placed[i] = slot
    return placed, leftovers


def _group_for_slots(labels: Sequence[str], n_slots: int) -> list[list[int]]:
    """Google: split items into at most ``n_slots`` groups that each share one slot."""
    n = len(labels)
    if n <= n_slots:
        return [[i] for i in range(n)]
    groups: list[list[int]] = []
    for i, label in enumerate(labels):
        if groups and labels[groups[-1][0]] == label:
            groups[-1].append(i)
        else:
            groups.append([i])
    if len(groups) > n_slots:
        head = groups[: n_slots - 1]
        tail = [i for g in groups[n_slots - 1 :] for i in g]
        groups = [*head, tail]
    return groups


def _format_address(addr: Address) -> str:
    city_line = " ".join(p for p in (addr.locality, addr.region, addr.postcode) if p.strip())
    lines = [addr.street, addr.extended, addr.pobox, city_line, addr.country]
    return "\n".join(line for line in lines if line.strip())


class _Codec:
    """Reads a row's cells into fields and writes fields into cells, for one layout."""

    def __init__(self, layout: _Layout) -> None:
        self.layout = layout
        self.left_out: dict[str, list[str]] = {}
        """Per field key, the values a write found no room for (not fitting)."""

    # reading ----------------------------------------------------------------------------

    def read(self, rid: str, version: str, cells: Sequence[str]) -> Record:
        layout = self.layout

        def cell(col: int | None) -> str:
            return cells[col] if col is not None and col < len(cells) else ""

        fields: dict[str, FieldValue] = {}
        for key, col in layout.singles.items():
            value = cell(col)
            if key != "notes":
                value = value.strip()
            if key == "birthday" and layout.fmt == OUTLOOK and value in _OUTLOOK_EMPTY_DATES:
                value = ""
            if value.strip():
                fields[key] = value
        for key, slots in layout.multis.items():
            items = self._read_multi(slots, cell)
            if items:
                fields[key] = tuple(items)
        addresses = self._read_addresses(cell)
        if addresses:
            fields["addresses"] = tuple(addresses)
        for key, col in layout.custom.items():
            value = cell(col)
            if value.strip():
                fields[key] = value
        _system, segments = self._read_segments(cell(layout.segment_col))
        return Record(rid, version, fields, frozenset(segments))

    def _read_multi(
        self, slots: Sequence[_Slot], cell: Callable[[int | None], str]
    ) -> list[Labeled]:
        items: list[Labeled] = []
        for slot in slots:
            text = cell(slot.col)
            if not text.strip():
                continue
            values = _split_packed(text) if slot.packed else [text.strip()]
            if slot.label_col is not None:
                label_text = cell(slot.label_col)
                labels = _split_packed(label_text) if slot.packed else [label_text]
                if len(labels) != len(values):
                    labels = [label_text] * len(values)
                labels = [_google_label_in(lb) for lb in labels]
            else:
                labels = [slot.label] * len(values)
            items.extend(Labeled(v, lb) for v, lb in zip(values, labels, strict=True) if v)
        return items

    def _read_addresses(self, cell: Callable[[int | None], str]) -> list[Address]:
        out: list[Address] = []
        for slot in self.layout.addresses:
            columns: dict[str, list[str]] = {}
            count = 1
            for part, cols in slot.parts.items():
                texts = [cell(c) for c in cols]
                if slot.packed:
                    split = _split_packed(texts[0]) if texts[0].strip() else [""]
                    columns[part] = split
                    count = max(count, len(split))
                else:
                    columns[part] = ["\n".join(t.strip() for t in texts if t.strip())]
            formatted = cell(slot.formatted_col).strip()
            label_text = cell(slot.label_col) if slot.label_col is not None else ""
            labels = _split_packed(label_text) if slot.packed else [label_text]
            for n in range(count):
                parts = {
                    p: (vals[n] if n < len(vals) else "").strip() for p, vals in columns.items()
                }
                if slot.label_col is not None:
                    lbl = labels[n] if n < len(labels) else labels[0]
                    label = _google_label_in(lbl)
                else:
                    label = slot.label
                addr = Address(label=label, **{p: parts.get(p, "") for p in _ADDRESS_PARTS})
                if addr.is_empty() and n == 0 and formatted and count == 1:
                    addr = Address(street=formatted, label=label)
                if not addr.is_empty():
                    out.append(addr)
        return out

    def _read_segments(self, text: str) -> tuple[list[str], list[str]]:
        if not text.strip():
            return [], []
        fmt = self.layout.fmt
        if fmt == GOOGLE:
            names = _split_packed(text)
        elif fmt == OUTLOOK:
            names = [n.strip() for n in text.split(";")]
        elif ":::" in text:
            names = _split_packed(text)
        elif ";" in text:
            names = [n.strip() for n in text.split(";")]
        else:
            names = [n.strip() for n in text.split(",")]
        system = [n for n in names if n.startswith("* ")] if fmt == GOOGLE else []
        segments = [n for n in names if n and n not in system]
        return system, segments

    # writing ----------------------------------------------------------------------------

    def write_field(
        self, cells: list[str], key: str, value: FieldValue, current: Record
    ) -> str | None:
        """Write one field into ``cells``; return a problem sentence when not all of it fit."""
        layout = self.layout
        if key in layout.singles:
            text = _as_text(value)
            extra = _as_items(value)[1:] if not isinstance(value, str) else []
            problem = None
            if extra:
                what = ", ".join(i.value for i in extra)
                problem = f"{layout.title} holds one {key}; {what} was not written."
                self.left_out.setdefault(key, []).extend(i.value for i in extra)
            if key != "notes":
                text = text.strip()
            if text != (current.fields.get(key) or ""):
                cells[layout.singles[key]] = text
            return problem
        if key in layout.custom:
            text = _as_text(value)
            if text != (current.fields.get(key) or ""):
                cells[layout.custom[key]] = text
            return None
        if key in layout.multis:
            items = _as_items(value)
            if tuple(items) == (current.fields.get(key) or ()):
                return None
            return self._write_multi(cells, key, layout.multis[key], items)
        if key == "addresses" and layout.addresses:
            addrs = _as_addresses(value)
            if tuple(addrs) == (current.fields.get(key) or ()):
                return None
            return self._write_addresses(cells, addrs)
        return f"{layout.title} has no column for {key.replace('_', ' ')}; it was not written."

    def _overflow(self, key: str, limit: int, items: Sequence[str], indexes: list[int]) -> str:
        noun = _NOUNS.get(key, key)
        self.left_out.setdefault(key, []).extend(items[i] for i in indexes)
        what = ", ".join(f"the {_ordinal(i + 1)} ({items[i]})" for i in indexes)
        verb = "was" if len(indexes) == 1 else "were"
        return f"{self.layout.title} holds at most {limit} {noun}; {what} {verb} not written."

    def _write_multi(
        self, cells: list[str], key: str, slots: Sequence[_Slot], items: Sequence[Labeled]
    ) -> str | None:
        if slots and slots[0].packed:
            groups = _group_for_slots([i.label for i in items], len(slots))
            for n, slot in enumerate(slots):
                group = [items[i] for i in groups[n]] if n < len(groups) else []
                cells[slot.col] = _PACK_SEP.join(i.value for i in group)
                if slot.label_col is not None:
                    current = cells[slot.label_col]
                    cells[slot.label_col] = (
                        _google_label_out(group[0].label, current) if group else ""
                    )
            return None
        placed, leftovers = _place([s.label for s in slots], [i.label for i in items])
        for slot in slots:
            cells[slot.col] = ""
        for i, s in placed.items():
            cells[slots[s].col] = items[i].value
        if leftovers:
            return self._overflow(key, len(slots), [i.value for i in items], leftovers)
        return None

    def _write_addresses(self, cells: list[str], addrs: Sequence[Address]) -> str | None:
        slots = self.layout.addresses
        if slots and slots[0].packed:
            groups = _group_for_slots([a.label for a in addrs], len(slots))
            for n, slot in enumerate(slots):
                group = [addrs[i] for i in groups[n]] if n < len(groups) else []
                self._fill_address(cells, slot, group)
            return None
        placed, leftovers = _place([s.label for s in slots], [a.label for a in addrs])
        for slot in slots:
            self._fill_address(cells, slot, [])
        problems: list[str] = []
        for i, s in placed.items():
            problem = self._fill_address(cells, slots[s], [addrs[i]])
            if problem:
                problems.append(problem)
        if leftovers:
            texts = [", ".join(p for p in a.parts() if p.strip()) for a in addrs]
            problems.append(self._overflow("addresses", len(slots), texts, leftovers))
        return " ".join(problems) or None

    def _fill_address(self, cells: list[str], slot: _AddrSlot, group: list[Address]) -> str | None:
        if slot.label_col is not None:
            current = cells[slot.label_col]
            labels = [_google_label_out(a.label, current) for a in group]
            if len(set(labels)) == 1:
                cells[slot.label_col] = labels[0]
            else:
                cells[slot.label_col] = _PACK_SEP.join(labels)
        if slot.formatted_col is not None:
            cells[slot.formatted_col] = _PACK_SEP.join(_format_address(a) for a in group)
        if slot.packed:
            for part, cols in slot.parts.items():
                values = [getattr(a, part) for a in group]
                cells[cols[0]] = _PACK_SEP.join(values) if any(v.strip() for v in values) else ""
            return None
        for cols in slot.parts.values():
            for c in cols:
                cells[c] = ""
        if not group:
            return None
        addr = group[0]
        street_lines = [line for line in addr.street.split("\n") if line.strip()]
        for part in ("extended", "pobox", "locality", "region", "postcode", "country"):
            value = getattr(addr, part).strip()
            if value and part not in slot.parts:
                street_lines.append(f"PO Box {value}" if part == "pobox" else value)
        for part, cols in slot.parts.items():
            if part == "street":
                continue
            cells[cols[0]] = getattr(addr, part).strip()
        street_cols = slot.parts.get("street", [])
        if not street_cols:
            if street_lines:
                self.left_out.setdefault("addresses", []).append(", ".join(street_lines))
                return (
                    f"{self.layout.title} has no street column for the {addr.label or 'other'} "
                    f"address; {', '.join(street_lines)} was not written."
                )
            return None
        for n, c in enumerate(street_cols):
            if n == len(street_cols) - 1:
                cells[c] = "\n".join(street_lines[n:])
            elif n < len(street_lines):
                cells[c] = street_lines[n]
        return None

    def write_segments(
        self, cells: list[str], add: frozenset[str], remove: frozenset[str]
    ) -> str | None:
        col = self.layout.segment_col
        if col is None:
            if add:
                names = ", ".join(sorted(add))
                return (
                    f"{self.layout.title} has no Categories column; the segments {names} "
                    "were not written."
                )
            return None
        system, current = self._read_segments(cells[col])
        kept = [s for s in current if s not in remove]
        new = kept + sorted(s for s in add if s not in kept)
        if new == current:
            return None
        fmt = self.layout.fmt
        if fmt == GOOGLE:
            # Keep the cell's order, system labels (``* myContacts``) included.
            old = [n for n in _split_packed(cells[col]) if n]
            ordered = [n for n in old if n in system or n in kept]
            cells[col] = _PACK_SEP.join(ordered + [s for s in new if s not in old])
        elif fmt == OUTLOOK:
            cells[col] = ";".join(new)
        else:
            cells[col] = "; ".join(new)
        return None
