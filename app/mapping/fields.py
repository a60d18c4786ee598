"""Field mappings: how one value of side A corresponds to one value of side B.

A mapping projects each side's record onto a shared value (``value``), compares values in a
canonical, JSON-able form (``canon``) and turns a value back into the fields to write on a
side (``patch``). The engine merges per mapping against the base it stored last time; it
knows nothing of names, lists or labels — that knowledge lives here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from app.errors import ValueNotAllowed
from app.mapping.canonical import canon_item, canon_scalar, canon_text
from app.mapping.convert import canon_typed, convert, parse_boolean
from app.model import Address, Direction, FieldType, FieldValue, Labeled, Record, Side

Canon = Any  # str | list: JSON-able, comparable with ==


TYPED_KINDS = frozenset({"date", "datetime", "number", "boolean"})


def canon_kind(field_type: FieldType) -> str:
    """The comparison kind of a field type: how its values are made canonical."""
    return {
        FieldType.EMAIL: "email",
        FieldType.PHONE: "phone",
        FieldType.URL: "url",
        FieldType.DATE: "date",
        FieldType.DATETIME: "datetime",
        FieldType.NUMBER: "number",
        FieldType.BOOLEAN: "boolean",
        FieldType.ADDRESS: "address",
    }.get(field_type, "text")


def canon_single(kind: str, text: str, region: str = "") -> str:
    if kind in TYPED_KINDS:
        return canon_typed(kind, text)
    return canon_scalar(kind, text, region)


@dataclass(slots=True)
class Patch:
    fields: dict[str, FieldValue] = field(default_factory=dict)
    add_segments: set[str] = field(default_factory=set)
    remove_segments: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return bool(self.fields or self.add_segments or self.remove_segments)

    def merge(self, other: Patch) -> None:
        self.fields.update(other.fields)
        self.add_segments |= other.add_segments
        self.remove_segments |= other.remove_segments


class FieldMapping:
    """Base: one mapping between a field (or fields) of A and of B."""

    key: str
    label: str
    direction: Direction = Direction.TWO_WAY
    match_key: bool = False
    """The match email: a clear of it is never propagated to the other side."""
    set_merge: bool = False
    """Values are sets merged element-wise (segments) instead of as a whole."""
    list_merge: bool = False
    """Values are lists merged element-wise (``ListField``)."""
    fields_a: tuple[str, ...] = ()
    fields_b: tuple[str, ...] = ()

    def value(self, side: Side, record: Record) -> Any:
        raise NotImplementedError

    def canon(self, value: Any) -> Canon:
        raise NotImplementedError

    def patch(self, side: Side, record: Record | None, value: Any) -> Patch:
        raise NotImplementedError

    def fields_of(self, side: Side) -> tuple[str, ...]:
        return self.fields_a if side is Side.A else self.fields_b

    def fingerprint(self) -> str:
        """What, besides key and direction, changes how values flow (value tables, labels).
        The same in every process: it is stored, and compared by the next run, which may be
        another process (cron, the desktop app's sync worker)."""
        return repr(sorted((k, stable_repr(v)) for k, v in vars(self).items() if k != "key"))


def stable_repr(value: Any) -> str:
    """``repr`` with sets and dicts in sorted order: the ``repr`` of a set follows string
    hashing, which Python seeds differently in every process."""
    if isinstance(value, set | frozenset):
        return "{" + ", ".join(sorted(stable_repr(v) for v in value)) + "}"
    if isinstance(value, dict):
        items = sorted((stable_repr(k), stable_repr(v)) for k, v in value.items())
        return "{" + ", ".join(f"{k}: {v}" for k, v in items) + "}"
    if isinstance(value, list | tuple):
        inner = ", ".join(stable_repr(v) for v in value)
        return f"[{inner}]" if isinstance(value, list) else f"({inner})"
    return repr(value)


def _empty_canon(canon: Canon) -> bool:
    return canon in ("", [], None)


def is_empty_canon(canon: Canon) -> bool:
    return _empty_canon(canon)


@dataclass
class OneToOne(FieldMapping):
    """A mapping between one field of A and one field of B (most mappings are)."""

    field_a: str
    field_b: str
    label: str = ""

    def __post_init__(self) -> None:
        self.key = f"{self.field_a}={self.field_b}"
        self.fields_a = (self.field_a,)
        self.fields_b = (self.field_b,)
        self.label = self.label or self.field_a

    def field_on(self, side: Side) -> str:
        return self.field_a if side is Side.A else self.field_b


@dataclass
class SameField(OneToOne):
    """One single-valued field ↔ one single-valued field."""

    kind: str = "text"
    region: str = ""
    match_key: bool = False
    convert_to_a: tuple[str, str] = ("text", "text")
    """(source type, target type) of values written into A."""
    convert_to_b: tuple[str, str] = ("text", "text")

    def value(self, side: Side, record: Record) -> str:
        raw = record.fields.get(self.field_a if side is Side.A else self.field_b)
        if isinstance(raw, str):
            return raw
        # Several values (a multi-choice written into text): all of them, joined.
        return ", ".join(v.value for v in raw or () if isinstance(v, Labeled) and v.value.strip())

    def canon(self, value: str) -> Canon:
        return canon_single(self.kind, value, self.region)

    def patch(self, side: Side, record: Record | None, value: str) -> Patch:
        source, target = self.convert_to_a if side is Side.A else self.convert_to_b
        return Patch(
            {self.field_a if side is Side.A else self.field_b: convert(value, source, target)}
        )


@dataclass
class ListField(OneToOne):
    """A multi-valued field ↔ a multi-valued field (emails, phones, addresses, urls).

    Compared by values only: labels travel with the values but a label the other app cannot
    hold never makes the pair look changed. Emails keep their order (the first is the match
    key); other lists compare as sets of values, since apps may reorder them by label.
    """

    kind: str = "text"
    region: str = ""
    match_key: bool = False

    def value(self, side: Side, record: Record) -> tuple[Labeled | Address, ...]:
        raw = record.fields.get(self.field_a if side is Side.A else self.field_b)
        if isinstance(raw, str):
            return (Labeled(raw),) if raw.strip() else ()
        return tuple(v for v in (raw or ()) if not _item_empty(v))

    list_merge = True
    """Merged element by element (see ``app.engine.merge.merge_lists``)."""

    def canon(self, value: tuple[Labeled | Address, ...]) -> Canon:
        items = [self.item_key(v) for v in value]
        if self.kind == "email":
            return items
        return sorted(items)

    def item_key(self, item: Labeled | Address) -> str:
        """The identity of one value: its canonical form as text."""
        key = canon_item(self.kind, item, self.region)
        return key if isinstance(key, str) else "\x1f".join(key)

    def patch(self, side: Side, record: Record | None, value: tuple[Any, ...]) -> Patch:
        return Patch({self.field_a if side is Side.A else self.field_b: tuple(value)})

    def assemble(
        self, keys: list[str], own: tuple[Any, ...], other: tuple[Any, ...]
    ) -> tuple[Any, ...]:
        """The values for one side in merged order, keeping that side's own items (labels)."""
        mine = {self.item_key(i): i for i in own}
        theirs = {self.item_key(i): i for i in other}
        return tuple(mine.get(k) or theirs[k] for k in keys)


def _item_empty(item: Labeled | Address) -> bool:
    return item.is_empty() if isinstance(item, Address) else not item.value.strip()


@dataclass
class ListToSingle(OneToOne):
    """A multi-valued field on ``list_side`` ↔ a single-valued field on the other side.

    The single side holds the primary (first) value of the list. A value written back to the
    list side replaces only the value it came from (the first), keeping its label and every
    other value (SPEC S14).
    """

    list_side: Side = Side.A
    kind: str = "text"
    region: str = ""
    match_key: bool = False
    new_label: str = ""
    pick_label: str = ""
    """Take the value with this label (e.g. "mobile") instead of the primary one."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.new_label = self.new_label or self.pick_label

    def _chosen(self, items: list[Labeled]) -> int | None:
        """Index of the value the single field holds: the picked label's, else the first."""
        if not items:
            return None
        if self.pick_label:
            wanted = self.pick_label.casefold()
            for i, item in enumerate(items):
                if item.label.casefold() == wanted:
                    return i
            return None
        return 0

    def value(self, side: Side, record: Record) -> str:
        raw = record.fields.get(self.field_on(side))
        if isinstance(raw, str):
            return raw
        items = [v for v in raw or () if isinstance(v, Labeled) and v.value.strip()]
        at = self._chosen(items)
        return "" if at is None else items[at].value

    def canon(self, value: str) -> Canon:
        return canon_single(self.kind, value, self.region)

    def patch(self, side: Side, record: Record | None, value: str) -> Patch:
        key = self.field_on(side)
        if side is not self.list_side:
            return Patch({key: value})
        raw = record.fields.get(key) if record is not None else None
        items = [v for v in (raw or ()) if isinstance(v, Labeled) and v.value.strip()]
        if isinstance(raw, str) and raw.strip():
            items = [Labeled(raw)]
        at = self._chosen(items)
        if at is not None:
            if value.strip():
                items[at] = Labeled(value, items[at].label)
            else:
                items.pop(at)
        elif value.strip():
            new = Labeled(value, self.new_label)
            items = [new, *items] if not self.pick_label else [*items, new]
        return Patch({key: tuple(items)})


NAME_PREFIXES = frozenset(
    {"mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "rev", "fr", "hon"}
)
NAME_SUFFIXES = frozenset(
    {"jr", "sr", "ii", "iii", "iv", "v", "phd", "md", "esq", "mba", "dds", "jd", "obe", "mbe"}
)


def _bare(token: str) -> str:
    return token.strip(".,").casefold()


def split_full_name(full: str) -> tuple[str, str]:
    """Split on the last space: "Maria de la Cruz" → ("Maria de la", "Cruz").

    A single word is a first name: "Cher" → ("Cher", "").
    """
    text = canon_text(full)
    if " " not in text:
        return text, ""
    given, family = text.rsplit(" ", 1)
    return given, family


def split_name_parts(full: str, *, prefix: bool, suffix: bool) -> dict[str, str]:
    """Split a full name into the parts an app holds.

    Honorifics ("Dr.", "Mrs") and suffixes ("Jr.", "III", "PhD") are taken off only when the
    app has a field for them; the rest splits on the last space (SPEC §5).
    """
    tokens = canon_text(full).split(" ") if full.strip() else []
    parts = {"prefix": "", "suffix": ""}
    if prefix and len(tokens) > 1 and _bare(tokens[0]) in NAME_PREFIXES:
        parts["prefix"] = tokens.pop(0)
    if suffix and len(tokens) > 1 and _bare(tokens[-1]) in NAME_SUFFIXES:
        parts["suffix"] = tokens.pop()
        if tokens and tokens[-1].endswith(","):
            tokens[-1] = tokens[-1][:-1]
    parts["given"], parts["family"] = split_full_name(" ".join(tokens))
    return parts


def join_name(*parts: str) -> str:
    return " ".join(p for p in (canon_text(x) for x in parts) if p)


@dataclass
class NameSplit(FieldMapping):
    """A full-name field on ``full_side`` ↔ name parts on the other side.

    The parts side has first and last name and, optionally, middle name, prefix and suffix.
    Split on the last space, joined with one space. An existing split that joins to the same
    full name is left alone; when only one part differs, only that part is written (SPEC S13).
    A middle name is part of the first name when split ("John Ronald" + "Tolkien"), so the
    middle field is cleared when a new full name is written there.
    """

    full_field: str
    given_field: str
    family_field: str
    full_side: Side = Side.A
    label: str = "Name"
    middle_field: str = ""
    prefix_field: str = ""
    suffix_field: str = ""

    def __post_init__(self) -> None:
        parts = tuple(
            f
            for f in (
                self.prefix_field,
                self.given_field,
                self.middle_field,
                self.family_field,
                self.suffix_field,
            )
            if f
        )
        joined = "+".join(parts)
        self.key = (
            f"{self.full_field}={joined}"
            if self.full_side is Side.A
            else f"{joined}={self.full_field}"
        )
        self.fields_a = (self.full_field,) if self.full_side is Side.A else parts
        self.fields_b = parts if self.full_side is Side.A else (self.full_field,)

    def _part(self, record: Record | None, key: str) -> str:
        if record is None or not key:
            return ""
        raw = record.fields.get(key)
        return raw if isinstance(raw, str) else ""

    def value(self, side: Side, record: Record) -> str:
        if side is self.full_side:
            return self._part(record, self.full_field)
        return join_name(
            *(
                self._part(record, k)
                for k in (
                    self.prefix_field,
                    self.given_field,
                    self.middle_field,
                    self.family_field,
                    self.suffix_field,
                )
            )
        )

    def canon(self, value: str) -> Canon:
        return canon_text(value)

    def patch(self, side: Side, record: Record | None, value: str) -> Patch:
        if side is self.full_side:
            return Patch({self.full_field: value})
        if record is not None and canon_text(self.value(side, record)) == canon_text(value):
            return Patch()
        parts = split_name_parts(
            value, prefix=bool(self.prefix_field), suffix=bool(self.suffix_field)
        )
        wanted = {
            self.given_field: parts["given"],
            self.family_field: parts["family"],
        }
        if self.middle_field:
            wanted[self.middle_field] = ""
        if self.prefix_field:
            wanted[self.prefix_field] = parts["prefix"]
        if self.suffix_field:
            wanted[self.suffix_field] = parts["suffix"]
        out: dict[str, FieldValue] = {
            key: text
            for key, text in wanted.items()
            if record is None or canon_text(self._part(record, key)) != text
        }
        return Patch(out)


@dataclass
class Segments(FieldMapping):
    """The apps' segments (categories, groups, labels), merged element-wise.

    ``managed`` segments (case-folded names) are left alone: rules add and remove them
    ("Customers" when a rule tags customers), and Pairsync's own review segments ("Pairsync
    Trash", "Pairsync Unsubscribes") mark one app's contact and must not spread back.
    """

    label: str = "Segments"
    managed: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        self.key = "segments"
        self.set_merge = True
        self.fields_a = self.fields_b = ("segments",)

    def _free(self, name: str) -> bool:
        return bool(name.strip()) and canon_text(name).casefold() not in self.managed

    def value(self, side: Side, record: Record) -> frozenset[str]:
        return frozenset(s for s in record.segments if self._free(s))

    def canon(self, value: frozenset[str] | list[str]) -> Canon:
        return sorted({canon_text(s) for s in value if self._free(s)})

    def patch(self, side: Side, record: Record | None, value: frozenset[str]) -> Patch:
        stored = [s for s in (record.segments if record else ()) if self._free(s)]
        current = {canon_text(s) for s in stored}
        target = {canon_text(s) for s in value if self._free(s)}
        return Patch(
            add_segments=target - current,
            # Remove by the name the app stores, not by its canonical form.
            remove_segments={s for s in stored if canon_text(s) not in target},
        )


KEEP = "\x00keep"
"""A value whose table entry is "leave unchanged"."""
MISSING = "\x00missing:"
"""Prefix of a value with no table entry (writing it fails: value not allowed)."""


def _lookup(
    table: dict[str, str | None], value: str, boolean: bool = False
) -> tuple[bool, str | None]:
    """A table entry for ``value``: exact, then case-insensitive, then (yes/no) by meaning."""
    if value in table:
        return True, table[value]
    folded = value.casefold()
    for key, target in table.items():
        if key.casefold() == folded:
            return True, target
    if boolean:
        flag = parse_boolean(value)
        for key, target in table.items():
            if flag is not None and parse_boolean(key) == flag:
                return True, target
    return False, None


@dataclass
class ChoiceField(OneToOne):
    """A choice (or yes/no) field ↔ a choice (or yes/no, or text) field through value tables.

    Values are compared in B's vocabulary: A's value is translated with the A→B table (an
    option of the same name counts as an entry). A value without an entry cannot be written:
    that field of that contact fails with "value not allowed", naming the value; the
    contact's other fields still sync (SPEC S12). ``None`` in a table means "leave unchanged".
    Multi-choice values map element by element.
    """

    a_to_b: dict[str, str | None] = field(default_factory=dict)
    b_to_a: dict[str, str | None] = field(default_factory=dict)
    choices_a: tuple[str, ...] = ()
    choices_b: tuple[str, ...] = ()
    multi: bool = False
    kind_a: str = "single_choice"
    kind_b: str = "single_choice"

    def _items(self, side: Side, record: Record | None) -> list[str]:
        if record is None:
            return []
        raw = record.fields.get(self.field_a if side is Side.A else self.field_b)
        kind = self.kind_a if side is Side.A else self.kind_b
        if isinstance(raw, str):
            items = [raw.strip()] if raw.strip() else []
        else:
            items = [
                v.value.strip() for v in raw or () if isinstance(v, Labeled) and v.value.strip()
            ]
        if kind == "boolean":
            return [_bool_word(i) for i in items]
        return items

    def _translate(
        self,
        item: str,
        table: dict[str, str | None],
        reverse: dict[str, str | None],
        choices: tuple[str, ...],
        target_kind: str,
        source_kind: str,
    ) -> str:
        found, target = _lookup(table, item, boolean=source_kind == "boolean")
        if found:
            if target is None:
                return KEEP
            return _bool_word(target) if target_kind == "boolean" else target
        inverse = [
            k for k, v in reverse.items() if v is not None and v.casefold() == item.casefold()
        ]
        if len(inverse) == 1:
            return inverse[0]
        if target_kind == "boolean":
            flag = parse_boolean(item)
            return MISSING + item if flag is None else ("true" if flag else "false")
        if choices:
            same = [c for c in choices if c.casefold() == item.casefold()]
            return same[0] if same else MISSING + item
        if table:
            return MISSING + item
        return item

    def value(self, side: Side, record: Record) -> tuple[str, ...]:
        items = self._items(side, record)
        if side is Side.B:
            return tuple(items)
        return tuple(
            self._translate(i, self.a_to_b, self.b_to_a, self.choices_b, self.kind_b, self.kind_a)
            for i in items
        )

    def canon(self, value: tuple[str, ...]) -> Canon:
        items = [v if v.startswith("\x00") else canon_text(v).casefold() for v in value]
        return sorted(items) if self.multi else items

    def patch(self, side: Side, record: Record | None, value: tuple[str, ...]) -> Patch:
        key = self.field_a if side is Side.A else self.field_b
        if side is Side.A:
            items = [
                self._translate(
                    v, self.b_to_a, self.a_to_b, self.choices_a, self.kind_a, self.kind_b
                )
                for v in value
            ]
        else:
            items = list(value)
        missing = [i[len(MISSING) :] for i in items if i.startswith(MISSING)]
        if missing:
            raise ValueNotAllowed(
                f"The value “{missing[0]}” is not allowed in {self.label}: add it to the "
                "mapping's value table.",
                field=key,
            )
        if KEEP in items:
            return Patch()
        if self.multi:
            return Patch({key: tuple(Labeled(i) for i in items)})
        return Patch({key: items[0] if items else ""})


def _bool_word(text: str) -> str:
    flag = parse_boolean(text)
    return text if flag is None else ("true" if flag else "false")


def format_address(address: Address) -> str:
    city = " ".join(p for p in (address.postcode, address.locality) if p.strip())
    lines = [address.street, address.extended, address.pobox, city, address.region, address.country]
    return "\n".join(line.strip() for line in lines if line.strip())


def parse_address(text: str, label: str = "") -> Address:
    """Back from text only when unambiguous: one line is a street, else kept whole in street.

    A formatted address of our own (street / postcode city / country) is recognised when its
    middle line starts with a postcode; anything else stays in ``street`` so nothing is lost.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if len(lines) == 3:
        first, _, rest = lines[1].partition(" ")
        if first[:1].isdigit() and rest:
            return Address(
                street=lines[0], postcode=first, locality=rest, country=lines[2], label=label
            )
    return Address(street="\n".join(lines), label=label)


@dataclass
class AddressText(OneToOne):
    """A structured address (the primary one) ↔ a single text field."""

    structured_side: Side = Side.A

    def _addresses(self, record: Record | None) -> list[Address]:
        raw = record.fields.get(self.field_on(self.structured_side)) if record else None
        return [a for a in (raw or ()) if isinstance(a, Address) and not a.is_empty()]

    def value(self, side: Side, record: Record) -> str:
        if side is self.structured_side:
            found = self._addresses(record)
            return format_address(found[0]) if found else ""
        raw = record.fields.get(self.field_on(side))
        return raw if isinstance(raw, str) else ""

    def canon(self, value: str) -> Canon:
        return canon_text(value).casefold()

    def patch(self, side: Side, record: Record | None, value: str) -> Patch:
        key = self.field_on(side)
        if side is not self.structured_side:
            return Patch({key: value})
        current = self._addresses(record)
        if current and canon_text(format_address(current[0])).casefold() == self.canon(value):
            return Patch()
        rest = current[1:]
        if not value.strip():
            return Patch({key: tuple(rest)})
        label = current[0].label if current else ""
        return Patch({key: (parse_address(value, label), *rest)})
