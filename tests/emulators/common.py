"""What every emulator shares.

* :class:`Emulator` — a threaded HTTP server on 127.0.0.1 (a free port unless one is
  given) that dispatches requests to routes (method + regular expression on the path).
  A route handler gets a :class:`Request` and returns a :class:`Reply`. Every request is
  recorded (``emulator.requests``) so tests can count and inspect what a client sent.
* :func:`run_main` — the ``python -m tests.emulators.<app>`` runner: prints the base URL as
  the first stdout line and serves until killed.
* :class:`DiscoveryValidator` — a Google Discovery document's ``schemas`` turned into JSON
  Schema (draft 4) and checked with ``jsonschema``; also checks a method's query parameters
  (names, required, enumerations). Objects are closed (no unknown property): Google answers
  "Invalid JSON payload received. Unknown name ..." for a field it does not know.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import jsonschema


@dataclass(slots=True)
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    match: re.Match[str] | None = None

    def arg(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default

    def args(self, name: str) -> list[str]:
        return list(self.query.get(name, []))

    def json(self) -> Any:
        return json.loads(self.body.decode("utf-8")) if self.body else {}

    def form(self) -> dict[str, str]:
        return {k: v[0] for k, v in parse_qs(self.body.decode("utf-8")).items()}


@dataclass(slots=True)
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(
            status,
            json.dumps(data).encode("utf-8"),
            {"Content-Type": "application/json; charset=UTF-8", **(headers or {})},
        )

    @classmethod
    def html(cls, text: str, status: int = 200) -> Reply:
        return cls(status, text.encode("utf-8"), {"Content-Type": "text/html; charset=utf-8"})

    @classmethod
    def redirect(cls, location: str) -> Reply:
        return cls(302, b"", {"Location": location})


Handler = Callable[[Request], Reply]


@dataclass(slots=True)
class Seen:
    """One request as the emulator received it (for tests)."""

    method: str
    path: str
    query: dict[str, list[str]]
    body: bytes
    status: int


class Emulator:
    """Base of every emulator: subclass, register routes in ``__init__``."""

    name = "emulator"

    def __init__(self, port: int = 0) -> None:
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self.requests: list[Seen] = []
        self.lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._port = port

    def route(self, method: str, pattern: str, handler: Handler) -> None:
        self.routes.append((method, re.compile(pattern + r"\Z"), handler))

    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Emulator:
        emulator = self

        class _H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def _any(self) -> None:
                emulator._serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), _H)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=self.name, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """Requests seen, optionally only those of one method and/or path regex."""
        with self.lock:
            return sum(
                1
                for s in self.requests
                if (method is None or s.method == method)
                and (path is None or re.search(path, s.path))
            )

    def not_found(self, request: Request) -> Reply:
        return Reply.json(
            {"error": {"code": 404, "message": "Not found", "status": "NOT_FOUND"}}, 404
        )

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        request = Request(
            h.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            {k.lower(): v for k, v in h.headers.items()},
            body,
        )
        handler: Handler = self.not_found
        for method, pattern, candidate in self.routes:
            match = pattern.match(parts.path)
            if match and method == h.command:
                handler, request.match = candidate, match
                break
        try:
            reply = handler(request)
        except Exception as err:  # an emulator bug shows as a 500 with its text
            reply = Reply.json(
                {"error": {"code": 500, "message": repr(err), "status": "INTERNAL"}}, 500
            )
        with self.lock:
            self.requests.append(
                Seen(request.method, request.path, request.query, body, reply.status)
            )
        h.send_response(reply.status)
        for key, value in reply.headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(reply.body)))
        h.end_headers()
        h.wfile.write(reply.body)


def run_main(
    build: Callable[[argparse.Namespace], Emulator],
    argv: Iterable[str] | None = None,
    add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
    description: str = "",
) -> None:
    """Start an emulator from the command line: first stdout line = base URL."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    if add_arguments is not None:
        add_arguments(parser)
    args = parser.parse_args(list(argv) if argv is not None else None)
    emulator = build(args)
    emulator.start()
    print(emulator.url, flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        emulator.stop()
        sys.stdout.flush()


# --- Google Discovery documents ------------------------------------------------------------


def find_spec(relative: str) -> Path:
    """A vendor spec from ``shared/specs/``, which lies beside the repository (CI, the
    main checkout) or beside a folder above it (a worktree under ``wt/``);
    ``PAIRSYNC_SPECS`` names the folder explicitly."""
    env = os.environ.get("PAIRSYNC_SPECS")
    candidates = [Path(env) / relative] if env else []
    here = Path(__file__).resolve()
    candidates += [parent / "shared" / "specs" / relative for parent in here.parents]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"The vendor spec {relative} was not found in a shared/specs/ folder beside the "
        "repository; set PAIRSYNC_SPECS to the folder that holds it."
    )


class SpecError(AssertionError):
    """A request or response does not follow the vendor's description."""


def _discovery_to_jsonschema(schema: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "$ref" in schema:
        return {"$ref": f"#/definitions/{schema['$ref']}"}
    kind = schema.get("type")
    if kind and kind != "any":
        out["type"] = kind
    if "enum" in schema:
        out["enum"] = list(schema["enum"])
    if kind == "array" and "items" in schema:
        out["items"] = _discovery_to_jsonschema(schema["items"])
    if kind == "object":
        if "properties" in schema:
            out["properties"] = {
                k: _discovery_to_jsonschema(v) for k, v in schema["properties"].items()
            }
        if "additionalProperties" in schema:
            out["additionalProperties"] = _discovery_to_jsonschema(schema["additionalProperties"])
        elif "properties" in schema:
            out["additionalProperties"] = False
    return out


class DiscoveryValidator:
    """Checks JSON bodies and query parameters against a Discovery document."""

    def __init__(self, path: str | Path) -> None:
        self.doc = json.loads(Path(path).read_text(encoding="utf-8"))
        definitions = {name: _discovery_to_jsonschema(s) for name, s in self.doc["schemas"].items()}
        self._definitions = definitions
        self._validators: dict[str, jsonschema.Draft4Validator] = {}
        self.methods: dict[str, dict[str, Any]] = {}
        self._collect(self.doc.get("resources", {}), "")

    def _collect(self, resources: Mapping[str, Any], prefix: str) -> None:
        for name, resource in resources.items():
            for method, spec in resource.get("methods", {}).items():
                self.methods[f"{prefix}{name}.{method}"] = spec
            self._collect(resource.get("resources", {}), f"{prefix}{name}.")

    def _validator(self, name: str) -> jsonschema.Draft4Validator:
        found = self._validators.get(name)
        if found is None:
            if name not in self._definitions:
                raise KeyError(f"no schema {name!r} in the discovery document")
            schema = {"$ref": f"#/definitions/{name}", "definitions": self._definitions}
            found = jsonschema.Draft4Validator(schema)
            self._validators[name] = found
        return found

    def check(self, schema: str, instance: Any, what: str = "") -> None:
        errors = sorted(self._validator(schema).iter_errors(instance), key=lambda e: list(e.path))
        if errors:
            lines = [
                f"{'/'.join(str(p) for p in e.path) or '(top)'}: {e.message}" for e in errors[:5]
            ]
            raise SpecError(f"{what or schema} does not follow {schema}: " + "; ".join(lines))

    def check_query(self, method_id: str, query: Mapping[str, list[str]]) -> None:
        """Query parameters: known names (method's or the API's common ones), required ones
        present, enumerations respected, repeated only where the spec says so."""
        spec = self.methods[method_id]
        params = {
            k: v for k, v in spec.get("parameters", {}).items() if v.get("location") == "query"
        }
        common = self.doc.get("parameters", {})
        for name, values in query.items():
            p = params.get(name) or common.get(name)
            if p is None:
                raise SpecError(f"{method_id}: unknown query parameter {name!r}")
            if len(values) > 1 and not p.get("repeated"):
                raise SpecError(f"{method_id}: {name!r} given {len(values)} times")
            if "enum" in p:
                for v in values:
                    if v not in p["enum"]:
                        raise SpecError(f"{method_id}: {name}={v!r} not in {p['enum']}")
            if p.get("type") == "integer":
                for v in values:
                    if not re.fullmatch(r"-?\d+", v):
                        raise SpecError(f"{method_id}: {name}={v!r} is not an integer")
            if p.get("type") == "boolean":
                for v in values:
                    if v not in ("true", "false"):
                        raise SpecError(f"{method_id}: {name}={v!r} is not a boolean")
        for name, p in params.items():
            if p.get("required") and name not in query:
                raise SpecError(f"{method_id}: required query parameter {name!r} missing")

    def check_request(self, method_id: str, body: Any) -> None:
        ref = self.methods[method_id].get("request", {}).get("$ref")
        if ref:
            self.check(ref, body, f"{method_id} request")

    def check_response(self, method_id: str, body: Any) -> None:
        ref = self.methods[method_id].get("response", {}).get("$ref")
        if ref:
            self.check(ref, body, f"{method_id} response")

    def http_method(self, method_id: str) -> str:
        return str(self.methods[method_id]["httpMethod"])
