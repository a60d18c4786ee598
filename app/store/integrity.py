"""The database is never silently replaced: checked on open, backed up, restorable.

Pairsync's whole setup (accounts, connections, rules, mappings, bindings) is one SQLite file.
SQLite itself would treat a 0-byte or deleted file as a new, empty database, and a damaged one
raises deep inside the first query. So before the file is opened:

- :func:`check_database` refuses a damaged file (not SQLite, 0 bytes while Pairsync was used
  here before, unreadable schema) and a *missing* file when there are signs Pairsync was set up
  here (its backups, schema-upgrade copies, run locks): each with one sentence
  (:class:`DatabaseDamaged`) saying where the backups are and how to restore one. A genuinely
  fresh install (no such signs) starts normally.
- :func:`backup_if_due` keeps a rolling backup in ``backups/`` beside the database, made with
  SQLite's backup API (consistent even in WAL mode), files 0600, :data:`GENERATIONS` of them:
  after every change of the configuration (accounts, connections and their settings, rules,
  mappings; compared by a fingerprint) and otherwise at most once every :data:`MAX_AGE`, so
  the sync state in the newest backup is recent too.
- :func:`restore` (``pairsync restore``) puts a backup back, keeping the damaged file beside
  it, or with ``fresh`` starts an empty database after moving the old one aside.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sqlite3
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from app.errors import ConfigError, DatabaseDamaged

GENERATIONS = 5
MAX_AGE = timedelta(days=1)
BACKUP_FOLDER = "backups"
_PREFIX = "pairsync-"
_SUFFIX = ".db"
_FINGERPRINT = ".fingerprint"

# Configuration columns: what a backup must preserve. Run counters and timestamps are left
# out so that a sync alone does not count as a configuration change.
_CONFIG_QUERIES = (
    "SELECT id, name, kind, settings, has_secret FROM accounts ORDER BY id",
    "SELECT id, name, account_a_id, account_b_id, direction, winner, avoid_duplicates, "
    "unsubscribes, unsubscribe_opt_out, trash, propagate_clears, paused, guard_max_writes, "
    "guard_shrink_percent, phone_region, config, interval_minutes FROM connections ORDER BY id",
)


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    made_at: datetime
    size: int


@dataclass(frozen=True, slots=True)
class Restored:
    backup: Backup | None
    """None: started with an empty database (``fresh``)."""
    kept_as: Path | None
    """Where the replaced file now is (None: there was none)."""


def backup_folder(database: Path) -> Path:
    return database.parent / BACKUP_FOLDER


def list_backups(database: Path) -> list[Backup]:
    """The backups of ``database``, newest first."""
    folder = backup_folder(database)
    try:
        entries = list(folder.iterdir())
    except OSError:
        return []
    out: list[Backup] = []
    for path in entries:
        name = path.name
        if not (name.startswith(_PREFIX) and name.endswith(_SUFFIX)):
            continue
        try:
            made = datetime.strptime(name[len(_PREFIX) : -len(_SUFFIX)], "%Y%m%dT%H%M%S%fZ")
            size = path.stat().st_size
        except (ValueError, OSError):
            continue
        out.append(Backup(path, made.replace(tzinfo=UTC), size))
    out.sort(key=lambda b: b.made_at, reverse=True)
    return out


def _signs_of_use(database: Path) -> list[str]:
    """What shows that Pairsync was set up in this folder before (besides the database)."""
    folder = database.parent
    signs: list[str] = []
    if list_backups(database):
        signs.append("backups")
    with contextlib.suppress(OSError):
        if any(p.name.startswith(database.name + ".bak-") for p in folder.iterdir()):
            signs.append("schema-upgrade copies")
    for extra in ("-wal", "-journal"):
        with contextlib.suppress(OSError):
            if Path(f"{database}{extra}").stat().st_size > 0:
                signs.append("a journal")
    locks = folder / "locks"
    with contextlib.suppress(OSError):
        if locks.is_dir() and any(locks.iterdir()):
            signs.append("run locks")
    return signs


def _how_to_restore(database: Path) -> str:
    backups = list_backups(database)
    if backups:
        newest = backups[0]
        return (
            f"The newest backup is {newest.path} ({newest.made_at:%Y-%m-%d %H:%M} UTC): "
            f"run `pairsync restore` to put it back (or `pairsync restore --list` to choose one)."
        )
    return (
        f"There is no backup in {backup_folder(database)}; run `pairsync restore --fresh` to "
        f"move it aside and start again with an empty database."
    )


def check_database(database: Path) -> None:
    """Raise :class:`DatabaseDamaged` unless ``database`` is fit to open (or a fresh start).

    Cheap: a stat, 16 header bytes and one schema query; no full integrity check (a large
    database would make every command slow).
    """
    try:
        st = database.stat()
    except FileNotFoundError:
        signs = _signs_of_use(database)
        if signs:
            raise DatabaseDamaged(
                f"Pairsync's database {database} is missing, but Pairsync was used here before "
                f"({', '.join(signs)} are there), so it does not start again empty. "
                + _how_to_restore(database)
            ) from None
        return
    except OSError as err:
        raise DatabaseDamaged(
            f"Pairsync's database {database} cannot be read ({err.strerror})."
        ) from None
    if not database.is_file():
        raise DatabaseDamaged(f"Pairsync's database {database} is not a file.")
    if st.st_size == 0:
        wal = Path(f"{database}-wal")
        if wal.exists() and wal.stat().st_size > 0:
            return  # a new database whose first pages are still in the journal
        signs = _signs_of_use(database)
        if signs:
            raise DatabaseDamaged(
                f"Pairsync's database {database} is empty (0 bytes): its accounts and "
                f"connections are gone. " + _how_to_restore(database)
            )
        return  # created by a start that ended before writing anything: nothing was lost
    problem = _problem(database)
    if problem:
        raise DatabaseDamaged(
            f"Pairsync's database {database} is damaged ({problem}). " + _how_to_restore(database)
        )


def _problem(path: Path) -> str:
    """Why the file is not a usable SQLite database ("" when it looks fine).

    Only SQLite itself opens the file: closing a descriptor of our own would drop the POSIX
    locks that this process's other connections hold on it (SQLite defers its own closes).
    """
    try:
        conn = sqlite3.connect(path, timeout=10)  # reads only; "ro" fails on WAL files
    except sqlite3.Error as err:
        return str(err)
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchall()
    except sqlite3.OperationalError as err:
        if "locked" in str(err) or "busy" in str(err):
            return ""  # another process is writing: not damage
        return str(err)
    except sqlite3.DatabaseError as err:
        if "not a database" in str(err):
            return "it is not an SQLite database"
        return str(err)
    except sqlite3.Error as err:
        return str(err)
    finally:
        conn.close()
    return ""


# --- backups --------------------------------------------------------------------------------


def _fingerprint(conn: sqlite3.Connection) -> str:
    digest = hashlib.sha256()
    for query in _CONFIG_QUERIES:
        try:
            rows = conn.execute(query).fetchall()
        except sqlite3.OperationalError:  # a schema without these tables: nothing to keep
            rows = []
        digest.update(repr(rows).encode())
    return digest.hexdigest()


def _write_private(path: Path, data: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)


def backup_if_due(
    database: Path, conn: sqlite3.Connection, *, now: datetime | None = None
) -> Backup | None:
    """Make a backup when the configuration changed since the newest one, or that one is
    older than :data:`MAX_AGE`; keep :data:`GENERATIONS`. ``conn``: an open connection to
    ``database``. Returns the new backup (None: none was due, or the database is empty)."""
    now = now or datetime.now(UTC)
    fingerprint = _fingerprint(conn)
    folder = backup_folder(database)
    backups = list_backups(database)
    try:
        last = (folder / _FINGERPRINT).read_text().strip()
    except OSError:
        last = ""
    if backups and last == fingerprint and now - backups[0].made_at < MAX_AGE:
        return None
    if not backups and not _has_configuration(conn):
        return None  # a new, empty setup: nothing worth keeping yet
    folder.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        folder.chmod(0o700)
    target = folder / f"{_PREFIX}{now:%Y%m%dT%H%M%S%f}Z{_SUFFIX}"
    partial = target.with_name(target.name + ".part")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.close(fd)
    try:
        dest = sqlite3.connect(partial)
        try:
            conn.backup(dest)
            dest.execute("PRAGMA journal_mode=DELETE")
        finally:
            dest.close()
        os.chmod(partial, 0o600)
        os.replace(partial, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(partial)
    _write_private(folder / _FINGERPRINT, fingerprint)
    for old in list_backups(database)[GENERATIONS:]:
        with contextlib.suppress(OSError):
            old.path.unlink()
    return Backup(target, now, target.stat().st_size)


def _has_configuration(conn: sqlite3.Connection) -> bool:
    try:
        # fetchall: a statement left unfinished would hold its read snapshot open.
        rows = conn.execute("SELECT count(*) FROM accounts").fetchall()
    except sqlite3.OperationalError:
        return False
    return bool(rows and rows[0][0])


def backup_now(database: Path, *, now: datetime | None = None) -> Backup | None:
    """:func:`backup_if_due` on its own connection (for callers without one)."""
    if not database.is_file() or _problem(database):
        return None
    conn = sqlite3.connect(database, timeout=10)
    try:
        return backup_if_due(database, conn, now=now)
    finally:
        conn.close()


# --- restoring -----------------------------------------------------------------------------


def _move_aside(database: Path, now: datetime) -> Path | None:
    """Move the database (and its journal files) out of the way; returns its new path."""
    kept: Path | None = None
    stamp = f"{now:%Y%m%dT%H%M%S}"
    for suffix in ("", "-wal", "-shm", "-journal"):
        path = Path(f"{database}{suffix}")
        if not path.exists():
            continue
        target = database.with_name(f"{database.name}.damaged-{stamp}{suffix}")
        os.replace(path, target)
        if not suffix:
            kept = target
    return kept


def restore(
    database: Path, backup: Path | None = None, *, fresh: bool = False, now: datetime | None = None
) -> Restored:
    """Put ``backup`` (default: the newest) in place of ``database``, or with ``fresh``
    start again with no database at all; the file it replaces is kept beside it
    (``pairsync.db.damaged-<time>``). Run only while no other Pairsync process is open."""
    now = now or datetime.now(UTC)
    chosen: Backup | None = None
    if not fresh:
        backups = list_backups(database)
        if backup is None:
            if not backups:
                raise ConfigError(
                    f"There is no backup in {backup_folder(database)} to restore. "
                    f"`pairsync restore --fresh` starts again with an empty database."
                )
            chosen = backups[0]
        else:
            wanted = backup.expanduser()
            if not wanted.is_absolute() and not wanted.exists():
                wanted = backup_folder(database) / wanted
            match = [b for b in backups if b.path.resolve() == wanted.resolve()]
            if match:
                chosen = match[0]
            elif wanted.is_file():
                chosen = Backup(wanted, now, wanted.stat().st_size)
            else:
                raise ConfigError(f"There is no backup {backup}.")
        problem = _problem(chosen.path)
        if problem:
            raise ConfigError(f"The backup {chosen.path} cannot be used either ({problem}).")
    kept = _move_aside(database, now)
    if chosen is not None:
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        source = sqlite3.connect(f"file:{chosen.path}?mode=ro", uri=True)
        try:
            dest = sqlite3.connect(database)
            try:
                source.backup(dest)
            finally:
                dest.close()
        finally:
            source.close()
        os.chmod(database, 0o600)
    else:
        # An empty database now, so the next start is not taken for a lost one.
        fd = os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        conn = sqlite3.connect(database)
        try:
            conn.execute("PRAGMA user_version=0")
            conn.execute("CREATE TABLE IF NOT EXISTS pairsync_fresh (x INTEGER)")
            conn.execute("DROP TABLE pairsync_fresh")
            conn.commit()
        finally:
            conn.close()
    return Restored(chosen, kept)
