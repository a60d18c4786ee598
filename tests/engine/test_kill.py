"""SPEC S16 end to end: ``pairsync sync`` is SIGKILLed at random moments; the next run completes
with no duplicate and no lost edit.

Two local apps through the real CLI: a vCard folder (side A) and a CSV file (side B). A normal
first sync is timed on a scratch copy, then the same data is synced in a fresh home with runs
killed after random delays spread from a few milliseconds to most of that duration. Before each
killed run (but the first) the test edits cards and rows, both on different fields and on the
same field (winner A), and adds contacts on both sides, so the killed run has creates and
updates in both directions. After each kill, a run to completion must leave every email exactly
once in the folder and once in the CSV, every contact on both sides and every edit in place;
at the end, one more sync writes nothing (S17).

Files are read here with plain text and ``csv`` parsing, not through the connectors.
"""

from __future__ import annotations

import csv
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
CSV_HEADER = ["First Name", "Last Name", "Email", "Phone", "Job Title", "Company"]
N_CARDS = 300
N_ROWS = 300
OVERLAP = 150  # cards c150..c299 also exist as rows, with other values


def card_text(uid: str, i: int, email: str, title: str) -> str:
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{uid}",
        f"FN:Card{i} Person",
        f"N:Person;Card{i};;;",
        f"EMAIL;TYPE=INTERNET:{email}",
        f"TEL;TYPE=CELL:+44 20 7946 {i % 10000:04d}",
        f"TITLE:{title}",
        "END:VCARD",
    ]
    return "\r\n".join(lines) + "\r\n"


def write_atomic(path: Path, text: str, newline: str = "") -> None:
    tmp = path.with_name(f".edit-{uuid.uuid4().hex}.tmp")
    with open(tmp, "w", encoding="utf-8", newline=newline) as fh:
        fh.write(text)
    os.replace(tmp, path)


# --- reading the two apps as plain files ---------------------------------------------------


def read_cards(folder: Path) -> dict[str, list[dict[str, str]]]:
    """email key -> the cards holding it (each card as {PROPERTY: value})."""
    out: dict[str, list[dict[str, str]]] = {}
    for path in sorted(folder.glob("*.vcf")):
        if path.name.startswith("."):
            continue
        props: dict[str, str] = {"_file": path.name}
        emails: list[str] = []
        text = path.read_text(encoding="utf-8")
        text = re.sub(r"\r?\n[ \t]", "", text)  # unfold
        for line in text.splitlines():
            name, _, value = line.partition(":")
            prop = name.split(";")[0].split(".")[-1].upper()
            if prop == "EMAIL":
                emails.append(value.strip().casefold())
            else:
                props.setdefault(prop, value)
        for e in emails:
            out.setdefault(e, []).append(props)
        if not emails:
            out.setdefault("", []).append(props)
    return out


def read_rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with open(path, encoding="utf-8-sig", newline="") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def rows_by_email(path: Path) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for row in read_rows(path)[1]:
        out.setdefault(row["Email"].strip().casefold(), []).append(row)
    return out


def write_rows(path: Path, header: list[str], rows: list[dict[str, str]]) -> None:
    import io

    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, buf.getvalue())


def org_of(card: dict[str, str]) -> str:
    return card.get("ORG", "").split(";")[0]


# --- the world ------------------------------------------------------------------------------


class World:
    """A PAIRSYNC_HOME, a vCard folder and a CSV file, driven through the CLI."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.home = root / "home"
        self.cards = root / "cards"
        self.csv = root / "contacts.csv"
        self.cards.mkdir(parents=True)
        self.env = {**os.environ, "PAIRSYNC_HOME": str(self.home)}
        self.env.pop("CI", None)
        self.expected_title: dict[str, str] = {}
        self.expected_org: dict[str, str] = {}
        self.next_new = 0

    def seed(self) -> None:
        for i in range(N_CARDS):
            uid = uuid.uuid4().hex
            email = f"c{i}@x.com"
            (self.cards / f"{uid}.vcf").write_text(
                card_text(uid, i, email, f"T{i}"), encoding="utf-8", newline=""
            )
            self.expected_title[email] = f"T{i}"  # winner A
        rows = []
        for j in range(N_CARDS - OVERLAP, N_CARDS - OVERLAP + N_ROWS):
            email = f"c{j}@x.com"
            rows.append(
                {
                    "First Name": f"Row{j}",
                    "Last Name": "Csv",
                    "Email": email,
                    "Phone": f"+1 415 555 {j % 10000:04d}",
                    "Job Title": f"Boss{j}",
                    "Company": f"Co{j % 7}",
                }
            )
            self.expected_title.setdefault(email, f"Boss{j}")
            self.expected_org[email] = f"Co{j % 7}"
        write_rows(self.csv, CSV_HEADER, rows)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [sys.executable, "-m", "app", *args],
            cwd=REPO,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        if check:
            assert proc.returncode == 0, f"pairsync {' '.join(args)}: {proc.stderr}{proc.stdout}"
        return proc

    def connect(self) -> None:
        self.cli("account", "add", "vcard-folder", "A", "--set", f"path={self.cards}")
        self.cli("account", "add", "csv", "B", "--set", f"path={self.csv}")
        self.cli("connection", "create", "c", "--a", "A", "--b", "B")

    def sync(self) -> dict[str, Any]:
        proc = self.cli("sync", "--yes", "--json")
        reports = json.loads(proc.stdout)
        assert len(reports) == 1 and reports[0]["status"] == "ok", reports
        return dict(reports[0])

    def killed_sync(self, delay: float) -> int | None:
        """Start a sync and SIGKILL it after ``delay`` s; its return code (-9 when killed)."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "app", "sync", "--yes"],
            cwd=REPO,
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            proc.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
        return proc.wait(timeout=30)

    # --- the user's edits between runs --------------------------------------------------

    def edit(self, rng: random.Random, n: int) -> None:
        cards = read_cards(self.cards)
        rows_header, rows = read_rows(self.csv)
        emails = sorted(e for e in cards if e)
        picked = rng.sample(emails, 3 * n)
        a_only, b_only, both = picked[:n], picked[n : 2 * n], picked[2 * n :]
        tag = uuid.uuid4().hex[:6]
        # A: a new title (alone, or against a different title in B: winner A).
        for e in a_only + both:
            card = cards[e][0]
            path = self.cards / card["_file"]
            text = path.read_text(encoding="utf-8")
            new = f"A-{tag}-{e.split('@')[0]}"
            if re.search(r"^TITLE[;:]", text, re.M):
                text = re.sub(r"^TITLE[;:][^\r\n]*", f"TITLE:{new}", text, count=1, flags=re.M)
            else:
                text = text.replace("END:VCARD", f"TITLE:{new}\r\nEND:VCARD")
            write_atomic(path, text)
            self.expected_title[e] = new
        # B: a new company (alone), and a losing title for the contacts edited on both sides.
        by_email = {r["Email"].strip().casefold(): r for r in rows}
        for e in b_only:
            by_email[e]["Company"] = f"B-{tag}-{e.split('@')[0]}"
            self.expected_org[e] = by_email[e]["Company"]
        for e in both:
            by_email[e]["Job Title"] = f"Bx-{tag}"
        # New contacts on both sides (created in the other app by the next run).
        for _ in range(n):
            self.next_new += 1
            i = 10_000 + self.next_new
            uid = uuid.uuid4().hex
            email = f"new{i}@x.com"
            write_atomic(self.cards / f"{uid}.vcf", card_text(uid, i, email, f"N{i}"))
            self.expected_title[email] = f"N{i}"
            self.next_new += 1
            j = 10_000 + self.next_new
            email = f"new{j}@x.com"
            rows.append(
                {
                    **dict.fromkeys(rows_header, ""),
                    "First Name": f"New{j}",
                    "Last Name": "Row",
                    "Email": email,
                    "Job Title": f"NB{j}",
                    "Company": "NewCo",
                }
            )
            self.expected_title[email] = f"NB{j}"
            self.expected_org[email] = "NewCo"
        write_rows(self.csv, rows_header, rows)

    # --- the promises -------------------------------------------------------------------

    def check(self) -> None:
        cards = read_cards(self.cards)
        rows = rows_by_email(self.csv)
        assert "" not in cards, f"cards without an email: {cards.get('')}"
        assert "" not in rows, "rows without an email"
        dup_cards = {e: len(v) for e, v in cards.items() if len(v) != 1}
        dup_rows = {e: len(v) for e, v in rows.items() if len(v) != 1}
        assert not dup_cards, f"duplicate cards: {dup_cards}"
        assert not dup_rows, f"duplicate rows: {dup_rows}"
        everyone = set(self.expected_title)
        assert set(cards) == everyone, (
            f"missing cards: {sorted(everyone - set(cards))[:10]}, "
            f"extra: {sorted(set(cards) - everyone)[:10]}"
        )
        assert set(rows) == everyone, (
            f"missing rows: {sorted(everyone - set(rows))[:10]}, "
            f"extra: {sorted(set(rows) - everyone)[:10]}"
        )
        bad_titles = {
            e: (cards[e][0].get("TITLE", ""), rows[e][0]["Job Title"], want)
            for e, want in self.expected_title.items()
            if (cards[e][0].get("TITLE", ""), rows[e][0]["Job Title"]) != (want, want)
        }
        assert not bad_titles, f"titles (card, row, expected): {list(bad_titles.items())[:10]}"
        bad_orgs = {
            e: (org_of(cards[e][0]), rows[e][0]["Company"], want)
            for e, want in self.expected_org.items()
            if (org_of(cards[e][0]), rows[e][0]["Company"]) != (want, want)
        }
        assert not bad_orgs, f"companies (card, row, expected): {list(bad_orgs.items())[:10]}"


@pytest.mark.slow
def test_killed_sync_then_next_run_completes_without_duplicates_or_lost_edits(
    tmp_path: Path,
) -> None:
    seed = int(os.environ.get("PAIRSYNC_KILL_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    print(f"PAIRSYNC_KILL_SEED={seed}")

    # A normal first sync, timed, on a scratch copy of the same data; then a run with nothing
    # to do, timed too: start-up and reading, the part of a run that writes nothing.
    scratch = World(tmp_path / "scratch")
    scratch.seed()
    scratch.connect()
    start = time.monotonic()
    first = scratch.sync()
    full = time.monotonic() - start
    assert first["created"] == {"a": OVERLAP, "b": OVERLAP}
    scratch.check()
    start = time.monotonic()
    idle = scratch.sync()
    startup = time.monotonic() - start
    assert idle["created"] == {"a": 0, "b": 0} and idle["updated"] == {"a": 0, "b": 0}, idle
    writing = max(full - startup, 0.2)

    world = World(tmp_path / "world")
    world.seed()
    world.connect()
    delays = [
        startup + rng.uniform(0.0, 0.9) * writing,  # the big first sync, while it writes
        rng.uniform(0.002, 0.05),  # before anything happens
        startup * rng.uniform(0.8, 1.0) + rng.uniform(0.0, 0.4) * writing,
        startup * rng.uniform(0.8, 1.0) + rng.uniform(0.0, 0.4) * writing,
    ]
    killed = 0
    for trial, delay in enumerate(delays):
        if trial:
            world.edit(rng, 30)
        code = world.killed_sync(delay)
        killed += code == -signal.SIGKILL
        print(f"trial {trial}: kill after {delay:.3f} s (full run {full:.2f} s) -> exit {code}")
        done = world.sync()
        print(f"  next run: created {done['created']} updated {done['updated']}")
        world.check()
    assert killed >= 2, f"only {killed} of {len(delays)} runs were killed (seed {seed})"
    again = world.sync()
    assert again["created"] == {"a": 0, "b": 0} and again["updated"] == {"a": 0, "b": 0}, again
    world.check()
    assert Counter(p.suffix for p in world.cards.iterdir() if not p.name.startswith(".")) == {
        ".vcf": len(world.expected_title)
    }
