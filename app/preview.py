"""The wizard's and dashboard's preview (SPEC §1.4): a dry run, plus what only its plan knows.

``pairsync sync --dry-run`` prints a run's counts. A person about to press "Start syncing"
also wants to know *why* contacts are left out and which writes will fail for sure. Both are
in the plan the dry run builds, so the preview runs the very same engine run (same reads,
same plan, same counts) and keeps the plan to break it down; it never re-implements any of
the engine's decisions. The only prediction added here is the app's own required-field
check on the records a run would create (S9), which the apps otherwise make at write time.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from app.engine.context import SideRead
from app.engine.plan import SyncPlan
from app.engine.planner import NO_RULE
from app.engine.sync import SyncRun
from app.model import FieldSpec, Side, is_empty_value

FAILURE_LIST_LIMIT = 200
"""Predicted failures listed by contact (all are counted)."""


@dataclass(frozen=True, slots=True)
class PredictedFailure:
    side: str
    """The app the write would fail in ("a" or "b"), or the app that cannot be read."""
    name: str
    reason: str
    field: str = ""


@dataclass(slots=True)
class Preview:
    """What a run would do now, before anything is written."""

    report: dict[str, Any]
    """The dry run's report: the same object ``sync --dry-run --json`` prints."""
    apps: dict[str, str]
    """Side → app name, for labels ("To create in CSV file")."""
    excluded_by_reason: dict[str, int] = field(default_factory=dict)
    failure_count: int = 0
    failures: list[PredictedFailure] = field(default_factory=list)
    """The first ``FAILURE_LIST_LIMIT`` predicted failures, contact by contact."""
    failure_reasons: dict[str, int] = field(default_factory=dict)

    @property
    def status(self) -> str:
        return str(self.report.get("status", "ok"))

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Preview:
        """The inverse of ``as_json`` (a preview computed by the sync worker process)."""
        return cls(
            report=dict(data.get("report") or {}),
            apps={str(k): str(v) for k, v in dict(data.get("apps") or {}).items()},
            excluded_by_reason={
                str(k): int(v) for k, v in dict(data.get("excluded_by_reason") or {}).items()
            },
            failure_count=int(data.get("failure_count", 0)),
            failures=[
                PredictedFailure(
                    side=str(f.get("side", "")),
                    name=str(f.get("name", "")),
                    reason=str(f.get("reason", "")),
                    field=str(f.get("field") or ""),
                )
                for f in data.get("failures") or []
            ],
            failure_reasons={
                str(k): int(v) for k, v in dict(data.get("failure_reasons") or {}).items()
            },
        )

    def as_json(self) -> dict[str, Any]:
        return {
            "report": self.report,
            "apps": self.apps,
            "excluded_by_reason": self.excluded_by_reason,
            "failure_count": self.failure_count,
            "failure_reasons": self.failure_reasons,
            "failures": [
                {"side": f.side, "name": f.name, "reason": f.reason, "field": f.field}
                for f in self.failures
            ],
        }


class PreviewRun(SyncRun):
    """A dry run that breaks down each slice of its plan as it is planned (and changes
    nothing else): the slices are not kept, so a preview of 100,000 contacts holds no more
    than a dry run does (issue 18)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept_reads: dict[Side, SideRead] = {}
        self.breakdown: Breakdown | None = None

    def read_side(self, side: Side) -> SideRead:
        out = super().read_side(side)
        self.kept_reads[side] = out
        return out

    def fill_counts(self, plan: SyncPlan) -> None:
        super().fill_counts(plan)
        if self.breakdown is None:
            self.breakdown = Breakdown(self.app_names(), self.app_fields())
        self.breakdown.add(plan)

    def app_names(self) -> dict[Side, str]:
        return {side: self.apps[side].info.name for side in (Side.A, Side.B)}

    def app_fields(self) -> dict[Side, tuple[FieldSpec, ...]]:
        return {side: self.apps[side].fields() for side in (Side.A, Side.B)}

    def preview(self) -> Preview:
        report = self.run(dry_run=True).as_json()
        breakdown = self.breakdown
        if breakdown is None or report["status"] == "cancelled":
            # Stopped before the plan was whole: only what the reads say.
            breakdown = Breakdown(self.app_names(), self.app_fields())
        return breakdown.preview(report, self.kept_reads)


class Failures:
    """Predicted failures of one kind, as slices add them: all counted, the first
    ``FAILURE_LIST_LIMIT`` kept."""

    __slots__ = ("count", "first", "reasons")

    def __init__(self) -> None:
        self.count = 0
        self.first: list[PredictedFailure] = []
        self.reasons: Counter[str] = Counter()

    def add(self, failure: PredictedFailure) -> None:
        self.count += 1
        self.reasons[failure.reason] += 1
        if len(self.first) < FAILURE_LIST_LIMIT:
            self.first.append(failure)


class Breakdown:
    """What a preview shows beyond the counts, gathered from a plan's slices in the order
    they are planned. The result is the same as from the whole plan at once: exclusions by
    reason, then the failures listed as the plan would list them (unreadable records, every
    create's, every pair's)."""

    def __init__(self, names: dict[Side, str], fields: dict[Side, tuple[FieldSpec, ...]]) -> None:
        self.names = names
        self.required = {
            side: [f for f in specs if f.required and f.writable] for side, specs in fields.items()
        }
        self.excluded: Counter[str] = Counter()
        self.dormant = 0
        self.creates = Failures()
        self.pairs = Failures()

    def add(self, plan: SyncPlan) -> None:
        """Break down one slice (or a whole plan)."""
        self.excluded.update(n.reason for n in plan.notes if n.status == "excluded")
        self.dormant += sum(1 for p in plan.pairs if p.dormant)
        for create in plan.creates:
            name = create.record.display_name()
            for problem in create.problems:
                self.creates.add(
                    PredictedFailure(problem.target.value, name, problem.message, problem.field)
                )
            for spec in self.required[create.target]:
                if is_empty_value(create.fields.get(spec.key)):
                    self.creates.add(
                        PredictedFailure(
                            create.target.value,
                            name,
                            f"Required field {spec.label.lower()} is missing in "
                            f"{self.names[create.target]}.",
                            spec.key,
                        )
                    )
        for pair in plan.pairs:
            for problem in pair.problems:
                self.pairs.add(
                    PredictedFailure(
                        problem.target.value,
                        problem.record.display_name(),
                        problem.message,
                        problem.field,
                    )
                )

    def preview(self, report: dict[str, Any], reads: dict[Side, SideRead]) -> Preview:
        preview = Preview(report=report, apps={s.value: n for s, n in self.names.items()})
        excluded = Counter(self.excluded)
        if self.dormant:
            excluded[NO_RULE] += 2 * self.dormant  # both contacts of a pair no rule selects
        preview.excluded_by_reason = dict(excluded.most_common())
        unreadable = Failures()
        for side, read in reads.items():
            for bad in read.unreadable:
                unreadable.add(PredictedFailure(side.value, bad.id, bad.message))
        kinds = (unreadable, self.creates, self.pairs)
        reasons: Counter[str] = Counter()
        for kind in kinds:
            reasons.update(kind.reasons)
        preview.failure_count = sum(kind.count for kind in kinds)
        preview.failure_reasons = dict(reasons.most_common())
        preview.failures = [f for kind in kinds for f in kind.first][:FAILURE_LIST_LIMIT]
        return preview


def summarize(
    report: dict[str, Any],
    plan: SyncPlan | None,
    reads: dict[Side, SideRead],
    names: dict[Side, str],
    fields: dict[Side, tuple[FieldSpec, ...]],
) -> Preview:
    """Break a dry run's whole plan down into exclusions by reason and predictable
    failures."""
    breakdown = Breakdown(names, fields)
    if plan is not None:
        breakdown.add(plan)
    return breakdown.preview(report, reads)
