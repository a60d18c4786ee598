"""On-demand sync benchmarks (not a pytest module: pytest's addopts ignore tests/perf).

    python -m tests.perf.bench_sync [--sizes 1000,10000,100000] [--backends memory,files,empty]
                                    [--json PATH] [--profile DIR] [--workdir DIR] [--keep]

Backends
--------
* ``memory``: two ``MemoryApp`` through the ``Pair`` test harness (real SQLite store in a temp
  folder, real engine). Each phase runs in a fresh subprocess; the two apps' records are
  pickled to disk between phases (``apps.pickle``), so the peak RSS of a phase includes the
  memory app's own data (shown separately as "base RSS": RSS after loading, before syncing).
* ``files``: a vCard folder (side A, account ``vcard-folder``) and a CSV file (side B, account
  ``csv``) through ``app.service.Service`` with ``PAIRSYNC_HOME`` set to a temp folder, exactly
  as the CLI syncs real accounts.
* ``empty``: as ``files``, with a CSV file that has its header and no contacts (a first sync
  that copies a whole folder into a new CSV: issue 18's bounded-memory case).

Data: N contacts on A (names, 1–2 emails, 1–2 phones, company, title, notes, 0–2 segments);
N/2 on B, of which N/4 share A's primary email (matched on the first sync; they differ in
title, notes, an extra email or a segment, so they are updated on both sides) and N/4 are new.

Phases, each in a fresh subprocess so that peak RSS (``ru_maxrss``) is per phase:
``first`` (first sync), ``resync`` (nothing changed), ``edit_a`` (1 % of A's contacts get a
new title; for files the .vcf files are rewritten), ``edit_b`` (1 % of B's contacts get a new
title). ``bulk_a`` / ``bulk_b`` (optional, after ``resync``) give *every* contact of A or
B a new title: a later run with 100 % changed, which the mass-change guard (here at its
largest) counts slice by slice before the slices are planned again and applied.
``--phases dry,preview,first,...`` adds a dry run and the wizard's preview of the first
sync (each before ``first``, on the same data: neither writes). Edits are made by a
separate, unmeasured subprocess before the measured one.

For each phase: wall time and process CPU time of the sync call, peak RSS of the process,
records read/created/updated (from the RunReport), records/s, and a split of the time into
connector calls (list_versions/fetch/write/prepare/schema…, timed by wrapping the connector
classes' methods), store calls (``SyncState`` methods: SQLite + ORM) and the rest of the engine
("engine" = ``SyncRun.run``; for files "outside run" = what ``Service.sync`` does before the
run: building connectors, ``schema()``, mappings).
"""

from __future__ import annotations

import argparse
import cProfile
import csv
import functools
import gc
import io
import itertools
import json
import os
import pickle
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
PHASES = ("first", "resync", "edit_a", "edit_b")
PREVIEWS = ("dry", "preview")
"""Optional phases (``--phases``), run before ``first`` on the same data: a dry run
(``sync --dry-run``) and the wizard's preview (``Service.preview``: a dry run kept and
broken down). Neither writes, so the first sync after them starts from the same state."""
MUTATION = {"edit_a": ("a", 100), "edit_b": ("b", 100), "bulk_a": ("a", 1), "bulk_b": ("b", 1)}
"""A phase that edits first: the side edited, and one contact in how many gets a new title."""
BULKS = ("bulk_a", "bulk_b")
MEMORY_NOTE = (
    "memory backend: one subprocess per phase; the MemoryApp records are pickled to disk "
    "between phases (peak RSS includes the in-memory apps' data, see 'base')"
)

GIVEN = [
    "Olivia",
    "Liam",
    "Emma",
    "Noah",
    "Amelia",
    "Oliver",
    "Ava",
    "Elijah",
    "Sophia",
    "Lucas",
    "Isabella",
    "Mateo",
    "Mia",
    "Levi",
    "Charlotte",
    "Asher",
    "Luna",
    "James",
    "Harper",
    "Leo",
    "Evelyn",
    "Ezra",
    "Aria",
    "Jack",
    "Ella",
    "Luca",
    "Chloe",
    "Henry",
    "Nora",
    "Hudson",
    "Zoé",
    "Jürgen",
    "Åsa",
    "Björn",
    "Siobhán",
    "Mohammed",
    "Fatima",
    "Hiroshi",
    "Yuki",
    "Wei",
    "Priya",
    "Arjun",
    "Chiara",
    "Giulia",
    "Matteo",
    "Lars",
    "Ingrid",
    "Pierre",
    "Amélie",
]
FAMILY = [
    "Smith",
    "Johnson",
    "Williams",
    "Brown",
    "Jones",
    "Garcia",
    "Miller",
    "Davis",
    "Rodriguez",
    "Martinez",
    "Hernandez",
    "Lopez",
    "Gonzalez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Taylor",
    "Moore",
    "Jackson",
    "Martin",
    "Lee",
    "Perez",
    "Thompson",
    "White",
    "Harris",
    "Sanchez",
    "Clark",
    "Ramirez",
    "Lewis",
    "Robinson",
    "Walker",
    "Young",
    "Allen",
    "King",
    "Wright",
    "Scott",
    "Müller",
    "Schmidt",
    "Dubois",
    "Lefèvre",
    "Rossi",
    "Russo",
    "Tanaka",
    "Suzuki",
    "Nakamura",
    "Kowalski",
    "Nowak",
    "O'Brien",
    "Murphy",
]
COMPANIES = (
    "Acme Corp",
    "Globex",
    "Initech",
    "Umbrella Ltd",
    "Stark Industries",
    "Wayne Enterprises",
    "Hooli",
    "Pied Piper",
    "Vandelay Industries",
    "Soylent GmbH",
    "Tyrell SA",
    "Wonka & Co",
    "Cyberdyne",
    "Aperture Science",
    "Black Mesa",
    "Gringotts",
    "Oscorp",
    "Monarch Solutions",
    "Nakatomi Trading",
    "Blue Sun",
)
TITLES = (
    "CEO",
    "CTO",
    "Sales Manager",
    "Account Executive",
    "Engineer",
    "Senior Engineer",
    "Designer",
    "Product Manager",
    "Consultant",
    "Accountant",
    "Buyer",
    "Office Manager",
    "Director of Operations",
    "Head of Marketing",
    "Intern",
)
SEGMENTS = ("Customers", "Friends", "Family", "Newsletter", "VIP", "Suppliers", "Press", "Board")
NOTE_WORDS = [
    "met at the trade fair",
    "prefers email",
    "call back after the summer",
    "interested in the new offer",
    "knows our CEO",
    "send the catalogue",
    "birthday in spring",
    "invoice address differs",
    "speaks French and German",
    "follow up next quarter",
]
DOMAINS = ("example.com", "example.org", "mail.example.net", "corp.example", "example.co.uk")


# --- data ----------------------------------------------------------------------------------


def _person(rng: random.Random, tag: str, i: int) -> dict[str, Any]:
    given, family = rng.choice(GIVEN), rng.choice(FAMILY)
    local = re.sub(r"[^a-z]", "", f"{given}.{family}".lower()) or "x"
    emails = [(f"{local}.{tag}{i}@{rng.choice(DOMAINS)}", "work")]
    if rng.random() < 0.5:
        emails.append((f"{local[:8]}{tag}{i}@home.example", "home"))
    phones = [(f"+44 7700 {rng.randrange(100000, 999999)}", "mobile")]
    if rng.random() < 0.5:
        phones.append((f"+1 212 555 {rng.randrange(1000, 9999)}", "work"))
    notes = ", ".join(rng.sample(NOTE_WORDS, rng.randint(1, 3))).capitalize() + "."
    return {
        "given": given,
        "family": family,
        "emails": emails,
        "phones": phones,
        "org": rng.choice(COMPANIES),
        "title": rng.choice(TITLES),
        "notes": notes,
        "segments": sorted(rng.sample(SEGMENTS, rng.randint(0, 2))),
    }


def make_people(n: int, seed: int = 7) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """N people on A; N/2 on B, half of them sharing the primary email of someone on A."""
    rng = random.Random(seed)
    side_a = [_person(rng, "a", i) for i in range(n)]
    overlap = rng.sample(range(n), n // 4)
    side_b: list[dict[str, Any]] = []
    for j in overlap:
        p = dict(side_a[j])
        email = p["emails"][0][0]
        emails = [(email.upper() if rng.random() < 0.2 else email, "work")]
        if len(p["emails"]) == 1 and rng.random() < 0.5:
            emails.append((f"other{j}@b.example", "home"))  # merged into A's emails
        p["emails"] = emails
        p["phones"] = p["phones"][:1]
        if rng.random() < 0.5:
            p["title"] = rng.choice(TITLES)  # differs: A (the winner) decides on the first sync
        p["notes"] = ""  # filled from A
        if rng.random() < 0.3:
            p["segments"] = sorted({*p["segments"], "Imported"})  # merged both ways
        side_b.append(p)
    side_b += [_person(rng, "b", i) for i in range(n // 2 - len(overlap))]
    return side_a, side_b


def _memory_fields(p: dict[str, Any]) -> dict[str, Any]:
    from app.model import Labeled

    return {
        "full_name": f"{p['given']} {p['family']}",
        "given_name": p["given"],
        "family_name": p["family"],
        "emails": tuple(Labeled(v, lab) for v, lab in p["emails"]),
        "phones": tuple(Labeled(v, lab) for v, lab in p["phones"]),
        "organization": p["org"],
        "title": p["title"],
        "notes": p["notes"],
    }


def _vcard(uid: str, p: dict[str, Any]) -> str:
    def esc(text: str) -> str:
        return text.replace("\\", "\\\\").replace(",", "\\,").replace(";", "\\;")

    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        "PRODID:-//Bench//EN",
        f"UID:{uid}",
        f"FN:{esc(p['given'])} {esc(p['family'])}",
        f"N:{esc(p['family'])};{esc(p['given'])};;;",
    ]
    for n, (v, lab) in enumerate(p["emails"]):
        pref = ",PREF" if n == 0 else ""
        lines.append(f"EMAIL;TYPE=INTERNET,{lab.upper()}{pref}:{v}")
    for v, lab in p["phones"]:
        lines.append(f"TEL;TYPE={'CELL' if lab == 'mobile' else lab.upper()}:{v}")
    lines.append(f"ORG:{esc(p['org'])}")
    lines.append(f"TITLE:{esc(p['title'])}")
    lines.append(f"NOTE:{esc(p['notes'])}")
    if p["segments"]:
        lines.append("CATEGORIES:" + ",".join(esc(s) for s in p["segments"]))
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


CSV_HEADER = [
    "First Name",
    "Last Name",
    "Work Email",
    "Home Email",
    "Other Email",
    "Mobile Phone",
    "Work Phone",
    "Home Phone",
    "Company",
    "Job Title",
    "Notes",
    "Categories",
]


def _csv_row(p: dict[str, Any]) -> list[str]:
    emails = {"work": "", "home": ""}
    for v, lab in p["emails"]:
        emails[lab] = v
    phones = {"mobile": "", "work": ""}
    for v, lab in p["phones"]:
        phones[lab] = v
    return [
        p["given"],
        p["family"],
        emails["work"],
        emails["home"],
        "",
        phones["mobile"],
        phones["work"],
        "",
        p["org"],
        p["title"],
        p["notes"],
        "; ".join(p["segments"]),
    ]


# --- timers --------------------------------------------------------------------------------


class Timers:
    """Wraps methods of classes; times the outermost call per group (no double counting)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: dict[str, int] = defaultdict(int)
        self.group_seconds: dict[str, float] = defaultdict(float)
        self.depth: dict[str, int] = defaultdict(int)
        self.listed: dict[str, int] = {}

    def wrap(self, cls: type, names: list[str], group: str, label: Callable[[Any], str]) -> None:
        for name in names:
            orig = getattr(cls, name, None)
            if orig is None:
                continue
            setattr(cls, name, self._wrapper(orig, name, group, label))

    def _wrapper(
        self, orig: Callable[..., Any], name: str, group: str, label: Callable[[Any], str]
    ) -> Callable[..., Any]:
        @functools.wraps(orig)
        def timed(obj: Any, *args: Any, **kwargs: Any) -> Any:
            if self.depth[group]:
                return orig(obj, *args, **kwargs)
            self.depth[group] += 1
            start = time.perf_counter()
            try:
                out = orig(obj, *args, **kwargs)
            finally:
                spent = time.perf_counter() - start
                self.depth[group] -= 1
                key = f"{label(obj)}.{name}"
                self.seconds[key] += spent
                self.calls[key] += 1
                self.group_seconds[group] += spent
            if name == "list_versions":
                self.listed[label(obj)] = len(out)
            return out

        return timed

    def detail(self) -> dict[str, dict[str, float]]:
        return {
            k: {"s": round(v, 4), "calls": self.calls[k]}
            for k, v in sorted(self.seconds.items(), key=lambda kv: -kv[1])
        }


CONNECTOR_METHODS = ["schema", "prepare", "list_versions", "fetch", "find_by_email", "write"]


def install_timers(connector_classes: list[type]) -> Timers:
    from app.engine.sync import SyncRun
    from app.store.state import SyncState

    timers = Timers()
    for cls in connector_classes:
        timers.wrap(cls, CONNECTOR_METHODS, "connector", lambda o: f"{o.info.name}")
    store_methods = [n for n, v in vars(SyncState).items() if callable(v) and not n.startswith("_")]
    timers.wrap(SyncState, store_methods, "store", lambda o: "store")
    timers.wrap(SyncRun, ["run"], "run", lambda o: "engine")
    return timers


def rss_now_mb() -> float:
    try:
        import psutil

        return float(psutil.Process().memory_info().rss) / 2**20
    except ImportError:  # pragma: no cover
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak_rss() -> bool:
    """Linux: reset the high-water mark so ru_maxrss covers the sync only, not the loading."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024


class Progress:
    """Engine progress callback: one stderr line per phase change or every ~2 s."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.start = time.perf_counter()
        self.last = 0.0
        self.phase = ""

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if phase != self.phase or now - self.last >= 2.0 or (total and done == total):
            if phase == self.phase and total and done == total and now - self.last < 0.5:
                return
            self.phase, self.last = phase, now
            count = f" {done}/{total}" if total else ""
            print(
                f"  [{self.prefix} {now - self.start:7.1f}s] {phase}{count}",
                file=sys.stderr,
                flush=True,
            )


# --- memory backend ------------------------------------------------------------------------


def _memory_pair(folder: Path, create: bool) -> Any:
    from app.engine.sync import Settings
    from app.mapping.defaults import default_mappings
    from app.store.db import Store
    from tests.engine.harness import Pair

    settings = {"guard_max_writes": 10**9}
    if create:
        return Pair(folder, **settings)
    from app.connectors.memory import MemoryApp

    pair = Pair.__new__(Pair)
    pair.store = Store(folder / "pairsync.db")
    with open(folder / "apps.pickle", "rb") as fh:
        saved = pickle.load(fh)
    pair.a = MemoryApp("App A")
    pair.b = MemoryApp("App B")
    for app, key in ((pair.a, "a"), (pair.b, "b")):
        app.records = saved[key]
        top = max((int(r.version[1:]) for r in app.records.values()), default=0)
        app._counter = itertools.count(top + 1)
    pair.cid = saved["cid"]
    pair.settings = Settings(**settings)
    pair.mappings = default_mappings(pair.a.schema(), pair.b.schema())
    return pair


def _save_memory(folder: Path, pair: Any) -> None:
    tmp = folder / "apps.pickle.tmp"
    with open(tmp, "wb") as fh:
        pickle.dump(
            {"a": pair.a.records, "b": pair.b.records, "cid": pair.cid},
            fh,
            protocol=pickle.HIGHEST_PROTOCOL,
        )
    os.replace(tmp, folder / "apps.pickle")


def memory_setup(folder: Path, size: int) -> None:
    side_a, side_b = make_people(size)
    pair = _memory_pair(folder, create=True)
    for p in side_a:
        pair.a.add(_memory_fields(p), p["segments"])
    for p in side_b:
        pair.b.add(_memory_fields(p), p["segments"])
    _save_memory(folder, pair)
    pair.store.close()


def memory_mutate(folder: Path, side: str, tag: str, one_in: int) -> int:
    pair = _memory_pair(folder, create=False)
    app = pair.a if side == "a" else pair.b
    ids = sorted(app.records)
    chosen = random.Random(f"{tag}-{len(ids)}").sample(ids, max(1, round(len(ids) / one_in)))
    for n, rid in enumerate(chosen):
        app.edit(rid, title=f"Edited title {tag} {n}")
    _save_memory(folder, pair)
    pair.store.close()
    return len(chosen)


def memory_phase(folder: Path, phase: str, profile: Path | None) -> dict[str, Any]:
    from app.connectors.memory import MemoryApp
    from app.engine.sync import SyncRun
    from app.model import Side

    pair = _memory_pair(folder, create=False)
    timers = install_timers([MemoryApp])
    gc.collect()
    base = rss_now_mb()
    load_peak = peak_rss_mb()
    reset = reset_peak_rss()
    from app.preview import PreviewRun

    run = (PreviewRun if phase == "preview" else SyncRun)(
        "c",
        pair.state,
        {Side.A: pair.a, Side.B: pair.b},
        pair.mappings,
        pair.settings,
        Progress(f"memory {phase}"),
    )
    if isinstance(run, PreviewRun):
        preview_run = run
        report, wall, cpu = _measure(lambda: _PreviewReport(preview_run.preview()), profile)
    else:
        report, wall, cpu = _measure(lambda: run.run(dry_run=phase == "dry"), profile)
    if phase not in PREVIEWS:
        _save_memory(folder, pair)  # after the measurement
    pair.store.close()
    out = _result(report, wall, cpu, base, timers, outside=0.0)
    out.update({"load_peak_rss_mb": round(load_peak, 1), "peak_is_sync_only": reset})
    return out


# --- files backend -------------------------------------------------------------------------


def files_setup(folder: Path, size: int, empty_b: bool = False) -> None:
    side_a, side_b = make_people(size)
    if empty_b:
        side_b = []  # backend "empty": the CSV has its header and no contacts
    cards = folder / "cards"
    cards.mkdir(parents=True, exist_ok=True)
    rng = random.Random(11)
    started = time.perf_counter()
    for n, p in enumerate(side_a):
        uid = f"{rng.getrandbits(128):032x}"
        (cards / f"{uid}.vcf").write_text(_vcard(uid, p), encoding="utf-8", newline="")
        if n and n % 20000 == 0:
            print(
                f"  [setup] {n}/{size} vCards ({time.perf_counter() - started:.1f}s)",
                file=sys.stderr,
                flush=True,
            )
    with open(folder / "contacts.csv", "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\r\n")
        writer.writerow(CSV_HEADER)
        writer.writerows(_csv_row(p) for p in side_b)
    home = folder / "home"
    os.environ["PAIRSYNC_HOME"] = str(home)
    from app.service import ConnectionSettings, Service

    service = Service()
    service.add_account("vcard-folder", "cards", {"path": str(cards)})
    service.add_account("csv", "sheet", {"path": str(folder / "contacts.csv")})
    service.create_connection("bench", "cards", "sheet", ConnectionSettings(guard_max_writes=10**9))
    service.close()


def files_mutate(folder: Path, side: str, tag: str, one_in: int) -> int:
    if side == "a":
        cards = folder / "cards"
        names = sorted(p.name for p in cards.iterdir() if p.suffix.lower() == ".vcf")
        chosen = random.Random(f"{tag}-{len(names)}").sample(
            names, max(1, round(len(names) / one_in))
        )
        title_re = re.compile(r"^TITLE[;:][^\r\n]*", re.M)
        for n, name in enumerate(chosen):
            path = cards / name
            text = path.read_bytes().decode("utf-8")
            new = f"TITLE:Edited title {tag} {n}"
            if title_re.search(text):
                text = title_re.sub(new, text, count=1)
            else:
                text = re.sub(r"^END:VCARD", new + "\r\nEND:VCARD", text, count=1, flags=re.M)
            tmp = cards / f".{name}.edit"
            tmp.write_bytes(text.encode("utf-8"))
            os.replace(tmp, path)  # like an editor saving: new inode, new mtime
        return len(chosen)
    path = folder / "contacts.csv"
    raw = path.read_bytes()
    bom = raw.startswith(b"\xef\xbb\xbf")
    text = raw.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    header, body = rows[0], rows[1:]
    col = [h.strip().lower() for h in header].index("job title")
    positions = [i for i, r in enumerate(body) if any(c.strip() for c in r)]
    chosen = random.Random(f"{tag}-{len(positions)}").sample(
        positions, max(1, round(len(positions) / one_in))
    )
    for n, pos in enumerate(chosen):
        row = body[pos]
        row += [""] * (len(header) - len(row))
        row[col] = f"Edited title {tag} {n}"
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(body)
    data = out.getvalue().encode("utf-8")
    tmp = folder / ".contacts.csv.edit"
    tmp.write_bytes((b"\xef\xbb\xbf" if bom else b"") + data)
    os.replace(tmp, path)
    return len(chosen)


def cheap_schema(classes: list[type]) -> None:
    """What-if experiment (--what-if-cheap-schema): schema() without reading any record.

    Service.sync only uses the schema's fields (default_mappings never looks at
    ``Schema.segments``), but the connectors' schema() parse every card/row to list segments.
    """
    from app.model import Schema

    for cls in classes:
        orig = cls.schema

        def fields_only(self: Any, _orig: Callable[..., Any] = orig) -> Any:
            if isinstance(self, _VCARD[0]):
                from app.connectors.vcard_folder import FIELDS

                return Schema(FIELDS, ())
            table = self._load()
            return Schema(self._layout(table).specs, ())

        cls.schema = fields_only


_VCARD: list[type] = []


def files_phase(folder: Path, phase: str, profile: Path | None) -> dict[str, Any]:
    os.environ["PAIRSYNC_HOME"] = str(folder / "home")
    from app.connectors.csv import CsvApp
    from app.connectors.vcard_folder import VCardFolderApp
    from app.service import Service

    if os.environ.get("BENCH_CHEAP_SCHEMA") == "1":
        _VCARD.append(VCardFolderApp)
        cheap_schema([VCardFolderApp, CsvApp])

    service = Service()
    timers = install_timers([VCardFolderApp, CsvApp])
    gc.collect()
    base = rss_now_mb()
    load_peak = peak_rss_mb()
    reset = reset_peak_rss()
    progress = Progress(f"files {phase}")

    def go() -> Any:
        if phase == "preview":
            return _PreviewReport(service.preview("bench", progress=progress))
        reports = service.sync(["bench"], dry_run=phase == "dry", confirm=False, progress=progress)
        return reports[0]

    report, wall, cpu = _measure(go, profile)
    service.close()
    out = _result(report, wall, cpu, base, timers, outside=wall - timers.group_seconds["run"])
    out.update({"load_peak_rss_mb": round(load_peak, 1), "peak_is_sync_only": reset})
    return out


# --- measuring -----------------------------------------------------------------------------


class _PreviewReport:
    """A ``Preview`` seen as a run report (``as_json``), plus its breakdown's size."""

    def __init__(self, preview: Any) -> None:
        self.preview = preview

    def as_json(self) -> dict[str, Any]:
        out = dict(self.preview.report)
        out["failed"] = max(int(out.get("failed", 0)), self.preview.failure_count)
        return out


def _measure(fn: Callable[[], Any], profile: Path | None) -> tuple[Any, float, float]:
    prof = cProfile.Profile() if profile is not None else None
    wall0, cpu0 = time.perf_counter(), time.process_time()
    if prof is not None:
        prof.enable()
    report = fn()
    if prof is not None:
        prof.disable()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    if prof is not None and profile is not None:
        profile.parent.mkdir(parents=True, exist_ok=True)
        prof.dump_stats(str(profile))
    return report, wall, cpu


def _result(
    report: Any, wall: float, cpu: float, base: float, timers: Timers, outside: float
) -> dict[str, Any]:
    rj = report.as_json()
    read = rj["read"]["a"] + rj["read"]["b"]
    written = sum(rj["created"].values()) + sum(rj["updated"].values())
    engine = timers.group_seconds["run"]
    # Connector/store time spent inside the run (Service's schema() etc. is outside).
    conn_total = timers.group_seconds["connector"]
    schema_s = sum(v for k, v in timers.seconds.items() if k.endswith(".schema"))
    conn_in_run = conn_total - schema_s if outside else conn_total
    store = timers.group_seconds["store"]
    return {
        "status": rj["status"],
        "message": rj["message"],
        "wall_s": round(wall, 4),
        "cpu_s": round(cpu, 4),
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "base_rss_mb": round(base, 1),
        "read": rj["read"],
        "created": rj["created"],
        "updated": rj["updated"],
        "matched": rj["matched"],
        "failed": rj["failed"],
        "conflicts": rj["conflicts"],
        "duplicates": rj["duplicates"],
        "excluded": rj["excluded"],
        "records_read": read,
        "records_written": written,
        "records_per_s": round((read + written) / wall, 1) if wall else None,
        "listed": timers.listed,
        "engine_s": round(engine, 4),
        "engine_connector_s": round(conn_in_run, 4),
        "engine_store_s": round(store, 4),
        "engine_rest_s": round(engine - conn_in_run - store, 4),
        "outside_run_s": round(outside, 4),
        "schema_s": round(schema_s, 4),
        "timers": timers.detail(),
    }


def app_fingerprint() -> str:
    """Short hash of app/**/*.py: results taken while others edit the engine stay traceable."""
    import hashlib

    digest = hashlib.sha1()
    for path in sorted((ROOT / "app").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:10]


def git_head() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "app"], cwd=ROOT, capture_output=True, text=True
        )
        return out.stdout.strip() + ("+dirty(app)" if dirty.stdout.strip() else "")
    except OSError:
        return "?"


def child_main(args: argparse.Namespace) -> int:
    folder = Path(args.dir)
    out: dict[str, Any]
    if args.phase == "setup":
        t0 = time.perf_counter()
        if args.backend == "memory":
            memory_setup(folder, args.size)
        else:
            files_setup(folder, args.size, empty_b=args.backend == "empty")
        out = {"wall_s": round(time.perf_counter() - t0, 3)}
    elif args.phase.startswith("mutate_"):
        side, one_in = MUTATION[args.phase.removeprefix("mutate_")]
        mutate = memory_mutate if args.backend == "memory" else files_mutate
        out = {"edited": mutate(folder, side, args.phase, one_in)}
    else:
        profile = Path(args.profile_out) if args.profile_out else None
        phase_fn = memory_phase if args.backend == "memory" else files_phase
        out = phase_fn(folder, args.phase, profile)
        out["app_sha"] = app_fingerprint()
        out["profiled"] = profile is not None
    Path(args.out).write_text(json.dumps(out), encoding="utf-8")
    return 0


# --- orchestration -------------------------------------------------------------------------


def run_child(backend: str, size: int, phase: str, folder: Path, profile: Path | None) -> dict:
    out = folder / f"result-{phase}.json"
    cmd = [
        sys.executable,
        "-m",
        "tests.perf.bench_sync",
        "--phase",
        phase,
        "--backend",
        backend,
        "--size",
        str(size),
        "--dir",
        str(folder),
        "--out",
        str(out),
    ]
    if profile is not None:
        cmd += ["--profile-out", str(profile)]
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    subprocess.run(cmd, cwd=ROOT, env=env, check=True)
    return json.loads(out.read_text(encoding="utf-8"))


def bench(
    backend: str,
    size: int,
    workdir: Path,
    profile_dir: Path | None,
    keep: bool,
    phases: tuple[str, ...] = PHASES,
) -> list[dict[str, Any]]:
    folder = Path(tempfile.mkdtemp(prefix=f"bench-{backend}-{size}-", dir=workdir))
    rows = []
    try:
        print(f"== {backend} N={size}: setting up in {folder}", file=sys.stderr, flush=True)
        setup = run_child(backend, size, "setup", folder, None)
        print(f"   setup took {setup['wall_s']:.1f}s", file=sys.stderr, flush=True)
        for phase in phases:
            edited = None
            if phase in MUTATION:
                edited = run_child(backend, size, f"mutate_{phase}", folder, None)["edited"]
            print(f"== {backend} N={size}: {phase}", file=sys.stderr, flush=True)
            prof = profile_dir / f"{backend}-{size}-{phase}.prof" if profile_dir else None
            res = run_child(backend, size, phase, folder, prof)
            res.update({"backend": backend, "size": size, "phase": phase, "edited": edited})
            rows.append(res)
            print(
                f"   {phase}: {res['wall_s']:.2f}s wall, peak {res['peak_rss_mb']:.0f} MB, "
                f"status {res['status']} {res['message']}",
                file=sys.stderr,
                flush=True,
            )
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
    return rows


def _pair(d: dict[str, int]) -> str:
    return f"{d['a']}/{d['b']}"


def table(rows: list[dict[str, Any]]) -> str:
    head = (
        f"{'backend':<7} {'N':>7} {'phase':<7} {'wall s':>8} {'cpu s':>8} {'peak MB':>8} "
        f"{'base MB':>8} {'read a/b':>13} {'created a/b':>13} {'updated a/b':>13} "
        f"{'rec/s':>9} {'engine s':>9} {'conn s':>8} {'store s':>8} {'rest s':>8} "
        f"{'outside s':>9}"
    )
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['backend']:<7} {r['size']:>7} {r['phase']:<7} {r['wall_s']:>8.3f} "
            f"{r['cpu_s']:>8.3f} {r['peak_rss_mb']:>8.1f} {r['base_rss_mb']:>8.1f} "
            f"{_pair(r['read']):>13} {_pair(r['created']):>13} {_pair(r['updated']):>13} "
            f"{r['records_per_s'] or 0:>9.0f} {r['engine_s']:>9.3f} "
            f"{r['engine_connector_s']:>8.3f} {r['engine_store_s']:>8.3f} "
            f"{r['engine_rest_s']:>8.3f} {r['outside_run_s']:>9.3f}"
        )
    return "\n".join(lines)


def targets(rows: list[dict[str, Any]]) -> str:
    out = ["", "Targets:"]
    by = {(r["backend"], r["size"], r["phase"]): r for r in rows}
    for backend in sorted({r["backend"] for r in rows}):
        r = by.get((backend, 10000, "resync"))
        if r:
            ok = r["engine_s"] < 1.0
            conn = {k: v["s"] for k, v in r["timers"].items() if "store" not in k}
            out.append(
                f"  [{'PASS' if ok else 'FAIL'}] {backend}: no-change re-sync of 10k: "
                f"{r['engine_s']:.3f}s engine (connectors {r['engine_connector_s']:.3f}s, store "
                f"{r['engine_store_s']:.3f}s, rest {r['engine_rest_s']:.3f}s); whole sync call "
                f"{r['wall_s']:.3f}s (outside the run {r['outside_run_s']:.3f}s); timers {conn}"
            )
        big = [r for r in rows if r["backend"] == backend and r["size"] >= 100000]
        if big:
            peak = max(r["peak_rss_mb"] for r in big)
            out.append(
                f"  [{'PASS' if peak < 300 else 'FAIL'}] {backend}: peak RSS at 100k: "
                f"{peak:.0f} MB (max over phases; base = after loading: "
                + ", ".join(f"{r['phase']} {r['base_rss_mb']:.0f}" for r in big)
                + ")"
            )
        for phase in ("resync", "edit_a", "edit_b"):
            pts = sorted(
                (r["size"], r["engine_s"], r["wall_s"])
                for r in rows
                if r["backend"] == backend and r["phase"] == phase
            )
            if len(pts) > 1:
                desc = ", ".join(f"{n}: {e:.3f}s engine / {w:.3f}s wall" for n, e, w in pts)
                growth = pts[-1][1] / max(pts[0][1], 1e-9)
                out.append(
                    f"  {backend} {phase}: {desc}  (engine x{growth:.1f} for "
                    f"x{pts[-1][0] / pts[0][0]:.0f} contacts)"
                )
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m tests.perf.bench_sync", description=__doc__.split("\n")[0]
    )
    p.add_argument("--sizes", default="1000,10000", help="comma-separated contact counts")
    p.add_argument("--backends", default="memory,files", help="memory,files,empty")
    p.add_argument(
        "--phases",
        default=",".join(PHASES),
        help=f"comma-separated, in order, of {','.join(PREVIEWS + PHASES + BULKS)} (dry and "
        "preview write nothing: put them before first to measure a first sync's dry run and "
        "preview)",
    )
    p.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    p.add_argument("--profile", metavar="DIR", help="cProfile each phase into DIR/*.prof")
    p.add_argument("--workdir", metavar="DIR", help="where temp folders go (default: system tmp)")
    p.add_argument("--keep", action="store_true", help="keep the temp folders")
    p.add_argument(
        "--what-if-cheap-schema",
        action="store_true",
        help="experiment: files connectors' schema() skip reading records (not the real code)",
    )
    # internal: one step in a fresh process
    p.add_argument("--phase", help=argparse.SUPPRESS)
    p.add_argument("--backend", help=argparse.SUPPRESS)
    p.add_argument("--size", type=int, help=argparse.SUPPRESS)
    p.add_argument("--dir", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    p.add_argument("--profile-out", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.phase:
        return child_main(args)

    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    for b in backends:
        if b not in ("memory", "files", "empty"):
            p.error(f"unknown backend {b!r}")
    phases = tuple(s.strip() for s in args.phases.split(",") if s.strip())
    for ph in phases:
        if ph not in PREVIEWS + PHASES + BULKS:
            p.error(f"unknown phase {ph!r}")
    if args.what_if_cheap_schema:
        os.environ["BENCH_CHEAP_SCHEMA"] = "1"
        print("WHAT-IF: schema() patched to read no records (experiment)", file=sys.stderr)
    workdir = Path(args.workdir) if args.workdir else Path(tempfile.gettempdir())
    workdir.mkdir(parents=True, exist_ok=True)
    profile_dir = Path(args.profile).resolve() if args.profile else None
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    for backend in backends:
        for size in sizes:
            rows.extend(bench(backend, size, workdir, profile_dir, args.keep, phases))
    print()
    if "memory" in backends:
        print(MEMORY_NOTE)
    print(
        "times: wall/cpu of the sync call; engine = SyncRun.run; conn = connector calls inside "
        "the run; store = SyncState (SQLite); rest = engine - conn - store; outside = "
        "Service.sync before the run (connectors, schema(), mappings). peak = ru_maxrss of the "
        "phase's process, reset (Linux clear_refs) after loading, so it covers the sync call; "
        "base = RSS just before syncing. rec/s = (read + written) / wall."
    )
    print(table(rows))
    print(targets(rows))
    shas = sorted({r.get("app_sha", "?") for r in rows})
    print(
        f"\ncode: git {git_head()}, app/ fingerprint per phase: {', '.join(shas)}"
        + (" (CHANGED during the run: results mix code versions)" if len(shas) > 1 else "")
    )
    if profile_dir:
        print(f"profiles in {profile_dir} (cProfile inflates the times above ~1.5-2x)")
    print(f"(total benchmark time {time.perf_counter() - started:.0f}s)")
    if args.json:
        meta = {
            "git": git_head(),
            "app_sha_at_end": app_fingerprint(),
            "python": sys.version,
            "memory_backend": MEMORY_NOTE,
            "what_if_cheap_schema": bool(args.what_if_cheap_schema),
            "sizes": sizes,
            "backends": backends,
            "phases": phases,
        }
        Path(args.json).write_text(
            json.dumps({"meta": meta, "results": rows}, indent=2), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
