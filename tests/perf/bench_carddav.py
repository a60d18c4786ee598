"""CardDAV benchmark, Pairsync next to vdirsyncer (not a pytest module; run on demand):

    python -m tests.perf.bench_carddav [--sizes 500,2000] [--repeat 3] [--json PATH]
                                       [--profile DIR] [--tools pairsync,listing,vdirsyncer]
                                       [--whole-process [--base CHECKOUT]]

vdirsyncer comes from the ``perf`` extra (``pip install -e '.[perf]'``); without it, leave it
out of ``--tools``.

Pairsync runs twice: ``pairsync`` reads the address book through its change feed (a
sync-collection REPORT from the cursor the last run stored; a full read on the first run) and
``listing`` is the same code with the feed switched off (``list_versions()`` + ``fetch`` of
what changed, as before the engine used feeds). A second table compares the two.

The same work for both tools, against the same Radicale server (one per size, started here on
127.0.0.1, storage in a temp folder): a local vCard folder (vdir) of N cards is synced with an
empty address book (each tool gets its own book on the same server). Each step is one sync
run, called in this process for both tools (Pairsync's ``app.cli.main(["sync", ...])`` as the
desktop app's scheduler runs it; vdirsyncer's click command ``vdirsyncer sync``), so neither
pays its interpreter start or imports in the timed part (both tools' modules are imported
before the first timed step); those are measured once per tool and printed on their own
(``startup``: a trivial command in a fresh process).

* ``first``: first upload of the N cards;
* ``nochange``: a sync with nothing changed, right after the first upload (a tool that lists
  changes since a sync-token taken before the upload is told about every card once here);
* ``local1``: 1 % of the local files get a new TITLE, then a sync;
* ``server1``: 1 % of the server's cards get a new TITLE (written by a third client, not
  counted), then a sync;
* ``steady``: another sync with nothing changed (the usual scheduled run).

Requests are counted by a small proxy in front of Radicale (``tests.dav.DavProxy``) that both
tools talk through. Ratios are Pairsync / vdirsyncer (below 1: Pairsync is faster or sends
fewer requests).

Timings on a shared machine are noisy: ``--repeat R`` runs the whole sequence R times (a
fresh server, books and folders each round; the tool that goes first alternates from round
to round) and the table shows medians. Pairsync's time is split (``split`` in the JSON, the
``where`` column of the table): ``http`` = wall time with at least one CardDAV request in
flight (the server and the network), ``dav`` = the rest of the time spent inside the CardDAV
connector (parsing, the mirror, building cards), ``folder`` = inside the vCard folder
connector, ``engine`` = everything else (CLI, service, engine, SQLite); ``gc`` = the part of
all that spent in Python's garbage collector (both tools share this process, so each step
starts after a full collection). ``--profile DIR`` writes a cProfile file of every Pairsync
step there.
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import functools
import gc
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from tests.dav import PASSWORD, USER, DavProxy, DavServer, start_radicale

STEPS = ("first", "nochange", "local1", "server1", "steady")


@dataclass
class Step:
    tool: str
    size: int
    step: str
    seconds: float
    requests: int
    by_method: dict[str, int]
    round: int = 0
    split: dict[str, float] = field(default_factory=dict)
    """Pairsync only: seconds in http / dav / folder / engine (see the module docstring)."""


def make_card(i: int, title: str = "Engineer") -> str:
    uid = uuid.UUID(int=i + 1).hex
    return (
        "BEGIN:VCARD\r\nVERSION:3.0\r\n"
        f"UID:{uid}\r\nFN:Person {i} Example\r\nN:Example;Person {i};;;\r\n"
        f"EMAIL;TYPE=INTERNET,WORK:person{i}@example.com\r\n"
        f"TEL;TYPE=CELL:+44 7700 9{i:05d}\r\nORG:Company {i % 50}\r\nTITLE:{title}\r\n"
        f"NOTE:Met at conference {i % 7}\\, likes tea.\r\nEND:VCARD\r\n"
    )


def fill_folder(folder: Path, size: int) -> list[Path]:
    folder.mkdir(parents=True)
    paths = []
    for i in range(size):
        path = folder / f"{uuid.UUID(int=i + 1).hex}.vcf"
        path.write_bytes(make_card(i).encode("utf-8"))
        paths.append(path)
    return paths


def edit_local(paths: list[Path], count: int, title: str) -> None:
    for path in paths[:count]:
        text = path.read_bytes().decode("utf-8")
        start = text.index("TITLE:")
        end = text.index("\r\n", start)
        path.write_bytes((text[:start] + f"TITLE:{title}" + text[end:]).encode("utf-8"))


def edit_server(server: DavServer, book: str, count: int, title: str, skip: int) -> None:
    """A third client edits ``count`` cards of ``book`` (those after the first ``skip``)."""
    response = server.session.request(
        "PROPFIND",
        book,
        headers={"Depth": "1", "Content-Type": "application/xml"},
        data='<propfind xmlns="DAV:"><prop><getetag/></prop></propfind>',
    )
    hrefs = sorted(
        part.split("<", 1)[0]
        for part in response.text.split("href>")
        if part.split("<", 1)[0].endswith(".vcf")
    )
    for href in hrefs[skip : skip + count]:
        url = server.url + href
        etag, body = server.get(url)
        text = body.decode()
        start = text.index("TITLE:")
        end = text.index("\r\n", start)
        server.put(url, text[:start] + f"TITLE:{title}" + text[end:], etag)


class Split:
    """Where Pairsync's time goes, measured by wrapping the connectors' methods in place."""

    CONNECTOR_METHODS = (
        "__init__",
        "fields",
        "schema",
        "prepare",
        "list_versions",
        "fetch",
        "find_by_email",
        "changes",
        "write",
        "close",
    )

    def __init__(self) -> None:
        self.seconds = {"http": 0.0, "dav": 0.0, "folder": 0.0}
        self._lock = threading.Lock()
        self._in_flight = 0
        self._since = 0.0
        self._depth: dict[str, int] = {"dav": 0, "folder": 0}

    def _wrap_method(self, key: str, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self._depth[key] += 1
            started = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self._depth[key] -= 1
                if not self._depth[key]:
                    self.seconds[key] += time.perf_counter() - started

        return wrapper

    def _wrap_request(self, method: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(method)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                if not self._in_flight:
                    self._since = time.perf_counter()
                self._in_flight += 1
            try:
                return method(*args, **kwargs)
            finally:
                with self._lock:
                    self._in_flight -= 1
                    if not self._in_flight:
                        self.seconds["http"] += time.perf_counter() - self._since

        return wrapper

    @contextmanager
    def installed(self) -> Iterator[Split]:
        from app.connectors.carddav import CardDavApp
        from app.connectors.http import HttpClient
        from app.connectors.vcard_folder import VCardFolderApp

        saved: list[tuple[type, str, Any]] = []
        targets: list[tuple[type, str]] = [(CardDavApp, "dav"), (VCardFolderApp, "folder")]
        for cls, key in targets:
            for name in self.CONNECTOR_METHODS:
                if name in vars(cls):
                    saved.append((cls, name, vars(cls)[name]))
                    setattr(cls, name, self._wrap_method(key, vars(cls)[name]))
        saved.append((HttpClient, "request", vars(HttpClient)["request"]))
        HttpClient.request = self._wrap_request(HttpClient.request)  # type: ignore[method-assign]
        try:
            yield self
        finally:
            for cls, name, original in reversed(saved):
                setattr(cls, name, original)

    def result(self, total: float) -> dict[str, float]:
        http = self.seconds["http"]
        dav = max(0.0, self.seconds["dav"] - http)
        folder = self.seconds["folder"]
        return {
            "http": http,
            "dav": dav,
            "folder": folder,
            "engine": max(0.0, total - http - dav - folder),
        }


def warm_imports(modules: tuple[str, ...]) -> None:
    """Import what a tool's sync imports lazily, so no timed step pays for it."""
    for module in modules:
        with suppress(ImportError):
            importlib.import_module(module)


def timed(
    proxy: DavProxy, call: Callable[[], int | None], env: dict[str, str]
) -> tuple[float, dict[str, int], float]:
    """(wall seconds, requests by method, seconds spent in garbage collection) of ``call``.

    Both tools share this process, so the garbage one leaves must not be collected on the
    other's time: every step starts after a full collection.
    """
    saved = dict(os.environ)
    os.environ.update(env)
    proxy.reset()
    gc_time = [0.0, 0.0]

    def on_gc(phase: str, _info: dict[str, int]) -> None:
        if phase == "start":
            gc_time[1] = time.perf_counter()
        else:
            gc_time[0] += time.perf_counter() - gc_time[1]

    gc.collect()
    gc.callbacks.append(on_gc)
    try:
        started = time.perf_counter()
        code = call()
        seconds = time.perf_counter() - started
    finally:
        gc.callbacks.remove(on_gc)
        os.environ.clear()
        os.environ.update(saved)
    if code not in (0, None):
        raise SystemExit(f"sync failed with exit code {code}")
    return seconds, dict(proxy.counts), gc_time[0]


WHOLE_PROCESS = False
"""``--whole-process``: every sync is a fresh process (as a user's cron runs it), timed from
its start to its exit; the ``where`` split then holds only its CPU time (user+system)."""


def whole(
    proxy: DavProxy, command: list[str], env: dict[str, str], cwd: str | None = None
) -> tuple[float, dict[str, int], dict[str, float]]:
    """(wall seconds, requests by method, {"cpu": seconds}) of one fresh process."""
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}  # as installed
    proxy.reset()
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=errors)
        _pid, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
        errors.seek(0)
        err = errors.read().decode(errors="replace")
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise SystemExit(f"{command[:3]} failed with exit code {code}: {err[-2000:]}")
    return seconds, dict(proxy.counts), {"cpu": usage.ru_utime + usage.ru_stime}


def startup(command: list[str], env: dict[str, str], cwd: str | None = None) -> float:
    """Median wall time of a trivial command in a fresh process (interpreter and imports)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, env=env, cwd=cwd, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return sorted(times)[1]


class PairsyncTool:
    name = "pairsync"
    feed = True
    modules = (
        "app.service",
        "app.engine.sync",
        "app.connectors.carddav",
        "app.connectors.vcard_folder",
    )
    profile_dir: Path | None = None
    cwd: str | None = None
    """The checkout whose code runs (None: this one)."""

    def __init__(self, work: Path, proxy: DavProxy, book: str, folder: Path) -> None:
        self.env = {
            **os.environ,
            "PAIRSYNC_HOME": str(work / "home"),
            "PYTHON_KEYRING_BACKEND": "keyrings.alt.file.PlaintextKeyring",
            "XDG_DATA_HOME": str(work / "xdg"),
            "DAV_PASSWORD": PASSWORD,
        }
        self.proxy = proxy
        base = [sys.executable, "-m", "app", "--allow-insecure-keyring"]
        self.base = base
        path = urlsplit(book).path
        for args in (
            ["account", "add", "vcard-folder", "Local", "--set", f"path={folder}"],
            [
                *("account", "add", "carddav", "Server", "--set", f"url={proxy.url}"),
                *("--set", f"username={USER}", "--set", f"addressbook={path}"),
                *("--secret-env", "DAV_PASSWORD"),
            ],
            ["connection", "create", "main", "--a", "Local", "--b", "Server"],
        ):
            subprocess.run(
                [*base, *args], env=self.env, cwd=self.cwd, check=True, capture_output=True
            )

    def sync(self, label: str = "") -> tuple[float, dict[str, int], dict[str, float]]:
        if WHOLE_PROCESS:
            return whole(self.proxy, [*self.base, "sync", "main", "--yes"], self.env, self.cwd)
        from app.cli import main

        def call() -> int:
            return main(["--allow-insecure-keyring", "sync", "main", "--yes"])

        profiled = call
        profiler = cProfile.Profile() if self.profile_dir is not None else None
        if profiler is not None:

            def profiled() -> int:
                return profiler.runcall(call)

        with Split().installed() as split, self.reading():
            seconds, counts, gc_seconds = timed(self.proxy, profiled, self.env)
        if profiler is not None and self.profile_dir is not None:
            self.profile_dir.mkdir(parents=True, exist_ok=True)
            profiler.dump_stats(str(self.profile_dir / f"pairsync-{label}.prof"))
        return seconds, counts, split.result(seconds) | {"gc": gc_seconds}

    def startup(self) -> float:
        return startup([*self.base, "health", "main"], self.env, self.cwd)

    @contextmanager
    def reading(self) -> Iterator[None]:
        """The CardDAV app as it is (change feed), or with its feed switched off."""
        from app.connectors.carddav import CardDavApp

        if self.feed:
            yield
            return
        info = CardDavApp.info
        caps = dataclasses.replace(info.capabilities, change_feed=False)
        CardDavApp.info = dataclasses.replace(info, capabilities=caps)  # type: ignore[misc]
        try:
            yield
        finally:
            CardDavApp.info = info  # type: ignore[misc]


class ListingTool(PairsyncTool):
    name = "listing"
    feed = False


class BaseTool(PairsyncTool):
    """``--base DIR`` (with ``--whole-process``): the Pairsync of another checkout (e.g.
    ``git archive main | tar -x -C DIR``), for a before/after in the same run."""

    name = "base"
    checkout: Path | None = None

    def __init__(self, work: Path, proxy: DavProxy, book: str, folder: Path) -> None:
        assert self.checkout is not None
        self.cwd = str(self.checkout)
        os.environ["PYTHONPATH"] = self.cwd  # copied into the tool's environment
        try:
            super().__init__(work, proxy, book, folder)
        finally:
            del os.environ["PYTHONPATH"]


class VdirsyncerTool:
    name = "vdirsyncer"
    modules = (
        "vdirsyncer.cli",
        "vdirsyncer.cli.tasks",
        "vdirsyncer.storage.dav",
        "vdirsyncer.storage.filesystem",
        "vdirsyncer.sync",
    )

    def __init__(self, work: Path, proxy: DavProxy, book: str, folder: Path) -> None:
        config = work / "vdirsyncer.conf"
        path = urlsplit(book).path
        config.write_text(
            f'[general]\nstatus_path = "{work / "status"}/"\n\n'
            '[pair contacts]\na = "local"\nb = "remote"\ncollections = null\n'
            'conflict_resolution = "a wins"\n\n'
            f'[storage local]\ntype = "filesystem"\npath = "{folder}/"\nfileext = ".vcf"\n\n'
            f'[storage remote]\ntype = "carddav"\nurl = "{proxy.url}{path}"\n'
            f'username = "{USER}"\npassword = "{PASSWORD}"\n'
        )
        self.env = {**os.environ, "VDIRSYNCER_CONFIG": str(config)}
        self.proxy = proxy
        self.exe = shutil.which("vdirsyncer") or str(Path(sys.executable).with_name("vdirsyncer"))
        subprocess.run(
            [self.exe, "discover", "contacts"],
            env=self.env,
            input="y\n",
            text=True,
            check=True,
            capture_output=True,
        )

    def sync(self, label: str = "") -> tuple[float, dict[str, int], dict[str, float]]:
        if WHOLE_PROCESS:
            return whole(self.proxy, [self.exe, "sync"], self.env)
        from vdirsyncer.cli import app

        seconds, counts, gc_seconds = timed(
            self.proxy, lambda: app.main(["sync"], standalone_mode=False), self.env
        )
        return seconds, counts, {"gc": gc_seconds}

    def startup(self) -> float:
        return startup([self.exe, "--version"], self.env)


TOOLS: dict[str, type[PairsyncTool] | type[VdirsyncerTool]] = {
    "pairsync": PairsyncTool,
    "listing": ListingTool,
    "vdirsyncer": VdirsyncerTool,
    "base": BaseTool,
}


def run_size(
    size: int, root: Path, round_no: int = 0, tools_wanted: tuple[str, ...] = tuple(TOOLS)
) -> list[Step]:
    server = start_radicale(root / "radicale")
    proxy = DavProxy(server.url)
    steps: list[Step] = []
    try:
        tools: list[tuple[PairsyncTool | VdirsyncerTool, Path, str, list[Path]]] = []
        for cls in (TOOLS[name] for name in tools_wanted):
            work = root / cls.name
            work.mkdir(parents=True)
            book = server.new_book(cls.name)
            paths = fill_folder(work / "cards", size)
            tools.append((cls(work, proxy, book, work / "cards"), work, book, paths))
            warm_imports(cls.modules)
        if round_no == 0:
            for tool, *_ in tools:
                print(
                    f"  startup {tool.name:<10} {tool.startup():7.2f} s (fresh process)",
                    flush=True,
                )
        if round_no % 2:  # the tools go in the other order in every other round
            tools.reverse()
        edits = max(1, size // 100)
        for step in STEPS:
            for tool, _work, book, paths in tools:
                if step == "local1":
                    edit_local(paths, edits, "Edited locally")
                elif step == "server1":
                    edit_server(server, book, edits, "Edited on the server", skip=edits)
                seconds, counts, split = tool.sync(f"{size}-{step}-r{round_no}")
                steps.append(
                    Step(
                        tool.name,
                        size,
                        step,
                        seconds,
                        sum(counts.values()),
                        counts,
                        round_no,
                        split,
                    )
                )
                where = " ".join(f"{k} {v:.3f}" for k, v in split.items())
                print(
                    f"  N={size:<5} r{round_no} {step:<9} {tool.name:<10} {seconds:7.3f} s "
                    f"{sum(counts.values()):6d} requests {dict(counts)} {where}",
                    flush=True,
                )
    finally:
        proxy.close()
        server.stop()
    return steps


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def table(steps: list[Step], other: str = "vdirsyncer") -> str:
    """Medians over the rounds (requests: the most any round sent): Pairsync (reading the
    address book through its change feed) next to ``other``."""
    label = {"vdirsyncer": "vdirsyncer", "listing": "listing", "base": "before"}[other]
    rows = [
        f"| N | step | Pairsync s | {label} s | time ratio | Pairsync requests | "
        f"{label} requests | request ratio | Pairsync: where (median s) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for size in sorted({s.size for s in steps}):
        for step in STEPS:
            p = [s for s in steps if (s.size, s.step, s.tool) == (size, step, "pairsync")]
            v = [s for s in steps if (s.size, s.step, s.tool) == (size, step, other)]
            if not p or not v:
                continue
            ps, vs = _median([s.seconds for s in p]), _median([s.seconds for s in v])
            pr, vr = max(s.requests for s in p), max(s.requests for s in v)
            where = ", ".join(
                f"{key} {_median([s.split.get(key, 0.0) for s in p]):.3f}"
                for key in ("http", "dav", "folder", "engine", "gc", "cpu")
                if any(key in s.split for s in p)
            )
            if WHOLE_PROCESS:
                where += f"; {other} cpu {_median([s.split.get('cpu', 0.0) for s in v]):.3f}"
            rows.append(
                f"| {size} | {step} | {ps:.3f} | {vs:.3f} | {ps / vs:.2f} | {pr} | {vr} | "
                f"{pr / max(1, vr):.2f} | {where} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--repeat", type=int, default=3, help="rounds per size (medians)")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--profile", type=Path, default=None, metavar="DIR")
    parser.add_argument("--tools", default="pairsync,listing,vdirsyncer")
    parser.add_argument(
        "--whole-process",
        action="store_true",
        help="every sync in a fresh process, as cron runs it (pairsync and vdirsyncer only)",
    )
    parser.add_argument(
        "--base",
        type=Path,
        metavar="CHECKOUT",
        help="with --whole-process: also the Pairsync of this checkout (before/after)",
    )
    args = parser.parse_args()
    wanted = tuple(t.strip() for t in args.tools.split(",") if t.strip())
    if args.base is not None:
        if not args.whole_process:
            raise SystemExit("--base needs --whole-process (two versions cannot share a process)")
        BaseTool.checkout = args.base.resolve()
        wanted += ("base",)
    if args.whole_process:
        global WHOLE_PROCESS
        WHOLE_PROCESS = True
        wanted = tuple(t for t in wanted if t != "listing")
    unknown = set(wanted) - set(TOOLS)
    if unknown or "pairsync" not in wanted:
        raise SystemExit(f"--tools: pairsync and any of {', '.join(TOOLS)}")
    if "vdirsyncer" in wanted and not (
        shutil.which("vdirsyncer") or Path(sys.executable).with_name("vdirsyncer").exists()
    ):
        raise SystemExit("vdirsyncer is not installed: pip install -e '.[perf]'")
    PairsyncTool.profile_dir = args.profile
    steps: list[Step] = []
    for size in (int(s) for s in args.sizes.split(",")):
        for round_no in range(max(1, args.repeat)):
            root = Path(tempfile.mkdtemp(prefix=f"pairsync-bench-carddav-{size}-"))
            try:
                steps += run_size(size, root, round_no, wanted)
            finally:
                shutil.rmtree(root, ignore_errors=True)
            if args.json:  # written after every round: a long run is never lost
                args.json.write_text(json.dumps([asdict(s) for s in steps], indent=2))
    for other in ("vdirsyncer", "listing", "base"):
        if other in wanted:
            print()
            print(f"load average {os.getloadavg()}", "whole process" if WHOLE_PROCESS else "")
            print(table(steps, other))


if __name__ == "__main__":
    main()
