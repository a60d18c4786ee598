"""Folder ↔ folder, Pairsync next to vdirsyncer, whole process (not a pytest module):

    python -m tests.perf.bench_folders [--sizes 10000] [--big] [--rounds 3] [--json PATH]
                                       [--base CHECKOUT]

The same generated vCard folder (N cards, vdir layout) is synced into an empty folder by
each tool, as a new user would run it from a shell: ``pairsync sync NAME`` and ``vdirsyncer
sync`` are each one fresh process (accounts, connection, ``vdirsyncer discover`` are set up
beforehand, unmeasured). Then the no-change run right after it. ``--big`` adds N=100,000.
``--base DIR`` adds a third tool, ``base``: the Pairsync of another checkout (e.g. ``git archive
main | tar -x -C DIR``), run the same way, for a before/after in the same run.

Each round uses fresh target folders and state for both tools; the tool that goes first
alternates from round to round; the table shows medians of wall time, CPU time (user+system
of the process, less sensitive to a shared machine's load than wall time) and peak RSS, the
ratios Pairsync / vdirsyncer (below 1: Pairsync is faster), records/s of the first sync, and
the load average when the size started.

CPU is also shown split into user time (the tool's own code) and system time (the kernel:
creating and renaming files, which both tools do once per card; on a busy disk it can outweigh
everything else). vdirsyncer (0.19) writes its files without flushing them (no fsync);
Pairsync flushes each card before it takes its name (a batch's flushes run together), so its
system time also holds durability vdirsyncer does not have.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.perf.bench_carddav import fill_folder


def run_measured(cmd: list[str], env: dict[str, str], cwd: str | None = None) -> dict[str, float]:
    """Wall seconds, CPU seconds (user+system, and each) and peak RSS (MB) of one process."""
    with tempfile.TemporaryFile() as errors:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _pid, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        errors.seek(0)
        err = errors.read().decode(errors="replace")
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {err[-2000:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "user": usage.ru_utime,
        "sys": usage.ru_stime,
        "rss_mb": usage.ru_maxrss / 1024,
    }


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    # As installed software runs: byte code cached (a developer's shell may turn it off).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


class Pairsync:
    name = "pairsync"
    checkout: Path | None = None
    """Run the code of this checkout instead of this one (``--base``: before/after)."""

    def __init__(self, work: Path, source: Path, target: Path) -> None:
        self.env = bench_env() | {"PAIRSYNC_HOME": str(work / "home")}
        self.cwd = None if self.checkout is None else str(self.checkout)
        if self.cwd is not None:
            self.env["PYTHONPATH"] = self.cwd
        self.base = [sys.executable, "-m", "app"]
        for args in (
            ["account", "add", "vcard-folder", "Source", "--set", f"path={source}"],
            ["account", "add", "vcard-folder", "Target", "--set", f"path={target}"],
            ["connection", "create", "main", "--a", "Source", "--b", "Target"],
        ):
            subprocess.run(
                [*self.base, *args], env=self.env, cwd=self.cwd, check=True, capture_output=True
            )

    def sync(self) -> dict[str, float]:
        return run_measured([*self.base, "sync", "main"], self.env, self.cwd)


class PairsyncBase(Pairsync):
    name = "base"


class Vdirsyncer:
    name = "vdirsyncer"

    def __init__(self, work: Path, source: Path, target: Path) -> None:
        config = work / "vdirsyncer.conf"
        config.write_text(
            f'[general]\nstatus_path = "{work / "status"}/"\n\n'
            '[pair contacts]\na = "source"\nb = "target"\ncollections = null\n'
            'conflict_resolution = "a wins"\n\n'
            f'[storage source]\ntype = "filesystem"\npath = "{source}/"\nfileext = ".vcf"\n\n'
            f'[storage target]\ntype = "filesystem"\npath = "{target}/"\nfileext = ".vcf"\n'
        )
        self.env = bench_env() | {"VDIRSYNCER_CONFIG": str(config)}
        self.exe = shutil.which("vdirsyncer") or str(Path(sys.executable).with_name("vdirsyncer"))
        subprocess.run(
            [self.exe, "discover", "contacts"],
            env=self.env,
            input="y\n",
            text=True,
            check=True,
            capture_output=True,
        )

    def sync(self) -> dict[str, float]:
        return run_measured([self.exe, "sync"], self.env)


def run_round(size: int, source: Path, root: Path, round_no: int) -> list[dict[str, Any]]:
    tools: list[type[Pairsync | Vdirsyncer]] = [Pairsync, Vdirsyncer]
    if PairsyncBase.checkout is not None:
        tools.append(PairsyncBase)
    shift = round_no % len(tools)  # who goes first rotates from round to round
    tools = tools[shift:] + tools[:shift]
    rows: list[dict[str, Any]] = []
    for cls in tools:
        work = root / f"{cls.name}-{round_no}"
        target = work / "target"
        target.mkdir(parents=True)
        tool = cls(work, source, target)
        for step in ("first", "nochange"):
            got = tool.sync()
            if step == "first":
                count = len(os.listdir(target))
                if count != size:
                    raise SystemExit(f"{cls.name} wrote {count} of {size} cards")
            rows.append({"tool": cls.name, "size": size, "step": step, "round": round_no, **got})
        shutil.rmtree(work)
    return rows


def table(rows: list[dict[str, Any]], loads: dict[int, tuple[float, float, float]]) -> str:
    out = [
        "size    step      tool        wall s   cpu s  user s   sys s  RSS MB   rec/s"
        "  | ratio wall  cpu   user  (load)"
    ]
    for size in sorted({r["size"] for r in rows}):
        for step in ("first", "nochange"):
            med: dict[str, dict[str, float]] = {}
            tools = [
                t for t in ("pairsync", "base", "vdirsyncer") if any(r["tool"] == t for r in rows)
            ]
            for tool in tools:
                got = [r for r in rows if (r["size"], r["step"], r["tool"]) == (size, step, tool)]
                med[tool] = {
                    k: statistics.median(r[k] for r in got) for k in ("wall", "cpu", "user", "sys")
                }
                med[tool]["rss_mb"] = max(r["rss_mb"] for r in got)
            for tool in tools:
                m = med[tool]
                rate = size / m["wall"] if step == "first" else 0
                line = (
                    f"{size:<7} {step:<9} {tool:<10} {m['wall']:7.2f} {m['cpu']:7.2f} "
                    f"{m['user']:7.2f} {m['sys']:7.2f} {m['rss_mb']:7.0f} {rate:7.0f}"
                )
                if tool != "vdirsyncer":
                    v = med["vdirsyncer"]
                    line += f"  | {m['wall'] / v['wall']:9.2f}x {m['cpu'] / v['cpu']:5.2f}x"
                    line += f" {m['user'] / v['user']:5.2f}x"
                    line += f"  ({', '.join(f'{x:.1f}' for x in loads[size])})"
                out.append(line)
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="10000")
    p.add_argument("--big", action="store_true", help="also N=100,000")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", type=Path)
    p.add_argument("--workdir", type=Path, help="where the folders go (default: system tmp)")
    p.add_argument(
        "--base", type=Path, help="also run the Pairsync of this checkout (before/after)"
    )
    args = p.parse_args(argv)
    PairsyncBase.checkout = args.base
    sizes = [int(x) for x in args.sizes.split(",") if x]
    if args.big and 100_000 not in sizes:
        sizes.append(100_000)
    rows: list[dict[str, Any]] = []
    loads: dict[int, tuple[float, float, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-folders-", dir=args.workdir) as tmp:
        root = Path(tmp)
        for size in sizes:
            loads[size] = os.getloadavg()
            source = root / f"source-{size}"
            fill_folder(source, size)
            for round_no in range(args.rounds):
                rows += run_round(size, source, root, round_no)
                print(f"size {size} round {round_no + 1}/{args.rounds} done", file=sys.stderr)
            shutil.rmtree(source)
    print(table(rows, loads))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "loads": loads}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
