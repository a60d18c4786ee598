"""A hostile HTTP server for tests: it redirects across origins, trickles its answer a byte
at a time (slowloris), sends huge or entity-laden XML, or garbage.

A small threaded server on 127.0.0.1 with a random free port. Each path is given a
*behaviour* (a function of the request handler); every request is recorded in ``seen``
(method, path, headers), so a test can prove what was, and was not, sent to it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

Behaviour = Callable[["_Handler"], None]


@dataclass(frozen=True, slots=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]


class HostileServer:
    def __init__(self, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Behaviour] = {}
        self.seen: list[Seen] = []
        self.stop = threading.Event()
        """Set when the server closes: trickling answers end."""
        server = ThreadingHTTPServer((host, 0), _Handler)
        server.daemon_threads = True
        server.hostile = self  # type: ignore[attr-defined]
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()

    def url(self, path: str = "/", host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def route(self, path: str, behaviour: Behaviour) -> None:
        self.routes[path] = behaviour

    def close(self) -> None:
        self.stop.set()
        self._server.shutdown()
        self._server.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, format: str, *args: object) -> None:  # quiet
        return None

    def _any(self) -> None:
        hostile: HostileServer = self.server.hostile  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        hostile.seen.append(Seen(self.command, self.path, dict(self.headers.items())))
        behaviour = hostile.routes.get(self.path.split("?", 1)[0])
        if behaviour is None:
            send(self, 404, b"not here")
            return
        try:
            behaviour(self)
        except (BrokenPipeError, ConnectionResetError, OSError):
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_PROPFIND = do_REPORT = do_MKCOL = _any

    @property
    def hostile(self) -> HostileServer:
        return self.server.hostile  # type: ignore[attr-defined,no-any-return]


# --- behaviours ------------------------------------------------------------------------------


def send(h: _Handler, status: int, body: bytes, content_type: str = "application/xml") -> None:
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(body)))
    h.end_headers()
    h.wfile.write(body)


def answer(status: int, body: bytes, content_type: str = "application/xml") -> Behaviour:
    return lambda h: send(h, status, body, content_type)


def redirect(location: str, status: int = 301) -> Behaviour:
    def behave(h: _Handler) -> None:
        h.send_response(status)
        h.send_header("Location", location)
        h.send_header("Content-Length", "0")
        h.end_headers()

    return behave


def trickle(body: bytes, every: float, *, headers_too: bool = False) -> Behaviour:
    """Slowloris: one byte every ``every`` seconds (the status line and headers too, when
    ``headers_too``), until the body is sent or the server closes."""

    def behave(h: _Handler) -> None:
        head = (
            f"HTTP/1.1 207 Multi-Status\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode("ascii")
        h.close_connection = True
        if not headers_too:
            h.wfile.write(head)
            h.wfile.flush()
            head = b""
        for byte in _bytes(head + body):
            if h.hostile.stop.wait(every):
                return
            h.wfile.write(byte)
            h.wfile.flush()

    return behave


def _bytes(data: bytes) -> Iterator[bytes]:
    for i in range(len(data)):
        yield data[i : i + 1]


def huge_multistatus(size: int, *, chunked: bool = False) -> Behaviour:
    """A 207 answer of ``size`` bytes of valid multistatus XML, made as it is sent."""
    head = b'<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">'
    tail = b"</d:multistatus>"
    item = (
        b"<d:response><d:href>/book/%08d.vcf</d:href><d:propstat><d:prop>"
        b'<d:getetag>"etag"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status>'
        b"</d:propstat></d:response>"
    )

    block = b"".join(item % n for n in range((1 << 20) // len(item % 0) + 1))

    def behave(h: _Handler) -> None:
        h.send_response(207)
        h.send_header("Content-Type", "application/xml")
        if chunked:
            h.send_header("Transfer-Encoding", "chunked")
        else:
            h.send_header("Content-Length", str(size))
        h.end_headers()
        h.close_connection = True
        body_size = size - len(head) - len(tail)
        pieces: Iterator[bytes] = itertools.chain(
            [head],
            (block[: min(len(block), body_size - i)] for i in range(0, body_size, len(block))),
            [tail],
        )
        started = time.monotonic()
        for data in pieces:
            if h.hostile.stop.is_set() or time.monotonic() - started > 120:
                return  # never hold a test run for long
            if chunked:
                h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                h.wfile.write(data)
        if chunked:
            h.wfile.write(b"0\r\n\r\n")

    return behave
