"""Runs: sync, preview (a dry run broken down), undo, and "use the other value".

Each run opens the connection's two apps with ``opened`` (closed however the run ends) and
writes only under the connection's one-writer lock (``app.run_lock``); a dry run or a
preview takes no lock and writes nothing. A run that cannot start (an app that cannot be
opened, a sign-in refused) is recorded like any other run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING

from app.engine.sync import Progress, RunReport, SyncRun
from app.errors import AuthExpired, ConfigError, PairsyncError, Unavailable
from app.mapping.config import active_mappings
from app.model import Side
from app.run_lock import ConnectionBusy
from app.service.core import _rules, run_ceiling
from app.service.rules import Rules
from app.store.rows import ConnectionRow

if TYPE_CHECKING:  # loaded by the methods that use them: a sync needs neither (issue 18)
    from app.engine.undo import Reverter, UndoReport
    from app.preview import Preview


class Runs(Rules):
    """Running a connection: its sync, preview, undo and conflict choices."""

    def sync(
        self,
        names: Sequence[str] = (),
        *,
        dry_run: bool = False,
        confirm: bool = False,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> list[RunReport]:
        """Sync connections now; ``should_stop`` lets the desktop app cancel a run at its
        next safe point (status cancelled, nothing half-written)."""
        conns = (
            [self._connections.connection(n) for n in names]
            if names
            else self._connections.connections()
        )
        reports = []
        for conn in conns:
            if conn.paused:
                reports.append(
                    RunReport(
                        connection=conn.name,
                        status="paused",
                        message="Paused: nothing read or written.",
                    )
                )
                continue
            reports.append(
                self._sync_one(
                    conn,
                    dry_run=dry_run,
                    confirm=confirm,
                    progress=progress,
                    should_stop=should_stop,
                )
            )
        return reports

    def _sync_one(
        self,
        conn: ConnectionRow,
        *,
        dry_run: bool,
        confirm: bool,
        progress: Progress | None,
        should_stop: Callable[[], bool] | None = None,
    ) -> RunReport:
        accounts = self._accounts(conn)  # read once: for the apps, and for their locks
        with ExitStack() as stack:
            try:
                apps = stack.enter_context(self.opened(conn, accounts))
                mappings = active_mappings(self._views(conn, apps))
                rules = _rules(conn)
                self._narrow(conn, apps, mappings, rules)
            except AuthExpired as err:
                return self._not_started(conn, "auth", str(err), dry_run)
            except Unavailable as err:
                return self._not_started(conn, "unavailable", str(err), dry_run)
            except PairsyncError as err:
                return self._not_started(conn, "failed", str(err), dry_run)
            try:
                run = SyncRun(
                    conn.name,
                    self._state(conn),
                    apps,
                    mappings,
                    self._run_settings(conn),
                    progress,
                    rules=rules,
                    should_stop=should_stop,
                    run_ceiling=run_ceiling(),
                )
                if dry_run:
                    return run.run(dry_run=True, confirm=confirm)
                with self._writer(conn, accounts):
                    report = run.run(dry_run=False, confirm=confirm)
                self._store.backup_if_due()
                return report
            except ConnectionBusy as err:
                return RunReport(connection=conn.name, status="busy", message=str(err))
        raise AssertionError("unreachable")  # pragma: no cover (mypy: ExitStack may swallow)

    def _not_started(
        self, conn: ConnectionRow, status: str, message: str, dry_run: bool
    ) -> RunReport:
        """A run that could not start (an account needs signing in, an app cannot be
        opened) is recorded like any other run: Activity lists it, the status chip shows
        it, and the schedule holds (sign-in) or backs off instead of retrying blindly."""
        report = RunReport(connection=conn.name, status=status, dry_run=dry_run, message=message)
        if not dry_run:
            state = self._state(conn)
            run_id, _ = state.begin_run(False)
            state.finish_run(run_id, status, report.as_json(), message, wrote=False)
        return report

    def preview(
        self,
        name: str,
        *,
        progress: Progress | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> Preview:
        """A dry run of one connection, broken down for the wizard's last page: the same
        counts as ``pairsync sync NAME --dry-run --json`` plus exclusions by reason and the
        failures that are predictable now. Runs even when the connection is paused (the
        wizard keeps a new connection paused until the user presses Finish); it never
        writes to either app."""
        from app.preview import Preview, PreviewRun

        conn = self._connections.connection(name)
        with ExitStack() as stack:
            try:
                apps = stack.enter_context(self.opened(conn))
                mappings = active_mappings(self._views(conn, apps))
                rules = _rules(conn)
                self._narrow(conn, apps, mappings, rules)
            except PairsyncError as err:
                status = "auth" if isinstance(err, AuthExpired) else "failed"
                report = RunReport(
                    connection=conn.name, status=status, dry_run=True, message=str(err)
                )
                names = {
                    "a": self._connections.account_by_id(conn.account_a_id).name,
                    "b": self._connections.account_by_id(conn.account_b_id).name,
                }
                return Preview(report=report.as_json(), apps=names)
            run = PreviewRun(
                conn.name,
                self._state(conn),
                apps,
                mappings,
                self._run_settings(conn),
                progress,
                rules=rules,
                should_stop=should_stop,
            )
            return run.preview()
        raise AssertionError("unreachable")  # pragma: no cover

    @contextmanager
    def _reverting(self, conn: ConnectionRow) -> Iterator[Reverter]:
        """A Reverter over the opened apps, holding the connection's writer lock."""
        from app.engine.undo import Reverter

        with self.opened(conn) as apps:
            reverter = Reverter(
                conn.name,
                self._state(conn),
                apps,
                active_mappings(self._views(conn, apps)),
                self._run_settings(conn),
                rules=_rules(conn),
            )
            with self._writer(conn):
                yield reverter

    def undo_run(
        self, name: str, run_id: int, *, record: tuple[str, str] | None = None
    ) -> UndoReport:
        """Undo a run, or one contact's changes in it (``record`` = (side, record id)), as a
        journaled run of its own (SPEC §11). Contacts the run created are kept and put in
        the segment "Pairsync Trash"; fields changed since are left alone and reported."""
        with self._reverting(self._connections.connection(name)) as reverter:
            rec = None if record is None else (Side(record[0]), record[1])
            return reverter.undo(run_id, rec)

    def use_other_value(self, name: str, conflict_id: int) -> UndoReport:
        """A conflict's losing value, written to both apps as a journaled run (SPEC §6)."""
        with self._reverting(self._connections.connection(name)) as reverter:
            return reverter.use_other(conflict_id)

    def run_id(self, name: str, run_no: int) -> int:
        """The id of run number ``run_no`` (the number ``pairsync health`` shows)."""
        row = self._health.run_by_number(self._connections.connection(name).id, run_no)
        if row is None:
            raise ConfigError(f"Connection {name!r} has no run number {run_no}.")
        return row.id
