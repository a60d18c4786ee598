"""Real CardDAV servers for tests and benchmarks: Radicale and Xandikos on 127.0.0.1.

Each server runs as a subprocess (``sys.executable -m radicale`` / ``-m xandikos``) on a free
port with its storage in a temporary folder; :meth:`DavServer.new_book` makes a fresh address
book so tests sharing one server never see each other's cards.

:class:`DavProxy` sits in front of a server: it counts requests (benchmarks) and can answer
some requests itself (faults we cannot make a real server produce: 503, 429, a dropped
connection). It is the only stand-in; everything else talks to the real server.
"""

from __future__ import annotations

import contextlib
import http.client
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests

USER = "alice"
PASSWORD = "s3cret-app-password"
SOLO = ("solo", "solo-pass")
"""A second Radicale user whose home starts empty (discovery tests)."""
MAX_RESOURCE_SIZE = 1_000_000
"""Radicale refuses bigger cards (tests of a per-card rejection)."""

MKCOL_BOOK = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<d:mkcol xmlns:d="DAV:" xmlns:c="urn:ietf:params:xml:ns:carddav"><d:set><d:prop>'
    "<d:resourcetype><d:collection/><c:addressbook/></d:resourcetype>"
    "<d:displayname>{name}</d:displayname></d:prop></d:set></d:mkcol>"
)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class DavServer:
    """One running server. ``auth`` is None for Xandikos (its Basic auth needs TLS)."""

    kind: str
    url: str
    home: str
    """Path of the user's address book home (``/alice/``, ``/user/contacts/``)."""
    storage: Path
    process: subprocess.Popen[bytes]
    auth: tuple[str, str] | None
    log: Path
    session: requests.Session = field(default_factory=requests.Session)

    def __post_init__(self) -> None:
        self.session.auth = self.auth

    def new_book(self, name: str | None = None) -> str:
        """URL of a new, empty address book."""
        slug = name or uuid.uuid4().hex[:12]
        url = f"{self.url}{self.home}{slug}/"
        response = self.session.request(
            "MKCOL",
            url,
            data=MKCOL_BOOK.format(name=slug),
            headers={"Content-Type": "application/xml"},
        )
        assert response.status_code in (200, 201), (response.status_code, response.text)
        return url

    def put(self, url: str, text: str | bytes, etag: str | None = None) -> str:
        """Store a card as another client would; its new ETag (or "")."""
        headers = {"Content-Type": "text/vcard; charset=utf-8"}
        if etag:
            headers["If-Match"] = etag
        body = text.encode("utf-8") if isinstance(text, str) else text
        response = self.session.put(url, data=body, headers=headers)
        assert response.status_code in (200, 201, 204), (response.status_code, response.text)
        return response.headers.get("ETag", "")

    def get(self, url: str) -> tuple[str, bytes]:
        response = self.session.get(url)
        assert response.status_code == 200, response.status_code
        return response.headers.get("ETag", ""), response.content

    def delete(self, url: str) -> None:
        response = self.session.delete(url)
        assert response.status_code in (200, 204), response.status_code

    def stop(self) -> None:
        self.session.close()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text(errors='replace')[-2000:]}")
        with contextlib.suppress(requests.RequestException):
            requests.request("OPTIONS", url, timeout=1)
            return
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"server did not start: {log.read_text(errors='replace')[-2000:]}")


def start_radicale(root: Path, *, log_level: str = "warning") -> DavServer:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    (root / "users").write_text(f"{USER}:{PASSWORD}\n{SOLO[0]}:{SOLO[1]}\n")
    config = root / "radicale.conf"
    config.write_text(
        f"[server]\nhosts = 127.0.0.1:{port}\nmax_connections = 20\n"
        f"max_resource_size = {MAX_RESOURCE_SIZE}\n"
        f"[auth]\ntype = htpasswd\nhtpasswd_filename = {root / 'users'}\n"
        "htpasswd_encryption = plain\ndelay = 0\n"
        f"[storage]\nfilesystem_folder = {root / 'collections'}\n"
        "[rights]\ntype = owner_only\n"
        f"[logging]\nlevel = {log_level}\n"
    )
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "radicale", "-C", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, process, log)
    return DavServer(
        "radicale", url, f"/{USER}/", root / "collections", process, (USER, PASSWORD), log
    )


def start_xandikos(root: Path) -> DavServer:
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "server.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "xandikos",
                "serve",
                "-d",
                str(root / "data"),
                "--autocreate",
                "--current-user-principal",
                "/user/",
                "-l",
                "127.0.0.1",
                "-p",
                str(port),
                "--state-dir",
                str(root / "state"),
                "--no-detect-systemd",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    _wait_ready(url, process, log)
    server = DavServer("xandikos", url, "/user/contacts/", root / "data", process, None, log)
    # --autocreate makes the principal; the address book home is made once here.
    response = server.session.request("MKCOL", f"{url}/user/contacts/")
    assert response.status_code in (200, 201, 405), response.status_code
    return server


@contextlib.contextmanager
def running(kind: str) -> Iterator[DavServer]:
    root = Path(tempfile.mkdtemp(prefix=f"pairsync-{kind}-"))
    server = start_radicale(root) if kind == "radicale" else start_xandikos(root)
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


# --- the proxy ---------------------------------------------------------------------------------

Fault = Callable[[str, str], "tuple[int, dict[str, str], bytes] | str | None"]
"""(method, path) → an answer to send instead, ``"drop"`` to close the connection, or None."""

HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}


class DavProxy:
    """A counting, fault-injecting HTTP proxy in front of one server (127.0.0.1 only)."""

    def __init__(self, upstream: str) -> None:
        target = urlsplit(upstream)
        self.host, self.port = target.hostname or "127.0.0.1", target.port or 80
        self.counts: Counter[str] = Counter()
        self.faults: list[Fault] = []
        self.lock = threading.Lock()
        local = threading.local()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:
                pass

            def _conn(self) -> http.client.HTTPConnection:
                conn = getattr(local, "conn", None)
                if conn is None:
                    conn = http.client.HTTPConnection(proxy.host, proxy.port, timeout=60)
                    local.conn = conn
                return conn

            def handle_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with proxy.lock:
                    proxy.counts[self.command] += 1
                    answer = None
                    for fault in list(proxy.faults):
                        answer = fault(self.command, self.path)
                        if answer is not None:
                            break
                if answer == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(answer, tuple):
                    status, headers, payload = answer
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_BY_HOP}
                for attempt in range(2):
                    conn = self._conn()
                    try:
                        conn.request(self.command, self.path, body=body, headers=headers)
                        response = conn.getresponse()
                        payload = response.read()
                        break
                    except (http.client.HTTPException, OSError):
                        conn.close()
                        local.conn = None
                        if attempt:
                            raise
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in HOP_BY_HOP and key.lower() != "content-length":
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_PUT = do_DELETE = do_PROPFIND = do_REPORT = handle_any
            do_MKCOL = do_OPTIONS = do_PROPPATCH = do_HEAD = do_POST = handle_any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def total(self) -> int:
        return sum(self.counts.values())

    def reset(self) -> None:
        with self.lock:
            self.counts.clear()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- fixtures (registered for every test by tests/conftest.py) -----------------------------------


@pytest.fixture(scope="session")
def radicale() -> Iterator[DavServer]:
    with running("radicale") as server:
        yield server


@pytest.fixture(scope="session")
def xandikos() -> Iterator[DavServer]:
    with running("xandikos") as server:
        yield server


def plant(server: DavServer, book_url: str, name: str, data: bytes) -> None:
    """Put a card into Xandikos's storage behind its back (a card the server would refuse,
    as another server or an older version may have stored it). Xandikos keeps each
    collection in a git repository and serves what is committed."""
    assert server.kind == "xandikos"
    from dulwich import porcelain

    folder = server.storage / urlsplit(book_url).path.strip("/")
    (folder / name).write_bytes(data)
    porcelain.add(str(folder), [str(folder / name)])
    porcelain.commit(str(folder), message=b"planted", author=b"t <t@x>", committer=b"t <t@x>")
