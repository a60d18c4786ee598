"""An address book kept in one CSV file: one header row, one row per contact.

Formats
-------
The header decides how columns are read (names compared trimmed and case-insensitively):

* **Outlook CSV export** (``E-mail Address`` plus one of ``E-mail 2 Address``, ``Business
  Phone``, ``Business Street``, ``Home Street``): fixed columns; emails are unlabelled, phones
  are labelled by their column (Mobile Phone → mobile, Business Phone → work, …), addresses by
  their prefix (Business → work, Home → home, Other → other); ``Categories`` split on ``;``;
  ``Title`` is the name prefix; the empty birthday ``0/0/00`` reads as empty.
* **Google Contacts CSV export**, current (``E-mail 1 - Label``, ``Labels``) and older
  (``E-mail 1 - Type``, ``Group Membership``): numbered slots with a label cell; a cell may
  hold several values separated by `` ::: ``; ``* `` system labels (``* myContacts``,
  ``* starred``) are not segments but are kept on write.
* **Generic**: anything else, mapped by common column names. Label words in a header
  (``Work Email``, ``Home Phone``, ``Mobile``, ``Fax``, ``Home Street``…) give the label.
  Exactly one email column → single-valued key ``email``; exactly one phone column →
  single-valued key ``phone``; more → multi ``emails``/``phones``.

Columns that are not recognised become text fields ``col:<header>`` and are always kept.

Ids and versions
----------------
The id lives in a ``Pairsync ID`` column. A row without one is read under a derived id,
``row-<sha1 of its cells>-<n>``, stable while the row is unchanged. Nothing is stamped by
reading: a run that does not write this file (its read-only side, a dry run, a run stopped
by the guard, a run with nothing to write) leaves it byte for byte. A real ``write()`` adds
the column when missing and stamps every readable row's id as it was read (``prepare()``
does the same on its own), so the ids the engine planned with stay valid and are permanent
from then on. A later copy of an id already seen (a pasted row) is reported ``Unreadable``
under a derived id and written back untouched, never re-stamped: the user decides whether it
is a duplicate or a new person. The version is a short hash of the row's cells without the
id cell. (When a derived id changes because a row of a file Pairsync never writes was
edited, the engine follows the contact by its email: ``SyncRun.find_moved``.)

Concurrent edits
----------------
The file is read, the ops applied in memory, and the file replaced at once. Just before the
replacement, the file is checked against what was read (size, mtime, inode; its content's
digest while the mtime is too recent to tell writes apart): rows another program appended
meanwhile are appended to the new version byte for byte (checked again until the file holds
still); any other change means the file is read again and the ops applied to it again (an
update of a row edited meanwhile becomes a ``Conflict``, retried next run). A read-only file
(mode 444) is never replaced: each op fails with ``ReadOnlyFile``.

Reading and writing
-------------------
Encoding (UTF-8 with or without BOM, UTF-16/32 with BOM, else a ``charset_normalizer`` guess
preferring cp1252 whenever that is plausible, cp1252 as last resort), delimiter (``,`` ``;``
tab, or an Excel ``sep=`` line), line terminator and quote-all vs minimal quoting are
detected and reused on write. Untouched rows (and the header) are written back with exactly
the text read; rows that cannot be read (more non-empty cells than the header, bytes invalid
in the encoding, broken quoting) are reported ``Unreadable`` for that row alone and kept as
they are. All ops of one ``write()`` are applied in memory, then the file is replaced once,
atomically (temp file in the same folder, fsync, ``os.replace``).

Values that do not fit
----------------------
Outlook and generic files have a fixed number of columns. A multi value is placed by label
(exact label first, then an ``other``/unlabelled column, then any free column; the label read
back is the column's). Values with no free column are not written and the op's result carries
a ``NotFitting`` error naming the field and the values left out — *and* the record as now
stored (everything else of the op was applied), so the new version is known; the engine
keeps the pair in sync with what each app holds and Health lists the values once. Google files
never overflow: extra values share a slot with `` ::: ``. Address parts without a column
(e.g. PO box in a file without one) are appended as extra street lines. A field key with no
column, segments on a file without a segment column, or a character the file's encoding cannot
hold also give ``Rejected``; for the encoding case the whole op is left unapplied.

Modules: ``formats`` (column sets), ``table`` (the file as text), ``codec`` (values ↔ cells),
``app`` (the connector).
"""

from app.connectors.csv.app import CsvApp

__all__ = ["CsvApp"]
