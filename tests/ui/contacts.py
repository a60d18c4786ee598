"""Real address books for the desktop app's tests: a vCard folder and a CSV file in a tmp
dir, with matches, creates on both sides, a contact without email, duplicates and segments."""

from __future__ import annotations

import csv
from pathlib import Path

OUTLOOK = [
    "First Name",
    "Last Name",
    "E-mail Address",
    "Mobile Phone",
    "Company",
    "Job Title",
    "Web Page",
    "Score",
    "Categories",
]


def card(uid: str, fn: str, email: str = "", *, title: str = "", categories: str = "") -> str:
    parts = fn.split(" ")
    lines = [
        "BEGIN:VCARD",
        "VERSION:3.0",
        f"UID:{uid}",
        f"FN:{fn}",
        f"N:{parts[-1]};{' '.join(parts[:-1])};;;",
    ]
    if email:
        lines.append(f"EMAIL;TYPE=INTERNET:{email}")
    if title:
        lines.append(f"TITLE:{title}")
    if categories:
        lines.append(f"CATEGORIES:{categories}")
    lines.append("END:VCARD")
    return "\r\n".join(lines) + "\r\n"


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return list(csv.DictReader(fh))


def address_books(root: Path) -> tuple[Path, Path]:
    """A vCard folder (5 cards) and an Outlook-style CSV (4 rows):

    * Ann: in both (matched); Carol and Dan: only in the folder, customers (created in B);
    * Bob: no email (excluded "no email"); Eve: only in the CSV (created in A);
    * Dave: twice in the CSV (duplicates), once in the folder.
    """
    folder = root / "cards"
    folder.mkdir()
    sheet = root / "contacts.csv"
    for uid, fn, email, cats in (
        ("ann", "Ann Lee", "ann@x.com", ""),
        ("bob", "Bob Nomail", "", ""),
        ("carol", "Carol King", "carol@x.com", "Customers"),
        ("dan", "Dan Brown", "dan@x.com", "Customers,Leads"),
        ("dave", "Dave Dee", "dave@x.com", ""),
    ):
        (folder / f"{uid}.vcf").write_text(card(uid, fn, email, categories=cats))
    write_csv(
        sheet,
        OUTLOOK,
        [
            ["Ann", "Lee", "ann@x.com", "+44 7700 900123", "Acme", "", "", "5", ""],
            ["Eve", "Adams", "eve@x.com", "", "Initech", "CTO", "", "7", ""],
            ["Dave", "One", "dave@x.com", "", "", "", "", "", ""],
            ["David", "Two", "Dave@X.com", "", "", "", "", "", ""],
        ],
    )
    return folder, sheet


def many_contacts(root: Path, n: int) -> tuple[Path, Path]:
    """``n`` cards in a folder and ``n`` rows in a CSV, half of them the same people."""
    folder = root / "many-cards"
    folder.mkdir()
    sheet = root / "many.csv"
    for i in range(n):
        (folder / f"c{i}.vcf").write_text(card(f"c{i}", f"Person{i} Card", f"p{i}@x.com"))
    rows = [
        [f"Person{i}", "Sheet", f"p{i + n // 2}@x.com", "", "Acme", "", "", "", ""]
        for i in range(n)
    ]
    write_csv(sheet, OUTLOOK, rows)
    return folder, sheet
