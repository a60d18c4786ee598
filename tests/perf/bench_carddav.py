"""CardDAV benchmark, Pairsync next to vdirsyncer (not a pytest module; run on demand):

    python -m tests.perf.bench_carddav [--sizes 500,2000] [--json PATH]

vdirsyncer comes from the ``perf`` extra (``pip install -e '.[perf]'``).

The same work for both tools, against the same Radicale server (one per size, started here on
127.0.0.1, storage in a temp folder): a local vCard folder (vdir) of N cards is synced with an
empty address book (each tool gets its own book on the same server). Each step is one sync
run, called in this process for both tools (Pairsync's ``app.cli.main(["sync", ...])`` as the
desktop app's scheduler runs it; vdirsyncer's click command ``vdirsyncer sync``), so neither
pays its interpreter start or imports in the timed part; those are measured once per tool
and printed on their own (``startup``: a trivial command in a fresh process).

* ``first``: first upload of the N cards;
* ``nochange``: a sync with nothing changed;
* ``local1``: 1 % of the local files get a new TITLE, then a sync;
* ``server1``: 1 % of the server's cards get a new TITLE (written by a third client, not
  counted), then a sync.

Requests are counted by a small proxy in front of Radicale (``tests.dav.DavProxy``) that both
tools talk through. Ratios are Pairsync / vdirsyncer (below 1: Pairsync is faster or sends
fewer requests).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tests.dav import PASSWORD, USER, DavProxy, DavServer, start_radicale

STEPS = ("first", "nochange", "local1", "server1")


@dataclass
class Step:
    tool: str
    size: int
    step: str
    seconds: float
    requests: int
    by_method: dict[str, int]


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


def timed(
    proxy: DavProxy, call: Callable[[], int | None], env: dict[str, str]
) -> tuple[float, dict[str, int]]:
    saved = dict(os.environ)
    os.environ.update(env)
    proxy.reset()
    try:
        started = time.perf_counter()
        code = call()
        seconds = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if code not in (0, None):
        raise SystemExit(f"sync failed with exit code {code}")
    return seconds, dict(proxy.counts)


def startup(command: list[str], env: dict[str, str]) -> float:
    """Median wall time of a trivial command in a fresh process (interpreter and imports)."""
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(command, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
    return sorted(times)[1]


class PairsyncTool:
    name = "pairsync"

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
            subprocess.run([*base, *args], env=self.env, check=True, capture_output=True)

    def sync(self) -> tuple[float, dict[str, int]]:
        from app.cli import main

        return timed(
            self.proxy,
            lambda: main(["--allow-insecure-keyring", "sync", "main", "--yes"]),
            self.env,
        )

    def startup(self) -> float:
        return startup([*self.base, "health", "main"], self.env)


class VdirsyncerTool:
    name = "vdirsyncer"

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

    def sync(self) -> tuple[float, dict[str, int]]:
        from vdirsyncer.cli import app

        return timed(self.proxy, lambda: app.main(["sync"], standalone_mode=False), self.env)

    def startup(self) -> float:
        return startup([self.exe, "--version"], self.env)


def run_size(size: int, root: Path) -> list[Step]:
    server = start_radicale(root / "radicale")
    proxy = DavProxy(server.url)
    steps: list[Step] = []
    try:
        tools: list[tuple[PairsyncTool | VdirsyncerTool, Path, str, list[Path]]] = []
        for cls in (PairsyncTool, VdirsyncerTool):
            work = root / cls.name
            work.mkdir(parents=True)
            book = server.new_book(cls.name)
            paths = fill_folder(work / "cards", size)
            tools.append((cls(work, proxy, book, work / "cards"), work, book, paths))
        for tool, *_ in tools:
            print(f"  startup {tool.name:<10} {tool.startup():7.2f} s (fresh process)", flush=True)
        edits = max(1, size // 100)
        for step in STEPS:
            for tool, _work, book, paths in tools:
                if step == "local1":
                    edit_local(paths, edits, "Edited locally")
                elif step == "server1":
                    edit_server(server, book, edits, "Edited on the server", skip=edits)
                seconds, counts = tool.sync()
                steps.append(Step(tool.name, size, step, seconds, sum(counts.values()), counts))
                print(
                    f"  N={size:<5} {step:<9} {tool.name:<10} {seconds:7.2f} s "
                    f"{sum(counts.values()):6d} requests {counts}",
                    flush=True,
                )
    finally:
        proxy.close()
        server.stop()
    return steps


def table(steps: list[Step]) -> str:
    rows = [
        "| N | step | Pairsync s | vdirsyncer s | time ratio | Pairsync requests | "
        "vdirsyncer requests | request ratio |",
        "|---|---|---|---|---|---|---|---|",
    ]
    by_key = {(s.size, s.step, s.tool): s for s in steps}
    for size in sorted({s.size for s in steps}):
        for step in STEPS:
            p, v = by_key[(size, step, "pairsync")], by_key[(size, step, "vdirsyncer")]
            rows.append(
                f"| {size} | {step} | {p.seconds:.2f} | {v.seconds:.2f} | "
                f"{p.seconds / v.seconds:.2f} | {p.requests} | {v.requests} | "
                f"{p.requests / max(1, v.requests):.2f} |"
            )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="500,2000")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if not (shutil.which("vdirsyncer") or Path(sys.executable).with_name("vdirsyncer").exists()):
        raise SystemExit("vdirsyncer is not installed: pip install -e '.[perf]'")
    steps: list[Step] = []
    for size in (int(s) for s in args.sizes.split(",")):
        root = Path(tempfile.mkdtemp(prefix=f"pairsync-bench-carddav-{size}-"))
        try:
            steps += run_size(size, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print(table(steps))
    if args.json:
        args.json.write_text(json.dumps([asdict(s) for s in steps], indent=2))


if __name__ == "__main__":
    main()
