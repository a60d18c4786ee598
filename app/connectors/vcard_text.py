"""vCard text, read and edited line by line: shared by every connector that stores vCards.

Reading uses vobject's line and parameter parser (and its quoted-printable/charset decoding)
on each logical line that needs it (quotes in the parameters, quoted-printable text); values
are then unescaped and split here. vobject is imported on first such line: most cards never
need it, and a sync that reads no card (no change) never pays for its import.

Whole-card objects from ``vobject.readOne`` are not used because they cannot map a property
back to the exact text it came from, and an update must keep every property it does not touch
as it was written (PHOTO data, X- properties, Apple's ``item1.`` groups, unknown parameters,
REV, UID…).

An update (:func:`apply_patch`) therefore works on the card's lines: lines of properties
outside the patch are copied byte for byte; only the properties of the patched fields are
rewritten, in the card's own vCard version (2.1, 3.0 or 4.0) and line-ending style.

The field keys (:data:`FIELDS`) are the ones both the vCard folder and CardDAV connectors
expose; segments are ``CATEGORIES`` values.
"""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from app.model import (
    STANDARD_FIELDS,
    Address,
    FieldSpec,
    FieldType,
    FieldValue,
    Labeled,
    Meaning,
)

EXTRA_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("middle_name", "Middle name", meaning=Meaning.MIDDLE_NAME),
    FieldSpec("name_prefix", "Name prefix", meaning=Meaning.NAME_PREFIX),
    FieldSpec("name_suffix", "Name suffix", meaning=Meaning.NAME_SUFFIX),
    FieldSpec("nickname", "Nickname", meaning=Meaning.NICKNAME),
    FieldSpec("department", "Department", meaning=Meaning.DEPARTMENT),
    FieldSpec("urls", "Websites", FieldType.URL, multi=True, meaning=Meaning.WEBSITE),
    FieldSpec("birthday", "Birthday", FieldType.DATE, meaning=Meaning.BIRTHDAY),
)
FIELDS: tuple[FieldSpec, ...] = STANDARD_FIELDS + EXTRA_FIELDS

# N components in vCard order, as our field keys.
N_KEYS = ("family_name", "given_name", "middle_name", "name_prefix", "name_suffix")
# Single-valued text fields kept in a property of their own.
SIMPLE_PROPS = {"title": "TITLE", "notes": "NOTE", "birthday": "BDAY", "nickname": "NICKNAME"}
MULTI_PROPS = {"emails": "EMAIL", "phones": "TEL", "urls": "URL", "addresses": "ADR"}
KNOWN_KEYS = frozenset(
    {"full_name", "organization", "department", *N_KEYS, *SIMPLE_PROPS, *MULTI_PROPS}
)
# Properties whose values we decode when reading a card.
MULTI_KEY = {prop: key for key, prop in MULTI_PROPS.items()}
SIMPLE_KEY = {prop: key for key, prop in SIMPLE_PROPS.items()}
# Properties that say what a card is (its identity, a group and its members): decoded too,
# for connectors whose storage holds group cards (CardDAV).
IDENTITY_PROPS = frozenset(
    {"UID", "KIND", "MEMBER", "X-ADDRESSBOOKSERVER-KIND", "X-ADDRESSBOOKSERVER-MEMBER"}
)
READ_PROPS = frozenset(
    {"FN", "N", "ORG", "CATEGORIES", "VERSION", "X-ABLABEL", *SIMPLE_KEY, *MULTI_KEY}
    | IDENTITY_PROPS
)

# TYPE values that say nothing about the label.
NOISE_TYPES = frozenset({"pref", "voice", "internet", "x400", "msg", "aol", "applelink"})
MOBILE_TYPES = frozenset({"cell", "mobile", "iphone"})

RAW_LIMIT = 500

_PHYSICAL_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_FOLDED_RE = re.compile(r"[\r\n][ \t]")
# A property line whose name and parameters hold no quotes: split with plain string
# methods (``_split_line``), exactly as vobject's ``parseLine`` would.
_SIMPLE_HEAD_RE = re.compile(
    r"(?:[A-Za-z0-9_-]+\.)?[A-Za-z0-9_-]+(?:;[A-Za-z0-9_-]+(?:=[^\";:]*)?)*\Z"
)
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_SAFE_TYPE_RE = re.compile(r"[^A-Za-z0-9-]")
_ABLABEL_RE = re.compile(r"^_\$!<(.*)>!\$_$")


# --- values -----------------------------------------------------------------------------


def unescape(text: str) -> str:
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if "\\" not in text:
        return text

    def repl(match: re.Match[str]) -> str:
        ch = match.group(1)
        if ch in "nN":
            return "\n"
        if ch in "\\,;:":
            return ch
        return "\\" + ch

    return _ESCAPE_RE.sub(repl, text)


def split_escaped(text: str, sep: str) -> list[str]:
    """Split on ``sep`` where it is not backslash-escaped; parts stay escaped."""
    if "\\" not in text:
        return text.split(sep)
    parts: list[str] = []
    cur: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _components(text: str, count: int) -> list[str]:
    parts = [unescape(p) for p in split_escaped(text, ";")]
    if len(parts) < count:
        parts += [""] * (count - len(parts))
    return parts


def escape(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")


def escape_list(text: str) -> str:
    """A comma-list value (an N component, NICKNAME): each comma separates two values.

    ``"Jan,Pieter"`` is written ``Jan,Pieter`` (two given names), not ``Jan\\,Pieter`` (one
    name with a comma). Reading joins a component's values with ``","`` again, so the text
    goes through read → write → read unchanged.
    """
    return ",".join(escape(item) for item in text.split(","))


def escape_units(text: str) -> str:
    """Organizational units (ORG after the organization name), joined with ``";"`` in our
    department value: each ``";"`` starts a unit of its own."""
    return ";".join(escape(unit) for unit in text.split(";"))


def _text(value: FieldValue | None) -> str:
    """A single text value from whatever the engine gave for a single-valued field."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    for item in value:
        if isinstance(item, Labeled):
            return item.value.strip()
    return ""


def _item_empty(item: Labeled | Address) -> bool:
    return item.is_empty() if isinstance(item, Address) else not item.value.strip()


def _join_name(parts: Sequence[str]) -> str:
    """The formatted name of N's components; a component's comma list reads as words
    ("Prof.,Dr." + "Jan,Pieter" → "Prof. Dr. Jan Pieter")."""
    family, given, middle, prefix, suffix = parts
    words = (
        item.strip() for part in (prefix, given, middle, family, suffix) for item in part.split(",")
    )
    return " ".join(w for w in words if w)


# --- parsing ----------------------------------------------------------------------------


class Broken(Exception):
    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(slots=True)
class Line:
    """One logical line of a card, with the exact text it was read from."""

    raw: str
    number: int = 0
    name: str = ""  # upper-case property name; "" for blank lines and nested components
    group: str | None = None
    value: str = ""  # quoted-printable decoded, still backslash-escaped
    params: dict[str, list[str]] = field(default_factory=dict)
    singles: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Card:
    head: str
    lines: list[Line]
    tail: str
    version: str
    newline: str


def _logical_lines(text: str) -> list[tuple[str, str, int]]:
    """(raw text, unfolded text, first physical line number); blank lines have "".

    Linear in the size of the text: a logical line is gathered as a list of pieces and joined
    once, and whether it is quoted-printable is decided from its name and parameters alone
    (a 10 MB PHOTO folded into 140,000 physical lines used to take about a minute).

    Most cards have neither folded nor quoted-printable lines: each physical line is then a
    logical line as it stands (the same result, without the bookkeeping).
    """
    if not _FOLDED_RE.search(text) and "QUOTED-PRINTABLE" not in text.upper():
        return [
            (phys, body if body.strip() else "", number)
            for number, phys in enumerate(_PHYSICAL_RE.findall(text), 1)
            for body in (phys.rstrip("\r\n"),)
        ]
    out: list[tuple[str, str, int]] = []
    raw: list[str] = []
    pieces: list[str] = []
    head: str | None = None
    """The logical line up to its first ":" (name and parameters), once that ":" was seen."""
    start = 0
    qp = named_qp = False
    carry = ""

    def flush() -> None:
        if raw:
            out.append(("".join(raw), "".join(pieces), start))

    for number, phys in enumerate(_PHYSICAL_RE.findall(text), 1):
        body = phys.rstrip("\r\n")
        if not body.strip():
            flush()
            raw, pieces, head, qp = [], [], None, False
            out.append((phys, "", number))
            continue
        if raw and qp:
            raw.append(phys)
            pieces.append("\n")
            piece = body
        elif raw and body[0] in " \t":
            raw.append(phys)
            piece = body[1:]
        else:
            flush()
            raw, pieces, head, start = [phys], [], None, number
            named_qp, carry = False, ""
            piece = body
        pieces.append(piece)
        if head is None:
            if ":" in piece:
                head = "".join(pieces).split(":", 1)[0].upper()
                named_qp = "QUOTED-PRINTABLE" in head
            else:  # no ":" yet: the whole line so far counts, looked at piece by piece
                named_qp = named_qp or "QUOTED-PRINTABLE" in (carry + piece).upper()
                carry = piece[-15:]
        qp = body.endswith("=") and named_qp
    flush()
    return out


class LineError(Exception):
    """A line that is not a property of the form ``NAME;PARAMS:value`` (vobject's ParseError)."""


def _split_line(logical: str, number: int) -> tuple[str, list[list[str]], str, str | None]:
    """(name, parameters, value, group) of a property line, as ``parseLine`` gives them.

    ``parseLine``'s regular expressions cost more than the rest of reading a card; a line
    without quotes in its name and parameters (nearly all) is split here instead: the first
    ``:`` ends the parameters, ``;`` separates them, the first ``=`` a parameter's name from
    its values, ``,`` the values (empty ones dropped, as ``parseLine`` drops them). Anything
    else (quotes, odd characters, a line that is not a property) goes to ``parseLine``; a
    line that is no property raises ``LineError``.
    ``tests/connectors/test_vcard_text_parse.py`` checks both agree.
    """
    head, colon, value = logical.partition(":")
    if not colon or "\n" in logical or not _SIMPLE_HEAD_RE.match(head):
        from vobject.base import ParseError, parseLine

        try:
            return parseLine(logical, number)  # type: ignore[no-any-return]
        except ParseError as err:
            raise LineError(str(err)) from None
    name, *parts = head.split(";")
    group, dot, prop = name.rpartition(".")
    params: list[list[str]] = []
    for part in parts:
        pname, eq, values = part.partition("=")
        params.append([pname, *(v for v in values.split(",") if v)] if eq else [pname])
    return prop.replace("_", "-"), params, value, group if dot else None


def parse_card(text: str) -> Card:
    if "\x00" in text:
        raise Broken("it contains binary data, not text")
    items = _logical_lines(text)
    newline = "\r\n"
    first = _PHYSICAL_RE.match(text)
    if first and first.group().endswith("\n") and not first.group().endswith("\r\n"):
        newline = "\n"

    pos = 0
    head: list[str] = []
    while pos < len(items) and not items[pos][1]:
        head.append(items[pos][0])
        pos += 1
    if pos == len(items):
        raise Broken("the file is empty")
    raw, logical, number = items[pos]
    if logical.strip().upper() != "BEGIN:VCARD":
        raise Broken("it does not start with BEGIN:VCARD", number)
    head.append(raw)
    pos += 1

    lines: list[Line] = []
    version = ""
    depth = 0
    for index in range(pos, len(items)):
        raw, logical, number = items[index]
        if not logical:
            lines.append(Line(raw, number))
            continue
        upper = logical.strip().upper()
        if depth:
            depth += upper.startswith("BEGIN:") - upper.startswith("END:")
            lines.append(Line(raw, number))
            continue
        if upper == "END:VCARD":
            tail = "".join(item[0] for item in items[index:])
            return Card("".join(head), lines, tail, version or "3.0", newline)
        if upper.startswith("BEGIN:"):
            depth = 1
            lines.append(Line(raw, number))
            continue
        try:
            name, params, value, group = _split_line(logical, number)
        except LineError:
            shown = logical if len(logical) <= 60 else logical[:57] + "..."
            reason = f"this line is not a property of the form NAME:value: {shown!r}"
            raise Broken(reason, number) from None
        name = name.upper()
        if name == "END" or name == "BEGIN":
            raise Broken(f"unexpected {name}:{value}", number)
        line = Line(raw, number, name, group)
        if name in READ_PROPS:
            if "QUOTED-PRINTABLE" in logical.split(":", 1)[0].upper():
                # vobject decodes quoted-printable text with the line's CHARSET.
                from vobject.base import ContentLine

                try:
                    content = ContentLine(name, params, value, group, encoded=True)
                except Exception as err:  # QP/charset decoding problems of any kind
                    raise Broken(f"its text could not be decoded ({err})", number) from err
                line.value = str(content.value)
                line.params = content.params
                line.singles = content.singletonparams
            else:  # same as ContentLine's own parameter table, without its overhead
                line.value = value
                for param in params:
                    if len(param) == 1:
                        line.singles.append(param[0])
                    else:
                        line.params.setdefault(param[0].upper(), []).extend(param[1:])
            if name == "VERSION":
                version = line.value.strip()
        lines.append(line)
    raise Broken("the card is not closed (END:VCARD is missing)")


def _types(line: Line) -> list[str]:
    out: list[str] = []
    for value in line.params.get("TYPE", ()):
        out.extend(t.strip().lower() for t in value.split(",") if t.strip())
    out.extend(s.lower() for s in line.singles)
    return out


def _pref(line: Line, types: list[str]) -> int:
    """Preference rank: lower is more preferred; 100 when not preferred."""
    for value in line.params.get("PREF", ()):
        try:
            return max(1, min(100, int(value)))
        except ValueError:
            return 1
    return 1 if "pref" in types else 100


def _label(name: str, types: list[str], ablabel: str) -> str:
    meaningful = [t for t in types if t not in NOISE_TYPES]
    if name == "TEL":
        if "fax" in meaningful:
            return "fax"
        if MOBILE_TYPES & set(meaningful):
            return "mobile"
    for known in ("work", "home", "other"):
        if known in meaningful:
            return known
    if meaningful:
        return meaningful[0]
    return ablabel


def _clean_ablabel(value: str) -> str:
    value = unescape(value).strip()
    match = _ABLABEL_RE.match(value)
    if match:
        value = match.group(1)
    return value.strip().lower()


def _item_value(line: Line) -> str:
    value = unescape(line.value).strip()
    if line.name == "TEL" and value[:4].lower() == "tel:":
        value = value[4:]
    elif line.name == "EMAIL" and value[:7].lower() == "mailto:":
        value = value[7:]
    return value


def _read_item(line: Line, ablabels: Mapping[str, str]) -> tuple[Labeled | Address, int]:
    types = _types(line)
    ablabel = ablabels.get(line.group.lower(), "") if line.group else ""
    label = _label(line.name, types, ablabel)
    rank = _pref(line, types)
    if line.name == "ADR":
        p = [part.strip() for part in _components(line.value, 7)]
        addr = Address(p[2], p[3], p[4], p[5], p[6], pobox=p[0], extended=p[1], label=label)
        return addr, rank
    return Labeled(_item_value(line), label), rank


def _ablabels(lines: Iterable[Line]) -> dict[str, str]:
    return {
        line.group.lower(): _clean_ablabel(line.value)
        for line in lines
        if line.group and line.name == "X-ABLABEL"
    }


def card_values(card: Card) -> tuple[dict[str, FieldValue], frozenset[str]]:
    texts: dict[str, str] = {}
    multi: dict[str, list[tuple[int, int, Labeled | Address]]] = {}
    segments: list[str] = []
    ablabels = _ablabels(card.lines) if any(line.group for line in card.lines) else {}
    seen_n = seen_org = False
    for index, line in enumerate(card.lines):
        name = line.name
        if name not in READ_PROPS:
            continue
        if name in MULTI_KEY:
            item, rank = _read_item(line, ablabels)
            if not _item_empty(item):
                multi.setdefault(MULTI_KEY[name], []).append((rank, index, item))
        elif name == "FN":
            texts.setdefault("full_name", unescape(line.value).strip())
        elif name in SIMPLE_KEY:
            texts.setdefault(SIMPLE_KEY[name], unescape(line.value).strip())
        elif name == "N" and not seen_n:
            seen_n = True
            for key, part in zip(N_KEYS, _components(line.value, 5), strict=False):
                texts[key] = part.strip()
        elif name == "ORG" and not seen_org:
            seen_org = True
            parts = _components(line.value, 2)
            while len(parts) > 2 and not parts[-1].strip():
                parts.pop()
            texts["organization"] = parts[0].strip()
            # Every unit after the name (ORG:Acme;Sales;EMEA), joined with ";" (escape_units).
            texts["department"] = ";".join(parts[1:]).strip()
        elif name == "CATEGORIES":
            for part in split_escaped(line.value, ","):
                cat = unescape(part).strip()
                if cat and cat not in segments:
                    segments.append(cat)
    out: dict[str, FieldValue] = {k: v for k, v in texts.items() if v}
    for key, found in multi.items():
        found.sort(key=lambda t: (t[0], t[1]))
        out[key] = tuple(item for _, _, item in found)  # type: ignore[assignment]
    return out, frozenset(segments)


# --- writing ----------------------------------------------------------------------------


def _param_value(value: str) -> str:
    value = value.replace('"', "").replace("\r", " ").replace("\n", " ")
    if any(ch in value for ch in ",;:"):
        return f'"{value}"'
    return value


def _to_2_1(match: re.Match[str]) -> str:
    ch = match.group(1)
    if ch in "nN":
        return "\n"
    return "," if ch == "," else match.group(0)


def _fold(line: str, newline: str) -> str:
    if len(line) <= 75 and line.isascii():
        return line + newline
    out: list[str] = []
    size = 0
    for ch in line:
        width = len(ch.encode("utf-8"))
        if size + width > 75:
            out.append(newline + " ")
            size = 1
        out.append(ch)
        size += width
    out.append(newline)
    return "".join(out)


def format_line(
    card: Card,
    name: str,
    value: str,
    *,
    group: str | None = None,
    params: Sequence[tuple[str, Sequence[str]]] = (),
    singles: Sequence[str] = (),
) -> Line:
    """A property line; ``value`` is already escaped for its value type."""
    head = f"{group}.{name}" if group else name
    text = head + "".join(f";{s}" for s in singles)
    text += "".join(f";{p}=" + ",".join(_param_value(v) for v in vals) for p, vals in params)
    if card.version.startswith("2"):
        # 2.1 has real line breaks (quoted-printable) and no comma escapes.
        plain = _ESCAPE_RE.sub(_to_2_1, value)
        if plain.isascii() and "\n" not in plain and plain.isprintable():
            raw = text + ":" + value + card.newline
        else:
            encoded = binascii.b2a_qp(plain.encode("utf-8"), quotetabs=True, istext=False)
            qp = encoded.decode("ascii").replace("=\n", "=" + card.newline)
            raw = f"{text};CHARSET=UTF-8;ENCODING=QUOTED-PRINTABLE:{qp}{card.newline}"
    else:
        raw = _fold(f"{text}:{value}", card.newline)
    line = Line(raw, 0, name, group, value)
    line.params, line.singles = _as_read(params, singles)
    return line


def _as_read(
    params: Sequence[tuple[str, Sequence[str]]], singles: Sequence[str]
) -> tuple[dict[str, list[str]], list[str]]:
    """The parameters of a line written by ``format_line`` as reading it back gives them
    (``parse_card``): names upper-cased, each value as ``_param_value`` wrote it without its
    quotes, empty values dropped, and a parameter left with no value read as a single."""
    table: dict[str, list[str]] = {}
    read_singles = list(singles)
    for pname, values in params:
        kept = [v for v in (_param_value(v).strip('"') for v in values) if v]
        if kept:
            table.setdefault(pname.upper(), []).extend(kept)
        else:
            read_singles.append(pname)
    return table, read_singles


def kept_params(line: Line | None) -> list[tuple[str, list[str]]]:
    if line is None:
        return []
    return [
        (name, values)
        for name, values in line.params.items()
        if name not in ("ENCODING", "CHARSET") and values
    ]


def _label_type(label: str, version: str) -> str:
    label = label.strip().lower()
    if label == "mobile":
        label = "cell"
    label = _SAFE_TYPE_RE.sub("", label)
    return label if version.startswith("4") else label.upper()


def _typed_line(
    card: Card, name: str, item: Labeled | Address, pref: bool, group: str | None
) -> Line:
    if isinstance(item, Address):
        parts = [item.pobox, item.extended, item.street, item.locality, item.region]
        value = ";".join(escape(p) for p in [*parts, item.postcode, item.country])
    elif name == "URL":
        value = item.value.strip().replace("\n", " ")
    else:
        value = escape(item.value.strip())
    label = _label_type(item.label, card.version)
    params: list[tuple[str, list[str]]] = []
    singles: list[str] = []
    if card.version.startswith("2"):
        if name == "EMAIL":
            singles.append("INTERNET")
        if label:
            singles.append(label)
        if pref:
            singles.append("PREF")
    elif card.version.startswith("4"):
        if label:
            params.append(("TYPE", [label]))
        if pref:
            params.append(("PREF", ["1"]))
    else:
        types = [label] if label else []
        if pref:
            types.append("PREF")
        if types:
            params.append(("TYPE", types))
    return format_line(card, name, value, group=group, params=params, singles=singles)


def _repref(card: Card, line: Line, pref: bool) -> Line:
    """The same property with its preferred mark set or cleared; other params kept."""
    params: list[tuple[str, list[str]]] = []
    for pname, values in kept_params(line):
        if pname == "PREF":
            continue
        if pname == "TYPE":
            values = [
                t for v in values for t in v.split(",") if t.strip() and t.strip().lower() != "pref"
            ]
            if not values:
                continue
        params.append((pname, values))
    singles = [s for s in line.singles if s.lower() != "pref"]
    if pref:
        if card.version.startswith("2"):
            singles.append("PREF")
        elif card.version.startswith("4"):
            params.append(("PREF", ["1"]))
        else:
            for i, (pname, values) in enumerate(params):
                if pname == "TYPE":
                    params[i] = (pname, [*values, "PREF"])
                    break
            else:
                params.append(("TYPE", ["PREF"]))
    return format_line(
        card, line.name, line.value, group=line.group, params=params, singles=singles
    )


class _Editor:
    """Applies a patch to a parsed card, touching only the properties it must."""

    def __init__(self, card: Card) -> None:
        self.card = card
        self.lines = card.lines
        self.values, self.segments = card_values(card)
        self.dropped_groups: set[str] = set()

    def _of(self, name: str) -> list[Line]:
        return [line for line in self.lines if line.name == name]

    def replace(self, name: str, new: list[Line]) -> None:
        """Put ``new`` where the first ``name`` property was (or at the end)."""
        lines = self.lines
        old = [i for i, line in enumerate(lines) if line.name == name]
        if not old:  # a property the card did not have (every one of a new card's)
            at = len(lines)
            while at > 0 and not lines[at - 1].name and not lines[at - 1].raw.strip():
                at -= 1  # before trailing blank lines
            lines[at:at] = new
            return
        new_ids = {id(line) for line in new}
        for i in old:
            line = lines[i]
            if id(line) not in new_ids and line.group:
                self.dropped_groups.add(line.group.lower())
        gone = set(old)
        kept = [line for i, line in enumerate(lines) if i not in gone]
        kept[old[0] : old[0]] = new  # every line before the first old one was kept
        lines[:] = kept

    def set_text(self, name: str, value: str, escaped: str | None = None) -> None:
        existing = self._of(name)
        if not value.strip():
            if existing:
                self.replace(name, [])
            return
        if len(existing) == 1 and unescape(existing[0].value).strip() == value.strip():
            return
        base = existing[0] if existing else None
        line = format_line(
            self.card,
            name,
            escaped if escaped is not None else escape(value.strip()),
            group=base.group if base else None,
            params=kept_params(base),
            singles=base.singles if base else (),
        )
        self.replace(name, [line])

    def set_multi(self, name: str, items: Sequence[Labeled | Address]) -> None:
        items = [i for i in items if not _item_empty(i)]
        originals: list[tuple[Line, Labeled | Address, bool]] = []
        ranked: list[tuple[int, int, Labeled | Address]] = []
        ablabels = _ablabels(self.lines)
        for index, line in enumerate(self._of(name)):
            item, rank = _read_item(line, ablabels)
            originals.append((line, item, rank < 100))
            if not _item_empty(item):
                ranked.append((rank, index, item))
        current = [item for _, _, item in sorted(ranked, key=lambda t: (t[0], t[1]))]
        if current == list(items):
            return
        used: set[int] = set()
        new: list[Line] = []
        for index, item in enumerate(items):
            match = next((o for o in originals if id(o[0]) not in used and o[1] == item), None)
            was_pref = match is not None and match[2]
            pref = index == 0 and (len(items) > 1 or was_pref)
            if match is not None:
                used.add(id(match[0]))
                new.append(match[0] if pref == was_pref else _repref(self.card, match[0], pref))
            else:
                new.append(_typed_line(self.card, name, item, pref, None))
        self.replace(name, new)

    def finish(self) -> None:
        """Drop Apple label lines left without the property they labelled."""
        if not self.dropped_groups:
            return
        alive = {
            line.group.lower()
            for line in self.lines
            if line.group and not line.name.startswith("X-AB")
        }
        gone = self.dropped_groups - alive
        self.lines[:] = [
            line
            for line in self.lines
            if not (line.group and line.group.lower() in gone and line.name.startswith("X-AB"))
        ]


def property_text(card: Card, name: str) -> str | None:
    """The unescaped value of the first ``name`` property, or None when the card has none."""
    wanted = name.upper()
    for line in card.lines:
        if line.name == wanted:
            if line.value:
                return unescape(line.value)
            # Properties Pairsync does not map keep only their raw text: parse it now.
            logical = re.sub(r"\r?\n[ \t]", "", line.raw).rstrip("\r\n")
            try:
                return unescape(_split_line(logical, line.number)[2])
            except Exception:  # an odd line is simply no status
                return None
    return None


def set_property(card: Card, name: str, value: str) -> None:
    """Set (or add) one single-valued property, keeping its group and parameters."""
    _Editor(card).set_text(name.upper(), value)


def apply_patch(
    card: Card,
    patch: Mapping[str, FieldValue],
    add_segments: Iterable[str] = (),
    remove_segments: Iterable[str] = (),
    *,
    is_new: bool = False,
) -> None:
    ed = _Editor(card)
    old = ed.values

    def new_value(key: str) -> FieldValue | None:
        return patch[key] if key in patch else old.get(key)

    # ORG: the organization and its units (our department, escape_units) share one property.
    if "organization" in patch or "department" in patch:
        org = _text(new_value("organization"))
        units = _text(new_value("department"))
        if org == _text(old.get("organization")) and units == _text(old.get("department")):
            pass  # the same values: the line stays as written
        elif units:
            ed.set_text("ORG", f"{org};{units}", f"{escape(org)};{escape_units(units)}")
        else:
            ed.set_text("ORG", org)

    for key, prop in SIMPLE_PROPS.items():
        if key in patch:
            text = _text(patch[key])
            if key == "nickname":  # a comma list of nicknames
                if text != _text(old.get(key)):
                    ed.set_text(prop, text, escape_list(text))
            else:
                ed.set_text(prop, text)

    for key, prop in MULTI_PROPS.items():
        if key in patch:
            value = patch[key]
            if isinstance(value, str):
                items: list[Labeled | Address] = [Labeled(value)] if value.strip() else []
            else:
                items = [i for i in value if isinstance(i, (Labeled, Address))]
                if prop == "ADR":
                    items = [i for i in items if isinstance(i, Address)]
                else:
                    items = [i for i in items if isinstance(i, Labeled)]
            ed.set_multi(prop, items)

    # Names: keep FN and N consistent.
    old_fn = _text(old.get("full_name"))
    old_parts = [_text(old.get(k)) for k in N_KEYS]
    new_parts = [_text(new_value(k)) for k in N_KEYS]
    new_fn = _text(new_value("full_name"))
    fn_given = "full_name" in patch
    parts_given = any(k in patch for k in N_KEYS)
    if fn_given and not parts_given and new_fn:
        if not any(old_parts) or _join_name(old_parts) == old_fn:
            before, _, last = new_fn.rpartition(" ")
            new_parts = [last, before.strip(), "", "", ""]
    elif parts_given and not fn_given and (not old_fn or old_fn == _join_name(old_parts)):
        new_fn = _join_name(new_parts)
    if not new_fn:
        emails = new_value("emails")
        first_email = _text(emails) if isinstance(emails, tuple) else ""
        new_fn = _join_name(new_parts) or _text(new_value("organization")) or first_email
    if new_parts != old_parts or is_new:
        existing = ed._of("N")
        raw_parts = split_escaped(existing[0].value, ";") if existing else []
        raw_parts += [""] * (5 - len(raw_parts))
        # A component that did not change keeps its text as written (an escaped comma in
        # "de Vries\\, Jr." stays one); a changed one is a comma list (escape_list).
        components = [
            raw if new == old_part else escape_list(new)
            for raw, new, old_part in zip(raw_parts, new_parts, old_parts, strict=False)
        ]
        escaped = ";".join([*components, *raw_parts[5:]])
        line = format_line(
            card,
            "N",
            escaped,
            group=existing[0].group if existing else None,
            params=kept_params(existing[0] if existing else None),
        )
        ed.replace("N", [line])
    if new_fn != old_fn or (is_new and not ed._of("FN")):
        fn_lines = ed._of("FN")
        line = format_line(
            card,
            "FN",
            escape(new_fn),
            group=fn_lines[0].group if fn_lines else None,
            params=kept_params(fn_lines[0] if fn_lines else None),
        )
        ed.replace("FN", [line])

    # CATEGORIES <-> segments.
    add, remove = set(add_segments), set(remove_segments)
    if add or remove:
        current = [s for s in ordered_segments(card)]
        new_segs = [s for s in current if s not in remove]
        new_segs += sorted(s for s in add - set(current) if s not in remove)
        if new_segs != current:
            base_lines = ed._of("CATEGORIES")
            new_lines: list[Line] = []
            if new_segs:
                new_lines.append(
                    format_line(
                        card,
                        "CATEGORIES",
                        ",".join(escape(s) for s in new_segs),
                        group=base_lines[0].group if base_lines else None,
                        params=kept_params(base_lines[0] if base_lines else None),
                    )
                )
            ed.replace("CATEGORIES", new_lines)
    ed.finish()


def ordered_segments(card: Card) -> list[str]:
    out: list[str] = []
    for line in card.lines:
        if line.name == "CATEGORIES":
            for part in split_escaped(line.value, ","):
                cat = unescape(part).strip()
                if cat and cat not in out:
                    out.append(cat)
    return out


_UNSURE_RE = re.compile(r"\x00|\r(?!\n)|(?<!\r)\n|\n[ \t]*\r")
"""Text that could read back other than it was built: a NUL, a line break that is not the
card's CRLF (inside a value), a line of blanks (a fold that splits a run of spaces)."""
_TOKEN_RE = re.compile(r"[A-Za-z0-9-]+")


def written_values(card: Card, text: str) -> tuple[dict[str, FieldValue], frozenset[str]] | None:
    """What reading ``text`` back (``card_values(parse_card(text))``) gives, for the text of a
    card built here (``new_card``, ``apply_patch``, ``render``), taken from the card's lines
    instead of parsing the text again: a first sync writes thousands of cards and would read
    each one back. None when the text could read back otherwise (see ``_UNSURE_RE``; a
    property or group name that is not a plain token): the caller parses it.
    ``tests/connectors/test_vcard_text_written.py`` checks both agree on any values."""
    if (
        card.version not in ("3.0", "4.0")
        or (card.head, card.tail) != ("BEGIN:VCARD\r\n", "END:VCARD\r\n")
        or _UNSURE_RE.search(text)
    ):
        return None
    for line in card.lines:
        if not _TOKEN_RE.fullmatch(line.name) or (
            line.group is not None and not _TOKEN_RE.fullmatch(line.group)
        ):
            return None
    return card_values(card)


def render(card: Card) -> str:
    return card.head + "".join(line.raw for line in card.lines) + card.tail


def new_card(uid: str, prodid: str, version: str = "3.0") -> Card:
    """An empty card of ``version`` (3.0 or 4.0) with CRLF line ends, PRODID and UID."""
    nl = "\r\n"
    card = Card(f"BEGIN:VCARD{nl}", [], f"END:VCARD{nl}", version, nl)
    card.lines.append(Line(f"VERSION:{version}{nl}", 0, "VERSION", None, version))
    card.lines.append(Line(f"PRODID:{prodid}{nl}", 0, "PRODID"))
    card.lines.append(format_line(card, "UID", escape(uid)))
    return card
