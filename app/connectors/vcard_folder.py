"""A folder of vCard files in vdir layout: one ``<id>.vcf`` per contact.

Reading uses vobject's line and parameter parser (and its quoted-printable/charset decoding)
on each logical line; values are then unescaped and split here. Whole-card objects from
``vobject.readOne`` are not used because they cannot map a property back to the exact text
it came from, and an update must keep every property it does not touch as it was written
(PHOTO data, X- properties, Apple's ``item1.`` groups, unknown parameters, REV, UID…).

An update therefore works on the card's lines: lines of properties outside the patch are
copied byte for byte; only the properties of the patched fields are rewritten, in the card's
own vCard version (2.1, 3.0 or 4.0) and line-ending style. Writes are atomic (temporary file
in the same folder, fsync, ``os.replace``).

A record's version is ``"<mtime_ns>-<size>-<inode>"`` from ``os.stat``; listing only stats
files and never parses them.
"""

from __future__ import annotations

import binascii
import contextlib
import os
import re
import tempfile
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from vobject.base import ContentLine, ParseError, parseLine

from app.connectors.base import ChangeSet
from app.errors import BadData, Conflict, NotFound, PairsyncError, Rejected, Unavailable
from app.model import (
    STANDARD_FIELDS,
    Address,
    AppInfo,
    Capabilities,
    Create,
    FieldSpec,
    FieldType,
    FieldValue,
    Labeled,
    Meaning,
    Record,
    Schema,
    Unreadable,
    Update,
    WriteOp,
    WriteResult,
    email_key,
    record_emails,
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
READ_PROPS = frozenset(
    {"FN", "N", "ORG", "CATEGORIES", "VERSION", "X-ABLABEL", *SIMPLE_KEY, *MULTI_KEY}
)

# TYPE values that say nothing about the label.
NOISE_TYPES = frozenset({"pref", "voice", "internet", "x400", "msg", "aol", "applelink"})
MOBILE_TYPES = frozenset({"cell", "mobile", "iphone"})

PRODID = "-//Pairsync//vCard folder//EN"
RAW_LIMIT = 500

_PHYSICAL_RE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_ESCAPE_RE = re.compile(r"\\(.)", re.DOTALL)
_SAFE_TYPE_RE = re.compile(r"[^A-Za-z0-9-]")
_ABLABEL_RE = re.compile(r"^_\$!<(.*)>!\$_$")


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- values -----------------------------------------------------------------------------


def _unescape(text: str) -> str:
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


def _split(text: str, sep: str) -> list[str]:
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
    parts = [_unescape(p) for p in _split(text, ";")]
    if len(parts) < count:
        parts += [""] * (count - len(parts))
    return parts


def _escape(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace(",", "\\,").replace(";", "\\;")


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
    family, given, middle, prefix, suffix = parts
    return " ".join(p.strip() for p in (prefix, given, middle, family, suffix) if p.strip())


# --- parsing ----------------------------------------------------------------------------


class _Broken(Exception):
    def __init__(self, reason: str, line: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.line = line


@dataclass(slots=True)
class _Line:
    """One logical line of a card, with the exact text it was read from."""

    raw: str
    number: int = 0
    name: str = ""  # upper-case property name; "" for blank lines and nested components
    group: str | None = None
    value: str = ""  # quoted-printable decoded, still backslash-escaped
    params: dict[str, list[str]] = field(default_factory=dict)
    singles: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Card:
    head: str
    lines: list[_Line]
    tail: str
    version: str
    newline: str


def _decode_bytes(data: bytes) -> str:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("cp1252")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def _logical_lines(text: str) -> list[tuple[str, str, int]]:
    """(raw text, unfolded text, first physical line number); blank lines have ""."""
    out: list[tuple[str, str, int]] = []
    raw: list[str] = []
    logical = ""
    start = 0
    qp = False

    def flush() -> None:
        if raw:
            out.append(("".join(raw), logical, start))

    for number, phys in enumerate(_PHYSICAL_RE.findall(text), 1):
        body = phys.rstrip("\r\n")
        if not body.strip():
            flush()
            raw, logical, qp = [], "", False
            out.append((phys, "", number))
            continue
        if raw and qp:
            raw.append(phys)
            logical += "\n" + body
        elif raw and body[0] in " \t":
            raw.append(phys)
            logical += body[1:]
        else:
            flush()
            raw, logical, start = [phys], body, number
        qp = logical.endswith("=") and "QUOTED-PRINTABLE" in logical.split(":", 1)[0].upper()
    flush()
    return out


def _parse_card(text: str) -> _Card:
    if "\x00" in text:
        raise _Broken("it contains binary data, not text")
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
        raise _Broken("the file is empty")
    raw, logical, number = items[pos]
    if logical.strip().upper() != "BEGIN:VCARD":
        raise _Broken("it does not start with BEGIN:VCARD", number)
    head.append(raw)
    pos += 1

    lines: list[_Line] = []
    version = ""
    depth = 0
    for index in range(pos, len(items)):
        raw, logical, number = items[index]
        if not logical:
            lines.append(_Line(raw, number))
            continue
        upper = logical.strip().upper()
        if depth:
            depth += upper.startswith("BEGIN:") - upper.startswith("END:")
            lines.append(_Line(raw, number))
            continue
        if upper == "END:VCARD":
            tail = "".join(item[0] for item in items[index:])
            return _Card("".join(head), lines, tail, version or "3.0", newline)
        if upper.startswith("BEGIN:"):
            depth = 1
            lines.append(_Line(raw, number))
            continue
        try:
            name, params, value, group = parseLine(logical, number)
        except ParseError:
            shown = logical if len(logical) <= 60 else logical[:57] + "..."
            reason = f"this line is not a property of the form NAME:value: {shown!r}"
            raise _Broken(reason, number) from None
        name = name.upper()
        if name == "END" or name == "BEGIN":
            raise _Broken(f"unexpected {name}:{value}", number)
        line = _Line(raw, number, name, group)
        if name in READ_PROPS:
            if "QUOTED-PRINTABLE" in logical.split(":", 1)[0].upper():
                # vobject decodes quoted-printable text with the line's CHARSET.
                try:
                    content = ContentLine(name, params, value, group, encoded=True)
                except Exception as err:  # QP/charset decoding problems of any kind
                    raise _Broken(f"its text could not be decoded ({err})", number) from err
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
    raise _Broken("the card is not closed (END:VCARD is missing)")


def _types(line: _Line) -> list[str]:
    out: list[str] = []
    for value in line.params.get("TYPE", ()):
        out.extend(t.strip().lower() for t in value.split(",") if t.strip())
    out.extend(s.lower() for s in line.singles)
    return out


def _pref(line: _Line, types: list[str]) -> int:
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
    value = _unescape(value).strip()
    match = _ABLABEL_RE.match(value)
    if match:
        value = match.group(1)
    return value.strip().lower()


def _item_value(line: _Line) -> str:
    value = _unescape(line.value).strip()
    if line.name == "TEL" and value[:4].lower() == "tel:":
        value = value[4:]
    elif line.name == "EMAIL" and value[:7].lower() == "mailto:":
        value = value[7:]
    return value


def _read_item(line: _Line, ablabels: Mapping[str, str]) -> tuple[Labeled | Address, int]:
    types = _types(line)
    ablabel = ablabels.get(line.group.lower(), "") if line.group else ""
    label = _label(line.name, types, ablabel)
    rank = _pref(line, types)
    if line.name == "ADR":
        p = [part.strip() for part in _components(line.value, 7)]
        addr = Address(p[2], p[3], p[4], p[5], p[6], pobox=p[0], extended=p[1], label=label)
        return addr, rank
    return Labeled(_item_value(line), label), rank


def _ablabels(lines: Iterable[_Line]) -> dict[str, str]:
    return {
        line.group.lower(): _clean_ablabel(line.value)
        for line in lines
        if line.group and line.name == "X-ABLABEL"
    }


def _card_values(card: _Card) -> tuple[dict[str, FieldValue], frozenset[str]]:
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
            texts.setdefault("full_name", _unescape(line.value).strip())
        elif name in SIMPLE_KEY:
            texts.setdefault(SIMPLE_KEY[name], _unescape(line.value).strip())
        elif name == "N" and not seen_n:
            seen_n = True
            for key, part in zip(N_KEYS, _components(line.value, 5), strict=False):
                texts[key] = part.strip()
        elif name == "ORG" and not seen_org:
            seen_org = True
            parts = _components(line.value, 2)
            texts["organization"] = parts[0].strip()
            texts["department"] = parts[1].strip()
        elif name == "CATEGORIES":
            for part in _split(line.value, ","):
                cat = _unescape(part).strip()
                if cat and cat not in segments:
                    segments.append(cat)
    out: dict[str, FieldValue] = {k: v for k, v in texts.items() if v}
    for key, found in multi.items():
        found.sort(key=lambda t: (t[0], t[1]))
        out[key] = tuple(item for _, _, item in found)  # type: ignore[assignment]
    return out, frozenset(segments)


def _broken_message(filename: str, err: _Broken) -> str:
    where = f"line {err.line}: " if err.line else ""
    return f"The file {filename} is not a valid vCard ({where}{err.reason})."


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


def _format_line(
    card: _Card,
    name: str,
    value: str,
    *,
    group: str | None = None,
    params: Sequence[tuple[str, Sequence[str]]] = (),
    singles: Sequence[str] = (),
) -> _Line:
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
    return _Line(raw, 0, name, group, value)


def _kept_params(line: _Line | None) -> list[tuple[str, list[str]]]:
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
    card: _Card, name: str, item: Labeled | Address, pref: bool, group: str | None
) -> _Line:
    if isinstance(item, Address):
        parts = [item.pobox, item.extended, item.street, item.locality, item.region]
        value = ";".join(_escape(p) for p in [*parts, item.postcode, item.country])
    elif name == "URL":
        value = item.value.strip().replace("\n", " ")
    else:
        value = _escape(item.value.strip())
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
    return _format_line(card, name, value, group=group, params=params, singles=singles)


def _repref(card: _Card, line: _Line, pref: bool) -> _Line:
    """The same property with its preferred mark set or cleared; other params kept."""
    params: list[tuple[str, list[str]]] = []
    for pname, values in _kept_params(line):
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
    return _format_line(
        card, line.name, line.value, group=line.group, params=params, singles=singles
    )


class _Editor:
    """Applies a patch to a parsed card, touching only the properties it must."""

    def __init__(self, card: _Card) -> None:
        self.card = card
        self.lines = card.lines
        self.values, self.segments = _card_values(card)
        self.dropped_groups: set[str] = set()

    def _of(self, name: str) -> list[_Line]:
        return [line for line in self.lines if line.name == name]

    def replace(self, name: str, new: list[_Line]) -> None:
        """Put ``new`` where the first ``name`` property was (or at the end)."""
        old_ids = {id(line) for line in self.lines if line.name == name}
        new_ids = {id(line) for line in new}
        for line in self.lines:
            if id(line) in old_ids and id(line) not in new_ids and line.group:
                self.dropped_groups.add(line.group.lower())
        at = next((i for i, line in enumerate(self.lines) if id(line) in old_ids), None)
        kept = [line for line in self.lines if id(line) not in old_ids]
        if at is None:
            at = len(kept)
            while at > 0 and not kept[at - 1].name and not kept[at - 1].raw.strip():
                at -= 1  # before trailing blank lines
        kept[at:at] = new
        self.lines[:] = kept

    def set_text(self, name: str, value: str, escaped: str | None = None) -> None:
        existing = self._of(name)
        if not value.strip():
            if existing:
                self.replace(name, [])
            return
        if len(existing) == 1 and _unescape(existing[0].value).strip() == value.strip():
            return
        base = existing[0] if existing else None
        line = _format_line(
            self.card,
            name,
            escaped if escaped is not None else _escape(value.strip()),
            group=base.group if base else None,
            params=_kept_params(base),
            singles=base.singles if base else (),
        )
        self.replace(name, [line])

    def set_multi(self, name: str, items: Sequence[Labeled | Address]) -> None:
        items = [i for i in items if not _item_empty(i)]
        originals: list[tuple[_Line, Labeled | Address, bool]] = []
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
        new: list[_Line] = []
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


def _apply(
    card: _Card,
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

    # ORG: organization and department share one property.
    if "organization" in patch or "department" in patch:
        existing = ed._of("ORG")
        parts = _components(existing[0].value, 2) if existing else ["", ""]
        parts[0] = _text(new_value("organization"))
        parts[1] = _text(new_value("department"))
        while parts and not parts[-1].strip():
            parts.pop()
        ed.set_text("ORG", ";".join(parts), ";".join(_escape(p) for p in parts))

    for key, prop in SIMPLE_PROPS.items():
        if key in patch:
            ed.set_text(prop, _text(patch[key]))

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
        extra = _split(existing[0].value, ";")[5:] if existing else []
        escaped = ";".join([*(_escape(p) for p in new_parts), *extra])
        line = _format_line(
            card,
            "N",
            escaped,
            group=existing[0].group if existing else None,
            params=_kept_params(existing[0] if existing else None),
        )
        ed.replace("N", [line])
    if new_fn != old_fn or (is_new and not ed._of("FN")):
        fn_lines = ed._of("FN")
        line = _format_line(
            card,
            "FN",
            _escape(new_fn),
            group=fn_lines[0].group if fn_lines else None,
            params=_kept_params(fn_lines[0] if fn_lines else None),
        )
        ed.replace("FN", [line])

    # CATEGORIES <-> segments.
    add, remove = set(add_segments), set(remove_segments)
    if add or remove:
        current = [s for s in _ordered_segments(card)]
        new_segs = [s for s in current if s not in remove]
        new_segs += sorted(s for s in add - set(current) if s not in remove)
        if new_segs != current:
            base_lines = ed._of("CATEGORIES")
            new_lines: list[_Line] = []
            if new_segs:
                new_lines.append(
                    _format_line(
                        card,
                        "CATEGORIES",
                        ",".join(_escape(s) for s in new_segs),
                        group=base_lines[0].group if base_lines else None,
                        params=_kept_params(base_lines[0] if base_lines else None),
                    )
                )
            ed.replace("CATEGORIES", new_lines)
    ed.finish()


def _ordered_segments(card: _Card) -> list[str]:
    out: list[str] = []
    for line in card.lines:
        if line.name == "CATEGORIES":
            for part in _split(line.value, ","):
                cat = _unescape(part).strip()
                if cat and cat not in out:
                    out.append(cat)
    return out


def _render(card: _Card) -> str:
    return card.head + "".join(line.raw for line in card.lines) + card.tail


def _new_card(uid: str) -> _Card:
    nl = "\r\n"
    card = _Card(f"BEGIN:VCARD{nl}", [], f"END:VCARD{nl}", "3.0", nl)
    card.lines.append(_Line(f"VERSION:3.0{nl}", 0, "VERSION", None, "3.0"))
    card.lines.append(_Line(f"PRODID:{PRODID}{nl}", 0, "PRODID"))
    card.lines.append(_format_line(card, "UID", _escape(uid)))
    return card


# --- the connector ----------------------------------------------------------------------


def _version_of(st: os.stat_result) -> str:
    return f"{st.st_mtime_ns}-{st.st_size}-{st.st_ino}"


def _valid_id(record_id: str) -> bool:
    return (
        bool(record_id)
        and not record_id.startswith(".")
        and not any(ch in record_id for ch in '/\\\x00:*?"<>|')
        and len(record_id) <= 200
    )


class VCardFolderApp:
    """Connector over a folder of ``.vcf`` files (vdir layout)."""

    info = AppInfo(
        kind="vcard-folder",
        name="vCard folder",
        aliases=("vcf", "vdir", "contacts folder"),
        capabilities=Capabilities(segments=True, chooses_ids=True, batch_size=500),
    )

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._cache: dict[str, tuple[str, Record | Unreadable]] = {}
        self._mode = 0o666 & ~_current_umask()

    # --- helpers -------------------------------------------------------------------------

    def _check_folder(self) -> None:
        if not self.path.is_dir():
            if self.path.exists():
                raise Unavailable(f"The contacts folder {self.path} is not a folder.")
            raise Unavailable(f"The contacts folder {self.path} does not exist.")

    def _file(self, record_id: str) -> Path:
        path = self.path / f"{record_id}.vcf"
        if not path.exists():
            upper = self.path / f"{record_id}.VCF"
            if upper.exists():
                return upper
        return path

    def _read(self, record_id: str) -> tuple[str, Record | Unreadable] | None:
        """(version, item) for an id, or None when there is no such file."""
        if not _valid_id(record_id):
            return None
        path = self._file(record_id)
        try:
            with open(path, "rb") as fh:
                version = _version_of(os.fstat(fh.fileno()))
                cached = self._cache.get(record_id)
                if cached is not None and cached[0] == version:
                    return cached
                data = fh.read()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            self._cache.pop(record_id, None)
            return None
        except OSError as err:
            item: Record | Unreadable = Unreadable(
                record_id, "", f"The file {path.name} could not be read ({err.strerror})."
            )
            return "", item
        text = _decode_bytes(data)
        try:
            card = _parse_card(text)
            fields, segments = _card_values(card)
            item = Record(record_id, version, fields, segments)
        except _Broken as err:
            item = Unreadable(record_id, version, _broken_message(path.name, err), text[:RAW_LIMIT])
        except Exception as err:  # never crash a read on one odd file
            item = Unreadable(
                record_id,
                version,
                f"The file {path.name} is not a valid vCard ({type(err).__name__}: {err}).",
                text[:RAW_LIMIT],
            )
        self._cache[record_id] = (version, item)
        return version, item

    @staticmethod
    def _copy(item: Record | Unreadable) -> Record | Unreadable:
        if isinstance(item, Record):
            return Record(item.id, item.version, dict(item.fields), item.segments, item.subscribed)
        return item

    def _all(self) -> list[Record | Unreadable]:
        out: list[Record | Unreadable] = []
        for rid in self.list_versions():
            got = self._read(rid)
            if got is not None:
                out.append(got[1])
        return out

    # --- protocol ------------------------------------------------------------------------

    def fields(self) -> tuple[FieldSpec, ...]:
        return FIELDS

    def schema(self) -> Schema:
        segments: set[str] = set()
        for item in self._all():
            if isinstance(item, Record):
                segments |= item.segments
        return Schema(FIELDS, tuple(sorted(segments)))

    def prepare(self) -> None:
        self._check_folder()

    def list_versions(self) -> dict[str, str]:
        try:
            entries = os.scandir(self.path)
        except FileNotFoundError:
            raise Unavailable(f"The contacts folder {self.path} does not exist.") from None
        except NotADirectoryError:
            raise Unavailable(f"The contacts folder {self.path} is not a folder.") from None
        except OSError as err:
            raise Unavailable(
                f"The contacts folder {self.path} cannot be read ({err.strerror})."
            ) from None
        out: dict[str, str] = {}
        with entries:
            for entry in entries:
                name = entry.name
                if name[-4:].lower() != ".vcf" or name.startswith("."):
                    continue
                try:
                    if not entry.is_file():
                        continue
                    out[name[:-4]] = _version_of(entry.stat())
                except OSError:
                    continue  # vanished meanwhile
        return out

    def fetch(self, ids: Sequence[str]) -> list[Record | Unreadable]:
        self._check_folder()
        out: list[Record | Unreadable] = []
        for rid in ids:
            got = self._read(rid)
            if got is not None:
                out.append(self._copy(got[1]))
        return out

    def find_by_email(self, emails: Iterable[str]) -> list[Record]:
        keys = {email_key(e) for e in emails}
        keys.discard("")
        if not keys:
            return []
        return [
            rec
            for rec in (self._copy(i) for i in self._all())
            if isinstance(rec, Record) and keys & {email_key(e) for e in record_emails(rec)}
        ]

    def changes(self, cursor: str | None) -> ChangeSet | None:
        return None

    def close(self) -> None:
        pass

    # --- writing -------------------------------------------------------------------------

    def write(self, ops: Sequence[WriteOp]) -> list[WriteResult]:
        self._check_folder()
        results: list[WriteResult] = []
        for op in ops:
            try:
                record = self._create(op) if isinstance(op, Create) else self._update(op)
                results.append(WriteResult(op.op_id, record=record))
            except PairsyncError as err:
                results.append(WriteResult(op.op_id, error=err))
            except OSError as err:
                self._check_folder()
                results.append(
                    WriteResult(
                        op.op_id,
                        error=Rejected(f"The contact file could not be written ({err.strerror})."),
                    )
                )
        self._sync_folder()
        return results

    def _create(self, op: Create) -> Record:
        rid = op.new_id or str(uuid.uuid4())
        if not _valid_id(rid):
            raise Rejected(f"{rid!r} cannot be used as a file name for a contact.")
        path = self.path / f"{rid}.vcf"
        if path.exists() or self._file(rid).exists():
            raise Conflict(f"A contact file {path.name} already exists.")
        card = _new_card(rid)
        fields = {k: v for k, v in op.fields.items() if k in KNOWN_KEYS}
        _apply(card, fields, op.segments, is_new=True)
        self._store(path, _render(card), exclusive=True)
        return self._reread(rid)

    def _update(self, op: Update) -> Record:
        rid = op.record_id
        path = self._file(rid)
        if not _valid_id(rid) or not path.is_file():
            raise NotFound("The contact no longer exists in the folder.")
        with open(path, "rb") as fh:
            st = os.fstat(fh.fileno())
            data = fh.read()
        version = _version_of(st)
        if op.expected_version is not None and op.expected_version != version:
            raise Conflict("The contact changed in the folder while syncing; it is retried.")
        text = _decode_bytes(data)
        try:
            card = _parse_card(text)
        except _Broken as err:
            raise BadData(_broken_message(path.name, err), raw=text[:RAW_LIMIT]) from None
        fields = {k: v for k, v in op.fields.items() if k in KNOWN_KEYS}
        _apply(card, fields, op.add_segments, op.remove_segments)
        new_text = _render(card)
        if new_text != text:
            self._store(path, new_text, exclusive=False, mode=st.st_mode & 0o7777)
            after = os.stat(path)
            if _version_of(after) == version:  # same size, inode reused, coarse clock
                os.utime(path, ns=(after.st_atime_ns, after.st_mtime_ns + 1))
        return self._reread(rid)

    def _reread(self, rid: str) -> Record:
        got = self._read(rid)
        if got is None:
            raise NotFound("The contact file disappeared right after it was written.")
        item = got[1]
        if not isinstance(item, Record):
            raise BadData(item.message, raw=item.raw)
        return self._copy(item)  # type: ignore[return-value]

    def _store(self, path: Path, text: str, *, exclusive: bool, mode: int | None = None) -> None:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".tmp", dir=self.path)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(text.encode("utf-8"))
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, self._mode if mode is None else mode)
            if exclusive:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    raise Conflict(f"A contact file {path.name} already exists.") from None
                except OSError:  # no hard links on this file system
                    if path.exists():
                        raise Conflict(f"A contact file {path.name} already exists.") from None
                    os.replace(tmp, path)
            else:
                os.replace(tmp, path)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    def _sync_folder(self) -> None:
        if os.name != "posix":
            return
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)
