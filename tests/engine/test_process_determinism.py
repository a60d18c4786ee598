"""A run decides the same in every process. Python seeds string hashing differently in each
process, so anything stored that follows set order (a ``repr`` of a set) differs between
the run that stored it and the next one when that is another process (the next cron run,
the desktop app's sync worker). A configuration fingerprint built that way made every new
process think the mappings had changed: every pair was planned again from the index (29 s
at 100k contacts) and excluded contacts were matched again, so a no-change dry run counted
an excluded contact in some processes and not in others."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from app.engine.context import MAPPINGS_CURSOR
from app.service import ConnectionSettings, Service
from app.store.models import Cursor
from tests.ui.contacts import address_books

SEEDS = (1, 2, 3, 4)


def cli(seed: int, *args: str) -> list[dict[str, Any]]:
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=os.environ | {"PYTHONHASHSEED": str(seed)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    return list(json.loads(out.stdout))


def fingerprints(svc: Service) -> set[str]:
    with svc._store.session() as s:
        return set(s.scalars(select(Cursor.cursor).where(Cursor.side == MAPPINGS_CURSOR)))


@pytest.mark.parametrize("rules", ["default", "with a rule"])
def test_a_no_change_run_in_another_process_replans_nothing(
    tmp_path: Path, pairsync_home: Path, rules: str
) -> None:
    folder, sheet = address_books(tmp_path)
    svc = Service()
    svc.add_account("vcard-folder", "Phone", {"path": str(folder)})
    svc.add_account("csv", "Sheet", {"path": str(sheet)})
    svc.create_connection("Main", "Phone", "Sheet", ConnectionSettings(trash=True))
    if rules == "with a rule":
        # Rules add the segments they manage to the Segments mapping's fingerprint.
        rule = ["--source", "a", "--if-segment", "Customers", "--then-add-segment", "Clients"]
        out = subprocess.run(
            [sys.executable, "-m", "app.cli", "connection", "rule", "add", "Main", *rule],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
    [first] = cli(0, "sync", "Main", "--json")
    assert first["status"] == "ok" and first["excluded"] == 1  # Bob has no email
    stored = fingerprints(svc)
    assert len(stored) == 1
    for seed in SEEDS:
        [dry] = cli(seed, "sync", "Main", "--dry-run", "--json")
        assert dry["excluded"] == 0, f"PYTHONHASHSEED={seed}: {dry}"
        assert dry["created"] == {"a": 0, "b": 0} and dry["updated"] == {"a": 0, "b": 0}
        [real] = cli(seed, "sync", "Main", "--json")
        assert real["excluded"] == 0 and real["updated"] == {"a": 0, "b": 0}, seed
        assert fingerprints(svc) == stored, f"PYTHONHASHSEED={seed} stored another fingerprint"
    svc.close()
