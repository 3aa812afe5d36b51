"""The booking platform pushes appointment files to the hall over HTTP (stdlib only).

``POST /api/v1/appointments/import`` with ``Authorization: Bearer <token>`` and a CSV
(``text/csv``) or JSON (``application/json``) body; ``GET /api/v1/health`` needs no token.
Full status table: docs/hall-appointments-import.md.

Partial imports: when at least one row is valid, the valid rows go to ``on_import`` and the
answer is 200 with the rejected rows listed; only a file with no valid row (or a file-level
problem) is refused with 422. A booking that is fine must not miss its check-in because of
someone else's typo.

Each connection carries one request (``Connection: close``), so stop() never waits for an
idle keep-alive. The body is read completely or drained (up to a cap) before an error answer,
so the client reads the status instead of a connection reset. Access log lines name the
method, a known path, the status and the client; never a body, query string or token.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
import socket
import socketserver
import stat
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from hall.appointments.importer import ImportResult, parse_csv, parse_json
from hall.appointments.records import (
    ImportServerBindError,
    ImportServerConfigError,
    ImportServerStateError,
)
from hall.appointments.settings import TOKEN_MIN_CHARS, AppointmentImportSettings
from hallkiosk.errors import HallkioskError
from hallkiosk.privacy import IdentityHasher

_log = logging.getLogger(__name__)

IMPORT_PATH: Final = "/api/v1/appointments/import"
HEALTH_PATH: Final = "/api/v1/health"
# A response lists at most this many row errors (errors_total tells the full count).
MAX_ERRORS_IN_RESPONSE: Final = 500
# A body we refuse is still read and dropped up to this size, so the client sees our answer.
DRAIN_CAP_BYTES: Final = 64 * 1024 * 1024
_CHUNK_BYTES: Final = 64 * 1024
_POLL_S: Final = 0.05  # how fast serve_forever notices stop()

# Mapping, not dict: a store returning dict[str, int] fits (dict is invariant in its values).
OnImport = Callable[[ImportResult], Mapping[str, object]]
Parser = Callable[..., ImportResult]
_PARSERS: Final[dict[str, Parser]] = {"text/csv": parse_csv, "application/json": parse_json}
_ERROR_NAMES: Final[dict[int, str]] = {
    400: "bad_request",
    401: "unauthorized",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    411: "length_required",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid_import",
    500: "import_failed",
    503: "stopping",
}


def read_token(path: str) -> bytes:
    """The bearer token: one line of >= 32 printable ASCII characters. Never echoed."""
    where = f"token_file {path!r}"
    try:
        raw = Path(path).read_bytes()
        mode = Path(path).stat().st_mode
    except FileNotFoundError:
        raise ImportServerConfigError(f"{where}: file not found") from None
    except OSError as exc:
        raise ImportServerConfigError(f"{where}: cannot read: {exc.strerror}") from None
    try:
        token = raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise ImportServerConfigError(f"{where}: must be printable ASCII") from None
    if len(token) < TOKEN_MIN_CHARS:
        raise ImportServerConfigError(
            f"{where}: the token has {len(token)} characters, at least {TOKEN_MIN_CHARS} "
            "are needed (e.g. the output of `openssl rand -hex 32`)"
        )
    if not all(0x21 <= ord(c) <= 0x7E for c in token):
        raise ImportServerConfigError(
            f"{where}: must hold one token of printable ASCII without spaces"
        )
    if mode & stat.S_IROTH:
        _log.warning("%s is readable by every user; chmod 0600 or 0640", where)
    return token.encode("ascii")


@dataclass(frozen=True)
class _App:
    settings: AppointmentImportSettings
    token: bytes
    hasher: IdentityHasher
    tz: tzinfo
    on_import: OnImport
    # One import at a time: two pushes of overlapping bookings must not interleave in the store.
    import_lock: threading.Lock = field(default_factory=threading.Lock)


class AppointmentImportServer:
    """Serves the import endpoint on a ThreadingHTTPServer; ``on_import`` runs on a worker
    thread, one import at a time, and returns the summary put in the 200 answer."""

    def __init__(
        self,
        settings: AppointmentImportSettings,
        *,
        hasher: IdentityHasher,
        tz: tzinfo,
        on_import: OnImport,
    ) -> None:
        self._settings = settings
        self._hasher = hasher
        self._tz = tz
        self._on_import = on_import
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self._server is None:
            raise ImportServerStateError("the appointment import server is not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:8470`` (brackets for IPv6)."""
        host = self._settings.http_bind
        return f"http://{f'[{host}]' if ':' in host else host}:{self.port}"

    def start(self) -> None:
        if self._server is not None:
            raise ImportServerStateError("the appointment import server is already started")
        if not self._settings.http_enabled:
            raise ImportServerConfigError("the HTTP import is disabled (http_enabled = false)")
        app = _App(
            settings=self._settings,
            token=read_token(self._settings.token_file),
            hasher=self._hasher,
            tz=self._tz,
            on_import=self._on_import,
        )
        host, port = self._settings.http_bind, self._settings.http_port
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        try:
            server = _Server((host, port), family, app)
        except OSError as exc:
            raise ImportServerBindError(
                f"cannot listen on {host}:{port}: {exc.strerror or exc}"
            ) from exc
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": _POLL_S},
            name="appointments-http",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        _log.info("appointment import listening on %s%s", self.url, IMPORT_PATH)

    def stop(self) -> None:
        """Stop accepting, close idle connections, wait for requests in progress."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_idle()
        server.server_close()  # joins the request threads
        thread.join()
        self._server = self._thread = None
        _log.info("appointment import stopped")

    def __enter__(self) -> AppointmentImportServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() waits for imports in progress
    block_on_close = True

    def __init__(self, address: tuple[str, int], family: socket.AddressFamily, app: _App) -> None:
        self.address_family = family
        self.app = app
        self._lock = threading.Lock()
        self._idle: set[socket.socket] = set()
        self._stopping = False
        super().__init__(address, _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind would reverse-resolve the address (slow without DNS)
        socketserver.TCPServer.server_bind(self)
        self.server_name = str(self.server_address[0])
        self.server_port = int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._lock:
            self._idle.add(request)  # until its request line and headers are in
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._lock:
            self._idle.discard(request)
        super().shutdown_request(request)

    def mark_busy(self, request: socket.socket) -> bool:
        """The request is in; False when the server is stopping (answer 503)."""
        with self._lock:
            self._idle.discard(request)
            return not self._stopping

    def close_idle(self) -> None:
        with self._lock:
            self._stopping = True
            for request in self._idle:
                with contextlib.suppress(OSError):
                    request.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked reading it

    def handle_error(self, request: Any, client_address: Any) -> None:
        # The default prints a traceback to stderr; one line names the failure instead.
        _log.warning("connection from %s failed", client_address[0], exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hallkiosk-appointments"
    sys_version = ""

    def setup(self) -> None:
        self._app = self._srv.app
        self._deadline = time.monotonic() + self._app.settings.request_timeout_s
        self._body_read = False
        super().setup()
        self.connection.settimeout(self._app.settings.request_timeout_s)  # per recv

    @property
    def _srv(self) -> _Server:
        assert isinstance(self.server, _Server)
        return self.server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = do_GET

    def _dispatch(self) -> None:
        self.close_connection = True
        if not self._srv.mark_busy(self.connection):
            self._error(503, "the server is stopping; try again")
            return
        path = urlsplit(self.path).path
        if path == HEALTH_PATH:
            if self.command == "GET":
                self._send_json(200, {"status": "ok"})
            else:
                self._error(405, "use GET", [("Allow", "GET")])
        elif path == IMPORT_PATH:
            if self.command == "POST":
                self._import()
            else:
                self._error(405, "use POST", [("Allow", "POST")])
        else:
            self._error(404, "no such endpoint")

    # --- the import -------------------------------------------------------------------------

    def _import(self) -> None:
        if not self._authorised():
            _log.warning("import refused: bad or missing token from %s", self.client_address[0])
            self._error(401, "a valid bearer token is required", [("WWW-Authenticate", "Bearer")])
            return
        parser = _PARSERS.get(self.headers.get_content_type())
        if parser is None:
            self._error(415, "Content-Type must be text/csv or application/json")
            return
        length = self._content_length()
        if length is None:
            return
        limit = self._app.settings.max_body_bytes
        if length > limit:
            self._error(413, f"the body is {length} bytes; the limit is {limit}")
            return
        body = self._read_body(length)
        if body is None:
            return
        app = self._app
        result = parser(
            body, hasher=app.hasher, tz=app.tz, max_rows=app.settings.max_rows, max_bytes=limit
        )
        del body  # raw ID numbers: not kept past parsing
        if result.errors and not result.records:
            _log.info("import refused: no valid row, %d errors", len(result.errors))
            self._error(422, "nothing could be imported", extra=_error_fields(result))
            return
        try:
            with app.import_lock:
                summary = app.on_import(result)
            answer = {
                "status": "imported",
                "accepted": len(result.records),
                "rejected": len(result.rejected_rows),
                **_error_fields(result),
                "summary": dict(summary),
            }
            payload = json.dumps(answer, ensure_ascii=False).encode("utf-8")
        except HallkioskError as exc:
            _log.error("import failed in on_import (%s)", exc.code, exc_info=True)
            self._send_json(500, {"error": exc.code, "message": exc.message_en})
            return
        except Exception:
            _log.exception("import failed in on_import")
            self._error(500, "the hall could not store the import; try again later")
            return
        _log.info(
            "import done: %d accepted, %d rows rejected",
            len(result.records),
            len(result.rejected_rows),
        )
        self._send_bytes(200, payload)

    def _authorised(self) -> bool:
        values = self.headers.get_all("Authorization") or []
        if len(values) != 1:
            return False
        scheme, _, given = str(values[0]).strip().partition(" ")
        if scheme.lower() != "bearer":
            return False
        try:
            # headers are decoded as latin-1, so this gives back the bytes the client sent
            presented = given.strip().encode("latin-1")
        except UnicodeEncodeError:
            return False
        return hmac.compare_digest(presented, self._app.token)

    def _content_length(self) -> int | None:
        if self.headers.get("Transfer-Encoding") is not None:
            self._error(411, "send the body with a Content-Length, not chunked")
            return None
        values = self.headers.get_all("Content-Length") or []
        if not values:
            self._error(411, "a Content-Length header is required")
            return None
        if len(values) != 1 or not values[0].strip().isdigit():
            self._error(400, "Content-Length must be one non-negative integer")
            return None
        return int(values[0])

    def _read_body(self, length: int) -> bytes | None:
        self._body_read = True  # whatever happens below, nothing is left to drain
        chunks: list[bytes] = []
        remaining = length
        while remaining:
            if time.monotonic() > self._deadline:
                self._error(408, "the body did not arrive in time")
                return None
            try:
                chunk = self.rfile.read1(min(remaining, _CHUNK_BYTES))
            except TimeoutError:
                self._error(408, "the body did not arrive in time")
                return None
            if not chunk:
                self._error(400, "the body is shorter than its Content-Length")
                return None
            chunks.append(chunk)
            remaining -= len(chunk)
        return b"".join(chunks)

    def _drain(self) -> None:
        """Read and drop an unread body, so closing does not reset the connection before the
        client has read our answer."""
        headers = getattr(self, "headers", None)  # absent when the request line was bad
        if self._body_read or headers is None:
            return
        self._body_read = True
        value = (headers.get("Content-Length") or "").strip()
        if not value.isdigit() or int(value) > DRAIN_CAP_BYTES:
            return
        remaining = int(value)
        try:
            while remaining and time.monotonic() < self._deadline:
                chunk = self.rfile.read1(min(remaining, _CHUNK_BYTES))
                if not chunk:
                    return
                remaining -= len(chunk)
        except OSError:
            return

    # --- answers ----------------------------------------------------------------------------

    def _error(
        self,
        status: int,
        message: str,
        headers: list[tuple[str, str]] | None = None,
        extra: dict[str, object] | None = None,
    ) -> None:
        self._drain()
        body: dict[str, object] = {"error": _ERROR_NAMES.get(status, "http_error")}
        body["message"] = message
        body.update(extra or {})
        self._send_json(status, body, headers)

    def _send_json(
        self, status: int, body: dict[str, object], headers: list[tuple[str, str]] | None = None
    ) -> None:
        self._send_bytes(status, json.dumps(body, ensure_ascii=False).encode("utf-8"), headers)

    def _send_bytes(
        self, status: int, payload: bytes, headers: list[tuple[str, str]] | None = None
    ) -> None:
        self.close_connection = True
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Connection", "close")
        for name, value in headers or []:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        # http.server's own refusals (bad request line, 414, 431, 501): JSON, not HTML
        self._error(code, HTTPStatus(code).phrase)

    # --- logging: no bodies, no query strings, no tokens -------------------------------------

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        path = urlsplit(getattr(self, "path", "") or "").path
        shown = path if path in (IMPORT_PATH, HEALTH_PATH) else "(other path)"
        status = int(code) if isinstance(code, HTTPStatus) else code
        _log.info("%s %s %s from %s", self.command or "-", shown, status, self.client_address[0])

    def log_error(self, format: str, *args: Any) -> None:
        # args may quote the raw request line; the template alone says what went wrong
        _log.info("http: %s from %s", format.partition(":")[0], self.client_address[0])

    def log_message(self, format: str, *args: Any) -> None:
        _log.debug("http: %s from %s", format.partition(":")[0], self.client_address[0])


def _error_fields(result: ImportResult) -> dict[str, object]:
    return {
        "errors": [e.as_dict() for e in result.errors[:MAX_ERRORS_IN_RESPONSE]],
        "errors_total": len(result.errors),
    }
