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
    """A dry run that keeps what it read and planned (and changes nothing else)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.kept_reads: dict[Side, SideRead] = {}
        self.kept_plan: SyncPlan | None = None

    def read_side(self, side: Side) -> SideRead:
        out = super().read_side(side)
        self.kept_reads[side] = out
        return out

    def fill_counts(self, plan: SyncPlan) -> None:
        super().fill_counts(plan)
        self.kept_plan = plan

    def preview(self) -> Preview:
        report = self.run(dry_run=True)
        return summarize(
            report.as_json(),
            self.kept_plan,
            self.kept_reads,
            {side: self.apps[side].info.name for side in (Side.A, Side.B)},
            {side: self.apps[side].fields() for side in (Side.A, Side.B)},
        )


def summarize(
    report: dict[str, Any],
    plan: SyncPlan | None,
    reads: dict[Side, SideRead],
    names: dict[Side, str],
    fields: dict[Side, tuple[FieldSpec, ...]],
) -> Preview:
    """Break a dry run's plan down into exclusions by reason and predictable failures."""
    preview = Preview(report=report, apps={s.value: n for s, n in names.items()})
    failures: list[PredictedFailure] = []
    for side, read in reads.items():
        for bad in read.unreadable:
            failures.append(PredictedFailure(side.value, bad.id, bad.message))
    if plan is not None:
        excluded: Counter[str] = Counter(n.reason for n in plan.notes if n.status == "excluded")
        dormant = sum(1 for p in plan.pairs if p.dormant)
        if dormant:
            excluded[NO_RULE] += 2 * dormant  # both contacts of a pair no rule selects
        preview.excluded_by_reason = dict(excluded.most_common())
        required = {side: [f for f in fields[side] if f.required and f.writable] for side in fields}
        for create in plan.creates:
            name = create.record.display_name()
            for problem in create.problems:
                failures.append(
                    PredictedFailure(problem.target.value, name, problem.message, problem.field)
                )
            for spec in required[create.target]:
                if is_empty_value(create.fields.get(spec.key)):
                    failures.append(
                        PredictedFailure(
                            create.target.value,
                            name,
                            f"Required field {spec.label.lower()} is missing in "
                            f"{names[create.target]}.",
                            spec.key,
                        )
                    )
        for pair in plan.pairs:
            for problem in pair.problems:
                failures.append(
                    PredictedFailure(
                        problem.target.value,
                        problem.record.display_name(),
                        problem.message,
                        problem.field,
                    )
                )
    preview.failure_count = len(failures)
    preview.failure_reasons = dict(Counter(f.reason for f in failures).most_common())
    preview.failures = failures[:FAILURE_LIST_LIMIT]
    return preview
